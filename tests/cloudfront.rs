//! End-to-end invalidations: the real binary against moto server's S3 and CloudFront APIs, with
//! the invalidation batches read back through the CloudFront API.

mod support;

use std::fs;
use std::path::Path;
use std::process::Output;

use support::{
    assert_exit, cli, copy_fixture, distribution, invalidations, moto, rt, unique_bucket,
    FaultProxy,
};

fn run(dir: &Path, args: &[&str]) -> Output {
    cli()
        .args(args)
        .arg(dir)
        .output()
        .expect("run cargo-cdn-deploy")
}

fn sorted(paths: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    v.sort();
    v
}

/// The paths the fixture edit (site → site-v2) must invalidate: changed pages with their index
/// aliases, the new page (it may have a cached 404), the deleted image; not the new
/// content-hashed assets, which were never cached, nor the old ones, which are retired (still
/// served, with the same bytes, to pages that reference them).
fn v2_paths(root: &str) -> Vec<String> {
    let paths = [
        "/about/index.html",
        "/about/",
        "/about",
        "/blog/caf%C3%A9-au-lait/index.html",
        "/blog/caf%C3%A9-au-lait/",
        "/blog/caf%C3%A9-au-lait",
        "/blog/first-post/index.html",
        "/blog/first-post/",
        "/blog/first-post",
        "/blog/index.html",
        "/blog/",
        "/blog",
        "/blog/second-post/index.html",
        "/blog/second-post/",
        "/blog/second-post",
        "/index.html",
        "/",
        "/img/hero.jpg",
    ];
    let with_root: Vec<String> = paths.iter().map(|p| format!("{root}{p}")).collect();
    sorted(&with_root.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn fixture_edit_invalidates_exactly_the_changed_paths() {
    let bucket = unique_bucket("cf-edit");
    rt().block_on(moto().create_bucket(&bucket));
    let id = distribution(&[], &[(&bucket, "")]);
    let site = copy_fixture("site");
    assert_exit(
        &run(site.path(), &["--bucket", &bucket, "--distribution", &id]),
        0,
    );
    let first = invalidations(&id);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].contains(&"/".to_string()));
    assert!(
        !first[0].iter().any(|p| p.starts_with("/assets/index-")),
        "new content-hashed assets were never cached: {first:?}"
    );

    // No-op: no invalidation.
    assert_exit(
        &run(site.path(), &["--bucket", &bucket, "--distribution", &id]),
        0,
    );
    assert_eq!(invalidations(&id).len(), 1);

    let v2 = copy_fixture("site-v2");
    let dry = run(
        v2.path(),
        &[
            "--bucket",
            &bucket,
            "--distribution",
            &id,
            "--dry-run",
            "--json",
        ],
    );
    assert_exit(&dry, 0);
    assert_eq!(
        invalidations(&id).len(),
        1,
        "a dry run creates no invalidation"
    );
    let doc: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("JSON");
    let mut dry_paths: Vec<String> = doc["invalidations"][0]["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p.as_str().unwrap_or_default().to_string())
        .collect();
    dry_paths.sort();
    assert_eq!(dry_paths, v2_paths(""));

    let out = run(
        v2.path(),
        &[
            "--bucket",
            &bucket,
            "--distribution",
            &id,
            "--json",
            "--wait",
        ],
    );
    assert_exit(&out, 0);
    let all = invalidations(&id);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], v2_paths(""));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["invalidations"][0]["distribution"], id.as_str());
    assert_eq!(doc["invalidations"][0]["evicted_unchanged"], 0);
    assert!(doc["invalidations"][0]["id"].is_string());
}

#[test]
fn domain_finds_distribution_bucket_and_origin_path() {
    let bucket = unique_bucket("cf-domain");
    rt().block_on(moto().create_bucket(&bucket));
    let host = format!("{bucket}.example.test");
    let id = distribution(&[&host], &[(&bucket, "/live")]);
    let site = copy_fixture("site");
    assert_exit(&run(site.path(), &["--domain", &host]), 0);
    let keys = rt().block_on(moto().list_keys(&bucket));
    assert!(keys.contains(&"live/index.html".to_string()), "{keys:?}");
    assert!(
        keys.contains(&"live/.cdn-deploy/manifest.json".to_string()),
        "{keys:?}"
    );
    assert!(keys.iter().all(|k| k.starts_with("live/")), "{keys:?}");

    let v2 = copy_fixture("site-v2");
    assert_exit(&run(v2.path(), &["--domain", &host]), 0);
    let all = invalidations(&id);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], v2_paths(""), "paths are relative to the OriginPath");

    let out = run(v2.path(), &["--domain", "nowhere.example.test"]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&host),
        "lists the known aliases"
    );
}

#[test]
fn two_distributions_each_get_the_batch_and_a_wrong_origin_is_an_error() {
    let bucket = unique_bucket("cf-two");
    rt().block_on(moto().create_bucket(&bucket));
    let a = distribution(&[], &[(&bucket, "")]);
    let b = distribution(&[], &[("some-other-bucket", ""), (&bucket, "")]);
    let elsewhere = distribution(&[], &[("some-other-bucket", "")]);
    let site = copy_fixture("site");
    assert_exit(
        &run(
            site.path(),
            &[
                "--bucket",
                &bucket,
                "--distribution",
                &a,
                "--distribution",
                &b,
            ],
        ),
        0,
    );
    let v2 = copy_fixture("site-v2");
    let out = run(
        v2.path(),
        &[
            "--bucket",
            &bucket,
            "--distribution",
            &a,
            "--distribution",
            &elsewhere,
        ],
    );
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&elsewhere) && stderr.contains("some-other-bucket"),
        "{stderr}"
    );
    assert_eq!(
        invalidations(&a).len(),
        1,
        "refused before anything was written"
    );
    assert_exit(
        &run(
            v2.path(),
            &[
                "--bucket",
                &bucket,
                "--distribution",
                &a,
                "--distribution",
                &b,
            ],
        ),
        0,
    );
    assert_eq!(invalidations(&a)[1], v2_paths(""));
    assert_eq!(invalidations(&b)[1], v2_paths(""));
}

#[test]
fn failed_invalidation_is_retried_by_the_next_deploy() {
    let bucket = unique_bucket("cf-fail");
    rt().block_on(moto().create_bucket(&bucket));
    let id = distribution(&[], &[(&bucket, "")]);
    let site = copy_fixture("site");
    assert_exit(
        &run(site.path(), &["--bucket", &bucket, "--distribution", &id]),
        0,
    );

    fs::write(
        site.path().join("about/index.html"),
        "<h1>About us, again</h1>\n",
    )
    .expect("edit");
    let proxy = FaultProxy::start_denying(&[], &["/invalidation"]);
    let out = cli()
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .args(["--bucket", &bucket, "--distribution", &id])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 1);
    drop(proxy);
    let (bytes, _) = rt().block_on(moto().get(&bucket, "about/index.html"));
    assert_eq!(
        bytes, b"<h1>About us, again</h1>\n",
        "the upload itself landed"
    );
    let (root, _) = support::manifest_at(&bucket, "");
    assert!(root.pending_invalidation.contains("about/index.html"));
    assert_eq!(invalidations(&id).len(), 1);

    // Nothing left to upload, but the pending paths are invalidated.
    assert_exit(
        &run(site.path(), &["--bucket", &bucket, "--distribution", &id]),
        0,
    );
    let all = invalidations(&id);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], sorted(&["/about", "/about/", "/about/index.html"]));
    assert_exit(
        &run(site.path(), &["--bucket", &bucket, "--distribution", &id]),
        0,
    );
    assert_eq!(invalidations(&id).len(), 2, "and then nothing is pending");
}
