//! The deploy lock, kept in the manifest's root: taken by the same conditional write that
//! records the deploy's intent, renewed while the deploy runs (each renewal a write conditioned
//! on the last), released by the write that records the outcome. A deploy that dies blocks
//! others only until the short expiry; one whose write landed without an answer recognises
//! itself when it reads the root back.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Mutex, Notify};

use crate::clock::rfc3339;
use crate::cloud::bucket::{Bucket, BucketError, Fetch, Precondition};
use crate::error::{code, Error};
use crate::local::headers::Headers;
use crate::state::format::{decode_root, LockDoc, RootDoc};

/// The root's headers: compressed JSON that no cache may keep.
pub fn root_headers() -> Headers {
    Headers {
        cache_control: Some("no-store".into()),
        content_encoding: Some("gzip".into()),
        ..Headers::new("application/json")
    }
}

/// How a write of the root came out.
pub enum Taken {
    /// The root now holds this deploy's lock.
    Held,
    /// Someone else wrote the root first; here is what it holds now.
    Contended(Box<Option<(RootDoc, String)>>),
}

/// Why the lock was lost mid-deploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Another deploy took it over after it expired.
    Taken,
    /// It could not be renewed before it expired.
    Unreachable,
}

pub struct Lease<'a, B: Bucket> {
    bucket: &'a B,
    key: String,
    ttl: Duration,
    id: String,
    /// The root as last written and its ETag; `None` until taken.
    held: Mutex<Option<(RootDoc, String)>>,
    lost: AtomicU8,
    done: AtomicBool,
    stop: Notify,
}

const NOT_LOST: u8 = 0;
const LOST_TAKEN: u8 = 1;
const LOST_UNREACHABLE: u8 = 2;

impl<'a, B: Bucket> Lease<'a, B> {
    pub fn new(bucket: &'a B, key: &str, ttl: Duration, id: &str) -> Lease<'a, B> {
        Lease {
            bucket,
            key: key.to_string(),
            ttl,
            id: id.to_string(),
            held: Mutex::new(None),
            lost: AtomicU8::new(NOT_LOST),
            done: AtomicBool::new(false),
            stop: Notify::new(),
        }
    }

    /// The lock this deploy writes into the root, expiring one TTL from now.
    pub fn lock_doc(&self, holder: &str, started: &str, renewals: u64) -> LockDoc {
        LockDoc {
            holder: holder.to_string(),
            id: self.id.clone(),
            started: started.to_string(),
            expires: rfc3339(OffsetDateTime::now_utc() + self.ttl),
            renewals,
        }
    }

    pub fn lost(&self) -> Option<Lost> {
        match self.lost.load(Ordering::SeqCst) {
            LOST_TAKEN => Some(Lost::Taken),
            LOST_UNREACHABLE => Some(Lost::Unreachable),
            _ => None,
        }
    }

    /// Writes `root` (which holds this deploy's lock) over the root last read with `etag`
    /// (`None`: there was none). After an ambiguous failure (no answer, a reset, a 5xx, or a
    /// 412 that a retried request of our own may have caused) the root is read back: if it
    /// holds our lock, our write landed.
    pub async fn take(&self, root: RootDoc, etag: Option<&str>) -> Result<Taken, Error> {
        let precondition = match etag {
            Some(e) => Precondition::IfMatch(e.to_string()),
            None => Precondition::IfAbsent,
        };
        let result = self.put_root(&root, precondition).await;
        match result {
            Ok(etag) => {
                *self.held.lock().await = Some((root, etag));
                Ok(Taken::Held)
            }
            Err(e) if is_ambiguous(&e) => {
                let now = self.read_back().await?;
                match now {
                    Some((doc, etag)) if doc.lock.as_ref().is_some_and(|l| l.id == self.id) => {
                        *self.held.lock().await = Some((doc, etag));
                        Ok(Taken::Held)
                    }
                    other if e == BucketError::PreconditionFailed => {
                        Ok(Taken::Contended(Box::new(other)))
                    }
                    _ => Err(self.error("cannot take the deploy lock", e)),
                }
            }
            Err(e) => Err(self.error("cannot take the deploy lock", e)),
        }
    }

    /// Renews the lock until [`Lease::finish`] is called: every third of the TTL, and sooner
    /// after a failed attempt. A lock taken over, or not renewed before it expires, is lost:
    /// `on_lost` runs once (the deploy stops before its next write).
    pub async fn keep_alive(&self, on_lost: impl Fn(Lost)) {
        let every = (self.ttl / 3).max(Duration::from_millis(200));
        let mut expires = tokio::time::Instant::now() + self.ttl;
        let mut wait = every;
        loop {
            let sleep = tokio::time::sleep(wait);
            tokio::select! {
                () = sleep => {}
                () = self.stop.notified() => return,
            }
            if self.done.load(Ordering::SeqCst) {
                return;
            }
            match self.renew().await {
                Ok(()) => {
                    expires = tokio::time::Instant::now() + self.ttl;
                    wait = every;
                }
                Err(Lost::Taken) => {
                    self.lost.store(LOST_TAKEN, Ordering::SeqCst);
                    on_lost(Lost::Taken);
                    return;
                }
                Err(Lost::Unreachable) => {
                    // Try again soon, but give up before the lock lapses: past its expiry
                    // another deploy may take over, and this one must not write any more.
                    let left = expires.saturating_duration_since(tokio::time::Instant::now());
                    if left <= every / 2 {
                        self.lost.store(LOST_UNREACHABLE, Ordering::SeqCst);
                        on_lost(Lost::Unreachable);
                        return;
                    }
                    wait = (every / 4).min(left / 2);
                }
            }
        }
    }

    async fn renew(&self) -> Result<(), Lost> {
        let mut held = self.held.lock().await;
        let Some((root, etag)) = held.as_mut() else {
            return Ok(());
        };
        let mut next = root.clone();
        if let Some(lock) = next.lock.as_mut() {
            lock.renewals += 1;
            lock.expires = rfc3339(OffsetDateTime::now_utc() + self.ttl);
        }
        let sent = self
            .put_root(&next, Precondition::IfMatch(etag.clone()))
            .await;
        match sent {
            Ok(new_etag) => {
                *root = next;
                *etag = new_etag;
                Ok(())
            }
            Err(e) if is_ambiguous(&e) => match self.read_back().await {
                Ok(Some((doc, new_etag))) if doc.lock == next.lock => {
                    *root = doc;
                    *etag = new_etag;
                    Ok(())
                }
                Ok(_) if e == BucketError::PreconditionFailed => Err(Lost::Taken),
                Ok(Some((doc, _))) if doc.lock.as_ref().is_none_or(|l| l.id != self.id) => {
                    Err(Lost::Taken)
                }
                _ => Err(Lost::Unreachable),
            },
            Err(_) => Err(Lost::Unreachable),
        }
    }

    /// Writes `root` over the manifest key under `precondition`; the new ETag.
    async fn put_root(
        &self,
        root: &RootDoc,
        precondition: Precondition,
    ) -> Result<String, BucketError> {
        self.bucket
            .put_bytes(
                &self.key,
                root.encode(),
                &root_headers(),
                Some(precondition),
            )
            .await
    }

    /// Writes the final root (no lock: it releases it) over the last one written. After an
    /// ambiguous failure, a root read back that is exactly ours counts as written.
    pub async fn finish(&self, root: RootDoc) -> Result<(), Error> {
        self.done.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        let mut held = self.held.lock().await;
        let Some((_, etag)) = held.as_ref() else {
            return Ok(());
        };
        if self.lost().is_some() {
            return Err(self.lost_error());
        }
        let result = self
            .put_root(&root, Precondition::IfMatch(etag.clone()))
            .await;
        match result {
            Ok(etag) => {
                *held = Some((root, etag));
                Ok(())
            }
            Err(e) if is_ambiguous(&e) => match self.read_back().await? {
                Some((doc, etag)) if doc == root => {
                    *held = Some((doc, etag));
                    Ok(())
                }
                _ if e == BucketError::PreconditionFailed => Err(Error::Conflict {
                    bucket: self.bucket.name().to_string(),
                    key: self.key.clone(),
                }),
                _ => Err(self.error("cannot write the manifest", e)),
            },
            Err(e) => Err(self.error("cannot write the manifest", e)),
        }
    }

    /// Best effort, within `limit`: the root as last written, without the lock, so the next
    /// deploy need not wait for the expiry. The intent stays, so the manifest stays truthful.
    pub async fn release(&self, limit: Duration) {
        self.done.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        let attempt = async {
            let held = self.held.lock().await;
            if let Some((root, etag)) = held.as_ref() {
                let mut free = root.clone();
                free.lock = None;
                let _ = self
                    .put_root(&free, Precondition::IfMatch(etag.clone()))
                    .await;
            }
        };
        let _ = tokio::time::timeout(limit, attempt).await;
    }

    pub fn lost_error(&self) -> Error {
        match self.lost() {
            Some(Lost::Unreachable) => Error::LockLost {
                bucket: self.bucket.name().to_string(),
                key: self.key.clone(),
                taken: false,
            },
            _ => Error::LockLost {
                bucket: self.bucket.name().to_string(),
                key: self.key.clone(),
                taken: true,
            },
        }
    }

    /// The root as it is now, retried a few times when S3 does not answer.
    async fn read_back(&self) -> Result<Option<(RootDoc, String)>, Error> {
        let mut last = None;
        for attempt in 0..3u32 {
            match self.bucket.get(&self.key, None).await {
                Ok(Fetch::Found { body, etag }) => {
                    let doc = decode_root(&body).map_err(|source| Error::Manifest {
                        bucket: self.bucket.name().to_string(),
                        key: self.key.clone(),
                        source,
                    })?;
                    return Ok(Some((doc, etag)));
                }
                Ok(Fetch::Missing | Fetch::NotModified) => return Ok(None),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        Err(self.error(
            "cannot read the manifest back",
            last.unwrap_or(BucketError::Other("no answer".into())),
        ))
    }

    fn error(&self, what: &'static str, source: BucketError) -> Error {
        Error::Bucket {
            what,
            bucket: self.bucket.name().to_string(),
            key: self.key.clone(),
            source,
        }
    }
}

/// A failed write whose effect is unknown: the request may have been applied (a 412 can be the
/// answer to the SDK's own retry of a write that landed).
fn is_ambiguous(e: &BucketError) -> bool {
    matches!(
        e,
        BucketError::PreconditionFailed | BucketError::Unreachable(_) | BucketError::Other(_)
    )
}

/// Whether another live run holds the lock recorded in `view` (its expiry not passed).
pub fn held_by_other(view: &crate::state::view::View) -> bool {
    view.root.lock.as_ref().is_some_and(|l| {
        crate::clock::parse(&l.expires).is_none_or(|t| t > OffsetDateTime::now_utc())
    })
}

/// The error for a lock another deploy holds, with its age.
pub fn locked(bucket: &str, key: &str, lock: &LockDoc) -> Error {
    let now = OffsetDateTime::now_utc();
    let age = crate::clock::parse(&lock.started)
        .map_or_else(|| "?".into(), |t| crate::clock::age(t, now));
    Error::Locked {
        bucket: bucket.to_string(),
        key: key.to_string(),
        held: Box::new(crate::error::Held {
            holder: lock.holder.clone(),
            started: lock.started.clone(),
            age,
            expires: lock.expires.clone(),
        }),
    }
}

/// The exit code for a lost lock.
pub fn lost_code(lost: Lost) -> u8 {
    match lost {
        Lost::Taken => code::CONFLICT,
        Lost::Unreachable => code::FAILURE,
    }
}
