//! The S3 adapter: the `Bucket` interface on aws-sdk-s3, translating requests and errors and
//! nothing more (single PUT or multipart is a transport detail decided by size alone).

use std::io::Read;
use std::sync::Arc;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use aws_sdk_s3::Client;
use base64::Engine;
use futures::stream::{self, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::bucket::{Bucket, BucketError, Fetch, Precondition};
use crate::headers::Headers;
use crate::plan::Upload;

/// Files above this size go up in parts, several at once.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// 8 MiB parts: S3's minimum is 5 MiB; 10,000 parts of 8 MiB cover files up to 78 GiB.
pub const PART_SIZE: u64 = 8 * 1024 * 1024;
/// DeleteObjects takes at most 1,000 keys per request.
const DELETE_BATCH: usize = 1000;

pub struct S3Bucket {
    client: Client,
    bucket: String,
    /// Bounds the requests in flight, parts included, whatever the file sizes.
    permits: Arc<Semaphore>,
}

impl S3Bucket {
    pub fn new(client: Client, bucket: impl Into<String>, concurrency: usize) -> S3Bucket {
        S3Bucket {
            client,
            bucket: bucket.into(),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    async fn put_single(
        &self,
        upload: &Upload,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), BucketError> {
        let _permit = self.permits.acquire().await.map_err(closed)?;
        let body = ByteStream::read_from()
            .path(&upload.path)
            .length(Length::Exact(upload.size))
            .build()
            .await
            .map_err(|e| file_error(upload, &e))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&upload.key)
            .body(body)
            .content_length(size_i64(upload.size))
            .checksum_sha256(b64(&upload.sha256));
        apply_headers!(req, &upload.headers)
            .send()
            .await
            .map_err(classify)?;
        progress(upload.size);
        Ok(())
    }

    async fn put_multipart(
        &self,
        upload: &Upload,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), BucketError> {
        // Part checksums let S3 verify every byte; computing them rereads the file, which also
        // proves it has not changed since it was hashed.
        let path = upload.path.clone();
        let parts = tokio::task::spawn_blocking(move || part_hashes(&path, PART_SIZE))
            .await
            .map_err(|e| BucketError::Other(e.to_string()))?
            .map_err(|e| file_error(upload, &e))?;
        if parts.whole != upload.sha256 || parts.size != upload.size {
            return Err(changed(upload));
        }
        let create = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        let created = apply_headers!(create, &upload.headers)
            .send()
            .await
            .map_err(classify)?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| BucketError::Other("CreateMultipartUpload returned no UploadId".into()))?
            .to_string();

        let sent = stream::iter(parts.sha256.into_iter().enumerate())
            .map(|(i, sha)| {
                let upload_id = upload_id.as_str();
                async move {
                    let _permit = self.permits.acquire().await.map_err(closed)?;
                    let offset = i as u64 * PART_SIZE;
                    let len = PART_SIZE.min(upload.size - offset);
                    let body = ByteStream::read_from()
                        .path(&upload.path)
                        .offset(offset)
                        .length(Length::Exact(len))
                        .build()
                        .await
                        .map_err(|e| file_error(upload, &e))?;
                    let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(&upload.key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .content_length(size_i64(len))
                        .checksum_sha256(b64(&sha))
                        .body(body)
                        .send()
                        .await
                        .map_err(classify)?;
                    progress(len);
                    Ok::<_, BucketError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(out.e_tag().map(str::to_string))
                            .checksum_sha256(b64(&sha))
                            .build(),
                    )
                }
            })
            .buffered(self.permits.available_permits().max(1))
            .try_collect::<Vec<_>>()
            .await;
        let completed = match sent {
            Ok(parts) => parts,
            Err(e) => {
                self.abort(&upload.key, &upload_id).await;
                return Err(e);
            }
        };
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(classify);
        if let Err(e) = done {
            self.abort(&upload.key, &upload_id).await;
            return Err(e);
        }
        Ok(())
    }

    /// Best effort: an abandoned multipart upload only costs storage until a lifecycle rule
    /// removes it, and the deploy has already failed for a better-reported reason.
    async fn abort(&self, key: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
    }
}

/// Sets the stored response headers on any request builder that has the S3 header setters.
macro_rules! apply_headers {
    ($req:expr, $headers:expr) => {{
        let h: &Headers = $headers;
        let mut req = $req
            .content_type(&h.content_type)
            .set_cache_control(h.cache_control.clone())
            .set_content_encoding(h.content_encoding.clone());
        for (k, v) in &h.metadata {
            req = req.metadata(k, v);
        }
        req
    }};
}
use apply_headers;

impl Bucket for S3Bucket {
    fn name(&self) -> &str {
        &self.bucket
    }

    async fn get(&self, key: &str, if_none_match: Option<&str>) -> Result<Fetch, BucketError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_none_match(if_none_match.map(str::to_string))
            .send()
            .await;
        match out {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| BucketError::Other(format!("reading the body: {e}")))?;
                Ok(Fetch::Found {
                    body: body.into_bytes().to_vec(),
                    etag,
                })
            }
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let code = e.code().unwrap_or_default().to_string();
                match status {
                    Some(304) => Ok(Fetch::NotModified),
                    Some(404) if code != "NoSuchBucket" => Ok(Fetch::Missing),
                    _ => Err(classify(e)),
                }
            }
        }
    }

    async fn put_bytes(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &Headers,
        precondition: Option<Precondition>,
    ) -> Result<String, BucketError> {
        let sha: [u8; 32] = Sha256::digest(&body).into();
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(size_i64(body.len() as u64))
            .checksum_sha256(b64(&sha))
            .body(ByteStream::from(body));
        let conditional = precondition.is_some();
        req = match precondition {
            Some(Precondition::IfAbsent) => req.if_none_match("*"),
            Some(Precondition::IfMatch(etag)) => req.if_match(etag),
            None => req,
        };
        match apply_headers!(req, headers).send().await {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
            // `If-Match` on an object deleted meanwhile answers 404: it changed all the same.
            Err(e)
                if conditional
                    && e.code() != Some("NoSuchBucket")
                    && e.raw_response().map(|r| r.status().as_u16()) == Some(404) =>
            {
                Err(BucketError::PreconditionFailed)
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn upload(
        &self,
        upload: &Upload,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), BucketError> {
        if upload.size > MULTIPART_THRESHOLD {
            self.put_multipart(upload, progress).await
        } else {
            self.put_single(upload, progress).await
        }
    }

    async fn delete(&self, keys: &[String]) -> Vec<Result<(), BucketError>> {
        let mut results = Vec::with_capacity(keys.len());
        for batch in keys.chunks(DELETE_BATCH) {
            results.extend(self.delete_batch(batch).await);
        }
        results
    }

    async fn delete_if(&self, key: &str, etag: &str) -> Result<(), BucketError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

impl S3Bucket {
    async fn delete_batch(&self, keys: &[String]) -> Vec<Result<(), BucketError>> {
        let objects: Result<Vec<_>, _> = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect();
        let request =
            objects.and_then(|o| Delete::builder().set_objects(Some(o)).quiet(true).build());
        let delete = match request {
            Ok(d) => d,
            Err(e) => {
                return keys
                    .iter()
                    .map(|_| Err(BucketError::Other(e.to_string())))
                    .collect()
            }
        };
        let permit = self.permits.acquire().await;
        if permit.is_err() {
            return keys
                .iter()
                .map(|_| Err(BucketError::Other("shut down".into())))
                .collect();
        }
        match self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
        {
            Ok(out) => keys
                .iter()
                .map(
                    |k| match out.errors().iter().find(|e| e.key() == Some(k.as_str())) {
                        None => Ok(()),
                        Some(e) => Err(from_code(
                            e.code().unwrap_or_default(),
                            e.message().unwrap_or_default(),
                        )),
                    },
                )
                .collect(),
            Err(e) => {
                let err = classify(e);
                keys.iter().map(|_| Err(err.clone())).collect()
            }
        }
    }
}

struct PartHashes {
    size: u64,
    whole: [u8; 32],
    sha256: Vec<[u8; 32]>,
}

fn part_hashes(path: &std::path::Path, part_size: u64) -> std::io::Result<PartHashes> {
    let mut file = std::fs::File::open(path)?;
    let mut whole = Sha256::new();
    let mut parts = Vec::new();
    let mut part = Sha256::new();
    let mut in_part = 0u64;
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        size += n as u64;
        whole.update(chunk);
        while !chunk.is_empty() {
            let room = usize::try_from(part_size - in_part).unwrap_or(usize::MAX);
            let take = room.min(chunk.len());
            part.update(&chunk[..take]);
            in_part += take as u64;
            chunk = &chunk[take..];
            if in_part == part_size {
                parts.push(part.finalize_reset().into());
                in_part = 0;
            }
        }
    }
    if in_part > 0 || parts.is_empty() {
        parts.push(part.finalize().into());
    }
    Ok(PartHashes {
        size,
        whole: whole.finalize().into(),
        sha256: parts,
    })
}

fn b64(sha: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha)
}

fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn closed(_: tokio::sync::AcquireError) -> BucketError {
    BucketError::Other("the upload pool was shut down".into())
}

fn file_error(upload: &Upload, e: &dyn std::fmt::Display) -> BucketError {
    BucketError::File(format!("cannot read {}: {e}", upload.path.display()))
}

fn changed(upload: &Upload) -> BucketError {
    BucketError::File(format!(
        "{} changed after it was hashed",
        upload.path.display()
    ))
}

/// Maps an SDK error to what the deploy needs to know about it.
pub fn classify<E, R>(err: SdkError<E, R>) -> BucketError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status();
            let code = se.err().code().unwrap_or_default();
            let message = se.err().message().unwrap_or_default();
            if status == 412 {
                return BucketError::PreconditionFailed;
            }
            if status == 301
                || code == "PermanentRedirect"
                || code == "AuthorizationHeaderMalformed"
            {
                return BucketError::WrongRegion(se.raw().bucket_region());
            }
            if code.is_empty() && status == 403 {
                return BucketError::AccessDenied(String::new());
            }
            if code.is_empty() {
                return BucketError::Other(format!("HTTP {status}"));
            }
            from_code(code, message)
        }
        SdkError::DispatchFailure(df) => {
            let text = aws_sdk_s3::error::DisplayErrorContext(&err).to_string();
            if text.contains("credentials") || text.contains("Credentials") {
                return BucketError::NoCredentials(text);
            }
            if df.is_io() || df.is_timeout() {
                return BucketError::Other(format!("cannot reach S3: {text}"));
            }
            BucketError::Other(text)
        }
        _ => {
            let text = aws_sdk_s3::error::DisplayErrorContext(&err).to_string();
            if text.contains("no credentials") || text.contains("credentials provider") {
                return BucketError::NoCredentials(text);
            }
            BucketError::Other(text)
        }
    }
}

fn from_code(code: &str, message: &str) -> BucketError {
    match code {
        "PreconditionFailed" | "ConditionalRequestConflict" => BucketError::PreconditionFailed,
        "NoSuchBucket" => BucketError::NoSuchBucket,
        "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => {
            BucketError::AccessDenied(message.to_string())
        }
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken" => {
            BucketError::BadCredentials(format!("{code}: {message}"))
        }
        "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
            BucketError::WrongRegion(None)
        }
        "BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest" => BucketError::File(format!(
            "{code}: the bytes S3 received do not match the hash taken when scanning (was the file rewritten during the deploy?)"
        )),
        _ => BucketError::Other(format!("{code}: {message}")),
    }
}

/// What `classify` needs of a raw response.
pub trait HasStatus {
    fn status(&self) -> u16;
    fn bucket_region(&self) -> Option<String>;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
    fn bucket_region(&self) -> Option<String> {
        self.headers()
            .get("x-amz-bucket-region")
            .map(str::to_string)
    }
}
