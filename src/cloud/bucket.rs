//! The narrow interface to object storage that a deploy needs, in the tool's own terms, and the
//! storage errors it can meet. Adapters implement it and make no decisions.

use std::future::Future;

use crate::local::headers::Headers;
use crate::decide::plan::Upload;

/// The result of reading a small object (manifest, lock).
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
    pub fn hint(&self, bucket: &str) -> String {
        match self {
            BucketError::NoSuchBucket => {
                format!("check --bucket {bucket:?} and --region; create it first if it is new")
            }
            BucketError::AccessDenied(_) => format!(
                "allow s3:GetObject, s3:PutObject and s3:DeleteObject on arn:aws:s3:::{bucket}/* for these credentials"
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
                "another deploy changed it; run the deploy again".into()
            }
            BucketError::File(_) => {
                "make sure the build has finished before deploying, then run again".into()
            }
            BucketError::Other(_) => {
                "check the network and --endpoint-url, then run again: the deploy resumes where it stopped".into()
            }
        }
    }
}

/// Object storage as the deploy sees it. Futures are `Send` so uploads can run concurrently.
pub trait Bucket: Send + Sync {
    /// The bucket name, for messages (`s3://name/key`).
    fn name(&self) -> &str;

    /// Reads a small object whole.
    fn get(
        &self,
        key: &str,
        if_none_match: Option<&str>,
    ) -> impl Future<Output = Result<Fetch, BucketError>> + Send;

    /// Writes a small object; returns its new ETag.
    fn put_bytes(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &Headers,
        precondition: Option<Precondition>,
    ) -> impl Future<Output = Result<String, BucketError>> + Send;

    /// Uploads a local file with its headers, checked against its sha256 end to end.
    /// `progress` is called with byte counts as they are sent.
    fn upload(
        &self,
        upload: &Upload,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> impl Future<Output = Result<(), BucketError>> + Send;

    /// Deletes keys (batched by the adapter); one result per key, in order.
    fn delete(&self, keys: &[String]) -> impl Future<Output = Vec<Result<(), BucketError>>> + Send;

    /// Deletes one object only if it still has this ETag (the lock).
    fn delete_if(
        &self,
        key: &str,
        etag: &str,
    ) -> impl Future<Output = Result<(), BucketError>> + Send;
}
