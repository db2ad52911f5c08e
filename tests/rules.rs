//! Header rules and gzip pre-compression end to end: headers from `Rules`, uploaded by the S3
//! adapter to moto, checked by reading the objects back through the SDK.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use cdn_deploy::cancel::Cancel;
use cdn_deploy::cloud::bucket::{Bucket, BucketError};
use cdn_deploy::cloud::s3::S3Bucket;
use cdn_deploy::decide::plan::{Reason, Source, Write};
use cdn_deploy::local::headers::{is_html, REVALIDATE};
use cdn_deploy::local::rules::{HeaderRule, Rules};
use cdn_deploy::local::scan::{InBuild, MULTIPART_THRESHOLD};
use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use support::{moto, new_bucket, rt, HeadInfo};

fn site() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("site-")
        .tempdir()
        .expect("create a temporary site folder")
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create the folder");
    }
    fs::write(&path, bytes).expect("write the file");
}

/// The upload the plan would make for `rel`, hashed now.
fn upload_for(dir: &Path, rel: &str, rules: &Rules) -> Write {
    let path = dir.join(rel);
    let bytes = fs::read(&path).expect("read the file");
    Write {
        key: rel.into(),
        source: Source::File(InBuild::new(dir, 0)),
        size: bytes.len() as u64,
        sha256: Sha256::digest(&bytes).into(),
        parts: None,
        headers: Arc::new(rules.headers_for(rel)),
        reason: Reason::New,
        html: is_html(rel),
        keep: None,
    }
}

/// Uploads through the adapter; returns the bytes reported to the progress callback.
fn put(s3: &S3Bucket, upload: &Write) -> Result<u64, BucketError> {
    let sent = AtomicU64::new(0);
    let progress = |n: u64| {
        sent.fetch_add(n, Ordering::Relaxed);
    };
    rt().block_on(s3.write(upload, &progress, &Cancel::default()))?;
    Ok(sent.load(Ordering::Relaxed))
}

fn adapter(bucket: &str) -> S3Bucket {
    S3Bucket::new(rt().block_on(moto().s3()), bucket, 4, moto().endpoint())
}

fn get(bucket: &str, key: &str) -> (Vec<u8>, HeadInfo) {
    rt().block_on(moto().get(bucket, key))
}

/// Content-Disposition and Content-Language, which `HeadInfo` does not carry.
fn disposition_and_language(bucket: &str, key: &str) -> (Option<String>, Option<String>) {
    rt().block_on(async {
        let out = moto()
            .s3()
            .await
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head s3://{bucket}/{key}: {e:?}"));
        (
            out.content_disposition().map(str::to_string),
            out.content_language().map(str::to_string),
        )
    })
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("the body is valid gzip");
    out
}

/// Compressible text of about `len` bytes.
fn script(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(format!("export const value{i} = \"item number {i}\";\n").as_bytes());
        i += 1;
    }
    out
}

/// Text that gzip barely shrinks (random base64-like characters), of exactly `len` bytes.
fn noise(len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % 64) as usize]
        })
        .collect()
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn rules() -> Rules {
    let list = [
        HeaderRule {
            glob: "downloads/*.json".into(),
            content_disposition: Some("attachment; filename=\"report.json\"".into()),
            metadata: meta(&[("source", "nightly")]),
            gzip: true,
            ..HeaderRule::default()
        },
        HeaderRule {
            glob: "*.js".into(),
            cache_control: Some("public, max-age=600".into()),
            content_language: Some("en-GB".into()),
            metadata: meta(&[("team", "web")]),
            gzip: true,
            ..HeaderRule::default()
        },
        HeaderRule {
            glob: "*.png".into(),
            cache_control: Some("public, max-age=86400".into()),
            gzip: true,
            ..HeaderRule::default()
        },
    ];
    Rules::new(&list, true, &[]).expect("valid rules")
}

#[test]
fn gzip_rule_uploads_the_compressed_body_with_the_rule_headers() {
    let bucket = new_bucket("rules-gzip");
    let dir = site();
    let js = script(20_000);
    let json =
        br#"{"rows":[1,2,3,4,5,6,7,8,9,10],"note":"the same note again and again"}"#.repeat(50);
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &noise(3000)].concat();
    let html = b"<!doctype html><title>home</title><script src=/assets/app.js></script>".to_vec();
    write(dir.path(), "assets/app.js", &js);
    write(dir.path(), "downloads/report.json", &json);
    write(dir.path(), "img/logo.png", &png);
    write(dir.path(), "index.html", &html);
    let rules = rules();
    let s3 = adapter(&bucket);

    for rel in [
        "assets/app.js",
        "downloads/report.json",
        "img/logo.png",
        "index.html",
    ] {
        let upload = upload_for(dir.path(), rel, &rules);
        let sent = put(&s3, &upload).unwrap_or_else(|e| panic!("upload {rel}: {e}"));
        // Source bytes, so the byte bar adds up to the plan's total whatever is compressed.
        assert_eq!(sent, upload.size, "{rel}");
    }

    let (body, head) = get(&bucket, "assets/app.js");
    assert!(
        body.len() < js.len() / 4,
        "stored {} of {}",
        body.len(),
        js.len()
    );
    assert_eq!(gunzip(&body), js);
    assert_eq!(head.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(
        head.content_type.as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(head.cache_control.as_deref(), Some("public, max-age=600"));
    assert_eq!(head.metadata, meta(&[("team", "web")]));
    assert_eq!(
        disposition_and_language(&bucket, "assets/app.js"),
        (None, Some("en-GB".to_string()))
    );

    let (body, head) = get(&bucket, "downloads/report.json");
    assert_eq!(gunzip(&body), json);
    assert_eq!(head.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(
        head.content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    // The rule sets no Cache-Control: the built-in policy's stays.
    assert_eq!(head.cache_control.as_deref(), Some(REVALIDATE));
    assert_eq!(head.metadata, meta(&[("source", "nightly")]));
    assert_eq!(
        disposition_and_language(&bucket, "downloads/report.json"),
        (
            Some("attachment; filename=\"report.json\"".to_string()),
            None
        )
    );

    // gzip on a PNG is skipped: stored as is, the rule's other headers applied.
    let (body, head) = get(&bucket, "img/logo.png");
    assert_eq!(body, png);
    assert_eq!(head.content_encoding, None);
    assert_eq!(head.content_type.as_deref(), Some("image/png"));
    assert_eq!(head.cache_control.as_deref(), Some("public, max-age=86400"));

    // No rule matches: built-in headers, no compression.
    let (body, head) = get(&bucket, "index.html");
    assert_eq!(body, html);
    assert_eq!(head.content_encoding, None);
    assert_eq!(head.cache_control.as_deref(), Some(REVALIDATE));
    assert!(head.metadata.is_empty());
}

#[test]
fn the_same_source_gives_the_same_compressed_object() {
    let bucket = new_bucket("rules-determinism");
    let dir = site();
    write(dir.path(), "a/app.js", &script(50_000));
    write(dir.path(), "b/app.js", &script(50_000));
    let rules = rules();
    let s3 = adapter(&bucket);
    let first = upload_for(dir.path(), "a/app.js", &rules);
    put(&s3, &first).expect("first upload");
    let (one, head_one) = get(&bucket, "a/app.js");
    // Again under the same key, and from another file with the same bytes.
    put(&s3, &first).expect("second upload");
    let (two, head_two) = get(&bucket, "a/app.js");
    put(&s3, &upload_for(dir.path(), "b/app.js", &rules)).expect("third upload");
    let (three, head_three) = get(&bucket, "b/app.js");
    assert_eq!(one, two);
    assert_eq!(one, three);
    assert!(head_one.etag.is_some());
    assert_eq!(head_one.etag, head_two.etag);
    assert_eq!(head_one.etag, head_three.etag);
}

#[test]
fn a_source_changed_after_hashing_is_refused() {
    let bucket = new_bucket("rules-changed");
    let dir = site();
    write(dir.path(), "app.js", &script(10_000));
    let upload = upload_for(dir.path(), "app.js", &rules());
    assert!(upload.headers.gzip);
    // Same size, other bytes: only the hash can tell.
    let mut edited = script(10_000);
    edited[0] = b'/';
    write(dir.path(), "app.js", &edited);
    match put(&adapter(&bucket), &upload) {
        Err(BucketError::File(message)) => {
            assert!(message.contains("changed after it was hashed"), "{message}")
        }
        other => panic!("expected a file error, got {other:?}"),
    }
    assert_eq!(rt().block_on(moto().try_get(&bucket, "app.js")), None);
}

/// Files above the in-memory limit are compressed into a temporary file, and when the
/// compressed body is large, uploaded in parts. The limit is lowered so the test stays small;
/// no other test of this binary uses temporary files, so leftovers can be counted.
#[test]
fn large_files_are_compressed_through_a_temporary_file() {
    let bucket = new_bucket("rules-temp");
    let dir = site();
    let small = script(100_000);
    // Random text compresses to about 3/4: the compressed body still needs multipart.
    let large = noise(MULTIPART_THRESHOLD as usize * 3 / 2);
    write(dir.path(), "small.js", &small);
    write(dir.path(), "large.js", &large);
    let rules = rules();
    let s3 = adapter(&bucket).with_gzip_in_memory(0);

    let upload = upload_for(dir.path(), "small.js", &rules);
    assert_eq!(put(&s3, &upload).expect("small upload"), upload.size);
    let (via_file, head) = get(&bucket, "small.js");
    assert_eq!(gunzip(&via_file), small);
    assert_eq!(head.content_encoding.as_deref(), Some("gzip"));
    // The same bytes as compressing in memory.
    put(&adapter(&bucket), &upload).expect("in-memory upload");
    assert_eq!(get(&bucket, "small.js").0, via_file);

    let upload = upload_for(dir.path(), "large.js", &rules);
    assert_eq!(put(&s3, &upload).expect("large upload"), upload.size);
    let (body, head) = get(&bucket, "large.js");
    assert!(
        body.len() as u64 > MULTIPART_THRESHOLD,
        "{} bytes",
        body.len()
    );
    assert_eq!(gunzip(&body), large);
    assert_eq!(head.content_encoding.as_deref(), Some("gzip"));
    assert!(
        head.etag.as_deref().is_some_and(|e| e.contains('-')),
        "a multipart ETag, got {:?}",
        head.etag
    );

    // A change after hashing is caught on this path too, and nothing is left behind.
    let mut edited = small.clone();
    edited.push(b'\n');
    write(dir.path(), "stale.js", &edited);
    let stale = upload_for(dir.path(), "stale.js", &rules);
    write(dir.path(), "stale.js", &small);
    assert!(
        matches!(put(&s3, &stale), Err(BucketError::File(m)) if m.contains("changed")),
        "the change after hashing is named"
    );
    assert_eq!(rt().block_on(moto().try_get(&bucket, "stale.js")), None);
    assert_eq!(temp_leftovers(), Vec::<String>::new());
}

fn temp_leftovers() -> Vec<String> {
    let prefix = format!("cdn-deploy-gzip-{}-", std::process::id());
    fs::read_dir(std::env::temp_dir())
        .expect("list the temporary folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}
