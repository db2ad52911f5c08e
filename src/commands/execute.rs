//! Carrying out a plan: the deploy lock, the manifest written before and after, uploads
//! (everything else first, HTML last), deletes, CDN invalidations, and the events progress
//! listens to.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cloud::bucket::{Bucket, BucketError, Fetch, Precondition};
use crate::cloud::cdn::{Cdn, CdnError};
use crate::decide::distribution::Serving;
use crate::error::Error;
use crate::local::headers::Headers;
use crate::decide::invalidation::{self, Batch, Change, InvalidationError};
use crate::state::manifest::{DeployInfo, Lock, Manifest};
use crate::decide::plan::{self, Outcome, Plan, PlanOptions};
use crate::local::scan::LocalFile;

/// What `execute` reports while it works; progress bars and log lines are built on these.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    Locked {
        holder: &'a str,
    },
    Replanned,
    Uploading {
        files: usize,
        bytes: u64,
    },
    Sent {
        bytes: u64,
    },
    Uploaded {
        key: &'a str,
        size: u64,
    },
    UploadFailed {
        key: &'a str,
        error: &'a BucketError,
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
    ManifestWritten,
    Unlocked,
    UnlockFailed {
        error: &'a BucketError,
    },
}

pub trait Progress: Send + Sync {
    fn event(&self, event: Event<'_>);
}

/// Set by a signal handler: no new writes start; what is in flight finishes and is recorded.
#[derive(Debug, Default)]
pub struct Cancel {
    flag: AtomicBool,
    code: AtomicU8,
}

impl Cancel {
    pub fn cancel(&self, exit_code: u8) {
        self.code.store(exit_code, Ordering::SeqCst);
        self.flag.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub fn exit_code(&self) -> Option<u8> {
        self.is_cancelled()
            .then(|| self.code.load(Ordering::SeqCst))
    }
}

/// Where the deploy keeps its state in the bucket, and who it is.
#[derive(Clone, Debug)]
pub struct Job {
    pub manifest_key: String,
    pub lock_key: String,
    pub holder: String,
    pub lock_ttl: Duration,
    pub deploy: DeployInfo,
    pub concurrency: usize,
    /// The distributions to invalidate after the writes.
    pub distributions: Vec<Serving>,
    pub max_paths: usize,
    /// Unique per run: feeds each invalidation's CallerReference, so a retried request within
    /// the run creates nothing new while the next deploy's always does.
    pub deploy_id: String,
    /// Waits between attempts when CloudFront has too many invalidations in progress.
    pub cdn_backoff: Vec<Duration>,
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

/// The manifest as read from the bucket, with the ETag later writes are conditioned on.
#[derive(Clone, Debug, Default)]
pub struct Remote {
    pub manifest: Option<Manifest>,
    pub etag: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub key: String,
    pub error: String,
}

/// What happened: the plan that was carried out (re-made if the manifest changed before the
/// lock was taken), each write's outcome in plan order, and the failures.
#[derive(Clone, Debug, Default)]
pub struct Executed {
    pub plan: Plan,
    pub uploads: Vec<Outcome>,
    pub deletes: Vec<Outcome>,
    pub failures: Vec<Failure>,
    pub bytes_sent: u64,
    pub invalidations: Vec<Invalidated>,
    pub interrupted: Option<u8>,
}

impl Executed {
    pub fn uploaded(&self) -> impl Iterator<Item = &plan::Upload> {
        self.plan
            .uploads
            .iter()
            .zip(&self.uploads)
            .filter(|(_, o)| **o == Outcome::Done)
            .map(|(u, _)| u)
    }

    pub fn deleted(&self) -> impl Iterator<Item = &plan::Delete> {
        self.plan
            .deletes
            .iter()
            .zip(&self.deletes)
            .filter(|(_, o)| **o == Outcome::Done)
            .map(|(d, _)| d)
    }

    pub fn is_complete(&self) -> bool {
        self.uploads.iter().all(|o| *o == Outcome::Done)
            && self.deletes.iter().all(|o| *o == Outcome::Done)
    }

    pub fn invalidation_failed(&self) -> bool {
        self.invalidations.iter().any(|i| i.error.is_some())
    }
}

/// The manifest body is gzip already (the tool compressed it itself, so `gzip` stays false).
fn manifest_headers() -> Headers {
    Headers {
        cache_control: Some("no-cache".into()),
        content_encoding: Some("gzip".into()),
        ..Headers::new("application/json")
    }
}

fn lock_headers() -> Headers {
    Headers {
        cache_control: Some("no-store".into()),
        ..Headers::new("application/json")
    }
}

/// Reads the manifest; a missing one is a first deploy.
pub async fn read_manifest<B: Bucket>(bucket: &B, key: &str) -> Result<Remote, Error> {
    match bucket.get(key, None).await {
        Ok(Fetch::Found { body, etag }) => {
            let manifest = Manifest::decode(&body).map_err(|source| Error::Manifest {
                bucket: bucket.name().to_string(),
                key: key.to_string(),
                source,
            })?;
            Ok(Remote {
                manifest: Some(manifest),
                etag: Some(etag),
            })
        }
        Ok(Fetch::Missing | Fetch::NotModified) => Ok(Remote::default()),
        Err(source) => Err(Error::Bucket {
            what: "cannot read the manifest",
            bucket: bucket.name().to_string(),
            key: key.to_string(),
            source,
        }),
    }
}

/// What a plan was made from, kept to plan again when another deploy changed the manifest
/// between the first read and taking the lock.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub local: &'a [(LocalFile, Headers)],
    pub opts: &'a PlanOptions,
}

/// Runs the plan under the deploy lock.
pub async fn execute<B: Bucket, C: Cdn>(
    stores: Stores<'_, B, C>,
    job: &Job,
    inputs: Inputs<'_>,
    planned: (Remote, Plan),
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<Executed, Error> {
    let bucket = stores.bucket;
    let lock_etag = take_lock(bucket, job).await?;
    progress.event(Event::Locked {
        holder: &job.holder,
    });
    let result = locked(stores, job, inputs, planned, progress, cancel).await;
    match bucket.delete_if(&job.lock_key, &lock_etag).await {
        Ok(()) => progress.event(Event::Unlocked),
        Err(error) => progress.event(Event::UnlockFailed { error: &error }),
    }
    result
}

async fn locked<B: Bucket, C: Cdn>(
    stores: Stores<'_, B, C>,
    job: &Job,
    inputs: Inputs<'_>,
    (mut remote, mut plan): (Remote, Plan),
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<Executed, Error> {
    let bucket = stores.bucket;
    let bucket_error = |what, source| Error::Bucket {
        what,
        bucket: bucket.name().to_string(),
        key: job.manifest_key.clone(),
        source,
    };
    // Record what is about to change before changing it, conditioned on the manifest we
    // planned against; if another deploy got there first, plan again against its manifest.
    let mut attempts = 0;
    let intent_etag = loop {
        let intent = plan::intent(remote.manifest.as_ref(), &plan, job.deploy.clone());
        let precondition = match &remote.etag {
            Some(etag) => Precondition::IfMatch(etag.clone()),
            None => Precondition::IfAbsent,
        };
        match bucket
            .put_bytes(
                &job.manifest_key,
                intent.encode(),
                &manifest_headers(),
                Some(precondition),
            )
            .await
        {
            Ok(etag) => break etag,
            Err(BucketError::PreconditionFailed) if attempts < 3 => {
                attempts += 1;
                remote = read_manifest(bucket, &job.manifest_key).await?;
                plan = plan::plan(inputs.local, remote.manifest.as_ref(), inputs.opts)?;
                progress.event(Event::Replanned);
                if plan.is_empty() && (plan.pending.is_empty() || job.distributions.is_empty()) {
                    return Ok(Executed {
                        plan,
                        ..Executed::default()
                    });
                }
            }
            Err(BucketError::PreconditionFailed) => {
                return Err(Error::Conflict {
                    bucket: bucket.name().to_string(),
                    key: job.manifest_key.clone(),
                })
            }
            Err(e) => return Err(bucket_error("cannot write the manifest", e)),
        }
    };

    let mut done = Executed {
        uploads: vec![Outcome::Skipped; plan.uploads.len()],
        deletes: vec![Outcome::Skipped; plan.deletes.len()],
        ..Executed::default()
    };
    progress.event(Event::Uploading {
        files: plan.uploads.len(),
        bytes: plan.upload_bytes(),
    });
    let first_html = plan
        .uploads
        .iter()
        .position(|u| u.html)
        .unwrap_or(plan.uploads.len());
    // Pages go up only once every asset they may reference is in place.
    upload_range(
        bucket,
        job,
        &plan,
        0..first_html,
        &mut done,
        progress,
        cancel,
    )
    .await;
    if done.uploads[..first_html]
        .iter()
        .all(|o| *o == Outcome::Done)
    {
        let all = first_html..plan.uploads.len();
        upload_range(bucket, job, &plan, all, &mut done, progress, cancel).await;
    }
    // Deletes only when the new site is complete: an old page could still link to them.
    if done.uploads.iter().all(|o| *o == Outcome::Done) && !cancel.is_cancelled() {
        let keys: Vec<String> = plan.deletes.iter().map(|d| d.key.clone()).collect();
        let results = bucket.delete(&keys).await;
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(()) => {
                    done.deletes[i] = Outcome::Done;
                    progress.event(Event::Deleted { key: &keys[i] });
                }
                Err(error) => {
                    done.deletes[i] = Outcome::Failed;
                    progress.event(Event::DeleteFailed {
                        key: &keys[i],
                        error: &error,
                    });
                    done.failures.push(Failure {
                        key: keys[i].clone(),
                        error: error.to_string(),
                    });
                }
            }
        }
    }

    let mut deploy = job.deploy.clone();
    deploy.in_progress = false;
    let mut last = plan::settle(
        remote.manifest.as_ref(),
        &plan,
        &done.uploads,
        &done.deletes,
        deploy,
    );
    // Invalidate before the manifest is final: if it fails, the manifest keeps the keys
    // pending and the next deploy invalidates them again.
    if !job.distributions.is_empty() {
        let stale = plan::stale(&plan, &done.uploads, &done.deletes);
        let unchanged = unchanged_keys(last.files.keys(), &stale);
        for target in &job.distributions {
            let result = invalidate(stores.cdn, target, job, &stale, &unchanged, progress).await;
            done.invalidations.push(result);
        }
        last.pending_invalidation = if done.invalidation_failed() {
            stale.into_iter().map(|(k, _)| k).collect()
        } else {
            Default::default()
        };
    }
    match bucket
        .put_bytes(
            &job.manifest_key,
            last.encode(),
            &manifest_headers(),
            Some(Precondition::IfMatch(intent_etag)),
        )
        .await
    {
        Ok(_) => progress.event(Event::ManifestWritten),
        Err(BucketError::PreconditionFailed) => {
            return Err(Error::Conflict {
                bucket: bucket.name().to_string(),
                key: job.manifest_key.clone(),
            })
        }
        Err(e) => return Err(bucket_error("cannot write the manifest", e)),
    }
    done.interrupted = cancel.exit_code();
    done.plan = plan;
    Ok(done)
}

async fn upload_range<B: Bucket>(
    bucket: &B,
    job: &Job,
    plan: &Plan,
    range: std::ops::Range<usize>,
    done: &mut Executed,
    progress: &dyn Progress,
    cancel: &Cancel,
) {
    let sent = |bytes| progress.event(Event::Sent { bytes });
    let results: Vec<(usize, Option<Result<(), BucketError>>)> = stream::iter(range)
        .map(|i| {
            let upload = &plan.uploads[i];
            let sent = &sent;
            async move {
                if cancel.is_cancelled() {
                    return (i, None);
                }
                let result = bucket.upload(upload, sent).await;
                // Reported as each file finishes, not when the whole group has.
                match &result {
                    Ok(()) => progress.event(Event::Uploaded {
                        key: &upload.key,
                        size: upload.size,
                    }),
                    Err(error) => progress.event(Event::UploadFailed {
                        key: &upload.key,
                        error,
                    }),
                }
                (i, Some(result))
            }
        })
        .buffer_unordered(job.concurrency.max(1))
        .collect()
        .await;
    for (i, result) in results {
        let upload = &plan.uploads[i];
        match result {
            None => {}
            Some(Ok(())) => {
                done.uploads[i] = Outcome::Done;
                done.bytes_sent += upload.size;
            }
            Some(Err(error)) => {
                done.uploads[i] = Outcome::Failed;
                done.failures.push(Failure {
                    key: upload.key.clone(),
                    error: format!("{error}; {}", error.hint(bucket.name())),
                });
            }
        }
    }
}

/// Keys that stay as they are, so the planner can count what a wildcard would evict.
pub fn unchanged_keys<'a>(
    known: impl Iterator<Item = &'a String>,
    stale: &[(String, Change)],
) -> Vec<String> {
    let stale: std::collections::BTreeSet<&str> = stale.iter().map(|(k, _)| k.as_str()).collect();
    known
        .filter(|k| !stale.contains(k.as_str()))
        .cloned()
        .collect()
}

/// Plans one distribution's batch against the invalidations already in flight.
pub async fn batch<C: Cdn>(
    cdn: &C,
    target: &Serving,
    job: &Job,
    stale: &[(String, Change)],
    unchanged: &[String],
) -> Result<Option<Batch>, CdnOrFull> {
    let in_flight = cdn.in_flight(&target.id).await.map_err(CdnOrFull::Cdn)?;
    let dist = invalidation::Distribution {
        id: target.id.clone(),
        origin_path: target.origin_path.clone(),
    };
    let input = invalidation::Input {
        changes: stale,
        unchanged,
        max_paths: job.max_paths,
        in_flight,
        deploy_id: &job.deploy_id,
    };
    invalidation::plan(&dist, &input).map_err(CdnOrFull::Full)
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

/// Waits between attempts when CloudFront has too many invalidations in progress: about a
/// minute and a half in all, the time a few invalidations take to complete.
pub const CDN_BACKOFF: [u64; 5] = [2, 5, 10, 20, 40];

async fn invalidate<C: Cdn>(
    cdn: &C,
    target: &Serving,
    job: &Job,
    stale: &[(String, Change)],
    unchanged: &[String],
    progress: &dyn Progress,
) -> Invalidated {
    let mut result = Invalidated::nothing(&target.id);
    let mut waits = job.cdn_backoff.iter();
    loop {
        let attempt = match batch(cdn, target, job, stale, unchanged).await {
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
                let after = *after;
                progress.event(Event::Retrying {
                    what: "CloudFront has too many invalidations in progress",
                    after,
                });
                tokio::time::sleep(after).await;
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

/// Takes the lock with a create-only write; a lock past its expiry is taken over with a write
/// conditioned on its ETag, so two deploys can never both take over the same stale lock.
async fn take_lock<B: Bucket>(bucket: &B, job: &Job) -> Result<String, Error> {
    let now = OffsetDateTime::now_utc();
    let ttl = time::Duration::try_from(job.lock_ttl).unwrap_or(time::Duration::HOUR);
    let lock = Lock {
        holder: job.holder.clone(),
        started: rfc3339(now),
        expires: rfc3339(now + ttl),
        tool_version: job.deploy.tool_version.clone(),
    };
    let bucket_error = |source| Error::Bucket {
        what: "cannot take the deploy lock",
        bucket: bucket.name().to_string(),
        key: job.lock_key.clone(),
        source,
    };
    let mut precondition = Precondition::IfAbsent;
    for _ in 0..3 {
        match bucket
            .put_bytes(
                &job.lock_key,
                lock.encode(),
                &lock_headers(),
                Some(precondition.clone()),
            )
            .await
        {
            Ok(etag) => return Ok(etag),
            Err(BucketError::PreconditionFailed) => {}
            Err(e) => return Err(bucket_error(e)),
        }
        match bucket
            .get(&job.lock_key, None)
            .await
            .map_err(bucket_error)?
        {
            // Released in the meantime: try again.
            Fetch::Missing | Fetch::NotModified => precondition = Precondition::IfAbsent,
            Fetch::Found { body, etag } => {
                let held = Lock::decode(&body);
                let expired = held
                    .as_ref()
                    .and_then(|l| OffsetDateTime::parse(&l.expires, &Rfc3339).ok())
                    .is_some_and(|t| t < now);
                if !expired {
                    let held = held.unwrap_or_else(|| Lock {
                        holder: "unknown (the lock object is not readable)".into(),
                        started: "?".into(),
                        expires: "never".into(),
                        tool_version: String::new(),
                    });
                    return Err(Error::Locked {
                        bucket: bucket.name().to_string(),
                        key: job.lock_key.clone(),
                        holder: held.holder,
                        started: held.started,
                        expires: held.expires,
                    });
                }
                precondition = Precondition::IfMatch(etag);
            }
        }
    }
    Err(Error::Conflict {
        bucket: bucket.name().to_string(),
        key: job.lock_key.clone(),
    })
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    //! The executor's decisions against an in-memory bucket that can fail on cue and simulate a
    //! second deploy; the real S3 API is exercised by the end-to-end tests.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;
    use crate::decide::distribution::DistributionFacts;
    use crate::local::headers::default_headers;
    use crate::decide::invalidation::InFlight;
    use crate::state::manifest::Entry;

    type Hook = Box<dyn Fn(&str, &mut BTreeMap<String, (Vec<u8>, String)>) + Send + Sync>;

    #[derive(Default)]
    struct MemBucket {
        objects: Mutex<BTreeMap<String, (Vec<u8>, String)>>,
        counter: Mutex<u64>,
        deny: BTreeSet<String>,
        /// Runs before each write with the key written: lets a test act as a second deploy.
        hook: Option<Hook>,
    }

    impl MemBucket {
        fn etag(&self) -> String {
            let mut c = self.counter.lock().expect("lock");
            *c += 1;
            format!("\"{c}\"")
        }

        fn write(&self, key: &str, body: Vec<u8>) -> String {
            let etag = self.etag();
            let mut objects = self.objects.lock().expect("lock");
            if let Some(hook) = &self.hook {
                hook(key, &mut objects);
            }
            objects.insert(key.to_string(), (body, etag.clone()));
            etag
        }

        fn manifest(&self) -> Manifest {
            let objects = self.objects.lock().expect("lock");
            Manifest::decode(&objects[".cdn-deploy/manifest.json"].0).expect("manifest")
        }
    }

    impl Bucket for MemBucket {
        fn name(&self) -> &str {
            "mem"
        }

        async fn get(&self, key: &str, _: Option<&str>) -> Result<Fetch, BucketError> {
            let objects = self.objects.lock().expect("lock");
            Ok(match objects.get(key) {
                Some((body, etag)) => Fetch::Found {
                    body: body.clone(),
                    etag: etag.clone(),
                },
                None => Fetch::Missing,
            })
        }

        async fn put_bytes(
            &self,
            key: &str,
            body: Vec<u8>,
            _: &Headers,
            precondition: Option<Precondition>,
        ) -> Result<String, BucketError> {
            {
                let objects = self.objects.lock().expect("lock");
                let current = objects.get(key).map(|(_, e)| e.clone());
                let ok = match &precondition {
                    None => true,
                    Some(Precondition::IfAbsent) => current.is_none(),
                    Some(Precondition::IfMatch(e)) => current.as_ref() == Some(e),
                };
                if !ok {
                    return Err(BucketError::PreconditionFailed);
                }
            }
            Ok(self.write(key, body))
        }

        async fn upload(
            &self,
            upload: &plan::Upload,
            progress: &(dyn Fn(u64) + Send + Sync),
        ) -> Result<(), BucketError> {
            if self.deny.contains(&upload.key) {
                return Err(BucketError::AccessDenied(String::new()));
            }
            self.write(&upload.key, upload.sha256.to_vec());
            progress(upload.size);
            Ok(())
        }

        async fn delete(&self, keys: &[String]) -> Vec<Result<(), BucketError>> {
            let mut objects = self.objects.lock().expect("lock");
            keys.iter()
                .map(|k| {
                    objects.remove(k);
                    Ok(())
                })
                .collect()
        }

        async fn delete_if(&self, key: &str, etag: &str) -> Result<(), BucketError> {
            let mut objects = self.objects.lock().expect("lock");
            match objects.get(key) {
                Some((_, e)) if e == etag => {
                    objects.remove(key);
                    Ok(())
                }
                _ => Err(BucketError::PreconditionFailed),
            }
        }
    }

    /// A CDN that accepts everything and records the batches; `busy` answers
    /// TooManyInvalidationsInProgress that many times first.
    #[derive(Default)]
    struct MemCdn {
        sent: Mutex<Vec<(String, Vec<String>)>>,
        refuse: bool,
        busy: Mutex<usize>,
    }

    impl Cdn for MemCdn {
        async fn distributions(&self) -> Result<Vec<DistributionFacts>, CdnError> {
            Ok(Vec::new())
        }
        async fn distribution(&self, id: &str) -> Result<DistributionFacts, CdnError> {
            Err(CdnError::NoSuchDistribution(id.into()))
        }
        async fn in_flight(&self, _: &str) -> Result<InFlight, CdnError> {
            Ok(InFlight::default())
        }
        async fn invalidate(
            &self,
            id: &str,
            paths: &[String],
            _: &str,
        ) -> Result<String, CdnError> {
            if self.refuse {
                return Err(CdnError::AccessDenied(String::new()));
            }
            let mut busy = self.busy.lock().expect("lock");
            if *busy > 0 {
                *busy -= 1;
                return Err(CdnError::TooManyInProgress);
            }
            self.sent
                .lock()
                .expect("lock")
                .push((id.to_string(), paths.to_vec()));
            Ok("I1".into())
        }
        async fn status(&self, _: &str, _: &str) -> Result<String, CdnError> {
            Ok("Completed".into())
        }
    }

    struct Quiet;
    impl Progress for Quiet {
        fn event(&self, _: Event<'_>) {}
    }

    fn local(files: &[(&str, u8)]) -> Vec<(LocalFile, Headers)> {
        files
            .iter()
            .map(|(rel, byte)| {
                (
                    LocalFile {
                        path: PathBuf::from(rel),
                        rel: rel.to_string(),
                        key: rel.to_string(),
                        size: 1,
                        sha256: [*byte; 32],
                    },
                    default_headers(rel),
                )
            })
            .collect()
    }

    fn job(distributions: &[&str]) -> Job {
        Job {
            manifest_key: ".cdn-deploy/manifest.json".into(),
            lock_key: ".cdn-deploy/lock.json".into(),
            holder: "test".into(),
            lock_ttl: Duration::from_secs(60),
            deploy: DeployInfo::default(),
            concurrency: 4,
            distributions: distributions
                .iter()
                .map(|id| Serving {
                    id: id.to_string(),
                    bucket: "mem".into(),
                    origin_path: String::new(),
                })
                .collect(),
            max_paths: 100,
            deploy_id: "d1".into(),
            cdn_backoff: vec![Duration::ZERO; CDN_BACKOFF.len()],
        }
    }

    fn run(
        bucket: &MemBucket,
        cdn: &MemCdn,
        job: &Job,
        files: &[(LocalFile, Headers)],
        cancel: &Cancel,
    ) -> Result<Executed, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let remote = read_manifest(bucket, &job.manifest_key).await?;
            let opts = PlanOptions::default();
            let plan = plan::plan(files, remote.manifest.as_ref(), &opts)?;
            execute(
                Stores { bucket, cdn },
                job,
                Inputs {
                    local: files,
                    opts: &opts,
                },
                (remote, plan),
                &Quiet,
                cancel,
            )
            .await
        })
    }

    fn entry(byte: u8, rel: &str) -> Entry {
        Entry {
            sha256: Some(hex::encode([byte; 32])),
            size: 1,
            headers: default_headers(rel),
        }
    }

    #[test]
    fn a_manifest_changed_before_the_lock_is_planned_against_again() {
        // Between our read and our lock, another deploy uploaded a.css and recorded it.
        let mut bucket = MemBucket::default();
        let first_lock = Mutex::new(true);
        bucket.hook = Some(Box::new(move |key, objects| {
            let mut first = first_lock.lock().expect("lock");
            if key.ends_with("lock.json") && *first {
                *first = false;
                let mut m = Manifest::new(DeployInfo::default());
                m.files.insert("a.css".into(), entry(1, "a.css"));
                objects.insert("a.css".into(), (vec![1; 32], "\"x1\"".into()));
                objects.insert(
                    ".cdn-deploy/manifest.json".into(),
                    (m.encode(), "\"x2\"".into()),
                );
            }
        }));
        let files = local(&[("a.css", 1), ("b.html", 2)]);
        let done = run(
            &bucket,
            &MemCdn::default(),
            &job(&[]),
            &files,
            &Cancel::default(),
        )
        .expect("deploy");
        let uploaded: Vec<&str> = done.uploaded().map(|u| u.key.as_str()).collect();
        assert_eq!(uploaded, ["b.html"], "a.css was already there");
        assert_eq!(done.plan.unchanged, ["a.css"]);
        let m = bucket.manifest();
        assert_eq!(m.files.len(), 2);
        assert!(!m.deploy.in_progress);
        assert!(!bucket
            .objects
            .lock()
            .expect("lock")
            .contains_key(".cdn-deploy/lock.json"));
    }

    #[test]
    fn a_manifest_changed_during_the_deploy_is_a_conflict() {
        let bucket = MemBucket {
            hook: Some(Box::new(|key, objects| {
                if key == "b.html" {
                    objects.insert(
                        ".cdn-deploy/manifest.json".into(),
                        (
                            Manifest::new(DeployInfo::default()).encode(),
                            "\"other\"".into(),
                        ),
                    );
                }
            })),
            ..MemBucket::default()
        };
        let files = local(&[("a.css", 1), ("b.html", 2)]);
        let err = run(
            &bucket,
            &MemCdn::default(),
            &job(&[]),
            &files,
            &Cancel::default(),
        )
        .expect_err("conflict");
        assert_eq!(err.exit_code(), crate::error::code::CONFLICT, "{err}");
        assert!(!bucket
            .objects
            .lock()
            .expect("lock")
            .contains_key(".cdn-deploy/lock.json"));
    }

    #[test]
    fn interrupted_before_uploading_records_nothing_new() {
        let bucket = MemBucket::default();
        let cancel = Cancel::default();
        cancel.cancel(130);
        let files = local(&[("a.css", 1), ("b.html", 2)]);
        let done = run(&bucket, &MemCdn::default(), &job(&[]), &files, &cancel).expect("deploy");
        assert_eq!(done.interrupted, Some(130));
        assert!(done.uploads.iter().all(|o| *o == Outcome::Skipped));
        assert!(bucket.manifest().files.is_empty());
    }

    #[test]
    fn failed_asset_holds_back_pages_and_deletes() {
        let mut bucket = MemBucket {
            deny: ["a.css".to_string()].into(),
            ..MemBucket::default()
        };
        let mut m = Manifest::new(DeployInfo::default());
        m.files.insert("old.css".into(), entry(9, "old.css"));
        bucket.objects.get_mut().expect("lock").insert(
            ".cdn-deploy/manifest.json".into(),
            (m.encode(), "\"m\"".into()),
        );
        let files = local(&[("a.css", 1), ("c.png", 3), ("b.html", 2)]);
        let cdn = MemCdn::default();
        let done = run(&bucket, &cdn, &job(&["E1"]), &files, &Cancel::default()).expect("deploy");
        assert_eq!(
            done.uploads,
            [Outcome::Failed, Outcome::Done, Outcome::Skipped]
        );
        assert_eq!(done.deletes, [Outcome::Skipped]);
        let m = bucket.manifest();
        assert_eq!(m.files["a.css"].sha256, None);
        assert!(m.files.contains_key("old.css"), "not deleted, still known");
        assert!(!m.files.contains_key("b.html"));
        // Only what landed and may have been cached is invalidated.
        assert_eq!(
            *cdn.sent.lock().expect("lock"),
            [("E1".to_string(), vec!["/c.png".to_string()])]
        );
    }

    #[test]
    fn a_busy_cloudfront_is_retried_then_given_up_on() {
        let files = local(&[("a.css", 1)]);
        let cdn = MemCdn {
            busy: Mutex::new(2),
            ..MemCdn::default()
        };
        let done = run(
            &MemBucket::default(),
            &cdn,
            &job(&["E1"]),
            &files,
            &Cancel::default(),
        )
        .expect("deploy");
        assert!(!done.invalidation_failed(), "{:?}", done.invalidations);
        assert_eq!(cdn.sent.lock().expect("lock").len(), 1);

        let bucket = MemBucket::default();
        let cdn = MemCdn {
            busy: Mutex::new(usize::MAX),
            ..MemCdn::default()
        };
        let done = run(&bucket, &cdn, &job(&["E1"]), &files, &Cancel::default()).expect("deploy");
        assert!(done.invalidation_failed());
        assert!(bucket.manifest().pending_invalidation.contains("a.css"));
    }

    #[test]
    fn a_refused_invalidation_stays_pending() {
        let bucket = MemBucket::default();
        let cdn = MemCdn {
            refuse: true,
            ..MemCdn::default()
        };
        let files = local(&[("a.css", 1)]);
        let done = run(&bucket, &cdn, &job(&["E1"]), &files, &Cancel::default()).expect("deploy");
        assert!(done.invalidation_failed());
        let m = bucket.manifest();
        assert!(m.pending_invalidation.contains("a.css"));
        assert!(
            m.files["a.css"].sha256.is_some(),
            "the upload itself landed"
        );
    }
}
