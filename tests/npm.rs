//! The npm distribution end to end and offline: the packages of `npm-wrapper/` packed with the
//! real binary for this machine, installed from their tarballs into a throwaway web project
//! whose `postbuild` deploys to moto server, and the launcher mirroring exit codes and signals.
//!
//! Needs node and npm on PATH; without them every test fails, it never skips.

// The launcher's signal mirroring and the fake binaries are Unix matters.
#![cfg(unix)]

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::Value;
use support::{cli, copy_tree, moto, rt, unique_bucket};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const BINARY: &str = env!("CARGO_BIN_EXE_cargo-cdn-deploy");
const SIGTERM: i32 = 15;

/// The tarballs of one `npm pack` of every package, shared by the tests of this binary.
struct Packed {
    /// `linux-x64` and so on: the key the launcher computes from node's platform and arch.
    host: String,
    platforms: BTreeMap<String, Value>,
    main: PathBuf,
    by_platform: BTreeMap<String, PathBuf>,
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Tests run one at a time: they share one installed project.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `target/npm-test/<pid>`: packages, tarballs, npm's cache and the project (about 100 MB with
/// a debug binary). Not a temporary folder, because statics are never dropped; instead each run
/// removes the folders of test processes that have exited.
fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = manifest_dir().join("target/npm-test");
        for entry in fs::read_dir(&root).into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let alive = Command::new("sh")
                .args(["-c", "kill -0 \"$1\" 2>/dev/null", "sh", &pid])
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        // An empty user config: a developer's ~/.npmrc (omit=optional, a registry) must not
        // change what the tests see.
        fs::write(dir.join("npmrc"), "").expect("write the empty npmrc");
        dir
    })
}

/// Fails the test, with what to install, when node or npm is missing. Checked once; a failed
/// check is repeated, so every test fails with the same message.
fn require_node_and_npm() {
    static FOUND: OnceLock<()> = OnceLock::new();
    FOUND.get_or_init(|| {
        for tool in ["node", "npm"] {
            match Command::new(tool).arg("--version").output() {
                Ok(out) if out.status.success() => {}
                Ok(out) => panic!(
                    "`{tool} --version` failed ({}): the npm tests need Node.js 18+ and npm on \
                     PATH\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => panic!(
                    "cannot run `{tool}` ({e}): the npm tests need Node.js 18+ and npm on PATH \
                     (for example `apt-get install nodejs npm`)"
                ),
            }
        }
    });
}

fn node() -> Command {
    require_node_and_npm();
    Command::new("node")
}

/// npm with only the test's own configuration, never the network.
fn npm() -> Command {
    require_node_and_npm();
    let dir = work_dir();
    let mut cmd = Command::new("npm");
    cmd.env("npm_config_userconfig", dir.join("npmrc"))
        .env("npm_config_cache", dir.join("npm-cache"))
        .env("npm_config_offline", "true")
        .env("npm_config_update_notifier", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false");
    cmd
}

/// `cmd` with the environment the harness gives the CLI: moto's endpoint and credentials, and
/// nothing from the developer's or CI's AWS or `CDN_DEPLOY_*` variables.
fn with_test_env(mut cmd: Command) -> Command {
    let template = cli();
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()))
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn assert_success(out: &Output) {
    assert!(out.status.success(), "{}", text(out));
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Packs every package once: the host's platform package with the real binary, the others
/// with a placeholder, and the main package as it is in the repository.
fn packed() -> &'static Packed {
    static PACKED: OnceLock<Packed> = OnceLock::new();
    PACKED.get_or_init(|| {
        let wrapper = manifest_dir().join("npm-wrapper");
        let platforms: BTreeMap<String, Value> = serde_json::from_slice(
            &fs::read(wrapper.join("platforms.json")).expect("read npm-wrapper/platforms.json"),
        )
        .expect("platforms.json is JSON");
        let out = run(node().args(["-p", "process.platform + '-' + process.arch"]));
        assert_success(&out);
        let host = stdout(&out).trim().to_string();
        assert!(
            platforms.contains_key(&host),
            "this machine ({host}) has no package in npm-wrapper/platforms.json"
        );

        let dir = work_dir();
        let tarballs = dir.join("tarballs");
        fs::create_dir_all(&tarballs).expect("create the tarball folder");
        let placeholder = dir.join("placeholder");
        fs::write(&placeholder, "placeholder for the file-list checks\n").expect("placeholder");

        let mut packing = Vec::new();
        for key in platforms.keys() {
            let package = dir.join("packages").join(key);
            let binary = if *key == host {
                Path::new(BINARY)
            } else {
                &placeholder
            };
            assert_success(&run(node()
                .arg(wrapper.join("scripts/make-platform-package.js"))
                .arg(key)
                .arg(binary)
                .arg(&package)));
            packing.push((Some(key.clone()), package));
        }
        packing.push((None, wrapper.join("cdn-deploy")));

        // In parallel: gzipping the real binary dominates, the others are npm's start-up.
        let children: Vec<_> = packing
            .into_iter()
            .map(|(key, package)| {
                let child = npm()
                    .args(["pack", "--json", "--pack-destination"])
                    .arg(&tarballs)
                    .current_dir(&package)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("start npm pack");
                (key, child)
            })
            .collect();
        let mut main = None;
        let mut by_platform = BTreeMap::new();
        for (key, child) in children {
            let out = child.wait_with_output().expect("wait for npm pack");
            assert_success(&out);
            let report: Value = serde_json::from_slice(&out.stdout).expect("npm pack --json");
            let file = report[0]["filename"]
                .as_str()
                .expect("filename")
                .to_string();
            let tarball = tarballs.join(file);
            match key {
                Some(key) => by_platform.insert(key, tarball),
                None => main.replace(tarball),
            };
        }
        // The tarballs hold everything now; this keeps a copy of the binary less on disk.
        let _ = fs::remove_dir_all(dir.join("packages"));
        Packed {
            host,
            platforms,
            main: main.expect("the main package was packed"),
            by_platform,
        }
    })
}

/// A copy of `npm-wrapper/test/fixture-project` with the main package and the host's package
/// installed from their tarballs.
fn project() -> &'static Path {
    static PROJECT: OnceLock<PathBuf> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let packed = packed();
        let dir = new_project("project");
        // The host's package is named explicitly: offline, npm cannot fetch it through the
        // main package's optionalDependencies, and drops the optional packages it cannot fetch
        // without a word (the other platforms' packages among them).
        let out = run(npm()
            .arg("install")
            .arg(&packed.main)
            .arg(&packed.by_platform[&packed.host])
            .current_dir(&dir));
        assert_success(&out);
        dir
    })
}

fn new_project(name: &str) -> PathBuf {
    let dir = work_dir().join(name);
    copy_tree(
        &manifest_dir().join("npm-wrapper/test/fixture-project"),
        &dir,
    );
    // A project root of its own: configuration lookups must not climb into this repository.
    fs::create_dir_all(dir.join(".git")).expect("create .git");
    dir
}

fn launcher(project: &Path) -> PathBuf {
    project.join("node_modules/cdn-deploy/bin/cdn-deploy.js")
}

/// `(mode, path)` of every entry, from `tar -tvzf`.
fn tar_listing(tarball: &Path) -> BTreeMap<String, String> {
    let out = run(Command::new("tar").arg("-tvzf").arg(tarball));
    assert_success(&out);
    stdout(&out)
        .lines()
        .filter_map(|line| {
            let mode = line.split_whitespace().next()?;
            let path = line.split_whitespace().last()?;
            Some((path.to_string(), mode.to_string()))
        })
        .collect()
}

fn tar_json(tarball: &Path, file: &str) -> Value {
    let out = run(Command::new("tar").arg("-xzOf").arg(tarball).arg(file));
    assert_success(&out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{file} in {}: {e}", tarball.display()))
}

#[test]
fn packages_hold_the_right_files_versions_and_no_scripts() {
    let _serial = serial();
    let packed = packed();
    let sync_hint = "run `node npm-wrapper/scripts/sync-version.js` after changing the version";

    let files = tar_listing(&packed.main);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "package/LICENSE",
            "package/README.md",
            "package/bin/cdn-deploy.js",
            "package/lib/platforms.json",
            "package/lib/resolve.js",
            "package/package.json",
        ]
    );
    assert!(files["package/bin/cdn-deploy.js"].starts_with("-rwx"));
    let main = tar_json(&packed.main, "package/package.json");
    assert_eq!(main["name"], "cdn-deploy");
    assert_eq!(main["version"], VERSION, "{sync_hint}");
    assert_eq!(main["bin"]["cdn-deploy"], "bin/cdn-deploy.js");
    for key in ["scripts", "dependencies"] {
        assert!(main.get(key).is_none(), "the main package has no {key}");
    }
    let optional = main["optionalDependencies"].as_object().expect("optional");
    assert_eq!(optional.len(), packed.platforms.len());

    for (key, platform) in &packed.platforms {
        let tarball = &packed.by_platform[key];
        let exe = platform["exe"].as_str().expect("exe");
        let files = tar_listing(tarball);
        let bin = format!("package/bin/{exe}");
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        let mut want = vec![
            "package/LICENSE",
            "package/README.md",
            bin.as_str(),
            "package/package.json",
        ];
        want.sort();
        assert_eq!(names, want, "{key}");
        assert_eq!(files[&bin], "-rwxr-xr-x", "{key}: the binary is executable");

        let manifest = tar_json(tarball, "package/package.json");
        let name = platform["package"].as_str().expect("package");
        assert_eq!(manifest["name"], name);
        assert_eq!(manifest["version"], VERSION, "{key}");
        assert_eq!(manifest["os"], serde_json::json!([platform["os"]]), "{key}");
        assert_eq!(
            manifest["cpu"],
            serde_json::json!([platform["cpu"]]),
            "{key}"
        );
        assert_eq!(manifest["preferUnplugged"], true, "{key}");
        assert!(manifest.get("scripts").is_none(), "{key} has no scripts");
        assert_eq!(
            optional[name], VERSION,
            "{name} pinned exactly; {sync_hint}"
        );
    }
}

#[test]
fn postbuild_deploys_through_the_installed_launcher_and_a_rebuild_deploys_nothing() {
    let _serial = serial();
    let project = project();
    let bucket = unique_bucket("npm-postbuild");
    rt().block_on(moto().create_bucket(&bucket));
    let build = || {
        let mut cmd = with_test_env(npm());
        // The settings are the project's package.json (which npm names in npm_package_json),
        // with the bucket from the environment, as a CI job per stage would pass it.
        cmd.args(["run", "build"])
            .env("CDN_DEPLOY_BUCKET", &bucket)
            .current_dir(project);
        run(&mut cmd)
    };

    let first = build();
    assert_success(&first);
    assert!(stdout(&first).contains("Deployed: "), "{}", text(&first));
    assert_eq!(
        rt().block_on(moto().list_keys(&bucket)),
        [
            ".cdn-deploy/manifest.json",
            "about/index.html",
            "assets/style-3f2a9c1b.css",
            "index.html",
            "robots.txt",
        ]
    );

    let second = build();
    assert_success(&second);
    assert!(
        stdout(&second).contains("Nothing to deploy"),
        "{}",
        text(&second)
    );
}

#[test]
fn exit_codes_and_death_by_signal_come_back_through_the_launcher() {
    let _serial = serial();
    let project = project();
    let launcher = launcher(project);

    let usage = run(with_test_env(node())
        .arg(&launcher)
        .args(["--bucket", "Bad_Name", "dist"])
        .current_dir(project));
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
    assert!(
        String::from_utf8_lossy(&usage.stderr).contains("Bad_Name"),
        "{}",
        text(&usage)
    );

    let help = run(with_test_env(node()).arg(&launcher).arg("--help"));
    assert_success(&help);
    assert!(
        stdout(&help).contains("Usage: npx cdn-deploy"),
        "the binary was told it runs as npx cdn-deploy: {}",
        text(&help)
    );

    let script = work_dir().join("kill-self-with-sigterm");
    fs::write(&script, "#!/bin/sh\nkill -TERM $$\n").expect("write the fake binary");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    let killed = run(with_test_env(node())
        .arg(&launcher)
        .env("CDN_DEPLOY_BINARY_PATH", &script));
    assert_eq!(
        killed.status.signal(),
        Some(SIGTERM),
        "the launcher dies by the signal that killed the binary: {}",
        text(&killed)
    );
}

#[test]
fn without_the_platform_package_the_launcher_says_how_to_get_it() {
    let _serial = serial();
    let packed = packed();
    let dir = new_project("project-without-optional");
    assert_success(&run(npm()
        .arg("install")
        .arg(&packed.main)
        .current_dir(&dir)));

    let out = run(with_test_env(node()).arg(launcher(&dir)).arg("--version"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "cdn-deploy: @cdn-deploy/{}, the package holding the binary",
            packed.host
        )) && stderr.contains("npm install --include=optional"),
        "{}",
        text(&out)
    );
}
