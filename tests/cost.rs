//! A deploy costs what it changes: on a site large enough for the manifest to keep its records
//! in a chunked base, an unchanged rebuild reads only the root, and a one-file change reads one
//! chunk with one ranged GET; a version-1 manifest is read and migrated without re-uploading.

mod support;

use std::fs;

use sha2::{Digest, Sha256};
use support::{assert_exit, deploy, manifest_at, moto, new_bucket, output_text, rt, Request};

/// A site of `n` small pages in 20 folders.
fn big_site(n: usize) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("big-")
        .tempdir()
        .expect("tmp");
    for i in 0..n {
        let folder = dir.path().join(format!("s{:02}", i % 20));
        fs::create_dir_all(&folder).expect("mkdir");
        fs::write(
            folder.join(format!("p{i:04}.html")),
            format!("<p>page {i}</p>\n"),
        )
        .expect("w");
    }
    fs::write(dir.path().join("index.html"), "<p>home</p>\n").expect("w");
    dir
}

fn manifest_requests(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.key().is_some_and(|k| k.starts_with(".cdn-deploy/")))
        .map(|r| {
            let key = r.key().unwrap_or_default();
            let what = if key == ".cdn-deploy/manifest.json" {
                "root"
            } else if key.contains("/base/") {
                "base"
            } else if key.contains("/objects/") {
                "kept copy"
            } else {
                "other"
            };
            format!("{} {what} {}", r.method, r.status)
        })
        .collect()
}

#[test]
fn manifest_traffic_follows_the_change_not_the_site() {
    let bucket = new_bucket("cost");
    let site = big_site(1000);
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let (root, records) = manifest_at(&bucket, "");
    assert!(root.base.is_some(), "1,001 records live in a base");
    assert!(root.chunks.len() > 8, "{} chunks", root.chunks.len());
    assert_eq!(records.len(), 1001);

    // An unchanged rebuild: the root, nothing else.
    let mark = moto().mark();
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let requests = moto().requests_since(mark, &bucket);
    assert_eq!(requests.len(), 1, "{requests:#?}");

    // One page edited: one ranged read of one chunk, the root written twice (intent with the
    // lock, outcome releasing it), the old page kept for rollbacks, the page itself.
    fs::write(
        site.path().join("s07/p0507.html"),
        "<p>page 507, edited</p>\n",
    )
    .expect("w");
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &[]);
    assert_exit(&out, 0);
    let requests = moto().requests_since(mark, &bucket);
    assert_eq!(
        manifest_requests(&requests),
        [
            "GET root 200",
            "GET base 206",
            "PUT root 200",
            "PUT kept copy 200",
            "PUT root 200"
        ],
        "{}",
        output_text(&out)
    );
    let site_writes: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "PUT" && !r.key().unwrap_or_default().starts_with(".cdn-deploy/"))
        .filter_map(|r| r.key())
        .collect();
    assert_eq!(site_writes, ["s07/p0507.html"]);
    let (after, records) = manifest_at(&bucket, "");
    assert_eq!(
        after.base, root.base,
        "the base is not rewritten for one change"
    );
    let delta: Vec<&String> = after.delta.keys().collect();
    assert_eq!(delta.len(), 2, "the page and its kept copy: {delta:?}");
    let kept_chunk = &after.chunks[0];
    assert!(
        kept_chunk.kept.is_some(),
        "the chunk that holds the kept copy knows when it falls due"
    );
    let (bytes, _) = rt().block_on(moto().get(&bucket, "s07/p0507.html"));
    assert_eq!(
        records["s07/p0507.html"].sha256,
        Some(<[u8; 32]>::from(Sha256::digest(&bytes)))
    );
    let mark = moto().mark();
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let requests = moto().requests_since(mark, &bucket);
    assert_eq!(requests.len(), 1, "a no-op again: {requests:#?}");
}

#[test]
fn a_version_1_manifest_is_read_and_migrated_without_uploading_again() {
    let bucket = new_bucket("v1");
    let site = support::copy_fixture("site");
    // What version 1 left: the files, and its manifest listing them.
    let mut files = serde_json::Map::new();
    for entry in walkdir::WalkDir::new(site.path()) {
        let entry = entry.expect("walk");
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(site.path())
            .expect("inside")
            .to_str()
            .expect("utf-8")
            .to_string();
        let bytes = fs::read(entry.path()).expect("read");
        let headers = cdn_deploy::local::headers::default_headers(&rel);
        rt().block_on(moto().put(&bucket, &rel, bytes.clone()));
        files.insert(
            rel,
            serde_json::json!({
                "sha256": hex::encode(Sha256::digest(&bytes)),
                "size": bytes.len(),
                "headers": headers,
            }),
        );
    }
    let v1 = serde_json::json!({"version": 1, "deploy": {"time": "2026-11-01T00:00:00Z", "tool_version": "0.1.0"}, "files": files});
    rt().block_on(moto().put(
        &bucket,
        ".cdn-deploy/manifest.json",
        v1.to_string().into_bytes(),
    ));

    // Nothing changed: nothing is uploaded, nothing written, the manifest stays as it is.
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &["--json"]);
    assert_exit(&out, 0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["uploads"].as_array().map(Vec::len), Some(0), "{doc}");
    assert_eq!(moto().requests_since(mark, &bucket).len(), 1);

    // The next change writes the new format (and honours the old lock object meanwhile).
    fs::write(site.path().join("robots.txt"), "User-agent: *\n").expect("edit");
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &["--json"]);
    assert_exit(&out, 0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["uploads"].as_array().map(Vec::len), Some(1), "{doc}");
    let requests = moto().requests_since(mark, &bucket);
    let keys: Vec<String> = requests.iter().filter_map(Request::key).collect();
    assert!(
        keys.contains(&".cdn-deploy/lock.json".to_string()),
        "the old lock is consulted"
    );
    let (root, records) = manifest_at(&bucket, "");
    assert_eq!(root.version, 2);
    assert_eq!(records.values().filter(|e| e.is_live()).count(), 18);
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &["--json"]);
    assert_exit(&out, 0);
    let requests = moto().requests_since(mark, &bucket);
    assert_eq!(requests.len(), 1, "{requests:#?} {}", output_text(&out));
}

/// A base no kept deploy refers to any more is deleted by the next deploy (not by the one that
/// replaced it, whose readers may still be reading it), and then nothing is left to do.
#[test]
fn a_replaced_base_is_deleted_by_the_next_deploy_and_then_nothing_is_left() {
    let bucket = new_bucket("garbage");
    let site = big_site(300);
    let keep_one = ["--keep-deploys", "1"];
    assert_exit(&deploy(&bucket, site.path(), &keep_one), 0);
    let (first, _) = manifest_at(&bucket, "");
    let old_base = first.base.expect("300 records live in a base").key;

    // Every page changes: a new base replaces the old one.
    for entry in walkdir::WalkDir::new(site.path()) {
        let entry = entry.expect("walk");
        if entry.file_type().is_file() {
            let mut text = fs::read_to_string(entry.path()).expect("read");
            text.push_str("<p>edited</p>\n");
            fs::write(entry.path(), text).expect("write");
        }
    }
    assert_exit(&deploy(&bucket, site.path(), &keep_one), 0);
    let (second, _) = manifest_at(&bucket, "");
    assert_ne!(second.base.as_ref().map(|b| &b.key), Some(&old_base));
    assert_eq!(second.garbage, std::slice::from_ref(&old_base));
    let keys = rt().block_on(moto().list_keys(&bucket));
    assert!(keys.contains(&old_base), "still there for its readers");

    let mark = moto().mark();
    assert_exit(&deploy(&bucket, site.path(), &keep_one), 0);
    let requests = moto().requests_since(mark, &bucket);
    assert_eq!(
        manifest_requests(&requests),
        ["GET root 200", "PUT root 200", "PUT root 200"],
        "{requests:#?}"
    );
    let deletes: Vec<&Request> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(deletes.len(), 1, "{requests:#?}");
    let after = rt().block_on(moto().list_keys(&bucket));
    let gone: Vec<&String> = keys.iter().filter(|k| !after.contains(k)).collect();
    assert_eq!(gone, [&old_base]);
    let (third, _) = manifest_at(&bucket, "");
    assert!(third.garbage.is_empty(), "{:?}", third.garbage);

    let mark = moto().mark();
    assert_exit(&deploy(&bucket, site.path(), &keep_one), 0);
    let requests = moto().requests_since(mark, &bucket);
    assert_eq!(requests.len(), 1, "nothing left to do: {requests:#?}");
}
