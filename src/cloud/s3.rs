//! The S3 adapter: the `Bucket` interface on aws-sdk-s3, translating requests and errors and
//! nothing more (single PUT or multipart is a transport detail decided by size alone, gzip
//! pre-compression an encoding the headers ask for, a header update a copy onto itself).

use std::fs::File;
use std::io::{BufWriter, Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective,
    ObjectIdentifier,
};
use aws_sdk_s3::Client;
use base64::Engine;
use flate2::{Compression, GzBuilder};
use futures::stream::{self, StreamExt, TryStreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::cancel::Cancel;
use crate::cloud::bucket::{Bucket, BucketError, Fetch, Precondition, Unfinished};
use crate::cloud::errors::{one_line, sdk_error_text};
use crate::decide::plan::{Keep, Source, Write};
use crate::local::headers::Headers;
use crate::local::scan::{PartSums, MULTIPART_THRESHOLD, PART_SIZE};

/// Files to gzip up to this size are compressed into memory, larger ones into a temporary
/// file: with at most one compressed body per upload in flight, memory stays under
/// concurrency × 1 MiB whatever the file sizes, and the common case (pages, scripts, styles)
/// never touches the disk.
pub const GZIP_IN_MEMORY: u64 = 1024 * 1024;
/// DeleteObjects takes at most 1,000 keys per request.
const DELETE_BATCH: usize = 1000;
/// After a stop is asked, a single PUT already under way gets this long to finish: most do,
/// and one that does not may or may not have landed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How long CompleteMultipartUpload may take to answer. S3 may take minutes to assemble a large
/// object; a shorter limit would retry a completion that is landing, and the retry can then
/// find no upload to complete.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

pub struct S3Bucket {
    client: Client,
    bucket: String,
    /// Bounds the requests in flight, parts included, whatever the file sizes.
    permits: Arc<Semaphore>,
    gzip_in_memory: u64,
    /// Where requests go, for messages: a custom endpoint, or "S3 in REGION".
    endpoint: String,
}

impl S3Bucket {
    pub fn new(
        client: Client,
        bucket: impl Into<String>,
        concurrency: usize,
        endpoint: String,
    ) -> S3Bucket {
        S3Bucket {
            client,
            bucket: bucket.into(),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            gzip_in_memory: GZIP_IN_MEMORY,
            endpoint,
        }
    }

    /// Files to gzip above `bytes` are compressed into a temporary file instead of memory
    /// (default [`GZIP_IN_MEMORY`]).
    pub fn with_gzip_in_memory(mut self, bytes: u64) -> S3Bucket {
        self.gzip_in_memory = bytes;
        self
    }

    fn classify<E, R>(&self, err: SdkError<E, R>) -> BucketError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HasStatus,
    {
        classify(err, &self.endpoint)
    }

    /// A request slot, unless the run is stopping: no new request starts after Ctrl-C.
    async fn slot(&self, cancel: &Cancel) -> Result<tokio::sync::SemaphorePermit<'_>, BucketError> {
        let permit = self.permits.acquire().await.map_err(closed)?;
        if cancel.is_cancelled() {
            return Err(BucketError::Stopped);
        }
        Ok(permit)
    }

    /// `bucket/key` percent-encoded, with `?versionId=`, as CopyObject wants its source.
    fn copy_source(&self, key: &str, version: Option<&str>) -> String {
        let mut out = format!("{}/{}", self.bucket, utf8_percent_encode(key, COPY_SOURCE));
        if let Some(v) = version {
            out.push_str("?versionId=");
            out.push_str(&utf8_percent_encode(v, COPY_SOURCE).to_string());
        }
        out
    }

    /// Uploads the gzip of the file. The manifest records the source's hash and size, so the
    /// compressed bytes only need to be reproducible, not remembered.
    async fn put_gzip(
        &self,
        upload: &Write,
        path: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &Cancel,
    ) -> Result<Option<String>, BucketError> {
        let owned = path.to_path_buf();
        let in_memory = upload.size <= self.gzip_in_memory;
        // Compression is CPU-bound; on the async workers it would stall every other transfer.
        let gzipped = tokio::task::spawn_blocking(move || {
            if in_memory {
                gzip_into(&owned, Vec::new()).map(|g| g.map(Body::Memory))
            } else {
                gzip_to_temp_file(&owned, &std::env::temp_dir()).map(|g| g.map(Body::File))
            }
        })
        .await
        .map_err(|e| BucketError::Other(format!("the compression task failed: {e}")))?
        .map_err(|e| BucketError::File(format!("cannot gzip {}: {e}", path.display())))?;
        // The plan decided on the scan's hash: never upload other bytes under that decision.
        if gzipped.source_sha256 != upload.sha256 || gzipped.source_size != upload.size {
            return Err(changed(path));
        }
        let version = match gzipped.out {
            Body::Memory(bytes) => {
                let body = ByteStream::from(bytes);
                self.put_stream(upload, body, gzipped.size, &gzipped.sha256, cancel)
                    .await?
            }
            Body::File(temp) => {
                // The temporary file is an ordinary upload of the compressed bytes; it is
                // removed when `temp` drops, whatever happens to the upload.
                let compressed = Write {
                    size: gzipped.size,
                    sha256: gzipped.sha256,
                    parts: None,
                    ..upload.clone()
                };
                // Progress counts source bytes, reported once below, so the totals add up.
                let quiet = |_: u64| {};
                let sent = if compressed.size > MULTIPART_THRESHOLD {
                    self.put_multipart(&compressed, &temp.path, &quiet, cancel)
                        .await
                } else {
                    self.put_file(&compressed, &temp.path, &quiet, cancel).await
                };
                drop(temp);
                // A file error here names the temporary file; say which source it holds.
                sent.map_err(|e| match e {
                    BucketError::File(m) => {
                        BucketError::File(format!("{m} (the gzip of {})", path.display()))
                    }
                    e => e,
                })?
            }
        };
        progress(upload.size);
        Ok(version)
    }

    async fn put_file(
        &self,
        upload: &Write,
        path: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &Cancel,
    ) -> Result<Option<String>, BucketError> {
        let body = ByteStream::read_from()
            .path(path)
            .length(Length::Exact(upload.size))
            .build()
            .await
            .map_err(|e| file_error(path, &e))?;
        let version = self
            .put_stream(upload, body, upload.size, &upload.sha256, cancel)
            .await?;
        progress(upload.size);
        Ok(version)
    }

    /// One PUT of a body whose length and sha256 are known.
    async fn put_stream(
        &self,
        upload: &Write,
        body: ByteStream,
        size: u64,
        sha256: &[u8; 32],
        cancel: &Cancel,
    ) -> Result<Option<String>, BucketError> {
        let _permit = self.slot(cancel).await?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&*upload.key)
            .body(body)
            .content_length(size_i64(size))
            .checksum_sha256(b64(sha256));
        let send = apply_headers!(req, &upload.headers).send();
        tokio::pin!(send);
        let out = tokio::select! {
            out = &mut send => out,
            () = async { cancel.cancelled().await; tokio::time::sleep(STOP_GRACE).await } => {
                return Err(BucketError::Other(
                    "stopped while sending: it may or may not have landed".into(),
                ));
            }
        };
        let out = out.map_err(|e| self.classify(e))?;
        Ok(out.version_id().map(str::to_string))
    }

    async fn put_multipart(
        &self,
        upload: &Write,
        path: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &Cancel,
    ) -> Result<Option<String>, BucketError> {
        let parts: PartSums = match &upload.parts {
            Some(p) if p.len() as u64 == upload.size.div_ceil(PART_SIZE).max(1) => Arc::clone(p),
            // Not hashed by parts while scanning (a compressed temporary file): hash them now.
            _ => {
                let owned = path.to_path_buf();
                let hashed = tokio::task::spawn_blocking(move || part_hashes(&owned, PART_SIZE))
                    .await
                    .map_err(|e| BucketError::Other(format!("the hashing task failed: {e}")))?
                    .map_err(|e| file_error(path, &e))?;
                if hashed.whole != upload.sha256 || hashed.size != upload.size {
                    return Err(changed(path));
                }
                Arc::new(hashed.sha256)
            }
        };
        if cancel.is_cancelled() {
            return Err(BucketError::Stopped);
        }
        let create = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&*upload.key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        let created = apply_headers!(create, &upload.headers)
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| BucketError::Other("CreateMultipartUpload returned no UploadId".into()))?
            .to_string();

        // Parts are started in order, as permits free up; a stop abandons those in flight (S3
        // keeps nothing of an upload that is aborted) instead of waiting for them.
        let sending = stream::iter(parts.iter().copied().enumerate())
            .map(|(i, sha)| {
                let upload_id = upload_id.as_str();
                async move {
                    let _permit = self.slot(cancel).await?;
                    let offset = i as u64 * PART_SIZE;
                    let len = PART_SIZE.min(upload.size - offset);
                    let body = ByteStream::read_from()
                        .path(path)
                        .offset(offset)
                        .length(Length::Exact(len))
                        .build()
                        .await
                        .map_err(|e| file_error(path, &e))?;
                    let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(&*upload.key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .content_length(size_i64(len))
                        .checksum_sha256(b64(&sha))
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| self.classify(e))?;
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
            .try_collect::<Vec<_>>();
        let sent = tokio::select! {
            sent = sending => sent,
            () = cancel.cancelled() => Err(BucketError::Stopped),
        };
        let completed = match sent {
            Ok(parts) => parts,
            Err(e) => {
                self.abort_quietly(&upload.key, &upload_id).await;
                return Err(e);
            }
        };
        // Completing is quick and decides whether the object exists: it is never abandoned.
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&*upload.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default().timeout_config(
                    aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                        .read_timeout(COMPLETE_TIMEOUT)
                        .build(),
                ),
            )
            .send()
            .await;
        match done {
            Ok(out) => Ok(out.version_id().map(str::to_string)),
            Err(e) => {
                let e = self.classify(e);
                self.abort_quietly(&upload.key, &upload_id).await;
                Err(e)
            }
        }
    }

    /// Best effort, within a few seconds: an upload left behind costs storage until the next
    /// deploy finds and aborts it, and the deploy has already failed for a better-reported
    /// reason.
    async fn abort_quietly(&self, key: &str, upload_id: &str) {
        let abort = self.abort(key, upload_id);
        let _ = tokio::time::timeout(STOP_GRACE, abort).await;
    }

    /// A server-side copy onto `write.key` with the write's headers.
    async fn copy(
        &self,
        write: &Write,
        from: &str,
        version: Option<&str>,
        cancel: &Cancel,
    ) -> Result<Option<String>, BucketError> {
        let _permit = self.slot(cancel).await?;
        let req = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(&*write.key)
            .copy_source(self.copy_source(from, version))
            .metadata_directive(MetadataDirective::Replace);
        let out = apply_headers!(req, &write.headers)
            .send()
            .await
            .map_err(|e| match self.classify(e) {
                BucketError::Other(m)
                    if m.starts_with("NoSuchKey") || m.starts_with("NoSuchVersion") =>
                {
                    BucketError::SourceMissing(format!("s3://{}/{from}", self.bucket))
                }
                e => e,
            })?;
        Ok(out.version_id().map(str::to_string))
    }
}

/// Characters CopyObject's source must have encoded: everything but unreserved characters and
/// the path separator.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Sets the stored response headers on any request builder that has the S3 header setters.
macro_rules! apply_headers {
    ($req:expr, $headers:expr) => {{
        let h: &Headers = $headers;
        let mut req = $req
            .content_type(&h.content_type)
            .set_cache_control(h.cache_control.clone())
            .set_content_encoding(h.content_encoding.clone())
            .set_content_disposition(h.content_disposition.clone())
            .set_content_language(h.content_language.clone());
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
                let body = out.body.collect().await.map_err(|e| {
                    BucketError::Unreachable(format!(
                        "reading s3://{}/{key} broke off: {e}",
                        self.bucket
                    ))
                })?;
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
                    _ => Err(self.classify(e)),
                }
            }
        }
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Vec<u8>, BucketError> {
        if end <= start {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let body = out.body.collect().await.map_err(|e| {
            BucketError::Unreachable(format!("reading s3://{}/{key} broke off: {e}", self.bucket))
        })?;
        let bytes = body.into_bytes().to_vec();
        if bytes.len() as u64 != end - start {
            return Err(BucketError::Other(format!(
                "s3://{}/{key}: asked for {} bytes, got {}",
                self.bucket,
                end - start,
                bytes.len()
            )));
        }
        Ok(bytes)
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
            Err(e) => Err(self.classify(e)),
        }
    }

    async fn write(
        &self,
        write: &Write,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &Cancel,
    ) -> Result<Option<String>, BucketError> {
        match &write.source {
            Source::File(at) => {
                let path = at.path(&write.key);
                if write.headers.gzip {
                    self.put_gzip(write, &path, progress, cancel).await
                } else if write.size > MULTIPART_THRESHOLD {
                    self.put_multipart(write, &path, progress, cancel).await
                } else {
                    self.put_file(write, &path, progress, cancel).await
                }
            }
            Source::Restyle => self.copy(write, &write.key, None, cancel).await,
            Source::Copy(c) => {
                self.copy(write, &c.from, c.version.as_deref(), cancel)
                    .await
            }
        }
    }

    async fn keep(&self, from: &str, keep: &Keep) -> Result<(), BucketError> {
        let _permit = self.permits.acquire().await.map_err(closed)?;
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(&keep.to)
            .copy_source(self.copy_source(from, keep.version.as_deref()))
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> Vec<Result<(), BucketError>> {
        let mut results = Vec::with_capacity(keys.len());
        for batch in keys.chunks(DELETE_BATCH) {
            results.extend(self.delete_batch(batch).await);
        }
        results
    }

    async fn unfinished(&self, prefix: &str) -> Result<Vec<Unfinished>, BucketError> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| self.classify(e))?;
            for u in page.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    out.push(Unfinished {
                        key: key.to_string(),
                        upload_id: id.to_string(),
                        initiated: u.initiated().map_or(0, |t| t.secs()),
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), BucketError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already gone: what aborting wanted.
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => Ok(()),
            Err(e) => Err(self.classify(e)),
        }
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
                let err = self.classify(e);
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

/// A compressed body and what was learnt while compressing it.
struct Gzipped<T> {
    out: T,
    /// Of the compressed bytes: what S3 receives.
    sha256: [u8; 32],
    size: u64,
    /// Of the file as read: what the plan was made on.
    source_sha256: [u8; 32],
    source_size: u64,
}

impl<T> Gzipped<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Gzipped<U> {
        Gzipped {
            out: f(self.out),
            sha256: self.sha256,
            size: self.size,
            source_sha256: self.source_sha256,
            source_size: self.source_size,
        }
    }
}

enum Body {
    Memory(Vec<u8>),
    File(TempFile),
}

/// Compresses the file at `path` into `out` in one read, hashing the source as it goes.
///
/// The output depends on the input bytes alone (mtime 0, no file name, a fixed OS byte in the
/// header, best compression), so the same source always gives the same object, byte for byte.
fn gzip_into<W: std::io::Write>(path: &Path, out: W) -> std::io::Result<Gzipped<W>> {
    let mut file = File::open(path)?;
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Hashing::new(out), Compression::best());
    let mut source = Sha256::new();
    let mut source_size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        source.update(&buf[..n]);
        source_size += n as u64;
        encoder.write_all(&buf[..n])?;
    }
    let hashing = encoder.finish()?;
    Ok(Gzipped {
        out: hashing.inner,
        sha256: hashing.sha.finalize().into(),
        size: hashing.len,
        source_sha256: source.finalize().into(),
        source_size,
    })
}

fn gzip_to_temp_file(path: &Path, dir: &Path) -> std::io::Result<Gzipped<TempFile>> {
    let (temp, file) = TempFile::create(dir)?;
    let Gzipped {
        out,
        sha256,
        size,
        source_sha256,
        source_size,
    } = gzip_into(path, BufWriter::new(file))?;
    // Flushing here surfaces a full disk as an error instead of losing it in a drop.
    out.into_inner().map_err(|e| e.into_error())?;
    Ok(Gzipped {
        out: temp,
        sha256,
        size,
        source_sha256,
        source_size,
    })
}

/// A temporary file, removed on drop (also when an upload fails or is cancelled).
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn create(dir: &Path) -> std::io::Result<(TempFile, File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut attempt = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("cdn-deploy-gzip-{}-{n}.gz", std::process::id()));
            // `create_new`: never write through a name someone else created (a stale file from
            // a crashed run with the same pid, or a planted symlink).
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&path) {
                Ok(file) => return Ok((TempFile { path }, file)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Passes bytes through, hashing and counting them.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
    len: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            sha: Sha256::new(),
            len: 0,
        }
    }
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
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

fn file_error(path: &Path, e: &dyn std::fmt::Display) -> BucketError {
    BucketError::File(format!(
        "cannot read {}: {}",
        path.display(),
        one_line(&e.to_string())
    ))
}

fn changed(path: &Path) -> BucketError {
    BucketError::File(format!("{} changed after it was hashed", path.display()))
}

/// Maps an SDK error to what the deploy needs to know about it; `endpoint` names where the
/// request went, for errors that got no answer.
pub fn classify<E, R>(err: SdkError<E, R>, endpoint: &str) -> BucketError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    if let SdkError::ServiceError(se) = &err {
        let status = se.raw().status();
        let code = se.err().code().unwrap_or_default();
        let message = one_line(se.err().message().unwrap_or_default());
        if status == 412 {
            return BucketError::PreconditionFailed;
        }
        if status == 301 || code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" {
            return BucketError::WrongRegion(se.raw().bucket_region());
        }
        if code.is_empty() && status == 403 {
            return BucketError::AccessDenied(String::new());
        }
        if code.is_empty() {
            return BucketError::Other(format!("HTTP {status} from {endpoint}"));
        }
        return from_code(code, &message);
    }
    let text = sdk_error_text(&err, endpoint);
    match text {
        crate::cloud::errors::Failure::Unreachable(t) => BucketError::Unreachable(t),
        crate::cloud::errors::Failure::Other(t) => {
            let lower = t.to_ascii_lowercase();
            if lower.contains("no credentials")
                || lower.contains("credentials provider")
                || lower.contains("credentials") && lower.contains("load")
            {
                BucketError::NoCredentials(t)
            } else {
                BucketError::Other(t)
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    fn source() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.js");
        let text: Vec<u8> = (0..5000)
            .flat_map(|i| format!("console.log({i});\n").into_bytes())
            .collect();
        std::fs::write(&path, &text).unwrap();
        (dir, path, text)
    }

    #[test]
    fn gzip_is_deterministic_and_hashes_both_sides() {
        let (_dir, path, text) = source();
        let a = gzip_into(&path, Vec::new()).unwrap();
        let b = gzip_into(&path, Vec::new()).unwrap();
        assert_eq!(a.out, b.out);
        assert_eq!(gunzip(&a.out), text);
        assert_eq!(a.source_sha256, <[u8; 32]>::from(Sha256::digest(&text)));
        assert_eq!(a.source_size, text.len() as u64);
        assert_eq!(a.sha256, <[u8; 32]>::from(Sha256::digest(&a.out)));
        assert_eq!(a.size, a.out.len() as u64);
        assert!(
            a.size < a.source_size / 3,
            "{} of {}",
            a.size,
            a.source_size
        );
        // mtime 0, no name, OS "unknown": nothing about the machine or the moment.
        assert_eq!(&a.out[3..10], &[0, 0, 0, 0, 0, 2, 255]);
    }

    #[test]
    fn temp_file_holds_the_same_bytes_and_is_removed() {
        let (_dir, path, _) = source();
        let tmp = tempfile::tempdir().unwrap();
        let memory = gzip_into(&path, Vec::new()).unwrap();
        let file = gzip_to_temp_file(&path, tmp.path()).unwrap();
        let temp = file.out.path.clone();
        assert!(temp.starts_with(tmp.path()));
        assert_eq!(std::fs::read(&temp).unwrap(), memory.out);
        assert_eq!((file.sha256, file.size), (memory.sha256, memory.size));
        drop(file);
        assert_eq!(entries(tmp.path()), 0, "the temporary file was left behind");
    }

    #[test]
    fn a_failed_gzip_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        // Opening a folder succeeds, reading it fails: the error comes after the temporary
        // file exists.
        let source = tempfile::tempdir().unwrap();
        assert!(gzip_to_temp_file(source.path(), tmp.path()).is_err());
        assert!(gzip_to_temp_file(&source.path().join("gone.js"), tmp.path()).is_err());
        assert_eq!(entries(tmp.path()), 0);
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }
}
