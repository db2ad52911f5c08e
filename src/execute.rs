//! Carrying out a plan against a bucket: the deploy lock, the manifest written before and after,
//! uploads (everything else first, HTML last), deletes, and the events progress listens to.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::bucket::{Bucket, BucketError, Fetch, Precondition};
use crate::error::Error;
use crate::headers::Headers;
use crate::manifest::{DeployInfo, Lock, Manifest};
use crate::plan::{self, Outcome, Plan, PlanOptions};
use crate::scan::LocalFile;

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
}

fn manifest_headers() -> Headers {
    Headers {
        content_type: "application/json".into(),
        cache_control: Some("no-cache".into()),
        content_encoding: Some("gzip".into()),
        metadata: BTreeMap::new(),
    }
}

fn lock_headers() -> Headers {
    Headers {
        content_type: "application/json".into(),
        cache_control: Some("no-store".into()),
        content_encoding: None,
        metadata: BTreeMap::new(),
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
pub async fn execute<B: Bucket>(
    bucket: &B,
    job: &Job,
    inputs: Inputs<'_>,
    remote: Remote,
    plan: Plan,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<Executed, Error> {
    let lock_etag = take_lock(bucket, job).await?;
    progress.event(Event::Locked {
        holder: &job.holder,
    });
    let result = locked(bucket, job, inputs, remote, plan, progress, cancel).await;
    match bucket.delete_if(&job.lock_key, &lock_etag).await {
        Ok(()) => progress.event(Event::Unlocked),
        Err(error) => progress.event(Event::UnlockFailed { error: &error }),
    }
    result
}

async fn locked<B: Bucket>(
    bucket: &B,
    job: &Job,
    inputs: Inputs<'_>,
    mut remote: Remote,
    mut plan: Plan,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<Executed, Error> {
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
                if plan.is_empty() {
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
    let last = plan::settle(
        remote.manifest.as_ref(),
        &plan,
        &done.uploads,
        &done.deletes,
        deploy,
    );
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
                (i, Some(bucket.upload(upload, sent).await))
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
                progress.event(Event::Uploaded {
                    key: &upload.key,
                    size: upload.size,
                });
            }
            Some(Err(error)) => {
                done.uploads[i] = Outcome::Failed;
                progress.event(Event::UploadFailed {
                    key: &upload.key,
                    error: &error,
                });
                done.failures.push(Failure {
                    key: upload.key.clone(),
                    error: format!("{error}; {}", error.hint(bucket.name())),
                });
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
