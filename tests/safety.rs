//! The live site is never broken by a deploy: the wrong folder is refused, a deploy that would
//! remove most of the site or its root page is refused, an untrustworthy manifest is refused
//! with the bucket untouched, and content-hashed files that leave the build stay for open tabs
//! until their window has passed. The real binary against moto.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::process::Output;

use sha2::{Digest, Sha256};
use support::{
    assert_exit, copy_fixture, deploy, distribution, invalidations, manifest_at, moto, new_bucket,
    output_text, rt,
};

/// Every object of the bucket with the sha256 of its bytes.
fn snapshot(bucket: &str) -> BTreeMap<String, String> {
    rt().block_on(async {
        let mut out = BTreeMap::new();
        for key in moto().list_keys(bucket).await {
            let (bytes, _) = moto().get(bucket, &key).await;
            out.insert(key, hex::encode(Sha256::digest(&bytes)));
        }
        out
    })
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(out)))
}

fn keys_of(doc: &serde_json::Value, field: &str) -> Vec<String> {
    let mut keys: Vec<String> = doc[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} in {doc}"))
        .iter()
        .map(|v| {
            v.get("key")
                .unwrap_or(v)
                .as_str()
                .expect("a key")
                .to_string()
        })
        .collect();
    keys.sort();
    keys
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_project_root_is_refused_with_nothing_written() {
    let bucket = new_bucket("project");
    let project = tempfile::Builder::new()
        .prefix("project-")
        .tempdir()
        .expect("tmp");
    let p = project.path();
    fs::write(
        p.join("package.json"),
        r#"{"devDependencies": {"vite": "8.4.0"}}"#,
    )
    .expect("w");
    fs::create_dir_all(p.join("node_modules/vite")).expect("mkdir");
    fs::write(p.join("node_modules/vite/index.js"), "x").expect("w");
    fs::create_dir_all(p.join("src")).expect("mkdir");
    fs::write(p.join("src/main.js"), "x").expect("w");
    fs::create_dir_all(p.join("dist")).expect("mkdir");
    fs::write(p.join("dist/index.html"), "<p>site</p>").expect("w");
    let mark = moto().mark();
    let out = deploy(&bucket, p, &[]);
    assert_exit(&out, 5);
    let text = stderr(&out);
    assert!(text.contains("package.json, node_modules/"), "{text}");
    assert!(
        text.contains(&format!("\"{}\" (Vite)", p.join("dist").display())),
        "{text}"
    );
    assert!(text.contains("--allow-project-dir"), "{text}");
    assert!(
        moto().requests_since(mark, &bucket).is_empty(),
        "nothing was even read"
    );
    assert!(snapshot(&bucket).is_empty());

    let out = deploy(&bucket, &p.join("dist"), &[]);
    assert_exit(&out, 0);
}

#[test]
fn removing_most_of_the_site_or_its_root_page_is_refused() {
    let bucket = new_bucket("mass");
    let site = copy_fixture("site");
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let before = snapshot(&bucket);

    // A build that kept almost nothing of the site (the wrong folder, a failed build).
    let wrong = tempfile::Builder::new()
        .prefix("wrong-")
        .tempdir()
        .expect("tmp");
    fs::write(wrong.path().join("index.html"), "<p>oops</p>").expect("w");
    fs::write(wrong.path().join("robots.txt"), "oops").expect("w");
    let mark = moto().mark();
    let out = deploy(&bucket, wrong.path(), &[]);
    assert_exit(&out, 5);
    let text = stderr(&out);
    assert!(
        text.contains("refusing to remove 16 of the 18 files"),
        "says how many of how many: {text}"
    );
    assert!(text.contains("--allow-mass-delete"), "{text}");
    let writes = moto()
        .requests_since(mark, &bucket)
        .into_iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .count();
    assert_eq!(writes, 0, "nothing written");
    assert_eq!(snapshot(&bucket), before);

    // The root page alone.
    fs::remove_file(site.path().join("index.html")).expect("rm");
    let out = deploy(&bucket, site.path(), &[]);
    assert_exit(&out, 5);
    assert!(
        stderr(&out).contains("root page index.html"),
        "{}",
        output_text(&out)
    );
    assert_eq!(snapshot(&bucket), before);
    let out = deploy(&bucket, site.path(), &["--allow-mass-delete"]);
    assert_exit(&out, 0);
    assert!(!snapshot(&bucket).contains_key("index.html"));
}

#[test]
fn untrustworthy_manifests_are_refused_and_the_bucket_is_untouched() {
    let bucket = new_bucket("badmanifest");
    let site = copy_fixture("site");
    assert_exit(&deploy(&bucket, site.path(), &[]), 0);
    let (root_manifest, _) = manifest_at(&bucket, "");

    let docs = copy_fixture("site-v2");
    let cases: Vec<(&str, String, Vec<&str>, &str)> = vec![
        (
            "a manifest under docs/ that lists keys of the root site",
            r#"{"version": 2, "prefix": "docs/", "headers": [{"content-type": "text/html"}],
                "delta": {"docs/index.html": {"s": "00000000000000000000000000000000000000000000000000000000000000ab", "z": 1, "h": 0},
                          "index.html": {"z": 1, "h": 0}, "about/index.html": {"z": 1, "h": 0}}}"#
                .to_string(),
            vec!["--prefix", "docs/"],
            "\"index.html\": outside the deploy prefix",
        ),
        (
            "the root deploy's manifest named for a docs/ deploy",
            String::new(),
            vec!["--prefix", "docs/", "--manifest-key", ".cdn-deploy/manifest.json"],
            "it was written for the prefix \"\", not \"docs/\"",
        ),
        (
            "a manifest that lists its own key and a key that escapes",
            r#"{"version": 2, "prefix": "", "headers": [{"content-type": "text/html"}],
                "delta": {".cdn-deploy/manifest.json": {"z": 1, "h": 0}, "../escape.html": {"z": 1, "h": 0}}}"#
                .to_string(),
            vec![],
            "\".cdn-deploy/manifest.json\": reserved for the deploy's own state",
        ),
        (
            "a version-1 manifest with a key above the prefix",
            r#"{"version": 1, "files": {"docs/../index.html": {"sha256": null, "size": 1, "headers": {"content-type": "text/html"}}}}"#
                .to_string(),
            vec!["--prefix", "docs/"],
            "\"docs/../index.html\": has an empty, '.' or '..' segment",
        ),
    ];
    for (what, body, args, needle) in cases {
        let key = if args.contains(&"--manifest-key") {
            ".cdn-deploy/manifest.json".to_string()
        } else if args.contains(&"docs/") {
            "docs/.cdn-deploy/manifest.json".to_string()
        } else {
            ".cdn-deploy/manifest.json".to_string()
        };
        if !body.is_empty() {
            rt().block_on(moto().put(&bucket, &key, body.into_bytes()));
        }
        let before = snapshot(&bucket);
        let out = deploy(&bucket, docs.path(), &args);
        assert_exit(&out, 5);
        let text = stderr(&out);
        assert!(
            text.contains(&format!("s3://{bucket}/{key}")),
            "{what}: {text}"
        );
        assert!(text.contains(needle), "{what}: {text}");
        assert_eq!(snapshot(&bucket), before, "{what}: nothing changed");
        if key == ".cdn-deploy/manifest.json" {
            rt().block_on(moto().put(&bucket, &key, root_manifest.encode()));
        } else {
            rt().block_on(moto().delete(&bucket, &key));
        }
    }
}

#[test]
fn removed_hashed_assets_stay_for_their_window_and_come_back_for_free() {
    let bucket = new_bucket("retire");
    let before = copy_fixture("vite-app/before");
    let after = copy_fixture("vite-app/after");
    let window = ["--keep-old-assets", "2s", "--keep-deploys", "1", "--json"];
    assert_exit(&deploy(&bucket, before.path(), &window), 0);
    let old_chunk = "assets/lazy-a-DfJkjhfk.js";
    let old_entry = "assets/index-DOpiKDA4.js";
    let chunk_bytes = fs::read(before.path().join(old_chunk)).expect("read");

    let out = deploy(&bucket, after.path(), &window);
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(keys_of(&doc, "retired"), [old_entry, old_chunk]);
    assert!(keys_of(&doc, "deletes").is_empty(), "{doc}");
    // An open tab that still runs the old entry chunk can still load its lazy chunk.
    let (served, _) = rt().block_on(moto().get(&bucket, old_chunk));
    assert_eq!(served, chunk_bytes);
    let (_, records) = manifest_at(&bucket, "");
    assert!(
        matches!(
            records[old_chunk].life,
            cdn_deploy::state::entry::Life::Retired { seq: 2, .. }
        ),
        "{:?}",
        records[old_chunk].life
    );

    // Once the window has passed, the next deploy deletes them (and invalidates nothing).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let out = deploy(&bucket, after.path(), &window);
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(keys_of(&doc, "expired"), [old_entry, old_chunk], "{doc}");
    let keys = rt().block_on(moto().list_keys(&bucket));
    assert!(!keys.contains(&old_chunk.to_string()), "{keys:?}");

    // A retired file that comes back into the build costs nothing.
    let out = deploy(
        &bucket,
        before.path(),
        &["--keep-old-assets", "1d", "--json"],
    );
    assert_exit(&out, 0);
    let out = deploy(
        &bucket,
        after.path(),
        &["--keep-old-assets", "1d", "--json"],
    );
    assert_exit(&out, 0);
    let mark = moto().mark();
    let out = deploy(
        &bucket,
        before.path(),
        &["--keep-old-assets", "1d", "--json"],
    );
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(keys_of(&doc, "revived"), [old_entry, old_chunk], "{doc}");
    let puts: Vec<String> = moto()
        .requests_since(mark, &bucket)
        .into_iter()
        .filter(|r| r.method == "PUT")
        .filter_map(|r| r.key())
        .filter(|k| !k.starts_with(".cdn-deploy/"))
        .collect();
    assert_eq!(puts, ["index.html"], "only the page changes: {puts:?}");
}

#[test]
fn a_real_vite_edit_uploads_retires_and_invalidates_exactly_what_it_should() {
    let bucket = new_bucket("vite");
    let id = distribution(&[], &[(&bucket, "")]);
    let before = copy_fixture("vite-app/before");
    let after = copy_fixture("vite-app/after");
    let args = ["--distribution", &id, "--json"];
    let out = deploy(&bucket, before.path(), &args);
    assert_exit(&out, 0);
    // A first deploy invalidates its pages and unhashed files (CloudFront may hold a cached
    // error or an earlier site there), never its new hashed assets.
    assert_eq!(
        invalidations(&id),
        [vec![
            "/".to_string(),
            "/favicon.png".into(),
            "/index.html".into()
        ]]
    );
    let out = deploy(&bucket, after.path(), &args);
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(
        keys_of(&doc, "uploads"),
        [
            "assets/index-k6lGAATp.js",
            "assets/lazy-a-cQHew6_F.js",
            "index.html"
        ]
    );
    assert_eq!(
        keys_of(&doc, "retired"),
        ["assets/index-DOpiKDA4.js", "assets/lazy-a-DfJkjhfk.js"]
    );
    assert!(keys_of(&doc, "deletes").is_empty());
    assert_eq!(doc["unchanged"], 4);
    let all = invalidations(&id);
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[1],
        ["/", "/index.html"],
        "only the page: new chunks were never cached, retired ones serve the same bytes"
    );
    let head = |key: &str| rt().block_on(moto().get(&bucket, key)).1;
    assert_eq!(
        head("assets/lazy-a-cQHew6_F.js").cache_control.as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        head("favicon.png").cache_control.as_deref(),
        Some("public, max-age=0, must-revalidate")
    );
}

#[test]
fn a_page_that_references_a_missing_file_is_a_warning_or_with_strict_a_refusal() {
    let bucket = new_bucket("links");
    let site = copy_fixture("vite-app/before");
    let page = site.path().join("index.html");
    let html = fs::read_to_string(&page).expect("read");
    fs::write(
        &page,
        html.replace("</body>", "<img src=\"/img/missing.png\"></body>"),
    )
    .expect("w");
    let out = deploy(&bucket, site.path(), &[]);
    assert_exit(&out, 0);
    let text = stderr(&out);
    assert!(
        text.contains("warning: index.html:") && text.contains("image \"/img/missing.png\""),
        "{text}"
    );
    assert_eq!(
        text.matches("warning:").count(),
        1,
        "every other reference resolves: {text}"
    );

    let other = new_bucket("links-strict");
    let out = deploy(&other, site.path(), &["--strict"]);
    assert_exit(&out, 5);
    assert!(
        stderr(&out).contains("/img/missing.png"),
        "{}",
        output_text(&out)
    );
    assert!(snapshot(&other).is_empty(), "nothing written");
    // A file the bucket still keeps (a retired chunk) counts as present.
    let fixed = copy_fixture("vite-app/before");
    assert_exit(&deploy(&other, fixed.path(), &["--strict"]), 0);
    let after = copy_fixture("vite-app/after");
    let old = fs::read_to_string(after.path().join("index.html")).expect("read");
    fs::write(
        after.path().join("index.html"),
        old.replace(
            "</body>",
            "<script src=\"/assets/lazy-a-DfJkjhfk.js\"></script></body>",
        ),
    )
    .expect("w");
    assert_exit(&deploy(&other, after.path(), &["--strict"]), 0);
}
