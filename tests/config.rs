//! Configuration where users keep it: Cargo.toml metadata, package.json, cdn-deploy.toml and
//! `CDN_DEPLOY_*`, deployed with no flags against moto server, and header rules end to end.

mod support;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Output;

use support::{assert_exit, cli, copy_fixture, copy_tree, moto, new_bucket, rt, unique_bucket};

/// A copy of a project template with its placeholders filled, the fixture site in `dist/`, and
/// a `.git` folder so configuration lookups stop at the project.
fn project(template: &str, buckets: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = copy_fixture(template);
    for name in ["Cargo.toml", "package.json", "cdn-deploy.toml"] {
        let path = dir.path().join(name);
        if let Ok(mut text) = fs::read_to_string(&path) {
            for (placeholder, bucket) in buckets {
                text = text.replace(placeholder, bucket);
            }
            fs::write(&path, text).expect("write template");
        }
    }
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/site"),
        &dir.path().join("dist"),
    );
    fs::create_dir_all(dir.path().join(".git")).expect(".git");
    dir
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    cli().current_dir(dir).args(args).output().expect("run")
}

fn keys(bucket: &str) -> Vec<String> {
    rt().block_on(moto().list_keys(bucket))
}

#[test]
fn cargo_project_deploys_with_no_flags_from_any_subfolder() {
    let bucket = new_bucket("cargo");
    let staging = new_bucket("cargo-staging");
    let project = project(
        "cargo-project",
        &[("@BUCKET@", &bucket), ("@STAGING_BUCKET@", &staging)],
    );
    // From a subfolder: cargo finds the package, and `dir` is relative to its Cargo.toml.
    let out = run_in(&project.path().join("src"), &[]);
    assert_exit(&out, 0);
    let keys = keys(&bucket);
    assert!(keys.contains(&"index.html".to_string()), "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.ends_with(".map")),
        "exclude from the metadata applies"
    );
    let (_, head) = rt().block_on(moto().get(&bucket, "img/logo.png"));
    assert_eq!(
        head.cache_control.as_deref(),
        Some("public, max-age=0, must-revalidate")
    );
    let (_, head) = rt().block_on(moto().get(&bucket, "assets/vendor.3f2a9c1b.js"));
    assert_eq!(
        head.cache_control.as_deref(),
        Some("public, max-age=31536000, immutable")
    );

    assert_exit(&run_in(project.path(), &["--target", "staging"]), 0);
    assert!(self::keys(&staging).contains(&"index.html".to_string()));

    let out = run_in(project.path(), &["--target", "prod"]);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no target named \"prod\": the known targets are staging"),
        "{stderr}"
    );
}

#[test]
fn web_project_deploys_from_package_json_with_header_rules_and_gzip() {
    let bucket = new_bucket("web");
    let project = project("web-project", &[("@BUCKET@", &bucket)]);
    assert_exit(&run_in(project.path(), &[]), 0);
    let (_, head) = rt().block_on(moto().get(&bucket, "about/index.html"));
    assert_eq!(
        head.cache_control.as_deref(),
        Some("no-cache"),
        "first rule"
    );
    let (body, head) = rt().block_on(moto().get(&bucket, "assets/index-D4nq1Xk3.css"));
    assert_eq!(head.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(
        head.content_type.as_deref(),
        Some("text/css; charset=utf-8")
    );
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut plain)
        .expect("gunzip");
    let source = fs::read(project.path().join("dist/assets/index-D4nq1Xk3.css")).expect("read");
    assert_eq!(
        plain, source,
        "the gzip body decompresses to the source bytes"
    );

    // A rebuild with identical sources uploads nothing, gzip or not.
    let mark = moto().mark();
    let out = run_in(project.path(), &[]);
    assert_exit(&out, 0);
    assert_eq!(moto().requests_since(mark, &bucket).len(), 1);

    // Editing a rule re-uploads exactly the files whose headers change, with the new headers.
    let pj = project.path().join("package.json");
    let text = fs::read_to_string(&pj)
        .expect("read")
        .replace("\"no-cache\"", "\"public, max-age=60\"");
    fs::write(&pj, text).expect("write");
    let mark = moto().mark();
    let out = run_in(project.path(), &["--json"]);
    assert_exit(&out, 0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let uploads = doc["uploads"].as_array().expect("uploads");
    assert_eq!(uploads.len(), 7, "the 7 HTML pages: {uploads:#?}");
    assert!(
        uploads.iter().all(|u| u["reason"] == "headers"),
        "{uploads:#?}"
    );
    let puts = moto()
        .requests_since(mark, &bucket)
        .into_iter()
        .filter(|r| r.method == "PUT" && !r.key().unwrap_or_default().contains(".cdn-deploy/"))
        .count();
    assert_eq!(puts, 7);
    let (_, head) = rt().block_on(moto().get(&bucket, "blog/index.html"));
    assert_eq!(head.cache_control.as_deref(), Some("public, max-age=60"));
}

#[test]
fn precedence_flags_env_toml_package_json_cargo() {
    let a = unique_bucket("cargo-layer");
    let project = project(
        "cargo-project",
        &[("@BUCKET@", &a), ("@STAGING_BUCKET@", "staging-x")],
    );
    fs::write(
        project.path().join("package.json"),
        r#"{"name": "x", "cdn-deploy": {"bucket": "from-package-json", "max-delete": 7}}"#,
    )
    .expect("write");
    fs::write(
        project.path().join("cdn-deploy.toml"),
        "bucket = \"from-toml\"\n",
    )
    .expect("write");
    let config = |extra_env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = cli();
        cmd.current_dir(project.path())
            .arg("--print-config")
            .args(args);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run");
        assert_exit(&out, 0);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let line = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_default()
            .to_string()
    };
    let text = config(&[], &[]);
    assert!(
        line(&text, "bucket").starts_with("bucket = \"from-toml\"  # "),
        "{text}"
    );
    assert!(line(&text, "bucket").ends_with("cdn-deploy.toml"), "{text}");
    assert!(
        line(&text, "max-delete").ends_with("package.json \"cdn-deploy\""),
        "{text}"
    );
    assert!(
        line(&text, "dir").contains("[package.metadata.cdn-deploy]"),
        "{text}"
    );
    assert!(text.contains("[[headers]]"), "{text}");
    let text = config(&[("CDN_DEPLOY_BUCKET", "from-env")], &[]);
    assert_eq!(
        line(&text, "bucket"),
        "bucket = \"from-env\"  # CDN_DEPLOY_BUCKET"
    );
    let text = config(
        &[("CDN_DEPLOY_BUCKET", "from-env")],
        &["--bucket", "from-flag"],
    );
    assert_eq!(
        line(&text, "bucket"),
        "bucket = \"from-flag\"  # command line"
    );
    let text = config(&[], &["--target", "staging"]);
    assert!(
        line(&text, "bucket").contains("staging-x"),
        "a Cargo target under the toml base: {text}"
    );
}

#[test]
fn configuration_mistakes_name_the_file_the_key_and_the_fix() {
    let dir = tempfile::tempdir().expect("tmp");
    fs::create_dir_all(dir.path().join(".git")).expect(".git");
    fs::create_dir_all(dir.path().join("dist")).expect("dist");
    let toml = dir.path().join("cdn-deploy.toml");
    let cases = [
        ("buckt = \"x\"\n", "unknown key `buckt`; did you mean `bucket`?"),
        ("dir = \"dist\"\nbucket = \"my-site\"\nmax-delete = \"ten\"\n", "`max-delete` must be a whole number, not the string \"ten\""),
        ("dir = \"dist\"\nbucket = \"my-site\"\nconcurrency = 0\n", "`concurrency` must be between 1 and 256"),
        ("dir = \"dist\"\nbucket = \"my-site\"\nwait = true\ninvalidate = false\n", "`wait` ("),
        ("dir = \"dist\"\nbucket = \"my-site\"\n[[headers]]\nglob = \"*.html\"\ncache-contrl = \"no-cache\"\n", "cache-contrl"),
        ("bucket = \n", "is not valid TOML"),
    ];
    for (text, needle) in cases {
        fs::write(&toml, text).expect("write");
        let out = cli()
            .current_dir(dir.path())
            .arg("--print-config")
            .output()
            .expect("run");
        assert_exit(&out, 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{text:?}: {stderr}");
        if !needle.contains("TOML") && !needle.contains("cache-contrl") {
            assert!(
                stderr.contains("cdn-deploy.toml"),
                "names the file: {stderr}"
            );
        }
    }
}

#[test]
fn cdn_deploy_toml_deploys_with_no_flags_and_wins_over_package_json() {
    let bucket = new_bucket("toml");
    let project = project("web-project", &[("@BUCKET@", "not-this-one")]);
    fs::rename(project.path().join("dist"), project.path().join("public")).expect("rename");
    fs::write(
        project.path().join("cdn-deploy.toml"),
        format!(
            "dir = \"public\"\nbucket = \"{bucket}\"\nprefix = \"www\"\n\n[[headers]]\nglob = \"img/*\"\ncontent-disposition = \"inline\"\nmetadata = {{ team = \"web\" }}\n"
        ),
    )
    .expect("write");
    // Run from a subfolder: both files are found walking up, and `dir` is relative to the toml.
    fs::create_dir_all(project.path().join("src")).expect("mkdir");
    assert_exit(&run_in(&project.path().join("src"), &[]), 0);
    let keys = keys(&bucket);
    assert!(keys.contains(&"www/index.html".to_string()), "{keys:?}");
    assert!(
        keys.contains(&"www/.cdn-deploy/manifest.json".to_string()),
        "{keys:?}"
    );
    let (_, head) = rt().block_on(moto().get(&bucket, "www/img/logo.png"));
    assert_eq!(head.metadata.get("team").map(String::as_str), Some("web"));
    // The package.json rules are replaced, not merged: only the toml's apply.
    let (_, head) = rt().block_on(moto().get(&bucket, "www/index.html"));
    assert_eq!(
        head.cache_control.as_deref(),
        Some("public, max-age=0, must-revalidate")
    );
}

#[test]
fn workspace_package_is_the_one_here_or_the_one_named() {
    let ws = tempfile::tempdir().expect("tmp");
    fs::create_dir_all(ws.path().join(".git")).expect(".git");
    fs::write(
        ws.path().join("Cargo.toml"),
        "[workspace]\nmembers = [\"docs\", \"shop\"]\nresolver = \"2\"\n",
    )
    .expect("write");
    for (name, bucket) in [("docs", "docs-bucket"), ("shop", "shop-bucket")] {
        let dir = ws.path().join(name);
        fs::create_dir_all(dir.join("src")).expect("mkdir");
        fs::write(dir.join("src/main.rs"), "fn main() {}\n").expect("write");
        fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.cdn-deploy]\ndir = \"dist\"\nbucket = \"{bucket}\"\n"),
        )
        .expect("write");
    }
    let bucket_line = |dir: &Path, args: &[&str]| {
        let out = cli()
            .current_dir(dir)
            .arg("--print-config")
            .args(args)
            .output()
            .expect("run");
        assert_exit(&out, 0);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("bucket = "))
            .unwrap_or_default()
            .to_string()
    };
    assert!(bucket_line(&ws.path().join("shop/src"), &[]).starts_with("bucket = \"shop-bucket\""));
    assert!(bucket_line(ws.path(), &["-p", "docs"]).starts_with("bucket = \"docs-bucket\""));
    let manifest = ws.path().join("shop/Cargo.toml");
    let manifest = manifest.to_str().expect("utf-8");
    assert!(bucket_line(ws.path(), &["--manifest-path", manifest])
        .starts_with("bucket = \"shop-bucket\""));
    let out = cli()
        .current_dir(ws.path())
        .args(["--print-config", "-p", "blog"])
        .output()
        .expect("run");
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("docs, shop"),
        "lists the packages"
    );
}

#[test]
fn messages_read_well_where_a_new_user_meets_them() {
    let dir = tempfile::tempdir().expect("tmp");
    fs::create_dir_all(dir.path().join(".git")).expect(".git");
    // The help's own example works with nothing configured.
    let out = cli()
        .current_dir(dir.path())
        .arg("--print-config")
        .output()
        .expect("run");
    assert_exit(&out, 0);

    // A usage error answers --json with a document.
    let out = cli()
        .args(["--json", "--no-such-flag"])
        .output()
        .expect("run");
    assert_exit(&out, 2);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON document");
    assert_eq!(doc["exit_code"], 2);
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("--no-such-flag")),
        "{doc}"
    );

    // The bucket's source is named in the hint.
    let site = copy_fixture("site");
    let out = cli()
        .env("CDN_DEPLOY_BUCKET", "no-such-bucket-here")
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(from CDN_DEPLOY_BUCKET)"), "{stderr}");

    // Skipped files are explained in words, and a trailing slash on the bucket is fine.
    let bucket = new_bucket("messages");
    fs::write(site.path().join(".DS_Store"), "x").expect("write");
    let out = cli()
        .args(["--bucket", &format!("{bucket}/"), "-v", "--dry-run"])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipped .DS_Store (a dotfile: pass --include GLOB to deploy it)"),
        "{stderr}"
    );
}

#[test]
fn under_github_actions_a_step_summary_and_error_annotations() {
    let bucket = new_bucket("gha");
    let site = copy_fixture("site");
    let summary = tempfile::NamedTempFile::new().expect("tmp");
    let out = cli()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.path())
        .args(["--bucket", &bucket])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 0);
    let text = fs::read_to_string(summary.path()).expect("read");
    assert!(text.starts_with("### cdn-deploy: "), "{text}");
    assert!(text.contains("| uploaded | 18 |"), "{text}");
    assert!(text.contains("<summary>Uploaded (18)</summary>"), "{text}");

    let out = cli()
        .env("GITHUB_ACTIONS", "true")
        .args(["--bucket", "no-such-bucket-here"])
        .arg(site.path())
        .output()
        .expect("run");
    assert_exit(&out, 2);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error title=cdn-deploy::")),
        "{stdout}"
    );
}

/// A machine where `cargo` cannot run (a web project's CI image with rustup but no default
/// toolchain): a Cargo.toml without our table must not matter, and one with it fails in one
/// clean line.
#[test]
fn a_cargo_that_cannot_run_only_matters_when_cargo_holds_the_settings() {
    let bucket = new_bucket("nocargo");
    let dir = tempfile::tempdir().expect("tmp");
    fs::create_dir_all(dir.path().join(".git")).expect(".git");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/site"),
        &dir.path().join("dist"),
    );
    let broken = dir.path().join("broken-cargo");
    fs::write(
        &broken,
        "#!/bin/sh\necho 'error: rustup could not choose a version of cargo to run' >&2\nexit 1\n",
    )
    .expect("write");
    fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let manifest = "[package]\nname = \"web\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    fs::write(dir.path().join("Cargo.toml"), manifest).expect("write");
    let run = || {
        cli()
            .current_dir(dir.path())
            .env("CARGO", &broken)
            .args(["--bucket", &bucket, "--dry-run", "dist"])
            .output()
            .expect("run")
    };
    let out = run();
    assert_exit(&out, 0);

    fs::write(
        dir.path().join("Cargo.toml"),
        format!("{manifest}\n[package.metadata.cdn-deploy]\ndir = \"dist\"\n"),
    )
    .expect("write");
    let out = run();
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rustup could not choose"), "{stderr}");
    for dump in ["backtrace", "panicked", "Error {", "source:"] {
        assert!(!stderr.contains(dump), "{stderr}");
    }
}
