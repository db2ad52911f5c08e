//! Faults, kills and races never corrupt the bucket or the manifest: through a proxy that fails
//! a fifth of the requests (some after they were applied), deploys of alternating builds,
//! deploys killed at seeded random moments and deploys racing each other leave, after every
//! step, a manifest that never claims a hash the bucket lacks; and one clean deploy converges.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::{
    assert_exit, build_files, cli, copy_fixture, manifest_at, moto, new_bucket, rt, FaultProxy,
};

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn deploy_cmd(endpoint: &str, bucket: &str, dir: &Path) -> Command {
    let mut cmd = cli();
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .args(["--bucket", bucket, "--lock-ttl", "3s", "--lock-wait", "20s"])
        .args([
            "--timeout",
            "5s",
            "--keep-old-assets",
            "1s",
            "--allow-mass-delete",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for a child with a generous watchdog; returns its exit code (None: killed).
fn finish(mut child: Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a deploy ran for over 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The invariant: every record with a hash describes the bytes the bucket holds under its key.
#[track_caller]
fn assert_truthful(bucket: &str, step: &str) {
    let keys = rt().block_on(moto().list_keys(bucket));
    if !keys.iter().any(|k| k == ".cdn-deploy/manifest.json") {
        return;
    }
    let (_, records) = manifest_at(bucket, "");
    for (key, e) in &records {
        let Some(sha) = e.sha256 else { continue };
        let got = rt().block_on(moto().try_get(bucket, key));
        let (bytes, _) = got.unwrap_or_else(|| panic!("{step}: {key} is recorded but absent"));
        assert_eq!(
            <[u8; 32]>::from(Sha256::digest(&bytes)),
            sha,
            "{step}: the manifest claims a hash the bucket lacks for {key}"
        );
    }
}

#[test]
fn faults_kills_and_races_never_corrupt_and_one_clean_deploy_converges() {
    let bucket = new_bucket("chaos");
    let builds = [
        copy_fixture("site"),
        copy_fixture("site-v2"),
        copy_fixture("vite-app/before"),
    ];
    // A third build with a file large enough to go up in parts.
    let big: Vec<u8> = (0..(20 * 1024 * 1024 + 7u32))
        .map(|i| (i % 253) as u8)
        .collect();
    fs::write(builds[1].path().join("video.bin"), &big).expect("write");
    let proxy = FaultProxy::with_args(&[
        "--fail-rate=0.2".into(),
        "--fail-after-apply-rate=0.1".into(),
        "--seed=20261128".into(),
    ]);
    let mut rng = Lcg(7);
    let mut codes = BTreeMap::new();
    for step in 0..14 {
        let which = rng.next(3) as usize;
        let label = format!("step {step}");
        match rng.next(4) {
            // A deploy killed at a random moment.
            0 => {
                let child = deploy_cmd(&proxy.endpoint(), &bucket, builds[which].path())
                    .spawn()
                    .expect("spawn");
                std::thread::sleep(Duration::from_millis(50 + rng.next(600)));
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                *codes.entry("killed".to_string()).or_insert(0) += 1;
            }
            // Two deploys of different builds racing.
            1 => {
                let other = (which + 1) % 3;
                let a = deploy_cmd(&proxy.endpoint(), &bucket, builds[which].path())
                    .spawn()
                    .expect("spawn");
                let b = deploy_cmd(&proxy.endpoint(), &bucket, builds[other].path())
                    .spawn()
                    .expect("spawn");
                for code in [finish(a), finish(b)] {
                    *codes.entry(format!("raced {code:?}")).or_insert(0) += 1;
                }
            }
            // A deploy through the faults, to the end.
            _ => {
                let child = deploy_cmd(&proxy.endpoint(), &bucket, builds[which].path())
                    .spawn()
                    .expect("spawn");
                let code = finish(child);
                *codes.entry(format!("faulty {code:?}")).or_insert(0) += 1;
            }
        }
        assert_truthful(&bucket, &label);
    }
    eprintln!("chaos outcomes: {codes:?}");
    drop(proxy);

    // One clean deploy converges: the bucket serves the build, and then nothing is left to do.
    let last = &builds[0];
    let out = cli()
        .args([
            "--bucket",
            &bucket,
            "--lock-wait",
            "20s",
            "--keep-old-assets",
            "0",
        ])
        .args(["--allow-mass-delete"])
        .arg(last.path())
        .output()
        .expect("run");
    assert_exit(&out, 0);
    assert_truthful(&bucket, "clean deploy");
    let (root, records) = manifest_at(&bucket, "");
    assert!(root.lock.is_none() && root.in_progress.is_none());
    let want = build_files(last.path());
    for (key, bytes) in &want {
        let (got, _) = rt().block_on(moto().get(&bucket, key));
        assert!(got == *bytes, "{key} holds the build's bytes");
        assert!(
            records[key].is_live() && records[key].sha256.is_some(),
            "{key}"
        );
    }
    let live: Vec<&String> = records
        .iter()
        .filter(|(_, e)| e.is_live())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        live,
        want.keys().collect::<Vec<_>>(),
        "exactly the build is live"
    );

    // State objects the clean deploy stopped referencing (a history part pushed out of the
    // kept deploys, an old base) are deleted by the next deploy, not at once, so that a reader
    // of the previous manifest is not cut off mid-read. That deploy deletes exactly them and
    // writes nothing but the manifest; after it nothing is left to do.
    let redeploy = || {
        let mark = moto().mark();
        let out = cli()
            .args(["--bucket", &bucket])
            .arg(last.path())
            .output()
            .expect("run");
        assert_exit(&out, 0);
        moto().requests_since(mark, &bucket)
    };
    let garbage = root.garbage.clone();
    let before = rt().block_on(moto().list_keys(&bucket));
    let requests = redeploy();
    if garbage.is_empty() {
        assert_eq!(requests.len(), 1, "converged: {requests:#?}");
        return;
    }
    let manifest = format!("/{bucket}/.cdn-deploy/manifest.json?");
    let delete = format!("/{bucket}/?delete");
    assert!(
        requests.iter().all(|r| r.method == "GET"
            || r.path.starts_with(&manifest)
            || (r.method == "POST" && r.path == delete)),
        "only the manifest and the deferred deletes: {requests:#?}"
    );
    let after = rt().block_on(moto().list_keys(&bucket));
    let gone: Vec<&String> = before.iter().filter(|k| !after.contains(k)).collect();
    assert_eq!(
        gone,
        garbage.iter().collect::<Vec<_>>(),
        "exactly the garbage"
    );
    let (root, _) = manifest_at(&bucket, "");
    assert!(root.garbage.is_empty(), "{:?}", root.garbage);
    let requests = redeploy();
    assert_eq!(requests.len(), 1, "converged: {requests:#?}");
}
