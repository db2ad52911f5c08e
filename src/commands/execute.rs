//! Carrying out a plan under the deploy lock: the intent recorded with the lock, the writes
//! (kept copies first, everything else before HTML), the deletes, the CloudFront
//! invalidations, and the final root that records what happened and releases the lock; the
//! events progress listens to.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::cancel::Cancel;
use crate::cloud::bucket::{Bucket, BucketError};
use crate::cloud::cdn::{Cdn, CdnError};
use crate::commands::lease::{lost_code, Lease, Lost, Taken};
use crate::commands::remote;
use crate::decide::distribution::Serving;
use crate::decide::invalidation::{self, Batch, Change, InFlight, InvalidationError};
use crate::decide::plan::{
    self, DeleteKind, Moment, Outcome, Outcomes, Plan, Settled, Source, Write,
};
use crate::error::Error;
use crate::local::headers::Headers;
use crate::state::entry::Entry;
use crate::state::format::{BaseRef, DeployInfo, HistoryDoc, InProgressDoc, Reverse, RootDoc};
use crate::state::history::{self, Placed};
use crate::state::layout::Layout;
use crate::state::view::{Changes, View};

/// What `execute` reports while it works; progress bars and log lines are built on these.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    Locked {
        holder: &'a str,
    },
    Aborted {
        key: &'a str,
    },
    Writing {
        files: usize,
        bytes: u64,
    },
    Sent {
        bytes: u64,
    },
    Wrote {
        key: &'a str,
        size: u64,
        copied: bool,
    },
    WriteFailed {
        key: &'a str,
        error: &'a BucketError,
    },
    Kept {
        key: &'a str,
    },
    Deleted {
        key: &'a str,
    },
    DeleteFailed {
        key: &'a str,
        error: &'a BucketError,
    },
    Invalidating {
        distribution: &'a str,
        paths: usize,
    },
    Invalidated {
        distribution: &'a str,
        id: &'a str,
    },
    InvalidationFailed {
        distribution: &'a str,
        error: &'a str,
    },
    Retrying {
        what: &'a str,
        after: Duration,
    },
    LockLost {
        taken: bool,
    },
    ManifestWritten,
}

pub trait Progress: Send + Sync {
    fn event(&self, event: Event<'_>);
}

/// Where the deploy keeps its state in the bucket, and who it is.
#[derive(Clone, Debug)]
pub struct Job {
    pub layout: Layout,
    pub holder: String,
    /// This deploy: its id (unique per run, also the lock's), time, version, commit, kind.
    pub deploy: DeployInfo,
    pub concurrency: usize,
    /// The distributions to invalidate after the writes.
    pub distributions: Vec<Serving>,
    pub max_paths: usize,
    /// Waits between attempts when CloudFront has too many invalidations in progress.
    pub cdn_backoff: Vec<Duration>,
    pub keep_deploys: usize,
    /// Fingerprint of the settings that leave files in place (see `RootDoc::left_by`).
    pub left_by: String,
}

/// Waits between attempts when CloudFront has too many invalidations in progress: about a
/// minute and a half in all, the time a few invalidations take to complete.
pub const CDN_BACKOFF: [u64; 5] = [2, 5, 10, 20, 40];

/// One distribution's invalidation: what was (or would be) sent and what came of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Invalidated {
    pub distribution: String,
    pub paths: Vec<String>,
    pub wildcards: usize,
    pub evicted_unchanged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Invalidated {
    /// A distribution with nothing sent (yet).
    pub fn nothing(distribution: &str) -> Invalidated {
        Invalidated {
            distribution: distribution.to_string(),
            paths: Vec::new(),
            wildcards: 0,
            evicted_unchanged: 0,
            id: None,
            error: None,
        }
    }
}

/// The two services a deploy writes to.
pub struct Stores<'a, B, C> {
    pub bucket: &'a B,
    pub cdn: &'a C,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub key: String,
    pub error: String,
}

/// What happened: the plan carried out, each write's and delete's outcome in plan order, and
/// the failures.
#[derive(Clone, Debug, Default)]
pub struct Executed {
    pub plan: Plan,
    pub outcomes: Outcomes,
    pub failures: Vec<Failure>,
    pub bytes_sent: u64,
    pub invalidations: Vec<Invalidated>,
    pub interrupted: Option<u8>,
    /// Multipart uploads an interrupted deploy left behind, aborted by this one.
    pub aborted: usize,
    /// This deploy's number, once recorded.
    pub seq: u64,
    /// There was no manifest before: everything was new.
    pub first: bool,
}

impl Executed {
    pub fn written(&self) -> impl Iterator<Item = &Write> {
        self.plan
            .writes
            .iter()
            .zip(&self.outcomes.writes)
            .filter(|(_, o)| **o == Outcome::Done)
            .map(|(w, _)| w)
    }

    pub fn deleted(&self) -> impl Iterator<Item = &plan::Delete> {
        self.plan
            .deletes
            .iter()
            .zip(&self.outcomes.deletes)
            .filter(|(_, o)| **o == Outcome::Done)
            .map(|(d, _)| d)
    }

    pub fn is_complete(&self) -> bool {
        self.outcomes.is_complete()
    }

    pub fn invalidation_failed(&self) -> bool {
        self.invalidations.iter().any(|i| i.error.is_some())
    }
}

/// The outcome of a locked run, or why it did not get the lock.
pub enum Ran {
    Done(Box<Executed>),
    /// The root changed since it was read: it is held by another deploy, or the state moved
    /// on and the plan must be made again. The root as it is now, if readable.
    Contended(Box<Option<(RootDoc, String)>>),
}

/// Runs the plan under the lock. `view` is the manifest the plan was made against (every chunk
/// read when the plan needs a new base); `unchanged` lists the site keys that stay as they are
/// (for counting what a wildcard invalidation would evict).
#[allow(clippy::too_many_arguments)]
pub async fn execute<B: Bucket, C: Cdn>(
    stores: Stores<'_, B, C>,
    job: &Job,
    view: &View,
    plan: Plan,
    moment: Moment,
    unchanged: &[&str],
    lease: &Lease<'_, B>,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<Ran, Error> {
    let bucket = stores.bucket;
    let current = |k: &str| view.current(k).cloned();
    let all_done = plan::settled(&plan, &Outcomes::all_done(&plan), &current, moment);
    let large = view.needs_rebase(&all_done);

    // The intent: what may change is recorded before anything changes. A large deploy writes
    // the state it will leave as a planned base first, with its reverse delta beside it; the
    // records it was made from are not kept through the uploads (they are as many as the files).
    let mut planned = None;
    let mut reverse = Changes::new();
    let mut intent_root = if large {
        let keys: BTreeSet<&str> = plan::reverse_keys(&plan, &job.layout).collect();
        let records: Vec<(&str, Option<&Entry>)> =
            keys.iter().map(|k| (*k, view.current(k))).collect();
        let part = history::records_part_bytes(&records);
        let reverse_keys = records.len() as u64;
        drop((records, keys));
        let (root_after, mut base) = view.rebase(&all_done, &[part]);
        drop(all_done);
        // Sent, not kept: the rare deploy that must correct its plan reads back what it needs.
        let size = base.bytes.len() as u64;
        let sent = bucket
            .put_bytes(
                &base.key,
                std::mem::take(&mut base.bytes),
                &part_headers(),
                None,
            )
            .await
            .map_err(|source| Error::Bucket {
                what: "cannot write the planned manifest",
                bucket: bucket.name().to_string(),
                key: base.key.clone(),
                source,
            })?;
        drop(sent);
        let mut root = view.root.clone();
        root.in_progress = Some(InProgressDoc {
            id: job.deploy.id.clone(),
            started: job.deploy.time.clone(),
            planned: Some(BaseRef {
                key: base.key.clone(),
                size,
                chunks_end: base.extras.first().map(|(at, _)| *at),
            }),
        });
        planned = Some(Planned {
            root: root_after,
            base,
            reverse_keys,
        });
        root
    } else {
        drop(all_done);
        reverse = plan::reverse(&plan, &job.layout, &current);
        let changes = plan::intent(&plan, &current, moment);
        let mut root = view.next_root(&changes);
        history::reindex(&mut root, &view.root.headers);
        root.in_progress = Some(InProgressDoc {
            id: job.deploy.id.clone(),
            started: job.deploy.time.clone(),
            planned: None,
        });
        root
    };
    intent_root.lock = Some(lease.lock_doc(&job.holder, &job.deploy.time, 0));
    intent_root.version = crate::state::format::VERSION;
    intent_root.legacy = false;
    match lease.take(intent_root, view.etag.as_deref()).await? {
        Taken::Held => {}
        Taken::Contended(now) => {
            if let Some(Planned { base, .. }) = &planned {
                // Nothing refers to it: the contending deploy plans again from scratch.
                let _ = bucket.delete(std::slice::from_ref(&base.key)).await;
            }
            return Ok(Ran::Contended(now));
        }
    }
    progress.event(Event::Locked {
        holder: &job.holder,
    });

    let work = locked(
        stores, job, view, plan, moment, unchanged, planned, reverse, lease, progress, cancel,
    );
    let on_lost = |lost: Lost| {
        progress.event(Event::LockLost {
            taken: lost == Lost::Taken,
        });
        cancel.cancel(lost_code(lost));
    };
    let (result, ()) = tokio::join!(work, lease.keep_alive(on_lost));
    result.map(|done| Ran::Done(Box::new(done)))
}

#[allow(clippy::too_many_arguments)]
async fn locked<B: Bucket, C: Cdn>(
    stores: Stores<'_, B, C>,
    job: &Job,
    view: &View,
    plan: Plan,
    moment: Moment,
    unchanged: &[&str],
    planned: Option<Planned>,
    reverse: Changes,
    lease: &Lease<'_, B>,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<Executed, Error> {
    let bucket = stores.bucket;
    let mut done = Executed {
        outcomes: Outcomes::skipped(&plan),
        seq: moment.seq,
        first: view.etag.is_none(),
        ..Executed::default()
    };
    // A deploy that died in the middle may have left multipart uploads behind: abort those on
    // keys the manifest knows (ours), started before this deploy took the lock.
    if view.root.in_progress.is_some() {
        done.aborted = abort_leftovers(bucket, job, view, moment.now, progress).await;
    }

    // What is in flight on each distribution is read while the files go up.
    let in_flight = async {
        let mut out = Vec::new();
        for s in &job.distributions {
            out.push(stores.cdn.in_flight(&s.id).await);
        }
        out
    };
    let writes = run_writes(bucket, job, &plan, &mut done, lease, progress, cancel);
    let (flights, ()) = tokio::join!(in_flight, writes);

    // Deletes only when the new site is complete: an old page could still link to them.
    let garbage: Vec<String> = view
        .root
        .garbage
        .iter()
        .filter(|k| job.layout.is_state_object(k))
        .cloned()
        .collect();
    let mut garbage_gone = BTreeSet::new();
    if done.outcomes.writes.iter().all(|o| *o == Outcome::Done) && !cancel.is_cancelled() {
        garbage_gone = run_deletes(bucket, &plan, &garbage, &mut done, progress).await;
        done.outcomes.bookkeeping = true;
    }

    // Only a distribution needs them; a first deploy has as many as it has files.
    let stale = if job.distributions.is_empty() {
        Vec::new()
    } else {
        plan::stale(&plan, &done.outcomes)
    };
    if !job.distributions.is_empty() {
        for (target, flight) in job.distributions.iter().zip(flights) {
            let result =
                invalidate(stores.cdn, target, job, &stale, unchanged, flight, progress).await;
            done.invalidations.push(result);
        }
    }

    // The final root: the records as they now are, this deploy in the history, no lock.
    let current = |k: &str| view.current(k).cloned();
    let mut root = match &planned {
        Some(p) => settle_planned(bucket, job, view, &plan, &done.outcomes, moment, p).await?,
        None => view.next_root(&plan::settled(&plan, &done.outcomes, &current, moment)),
    };
    history::reindex(&mut root, &view.root.headers);
    let mut unreferenced: Vec<String> = Vec::new();
    if let Some(old) = &view.root.base {
        if root.base.as_ref() != Some(old) {
            unreferenced.push(old.key.clone());
        }
    }
    if let Some(p) = view
        .root
        .in_progress
        .as_ref()
        .and_then(|p| p.planned.as_ref())
    {
        if root.base.as_ref().map(|b| &b.key) != Some(&p.key) {
            unreferenced.push(p.key.clone());
        }
    }
    if job.keep_deploys > 0 && !plan_is_bookkeeping_only(&plan) {
        let placed = match &planned {
            Some(p) => {
                let (at, len) = p.base.extras.first().copied().unwrap_or((0, 0));
                Reverse::Stored {
                    key: p.base.key.clone(),
                    at,
                    len,
                    keys: p.reverse_keys,
                }
            }
            None => match history::place(&mut root, &reverse) {
                Placed::Inline(r) => r,
                Placed::Part(bytes, keys) => {
                    let sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
                    let key = job.layout.history_key(&sha);
                    let len = bytes.len() as u64;
                    put_part(bucket, &key, bytes).await?;
                    Reverse::Stored {
                        key,
                        at: 0,
                        len,
                        keys,
                    }
                }
            },
        };
        let entry = HistoryDoc {
            seq: moment.seq,
            deploy: job.deploy.clone(),
            uploaded: done
                .outcomes
                .writes
                .iter()
                .filter(|o| **o == Outcome::Done)
                .count() as u64,
            deleted: plan
                .deletes
                .iter()
                .zip(&done.outcomes.deletes)
                .filter(|(d, o)| d.kind == DeleteKind::Removed && **o == Outcome::Done)
                .count() as u64,
            retired: if done.outcomes.bookkeeping {
                plan.retire.len() as u64
            } else {
                0
            },
            invalidations: done
                .invalidations
                .iter()
                .filter_map(|i| i.id.as_ref().map(|id| format!("{}:{id}", i.distribution)))
                .collect(),
            reverse: placed,
        };
        unreferenced.extend(history::push(&mut root, entry, job.keep_deploys));
    } else if job.keep_deploys == 0 {
        unreferenced.extend(history::push(&mut root, placeholder(moment.seq), 0));
    }
    let still = history::referenced(&root);
    let mut garbage: BTreeSet<String> = view
        .root
        .garbage
        .iter()
        .filter(|k| !garbage_gone.contains(*k))
        .cloned()
        .collect();
    garbage.extend(unreferenced);
    root.garbage = garbage.into_iter().filter(|k| !still.contains(k)).collect();
    root.pending_invalidation = if job.distributions.is_empty() {
        view.root.pending_invalidation.clone()
    } else if done.invalidation_failed() {
        stale.into_iter().map(|(k, _)| k.to_string()).collect()
    } else {
        Default::default()
    };
    root.lock = None;
    root.in_progress = None;
    root.seq = moment.seq;
    root.deploy = job.deploy.clone();
    root.prefix.clone_from(&job.layout.prefix);
    root.left_by = Some(job.left_by.clone());
    root.version = crate::state::format::VERSION;
    root.legacy = false;
    lease.finish(root).await?;
    progress.event(Event::ManifestWritten);
    done.interrupted = cancel.exit_code();
    done.plan = plan;
    Ok(done)
}

/// A history entry for a deploy recorded when no history is kept: dropped at once.
fn placeholder(seq: u64) -> HistoryDoc {
    HistoryDoc {
        seq,
        deploy: DeployInfo::default(),
        uploaded: 0,
        deleted: 0,
        retired: 0,
        invalidations: Vec::new(),
        reverse: Reverse::Inline(Default::default()),
    }
}

/// A deploy that only moved records (nothing written, nothing deleted) changes nothing a
/// visitor sees: it is not worth a history entry of its own.
fn plan_is_bookkeeping_only(plan: &Plan) -> bool {
    plan.writes.is_empty()
        && plan.site_deletes().next().is_none()
        && plan.retire.is_empty()
        && plan.revive.is_empty()
}

/// What a large deploy wrote before its uploads: the state it leaves when every write lands.
pub struct Planned {
    root: RootDoc,
    base: crate::state::view::NewBase,
    /// How many records its reverse delta (stored in the base) holds.
    reverse_keys: u64,
}

/// The root after a large deploy: its planned base, corrected where what happened differs
/// from the plan. When everything landed as planned nothing is recomputed or read back.
#[allow(clippy::too_many_arguments)]
async fn settle_planned<B: Bucket>(
    bucket: &B,
    job: &Job,
    view: &View,
    plan: &Plan,
    outcomes: &Outcomes,
    moment: Moment,
    planned: &Planned,
) -> Result<RootDoc, Error> {
    let as_planned = Outcomes::all_done(plan);
    let corrections = if *outcomes == as_planned {
        Changes::new()
    } else {
        let current = |k: &str| view.current(k).cloned();
        let actual = plan::settled(plan, outcomes, &current, moment);
        let all_done = plan::settled(plan, &as_planned, &current, moment);
        corrections(&actual, &all_done, &current)
    };
    let mut base_view = View::from_root(job.layout.clone(), planned.root.clone(), None);
    if base_view.needs_rebase(&corrections) {
        let all = base_view.unread();
        remote::read_chunks(bucket, &mut base_view, &all).await?;
        let (root, nb) = base_view.rebase(&corrections, &[]);
        put_part(bucket, &nb.key, nb.bytes).await?;
        return Ok(root);
    }
    // Only the chunks that hold a corrected record are read.
    let chunks: Vec<usize> = corrections
        .keys()
        .filter_map(|k| base_view.chunk_of(k))
        .collect::<BTreeSet<usize>>()
        .into_iter()
        .collect();
    remote::read_chunks(bucket, &mut base_view, &chunks).await?;
    Ok(base_view.next_root(&corrections))
}

/// The records where what happened differs from what a large deploy planned.
fn corrections(
    actual: &Settled,
    planned: &Settled,
    current: &dyn Fn(&str) -> Option<Entry>,
) -> Changes {
    let mut out = Changes::new();
    for (key, p) in planned.iter() {
        match actual.get(key) {
            Some(a) if a == p => {}
            Some(a) => {
                out.insert(key.to_string(), a.map(std::borrow::Cow::into_owned));
            }
            // Not attempted: the record stays what it was before the deploy.
            None => {
                out.insert(key.to_string(), current(key));
            }
        }
    }
    out
}

fn part_headers() -> Headers {
    Headers {
        cache_control: Some("public, max-age=31536000, immutable".into()),
        ..Headers::new("application/gzip")
    }
}

async fn put_part<B: Bucket>(bucket: &B, key: &str, bytes: Vec<u8>) -> Result<(), Error> {
    bucket
        .put_bytes(key, bytes, &part_headers(), None)
        .await
        .map(drop)
        .map_err(|source| Error::Bucket {
            what: "cannot write the manifest",
            bucket: bucket.name().to_string(),
            key: key.to_string(),
            source,
        })
}

/// Writes in two waves, everything else then HTML: pages go up only once every asset they may
/// reference is in place. Every kept copy (of a page to overwrite, of a file to delete) is made
/// in the first wave, beside the assets, so that it costs no round trip of its own. A write or
/// delete whose old bytes must be kept first is not attempted when the copy fails.
async fn run_writes<B: Bucket>(
    bucket: &B,
    job: &Job,
    plan: &Plan,
    done: &mut Executed,
    lease: &Lease<'_, B>,
    progress: &dyn Progress,
    cancel: &Cancel,
) {
    progress.event(Event::Writing {
        files: plan.writes.len(),
        bytes: plan.upload_bytes(),
    });
    let first_html = plan
        .writes
        .iter()
        .position(|w| w.html)
        .unwrap_or(plan.writes.len());
    let first: Vec<Step> = (0..plan.writes.len())
        .map(|i| Step::Write {
            i,
            keep: true,
            write: i < first_html,
        })
        .filter(
            |s| !matches!(s, Step::Write { i, write: false, .. } if plan.writes[*i].keep.is_none()),
        )
        .chain(
            (0..plan.deletes.len())
                .filter(|j| plan.deletes[*j].keep.is_some())
                .map(Step::DeleteKeep),
        )
        .collect();
    run_steps(bucket, job, plan, first, done, lease, progress, cancel).await;
    if done.outcomes.writes[..first_html]
        .iter()
        .all(|o| *o == Outcome::Done)
    {
        let pages: Vec<Step> = (first_html..plan.writes.len())
            .filter(|i| done.outcomes.keeps[*i].is_none_or(|k| k == Outcome::Done))
            .map(|i| Step::Write {
                i,
                keep: false,
                write: true,
            })
            .collect();
        run_steps(bucket, job, plan, pages, done, lease, progress, cancel).await;
    }
}

/// One unit of a write wave.
enum Step {
    /// The write `i`: its kept copy first (when `keep` and it has one), then the write itself
    /// (when `write`).
    Write { i: usize, keep: bool, write: bool },
    /// The kept copy of the delete `j`'s old bytes.
    DeleteKeep(usize),
}

/// What became of one step: `None` where it did not touch the outcome.
struct Stepped {
    step: Step,
    keep: Option<Outcome>,
    write: Option<Outcome>,
    version: Option<String>,
    error: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn run_steps<B: Bucket>(
    bucket: &B,
    job: &Job,
    plan: &Plan,
    steps: Vec<Step>,
    done: &mut Executed,
    lease: &Lease<'_, B>,
    progress: &dyn Progress,
    cancel: &Cancel,
) {
    let sent = |bytes| progress.event(Event::Sent { bytes });
    let keep_failed = |key: &str, error: &BucketError, what: &str| {
        progress.event(Event::WriteFailed { key, error });
        format!(
            "keeping a copy of the old bytes for rollbacks failed, so it was not {what}: {error}; {}",
            error.hint(bucket.name(), crate::cli::program_name())
        )
    };
    // Applied as they come: a first deploy of 100,000 files would otherwise gather 100,000
    // results before reading any.
    let mut results = stream::iter(steps)
        .map(|step| {
            let (sent, keep_failed) = (&sent, &keep_failed);
            async move {
                let mut out = Stepped {
                    step,
                    keep: None,
                    write: None,
                    version: None,
                    error: None,
                };
                let stopping = cancel.is_cancelled() || lease.lost().is_some();
                let (key, keep, write) = match out.step {
                    Step::Write { i, keep, write } => {
                        let w = &plan.writes[i];
                        (
                            &*w.key,
                            w.keep.as_deref().filter(|_| keep),
                            write.then_some(w),
                        )
                    }
                    Step::DeleteKeep(j) => {
                        let d = &plan.deletes[j];
                        (d.key.as_str(), d.keep.as_deref(), None)
                    }
                };
                if let Some(k) = keep {
                    if stopping {
                        out.keep = Some(Outcome::Skipped);
                        out.write = write.map(|_| Outcome::Skipped);
                        return out;
                    }
                    if let Err(error) = bucket.keep(key, k).await {
                        let what = match out.step {
                            Step::DeleteKeep(_) => "deleted",
                            Step::Write { .. } => "overwritten",
                        };
                        out.keep = Some(Outcome::Failed);
                        out.write = write.map(|_| Outcome::Skipped);
                        out.error = Some(keep_failed(key, &error, what));
                        return out;
                    }
                    out.keep = Some(Outcome::Done);
                    progress.event(Event::Kept { key });
                }
                let Some(w) = write else {
                    return out;
                };
                if cancel.is_cancelled() || lease.lost().is_some() {
                    out.write = Some(Outcome::Skipped);
                    return out;
                }
                match bucket.write(w, sent, cancel).await {
                    Ok(version) => {
                        progress.event(Event::Wrote {
                            key: &w.key,
                            size: w.size,
                            copied: !matches!(w.source, Source::File(_)),
                        });
                        out.write = Some(Outcome::Done);
                        out.version = version;
                    }
                    Err(BucketError::Stopped) => out.write = Some(Outcome::Skipped),
                    Err(error) => {
                        progress.event(Event::WriteFailed {
                            key: &w.key,
                            error: &error,
                        });
                        out.write = Some(Outcome::Failed);
                        out.error = Some(format!(
                            "{error}; {}",
                            error.hint(bucket.name(), crate::cli::program_name())
                        ));
                    }
                }
                out
            }
        })
        .buffer_unordered(job.concurrency.max(1));
    while let Some(r) = results.next().await {
        let key = match r.step {
            Step::Write { i, .. } => {
                let w = &plan.writes[i];
                if let Some(o) = r.write {
                    done.outcomes.writes[i] = o;
                    if let Some(v) = r.version {
                        done.outcomes.versions.insert(i, v);
                    }
                    if o == Outcome::Done && matches!(w.source, Source::File(_)) {
                        done.bytes_sent += w.size;
                    }
                }
                if r.keep.is_some() {
                    done.outcomes.keeps[i] = r.keep;
                }
                &*w.key
            }
            Step::DeleteKeep(j) => {
                done.outcomes.delete_keeps[j] = r.keep;
                plan.deletes[j].key.as_str()
            }
        };
        if let Some(error) = r.error {
            done.failures.push(Failure {
                key: key.to_string(),
                error,
            });
        }
    }
}

/// One batch of deletes: site files whose kept copy (made in the first write wave) landed, and
/// state objects nothing refers to any more. Returns the state objects deleted.
async fn run_deletes<B: Bucket>(
    bucket: &B,
    plan: &Plan,
    garbage: &[String],
    done: &mut Executed,
    progress: &dyn Progress,
) -> BTreeSet<String> {
    let mut keys = Vec::new();
    let mut index = Vec::new();
    for (i, d) in plan.deletes.iter().enumerate() {
        if d.keep.is_some() && done.outcomes.delete_keeps[i] != Some(Outcome::Done) {
            continue;
        }
        keys.push(d.key.clone());
        index.push(Some(i));
    }
    for g in garbage {
        keys.push(g.clone());
        index.push(None);
    }
    let mut gone = BTreeSet::new();
    if keys.is_empty() {
        return gone;
    }
    let results = bucket.delete(&keys).await;
    for ((key, slot), result) in keys.iter().zip(index).zip(results) {
        match (slot, result) {
            (Some(i), Ok(())) => {
                done.outcomes.deletes[i] = Outcome::Done;
                progress.event(Event::Deleted { key });
            }
            (Some(i), Err(error)) => {
                done.outcomes.deletes[i] = Outcome::Failed;
                progress.event(Event::DeleteFailed { key, error: &error });
                done.failures.push(Failure {
                    key: key.clone(),
                    error: error.to_string(),
                });
            }
            (None, Ok(())) => {
                gone.insert(key.clone());
            }
            // A state object that could not be deleted stays listed for the next deploy.
            (None, Err(_)) => {}
        }
    }
    gone
}

/// Aborts the multipart uploads an interrupted deploy left on keys this target knows.
async fn abort_leftovers<B: Bucket>(
    bucket: &B,
    job: &Job,
    view: &View,
    now: i64,
    progress: &dyn Progress,
) -> usize {
    let Ok(list) = bucket.unfinished(&job.layout.prefix).await else {
        return 0;
    };
    let mut aborted = 0;
    for u in list {
        let ours = view.current(&u.key).is_some() || !view.is_known(&u.key);
        if ours
            && !job.layout.is_reserved(&u.key)
            && u.initiated <= now
            && bucket.abort(&u.key, &u.upload_id).await.is_ok()
        {
            progress.event(Event::Aborted { key: &u.key });
            aborted += 1;
        }
    }
    aborted
}

/// Plans one distribution's batch against the invalidations already in flight.
pub fn batch(
    target: &Serving,
    job: &Job,
    stale: &[(&str, Change)],
    unchanged: &[&str],
    in_flight: InFlight,
) -> Result<Option<Batch>, InvalidationError> {
    let dist = invalidation::Distribution {
        id: target.id.clone(),
        origin_path: target.origin_path.clone(),
    };
    let input = invalidation::Input {
        changes: stale,
        unchanged,
        max_paths: job.max_paths,
        in_flight,
        deploy_id: &job.deploy.id,
    };
    invalidation::plan(&dist, &input)
}

/// Why a batch could not be sent.
#[derive(Debug)]
pub enum CdnOrFull {
    Cdn(CdnError),
    Full(InvalidationError),
}

impl std::fmt::Display for CdnOrFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CdnOrFull::Cdn(e) => write!(f, "{e}; {}", e.hint()),
            CdnOrFull::Full(e) => write!(f, "{e}"),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn invalidate<C: Cdn>(
    cdn: &C,
    target: &Serving,
    job: &Job,
    stale: &[(&str, Change)],
    unchanged: &[&str],
    prefetched: Result<InFlight, CdnError>,
    progress: &dyn Progress,
) -> Invalidated {
    let mut result = Invalidated::nothing(&target.id);
    let mut waits = job.cdn_backoff.iter();
    let mut flight = Some(prefetched);
    loop {
        let in_flight = match flight.take() {
            Some(f) => f,
            None => cdn.in_flight(&target.id).await,
        };
        let attempt = match in_flight
            .map_err(CdnOrFull::Cdn)
            .and_then(|f| batch(target, job, stale, unchanged, f).map_err(CdnOrFull::Full))
        {
            Ok(None) => return result,
            Ok(Some(b)) => {
                result.paths = b.paths.clone();
                result.wildcards = b.wildcards;
                result.evicted_unchanged = b.evicted_unchanged;
                progress.event(Event::Invalidating {
                    distribution: &target.id,
                    paths: b.paths.len(),
                });
                cdn.invalidate(&target.id, &b.paths, &b.caller_reference)
                    .await
                    .map_err(CdnOrFull::Cdn)
            }
            Err(e) => Err(e),
        };
        let busy = matches!(
            attempt,
            Err(CdnOrFull::Cdn(CdnError::TooManyInProgress) | CdnOrFull::Full(_))
        );
        match (attempt, waits.next()) {
            (Ok(id), _) => {
                progress.event(Event::Invalidated {
                    distribution: &target.id,
                    id: &id,
                });
                result.id = Some(id);
                return result;
            }
            (Err(_), Some(after)) if busy => {
                progress.event(Event::Retrying {
                    what: "CloudFront has too many invalidations in progress",
                    after: *after,
                });
                tokio::time::sleep(*after).await;
            }
            (Err(e), _) => {
                let error = e.to_string();
                progress.event(Event::InvalidationFailed {
                    distribution: &target.id,
                    error: &error,
                });
                result.error = Some(error);
                return result;
            }
        }
    }
}
