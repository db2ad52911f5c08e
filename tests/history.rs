//! What visitors are served, proven through a CloudFront edge emulator that caches every
//! response for 24 h and applies the distribution's invalidations: after a deploy and after a
//! rollback every URL form of the site equals the build; `verify` finds exactly the stale URLs
//! of a deploy that skipped its invalidation. And the history those rollbacks come from.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Output;

use cdn_deploy::decide::invalidation::{url_paths, Distribution};
use support::{
    assert_exit, build_files, cli, copy_fixture, distribution, manifest_at, moto, new_bucket,
    output_text, rt, Edge,
};

fn run(args: &[&str]) -> Output {
    cli().args(args).output().expect("run cargo-cdn-deploy")
}

fn deploy(bucket: &str, id: &str, dir: &Path, extra: &[&str]) -> Output {
    cli()
        .args(["--bucket", bucket, "--distribution", id])
        .args(extra)
        .arg(dir)
        .output()
        .expect("run cargo-cdn-deploy")
}

/// Every URL form of a key (a page under its folder forms too), percent-encoded.
fn forms(key: &str) -> Vec<String> {
    let dist = Distribution {
        id: "E".into(),
        origin_path: String::new(),
    };
    url_paths(&dist, key)
}

/// What the edge serves for every URL form of every key: status and body.
fn served(edge: &Edge, keys: impl Iterator<Item = String>) -> BTreeMap<String, (u16, Vec<u8>)> {
    keys.flat_map(|k| forms(&k))
        .map(|path| {
            let r = edge.get(&path);
            (path, (r.status, r.body))
        })
        .collect()
}

/// Asserts that every URL form of `build` serves its bytes through the edge, and every form of
/// `gone` is not served.
#[track_caller]
fn assert_edge_serves(edge: &Edge, build: &BTreeMap<String, Vec<u8>>, gone: &[&str]) {
    for (key, bytes) in build {
        for path in forms(key) {
            let r = edge.get(&path);
            assert_eq!(r.status, 200, "{path}");
            assert!(
                r.body == *bytes,
                "{path} serves stale bytes ({:?})",
                r.headers
            );
        }
    }
    for key in gone {
        for path in forms(key) {
            let r = edge.get(&path);
            assert!(
                (400..500).contains(&r.status),
                "{path} still served: {}",
                r.status
            );
        }
    }
}

#[test]
fn deploys_and_rollbacks_are_what_visitors_get_through_a_warmed_edge() {
    let bucket = new_bucket("edge");
    let id = distribution(&["www.edge.test"], &[(&bucket, "")]);
    let edge = Edge::start(&id);
    let v1 = copy_fixture("site");
    let v2 = copy_fixture("site-v2");
    let (b1, b2) = (build_files(v1.path()), build_files(v2.path()));

    assert_exit(&deploy(&bucket, &id, v1.path(), &[]), 0);
    // Warm the edge with every URL form of the site, and of v2's new page, whose 404 is now
    // cached. (v2's new content-hashed chunks cannot have been requested: nothing named them.)
    let new_page = "blog/second-post/index.html".to_string();
    let warmed = served(&edge, b1.keys().cloned().chain([new_page]));
    assert!(warmed.values().any(|(status, _)| *status >= 400));

    let out = deploy(
        &bucket,
        &id,
        v2.path(),
        &["--wait", "--verify", "--verify-url", &edge.endpoint()],
    );
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("serve exactly what was deployed"),
        "{}",
        output_text(&out)
    );
    // The old entry chunk is retired: still served, same bytes, to pages that use it.
    let mut v2_and_retired = b2.clone();
    for k in ["assets/index-BX7a9_kq.js", "assets/index-BX7a9_kq.js.map"] {
        v2_and_retired.insert(k.to_string(), b1[k].clone());
    }
    assert_edge_serves(&edge, &v2_and_retired, &["img/hero.jpg"]);

    // Back to v1, through the same warmed edge, without the build folder.
    let out = run(&[
        "rollback",
        "--bucket",
        &bucket,
        "--distribution",
        &id,
        "--yes",
    ]);
    assert_exit(&out, 0);
    assert_edge_serves(&edge, &b1, &["blog/second-post/index.html"]);
    let out = run(&[
        "verify",
        "--bucket",
        &bucket,
        "--distribution",
        &id,
        "--verify-url",
        &edge.endpoint(),
    ]);
    assert_exit(&out, 0);

    // Rolling back the rollback returns to v2.
    let out = run(&[
        "rollback",
        "--bucket",
        &bucket,
        "--distribution",
        &id,
        "--yes",
    ]);
    assert_exit(&out, 0);
    assert_edge_serves(&edge, &v2_and_retired, &["img/hero.jpg"]);

    let out = run(&["history", "--bucket", &bucket, "--json"]);
    assert_exit(&out, 0);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let kinds: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| i["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        ["rollback", "rollback", "deploy", "deploy"],
        "newest first"
    );
    assert_eq!(list[0]["live"], true);
}

#[test]
fn verify_names_exactly_the_urls_a_deploy_left_stale() {
    let bucket = new_bucket("stale");
    let id = distribution(&[], &[(&bucket, "")]);
    let edge = Edge::start(&id);
    let v1 = copy_fixture("site");
    let v2 = copy_fixture("site-v2");
    let (b1, b2) = (build_files(v1.path()), build_files(v2.path()));
    assert_exit(&deploy(&bucket, &id, v1.path(), &[]), 0);
    served(&edge, b1.keys().cloned());

    let out = deploy(&bucket, &id, v2.path(), &["--no-invalidate"]);
    assert_exit(&out, 0);
    let out = run(&[
        "verify",
        "--bucket",
        &bucket,
        "--distribution",
        &id,
        "--verify-url",
        &edge.endpoint(),
        "--json",
    ]);
    assert_exit(&out, 6);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut stale: Vec<String> = doc["stale"]
        .as_array()
        .expect("stale")
        .iter()
        .map(|s| {
            s["url"]
                .as_str()
                .expect("url")
                .trim_start_matches(&edge.endpoint())
                .to_string()
        })
        .collect();
    stale.sort();
    // Stale: every form of each file whose bytes changed, and the deleted image, all of which
    // the edge had cached. Not stale: files it had never cached, and retired chunks.
    let mut want: Vec<String> = b2
        .iter()
        .filter(|(k, bytes)| b1.get(*k).is_some_and(|old| old != *bytes))
        .flat_map(|(k, _)| forms(k))
        .chain(forms("img/hero.jpg"))
        .collect();
    want.sort();
    assert_eq!(stale, want);
    assert!(doc["stale"][0]["served"]
        .as_str()
        .is_some_and(|s| s.contains("x-cache: Hit")));

    // Invalidating what was skipped (the next deploy sends the pending paths; here: --force
    // re-sends and invalidates every changed path) makes the same check pass.
    let out = deploy(&bucket, &id, v2.path(), &["--force"]);
    assert_exit(&out, 0);
    let out = run(&[
        "verify",
        "--bucket",
        &bucket,
        "--distribution",
        &id,
        "--verify-url",
        &edge.endpoint(),
        "--all",
    ]);
    assert_exit(&out, 0);
}

#[test]
fn rollback_to_any_kept_deploy_by_id_with_a_dry_run_first() {
    let bucket = new_bucket("rollto");
    let id = distribution(&[], &[(&bucket, "")]);
    let site = copy_fixture("site");
    let mut ids = Vec::new();
    for version in 1..=3 {
        fs::write(
            site.path().join("about/index.html"),
            format!("<h1>About v{version}</h1>\n"),
        )
        .expect("edit");
        let out = deploy(&bucket, &id, site.path(), &["--json"]);
        assert_exit(&out, 0);
        let (root, _) = manifest_at(&bucket, "");
        ids.push(root.deploy.id.clone());
    }
    let out = run(&["history", "--bucket", &bucket]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    for i in &ids {
        assert!(text.contains(i.as_str()), "{i} in {text}");
    }

    let mark = moto().mark();
    let out = run(&[
        "rollback",
        "--bucket",
        &bucket,
        "--distribution",
        &id,
        "--to",
        &ids[0],
        "--dry-run",
    ]);
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("~ about/index.html"),
        "{}",
        output_text(&out)
    );
    assert!(moto()
        .requests_since(mark, &bucket)
        .iter()
        .all(|r| r.method == "GET" || r.method == "HEAD"));
    // No terminal to ask on and no --yes: refused.
    let out = run(&["rollback", "--bucket", &bucket, "--to", &ids[0]]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));

    let out = run(&[
        "rollback",
        "--bucket",
        &bucket,
        "--distribution",
        &id,
        "--to",
        &ids[0],
        "--yes",
    ]);
    assert_exit(&out, 0);
    let (bytes, _) = rt().block_on(moto().get(&bucket, "about/index.html"));
    assert_eq!(bytes, b"<h1>About v1</h1>\n");
    let (root, _) = manifest_at(&bucket, "");
    assert_eq!(root.deploy.kind, "rollback");
    assert_eq!(root.deploy.restored.as_deref(), Some(ids[0].as_str()));
    let out = run(&[
        "rollback",
        "--bucket",
        &bucket,
        "--to",
        "no-such-id",
        "--yes",
    ]);
    assert_exit(&out, 2);
}

#[test]
fn rollback_on_a_versioned_bucket_copies_from_old_versions() {
    let bucket = new_bucket("versioned");
    rt().block_on(async {
        moto()
            .s3()
            .await
            .put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("enable versioning");
    });
    let site = copy_fixture("site");
    let out = cli()
        .args(["--bucket", &bucket])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 0);
    fs::write(site.path().join("index.html"), "<h1>v2</h1>\n").expect("edit");
    let out = cli()
        .args(["--bucket", &bucket])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 0);
    // The bucket keeps old versions: no copy of the old page is made.
    let kept: Vec<String> = rt()
        .block_on(moto().list_keys(&bucket))
        .into_iter()
        .filter(|k| k.contains("/objects/"))
        .collect();
    assert!(kept.is_empty(), "{kept:?}");
    let (_, records) = manifest_at(&bucket, "");
    assert!(
        records["index.html"].version.is_some(),
        "the VersionId is recorded"
    );
    let out = run(&["rollback", "--bucket", &bucket, "--yes"]);
    assert_exit(&out, 0);
    let (bytes, _) = rt().block_on(moto().get(&bucket, "index.html"));
    assert_eq!(
        bytes,
        fs::read(copy_fixture("site").path().join("index.html")).expect("read")
    );
}
