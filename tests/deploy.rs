//! End-to-end deploys: the real binary against moto server's S3 API on loopback, checked through
//! the real SDK and moto's request log.

mod support;

use std::fs;

use std::collections::BTreeMap;

use cdn_deploy::state::entry::Entry;
use cdn_deploy::state::format::RootDoc;
use sha2::{Digest, Sha256};
use support::{
    assert_exit, build_files, cli, copy_fixture, deploy, hash_of, manifest_at, moto, new_bucket,
    output_text, rt, FaultProxy, Request,
};

const MANIFEST: &str = ".cdn-deploy/manifest.json";

fn keys(bucket: &str) -> Vec<String> {
    rt().block_on(moto().list_keys(bucket))
}

fn manifest(bucket: &str) -> (RootDoc, BTreeMap<String, Entry>) {
    manifest_at(bucket, "")
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes to site objects (the manifest and lock excluded), as `METHOD key`.
fn site_writes(requests: &[Request]) -> Vec<String> {
    let mut writes: Vec<String> = requests
        .iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .filter(|r| !r.key().is_some_and(|k| k.contains(".cdn-deploy/")))
        .map(|r| format!("{} {}", r.method, r.key().unwrap_or_default()))
        .collect();
    writes.sort();
    writes
}

fn is_write(r: &Request) -> bool {
    !matches!(r.method.as_str(), "GET" | "HEAD")
}

#[test]
fn first_deploy_lands_every_file_byte_for_byte_with_headers() {
    let bucket = new_bucket("first");
    let site = copy_fixture("site");
    let out = deploy(&bucket, site.path(), &[]);
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Deployed: "),
        "{}",
        output_text(&out)
    );

    let files = build_files(site.path());
    let mut want: Vec<String> = files
        .keys()
        .filter(|rel| !rel.starts_with('.') || rel.starts_with(".well-known/"))
        .cloned()
        .collect();
    want.push(MANIFEST.into());
    want.sort();
    assert_eq!(
        keys(&bucket),
        want,
        "exactly the site and the manifest, no lock left"
    );
    assert!(want.iter().any(|k| k == "blog/café-au-lait/index.html"));
    assert!(want.iter().any(|k| k == "docs/getting started.html"));
    assert!(want.iter().any(|k| k == ".well-known/security.txt"));

    let (root, files_of) = manifest(&bucket);
    assert_eq!(root.version, 2);
    assert!(root.in_progress.is_none() && root.lock.is_none());
    assert_eq!(root.seq, 1);
    assert_eq!(root.history.len(), 1, "the deploy is kept for rollbacks");
    for (rel, bytes) in &files {
        let (got, head) = rt().block_on(moto().get(&bucket, rel));
        assert_eq!(sha(&got), sha(bytes), "{rel} is byte-identical");
        let entry = &files_of[rel];
        assert_eq!(hash_of(entry), Some(sha(bytes)), "{rel} in manifest");
        assert_eq!(
            head.content_type.as_deref(),
            Some(entry.headers.content_type.as_str())
        );
        assert_eq!(head.cache_control, entry.headers.cache_control, "{rel}");
    }
    let head = |key: &str| rt().block_on(moto().get(&bucket, key)).1;
    let html = head("index.html");
    assert_eq!(
        html.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        html.cache_control.as_deref(),
        Some("public, max-age=0, must-revalidate")
    );
    let js = head("assets/index-BX7a9_kq.js");
    assert_eq!(
        js.content_type.as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        js.cache_control.as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        head("img/logo.png").content_type.as_deref(),
        Some("image/png")
    );
    assert_eq!(
        head("img/hero.jpg").content_type.as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(
        head("docs/getting started.html").cache_control.as_deref(),
        Some("public, max-age=0, must-revalidate")
    );
}

#[test]
fn unchanged_rebuild_makes_exactly_one_request() {
    let bucket = new_bucket("noop");
    let site = copy_fixture("site");
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);

    // A rebuild rewrites every file with the same bytes and new mtimes.
    std::thread::sleep(std::time::Duration::from_millis(20));
    for (rel, bytes) in build_files(site.path()) {
        fs::write(site.path().join(&rel), bytes).expect("rewrite");
    }
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &[]);
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Nothing to deploy: 18 files unchanged"),
        "{}",
        output_text(&out)
    );
    let requests = moto().requests_since(mark, &bucket);
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].key().as_deref(), Some(MANIFEST));
}

#[test]
fn an_edit_writes_and_deletes_exactly_what_changed() {
    let bucket = new_bucket("edit");
    let site = copy_fixture("site");
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);

    fs::write(
        site.path().join("robots.txt"),
        "User-agent: *\nDisallow: /private/\n",
    )
    .expect("edit");
    fs::write(
        site.path().join("img/new.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n",
    )
    .expect("add");
    fs::remove_file(site.path().join("favicon.ico")).expect("remove");
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &["--json"]);
    assert_exit(&out, 0);
    let requests = moto().requests_since(mark, &bucket);
    assert_eq!(
        site_writes(&requests),
        ["POST ", "PUT img/new.svg", "PUT robots.txt"],
        "two uploads and one batched delete: {requests:#?}"
    );
    let keys = keys(&bucket);
    assert!(!keys.contains(&"favicon.ico".to_string()));
    assert!(keys.contains(&"img/new.svg".to_string()));
    let (robots, _) = rt().block_on(moto().get(&bucket, "robots.txt"));
    assert_eq!(robots, b"User-agent: *\nDisallow: /private/\n");

    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["dry_run"], false);
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["unchanged"], 16);
    let uploads: Vec<(String, String)> = doc["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .map(|u| {
            (
                u["key"].as_str().unwrap_or("").into(),
                u["reason"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        uploads,
        [
            ("img/new.svg".to_string(), "new".to_string()),
            ("robots.txt".into(), "content".into())
        ]
    );
    assert_eq!(doc["deletes"][0]["key"], "favicon.ico");
    let (_, m) = manifest(&bucket);
    assert!(!m.contains_key("favicon.ico"));
    assert!(m.contains_key("img/new.svg"));
}

#[test]
fn next_build_uploads_assets_before_html_and_deletes_last() {
    let bucket = new_bucket("order");
    let site = copy_fixture("site");
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let v2 = copy_fixture("site-v2");
    let mark = moto().mark();
    let out = deploy(&bucket, v2.path(), &["--concurrency", "4"]);
    assert_exit(&out, 0);
    let writes: Vec<Request> = moto()
        .requests_since(mark, &bucket)
        .into_iter()
        .filter(is_write)
        .filter(|r| !r.key().is_some_and(|k| k.contains(".cdn-deploy/")))
        .collect();
    let position = |pred: &dyn Fn(&Request) -> bool| writes.iter().position(pred);
    let last_asset = writes
        .iter()
        .rposition(|r| r.method == "PUT" && !r.key().unwrap_or_default().ends_with(".html"))
        .expect("assets uploaded");
    let first_html = position(&|r| r.key().unwrap_or_default().ends_with(".html")).expect("html");
    let delete = position(&|r| r.method == "POST").expect("a delete batch");
    assert!(last_asset < first_html, "{writes:#?}");
    assert_eq!(delete, writes.len() - 1, "deletes come last: {writes:#?}");
    assert_eq!(writes.len(), 9, "8 uploads and 1 delete batch: {writes:#?}");
    // The old entry chunk is retired, not deleted: open tabs still load it.
    let mut want: Vec<String> = build_files(v2.path()).into_keys().collect();
    want.extend([
        "assets/index-BX7a9_kq.js".to_string(),
        "assets/index-BX7a9_kq.js.map".into(),
    ]);
    want.sort();
    assert_eq!(
        keys(&bucket)
            .into_iter()
            .filter(|k| !k.starts_with(".cdn-deploy/"))
            .collect::<Vec<_>>(),
        want
    );
}

#[test]
fn header_only_change_is_a_server_side_copy() {
    let bucket = new_bucket("headers");
    let site = copy_fixture("site");
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    // As if the previous deploy had used another Cache-Control rule for this file.
    let (mut root, _) = manifest(&bucket);
    let mut other =
        root.headers[root.delta["img/logo.png"].as_ref().expect("logo").headers].clone();
    other.cache_control = Some("public, max-age=60".into());
    root.headers.push(other);
    let slot = root.headers.len() - 1;
    root.delta
        .get_mut("img/logo.png")
        .and_then(Option::as_mut)
        .expect("logo")
        .headers = slot;
    rt().block_on(moto().put(&bucket, MANIFEST, root.encode()));

    let dry = deploy(&bucket, site.path(), &["--dry-run"]);
    assert_exit(&dry, 0);
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("~ img/logo.png"),
        "{}",
        output_text(&dry)
    );
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("headers (server-side copy, nothing sent)"),
        "{}",
        output_text(&dry)
    );
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &["--json"]);
    assert_exit(&out, 0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["uploads"][0]["method"], "copy", "{doc}");
    assert_eq!(doc["bytes_uploaded"], 0, "no byte of the file was sent");
    let requests = moto().requests_since(mark, &bucket);
    assert_eq!(site_writes(&requests), ["PUT img/logo.png"]);
    let (_, m) = manifest(&bucket);
    assert_eq!(
        m["img/logo.png"].headers.cache_control.as_deref(),
        Some("public, max-age=0, must-revalidate")
    );
    let (bytes, head) = rt().block_on(moto().get(&bucket, "img/logo.png"));
    assert_eq!(
        head.cache_control.as_deref(),
        Some("public, max-age=0, must-revalidate")
    );
    assert_eq!(head.content_type.as_deref(), Some("image/png"));
    assert_eq!(
        bytes,
        fs::read(site.path().join("img/logo.png")).expect("read")
    );
}

#[test]
fn dry_run_sends_no_write_request() {
    let bucket = new_bucket("dry");
    let site = copy_fixture("site");
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &["--dry-run"]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("+ blog/café-au-lait/index.html"),
        "{stdout}"
    );
    assert!(stdout.contains("Would upload 18 files"), "{stdout}");
    let json = deploy(&bucket, site.path(), &["--dry-run", "--json"]);
    assert_exit(&json, 0);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["uploads"].as_array().map(Vec::len), Some(18));

    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    fs::remove_file(site.path().join("robots.txt")).expect("remove");
    fs::write(site.path().join("index.html"), "<h1>changed</h1>\n").expect("edit");
    let out = deploy(&bucket, site.path(), &["--dry-run", "--force"]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("- robots.txt"), "{stdout}");
    assert!(stdout.contains("forced"), "{stdout}");
    let requests = moto().requests_since(mark, &bucket);
    let dry_writes: Vec<_> = requests.iter().filter(|r| is_write(r)).collect();
    // Only the one real deploy in the middle wrote anything: 18 files, and the manifest twice
    // (the intent with the lock, the outcome releasing it).
    assert_eq!(dry_writes.len(), 18 + 2, "{dry_writes:#?}");
}

#[test]
fn held_lock_is_a_conflict_and_nothing_is_written() {
    let bucket = new_bucket("lock");
    let site = copy_fixture("site");
    // A root held by a deploy that is still running.
    let held = r#"{"version": 2, "prefix": "", "lock": {"holder": "github-actions run 7", "id": "other", "started": "2026-01-01T00:00:00Z", "expires": "2999-01-01T00:00:00Z"}}"#;
    rt().block_on(moto().put(&bucket, MANIFEST, held));
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &[]);
    assert_exit(&out, 4);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("github-actions run 7"),
        "names the holder: {stderr}"
    );
    assert!(
        stderr.contains("cargo cdn-deploy unlock"),
        "names the way out: {stderr}"
    );
    let requests = moto().requests_since(mark, &bucket);
    assert!(requests.iter().all(|r| !is_write(r)), "{requests:#?}");
    assert_eq!(keys(&bucket), [MANIFEST]);

    // An expired lock is taken over.
    let stale = held.replace("2999-01-01", "2001-01-01");
    rt().block_on(moto().put(&bucket, MANIFEST, stale));
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let (root, files) = manifest(&bucket);
    assert!(root.lock.is_none(), "released after the deploy");
    assert_eq!(files.len(), 18);
}

#[test]
fn delete_limit_refuses_and_deletes_nothing() {
    let bucket = new_bucket("maxdel");
    let site = copy_fixture("site");
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let before = keys(&bucket);
    for rel in ["robots.txt", "sitemap.xml", "favicon.ico"] {
        fs::remove_file(site.path().join(rel)).expect("remove");
    }
    fs::write(site.path().join("index.html"), "<h1>changed</h1>\n").expect("edit");
    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &["--max-delete", "2"]);
    assert_exit(&out, 5);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--max-delete 3"),
        "{}",
        output_text(&out)
    );
    assert!(moto()
        .requests_since(mark, &bucket)
        .iter()
        .all(|r| !is_write(r)));
    assert_eq!(keys(&bucket), before);

    let site_keys = || -> Vec<String> {
        keys(&bucket)
            .into_iter()
            .filter(|k| !k.starts_with(".cdn-deploy/manifest/"))
            .collect()
    };
    let out = deploy(&bucket, site.path(), &["--no-delete"]);
    assert_exit(&out, 0);
    assert_eq!(site_keys(), before, "--no-delete keeps removed files");
    assert_exit(&deploy(&bucket, site.path(), &["--max-delete", "3"]), 0);
    assert_eq!(site_keys().len(), before.len() - 3);
}

#[test]
fn partial_failure_records_what_landed_and_a_rerun_finishes() {
    let bucket = new_bucket("partial");
    let site = copy_fixture("site");
    let proxy = FaultProxy::start(&["vendor.3f2a9c1b.js"]);
    let out = cli()
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .args(["--bucket", &bucket, "--json"])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 3);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["failures"][0]["key"], "assets/vendor.3f2a9c1b.js");
    let statuses: Vec<(&str, &str)> = doc["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .map(|u| {
            (
                u["key"].as_str().unwrap_or(""),
                u["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        statuses.iter().all(|(k, s)| match *s {
            "failed" => *k == "assets/vendor.3f2a9c1b.js",
            "skipped" => k.ends_with(".html"),
            "done" => !k.ends_with(".html"),
            _ => false,
        }),
        "{statuses:#?}"
    );

    let keys_now = keys(&bucket);
    assert!(
        keys_now.iter().all(|k| !k.ends_with(".html")),
        "no page before its assets: {keys_now:?}"
    );
    let (root, m) = manifest(&bucket);
    assert!(root.lock.is_none());
    assert_eq!(
        m["assets/vendor.3f2a9c1b.js"].sha256, None,
        "failed: known, not trusted"
    );
    assert!(m["img/logo.png"].sha256.is_some());
    assert!(
        !m.contains_key("index.html"),
        "never attempted, never recorded"
    );
    for (key, entry) in &m {
        if let Some(hash) = hash_of(entry) {
            let (bytes, _) = rt().block_on(moto().get(&bucket, key));
            assert_eq!(
                sha(&bytes),
                hash,
                "the manifest never claims a hash the bucket lacks: {key}"
            );
        }
    }
    drop(proxy);

    let mark = moto().mark();
    let out = deploy(&bucket, site.path(), &[]);
    assert_exit(&out, 0);
    let writes = site_writes(&moto().requests_since(mark, &bucket));
    assert!(
        writes.contains(&"PUT assets/vendor.3f2a9c1b.js".to_string()),
        "{writes:?}"
    );
    assert!(
        !writes.contains(&"PUT img/logo.png".to_string()),
        "what landed is not resent: {writes:?}"
    );
    assert_eq!(writes.iter().filter(|w| w.ends_with(".html")).count(), 7);
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    assert!(manifest(&bucket).1.values().all(|e| e.sha256.is_some()));
}

/// A deploy too large for the root's delta records its planned state as a base before it
/// writes; when a write then fails, the record it leaves is that base corrected, read back
/// from the bucket, and it still never claims a hash the bucket lacks.
#[test]
fn a_large_deploy_with_a_failed_write_records_what_landed() {
    let bucket = new_bucket("partial-large");
    let site = tempfile::tempdir().expect("tmp");
    for i in 0..300 {
        let dir = site.path().join(format!("docs/{:02}", i % 30));
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join(format!("page-{i}.txt")), format!("text {i}\n")).expect("write");
    }
    fs::write(site.path().join("index.html"), "<h1>Home</h1>\n").expect("write");
    let proxy = FaultProxy::start(&["page-123.txt"]);
    let out = cli()
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .args(["--bucket", &bucket])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 3);
    drop(proxy);

    let (root, m) = manifest(&bucket);
    assert!(
        root.lock.is_none() && root.in_progress.is_none(),
        "{root:?}"
    );
    assert!(root.base.is_some(), "a base, not a delta of 301 records");
    let failed = "docs/03/page-123.txt";
    assert_eq!(m[failed].sha256, None, "failed: known, not trusted");
    assert!(
        !m.contains_key("index.html"),
        "never attempted, never recorded"
    );
    assert!(m["docs/04/page-124.txt"].sha256.is_some());
    for (key, entry) in &m {
        if let Some(hash) = hash_of(entry) {
            let (bytes, _) = rt().block_on(moto().get(&bucket, key));
            assert_eq!(sha(&bytes), hash, "a hash the bucket lacks: {key}");
        }
    }

    let mark = moto().mark();
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let writes = site_writes(&moto().requests_since(mark, &bucket));
    assert_eq!(
        writes,
        [format!("PUT {failed}"), "PUT index.html".to_string()],
        "the rerun sends only what did not land"
    );
    assert!(manifest(&bucket).1.values().all(|e| e.sha256.is_some()));
}

#[test]
fn corrupt_or_newer_manifest_is_refused_untouched() {
    let bucket = new_bucket("corrupt");
    let site = copy_fixture("site");
    for (body, needle) in [
        (&b"not json at all"[..], "not a cdn-deploy manifest"),
        (&br#"{"version": 9, "files": {}}"#[..], "newer cdn-deploy"),
    ] {
        rt().block_on(moto().put(&bucket, MANIFEST, body));
        let mark = moto().mark();
        let out = deploy(&bucket, site.path(), &[]);
        assert_exit(&out, 5);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("s3://{bucket}/{MANIFEST}")),
            "{stderr}"
        );
        assert!(stderr.contains(needle), "{stderr}");
        assert!(moto()
            .requests_since(mark, &bucket)
            .iter()
            .all(|r| !is_write(r)));
        assert_eq!(rt().block_on(moto().get(&bucket, MANIFEST)).0, body);
    }
}

#[test]
fn foreign_objects_are_never_deleted() {
    let bucket = new_bucket("foreign");
    rt().block_on(moto().put(&bucket, "uploads/user-avatar.png", "not ours"));
    let site = copy_fixture("site");
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    fs::remove_file(site.path().join("robots.txt")).expect("remove");
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let keys = keys(&bucket);
    assert!(keys.contains(&"uploads/user-avatar.png".to_string()));
    assert!(!keys.contains(&"robots.txt".to_string()));
}

#[test]
fn prefix_and_large_file_multipart() {
    let bucket = new_bucket("prefix");
    let site = copy_fixture("site");
    // Over the multipart threshold, and not a whole number of parts.
    let big: Vec<u8> = (0..(20 * 1024 * 1024 + 12345u32))
        .map(|i| (i % 251) as u8)
        .collect();
    fs::write(site.path().join("video.bin"), &big).expect("write");
    let mark = moto().mark();
    let out = cli()
        .args(["--bucket", &format!("s3://{bucket}/docs/v1/")])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 0);
    let (got, _) = rt().block_on(moto().get(&bucket, "docs/v1/video.bin"));
    assert_eq!(sha(&got), sha(&big));
    let parts = moto()
        .requests_since(mark, &bucket)
        .iter()
        .filter(|r| r.query().contains("partNumber="))
        .count();
    assert_eq!(parts, 3, "20 MiB in 8 MiB parts");
    let (root, m) = manifest_at(&bucket, "docs/v1/");
    assert_eq!(root.prefix, "docs/v1/");
    assert!(m.keys().all(|k| k.starts_with("docs/v1/")));
    assert!(keys(&bucket).iter().all(|k| k.starts_with("docs/v1/")));
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code() {
    let bucket = new_bucket("badinput");
    let empty = tempfile::tempdir().expect("tmp");
    let out = deploy(&bucket, empty.path(), &[]);
    assert_exit(&out, 5);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: "),
        "{}",
        output_text(&out)
    );

    let out = deploy(&bucket, &empty.path().join("dist"), &[]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        output_text(&out)
    );

    let site = copy_fixture("site");
    fs::write(
        site.path().join("server.key"),
        "-----BEGIN PRIVATE KEY-----\n",
    )
    .expect("write");
    let out = deploy(&bucket, site.path(), &[]);
    assert_exit(&out, 5);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server.key"),
        "{}",
        output_text(&out)
    );
    assert!(keys(&bucket).is_empty(), "nothing written");

    let out = deploy(
        "no-such-bucket-anywhere",
        site.path(),
        &["--exclude", "*.key"],
    );
    fs::remove_file(site.path().join("server.key")).expect("remove");
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        output_text(&out)
    );

    let out = cli()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["--bucket", &bucket])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no AWS credentials"),
        "{}",
        output_text(&out)
    );

    let out = cli()
        .args(["--bucket", "Bad_Name"])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 2);
    let out = cli().args(["cdn-deploy", "--help"]).output().expect("run");
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
}

#[cfg(unix)]
#[test]
fn ctrl_c_finishes_the_uploads_in_flight_and_records_them() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let bucket = new_bucket("sigint");
    let site = tempfile::tempdir().expect("tmp");
    for i in 0..300 {
        fs::write(
            site.path().join(format!("f{i:03}.bin")),
            vec![i as u8; 64 * 1024],
        )
        .expect("write");
    }
    fs::write(site.path().join("index.html"), "<p>hi</p>\n").expect("write");
    let mut child = cli()
        .args(["--bucket", &bucket, "--concurrency", "1"])
        .arg(site.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    // Interrupt once the first files have landed.
    let mut seen = 0;
    for line in lines.by_ref() {
        if line.expect("line").starts_with("uploaded ") {
            seen += 1;
            if seen == 3 {
                break;
            }
        }
    }
    // Twice in a row, as a terminal and the npm launcher both deliver one Ctrl-C: the echo
    // must not turn the graceful stop into an immediate exit.
    for _ in 0..2 {
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{rest:#?}");

    let (root, m) = manifest(&bucket);
    assert!(root.in_progress.is_none(), "the final manifest was written");
    assert!(root.lock.is_none(), "the lock was released");
    let landed: Vec<_> = m.iter().filter(|(_, e)| e.sha256.is_some()).collect();
    assert!(
        landed.len() >= 3 && landed.len() < 301,
        "{} landed",
        landed.len()
    );
    assert!(!m.contains_key("index.html"), "pages wait for every asset");
    for (key, entry) in &landed {
        let (bytes, _) = rt().block_on(moto().get(&bucket, key));
        assert_eq!(Some(sha(&bytes)), hash_of(entry), "{key}");
    }

    let mark = moto().mark();
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let puts = site_writes(&moto().requests_since(mark, &bucket)).len();
    assert_eq!(
        puts,
        301 - landed.len(),
        "the rerun sends only what is missing"
    );
}
