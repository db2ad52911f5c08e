//! The narrow interface to object storage that a deploy needs, in the tool's own terms, and the
//! storage errors it can meet. Adapters implement it and make no decisions.

use std::future::Future;

use crate::cancel::Cancel;
use crate::decide::plan::{Keep, Write};
use crate::local::headers::Headers;

/// The result of reading a small object (the manifest's root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetch {
    Found {
        body: Vec<u8>,
        etag: String,
    },
    Missing,
    /// The object still has the ETag given as `if_none_match`.
    NotModified,
}

/// A condition on a write, so that two deploys can never overwrite each other unnoticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Only if no object exists under the key (`If-None-Match: *`).
    IfAbsent,
    /// Only if the object still has this ETag (`If-Match`).
    IfMatch(String),
}

/// A multipart upload that was started and never completed or aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    pub key: String,
    pub upload_id: String,
    /// Unix seconds.
    pub initiated: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    /// A conditional write or delete found the object changed.
    #[error("the object changed since it was read")]
    PreconditionFailed,
    #[error("the bucket does not exist, or these credentials cannot see it")]
    NoSuchBucket,
    #[error("access denied{}", detail(.0))]
    AccessDenied(String),
    #[error("the AWS credentials were rejected{}", detail(.0))]
    BadCredentials(String),
    #[error("no AWS credentials found{}", detail(.0))]
    NoCredentials(String),
    #[error("the bucket is in another region{}", match .0 { Some(r) => format!(" ({r})"), None => String::new() })]
    WrongRegion(Option<String>),
    /// The local file could not be read, or changed between hashing and upload.
    #[error("{0}")]
    File(String),
    /// The source of a server-side copy is gone (a kept copy or an old version).
    #[error("the source object is gone{}", detail(.0))]
    SourceMissing(String),
    /// No answer in time, or the connection could not be made or broke.
    #[error("{0}")]
    Unreachable(String),
    /// Stopped by Ctrl-C (or a lost lock) before it completed; nothing was changed.
    #[error("stopped before it completed")]
    Stopped,
    #[error("{0}")]
    Other(String),
}

fn detail(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

impl BucketError {
    /// Errors that are the user's set-up (credentials, bucket name, region), as opposed to a
    /// failure of the service or the network.
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            BucketError::NoSuchBucket
                | BucketError::AccessDenied(_)
                | BucketError::BadCredentials(_)
                | BucketError::NoCredentials(_)
                | BucketError::WrongRegion(_)
        )
    }

    /// What to do about it, in one line.
    pub fn hint(&self, bucket: &str, program: &str) -> String {
        match self {
            BucketError::NoSuchBucket => format!(
                "check the bucket name {bucket:?} (from {}) and the region; create the bucket first if it is new",
                crate::cli::bucket_origin()
            ),
            BucketError::AccessDenied(_) => format!(
                "allow s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucketMultipartUploads and s3:AbortMultipartUpload on arn:aws:s3:::{bucket} and arn:aws:s3:::{bucket}/* for these credentials"
            ),
            BucketError::BadCredentials(_) => {
                "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or --profile; an SSO session may need `aws sso login`".into()
            }
            BucketError::NoCredentials(_) => {
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --profile, or run `aws sso login`".into()
            }
            BucketError::WrongRegion(Some(r)) => format!("pass --region {r}"),
            BucketError::WrongRegion(None) => "pass the bucket's region with --region".into(),
            BucketError::PreconditionFailed => {
                format!("another deploy changed it; run `{program}` again")
            }
            BucketError::File(_) => {
                "make sure the build has finished before deploying, then run again".into()
            }
            BucketError::SourceMissing(_) => {
                "the bytes to restore are no longer in the bucket; deploy a build of that version instead".into()
            }
            BucketError::Unreachable(_) => {
                "check the network, --endpoint-url and --timeout, then run again: the deploy resumes where it stopped".into()
            }
            BucketError::Stopped => "run again to finish: the deploy resumes where it stopped".into(),
            BucketError::Other(_) => {
                "run again: the deploy resumes where it stopped".into()
            }
        }
    }
}

/// Object storage as the deploy sees it. Futures are `Send` so writes can run concurrently.
pub trait Bucket: Send + Sync {
    /// The bucket name, for messages (`s3://name/key`).
    fn name(&self) -> &str;

    /// Reads a small object whole.
    fn get(
        &self,
        key: &str,
        if_none_match: Option<&str>,
    ) -> impl Future<Output = Result<Fetch, BucketError>> + Send;

    /// Reads bytes `start..end` of an object.
    fn get_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<u8>, BucketError>> + Send;

    /// Writes a small object; returns its new ETag.
    fn put_bytes(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &Headers,
        precondition: Option<Precondition>,
    ) -> impl Future<Output = Result<String, BucketError>> + Send;

    /// Carries out one planned write (a file upload, checked against its sha256 end to end, or
    /// a server-side copy); returns the VersionId when the bucket keeps versions. `progress`
    /// is called with byte counts as they are sent. A write stopped by `cancel` before it
    /// completed changed nothing and says [`BucketError::Stopped`].
    fn write(
        &self,
        write: &Write,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &Cancel,
    ) -> impl Future<Output = Result<Option<String>, BucketError>> + Send;

    /// Copies the current bytes (and headers) of `from` to a kept copy.
    fn keep(&self, from: &str, keep: &Keep)
        -> impl Future<Output = Result<(), BucketError>> + Send;

    /// Deletes keys (batched by the adapter); one result per key, in order.
    fn delete(&self, keys: &[String]) -> impl Future<Output = Vec<Result<(), BucketError>>> + Send;

    /// Multipart uploads under `prefix` that were never completed or aborted.
    fn unfinished(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<Unfinished>, BucketError>> + Send;

    fn abort(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), BucketError>> + Send;
}
