//! Recovery end to end: the real binary against moto, killed (`kill -9`), interrupted (SIGINT),
//! cut off by lost responses, a hung endpoint and a lock taken over mid-deploy, and every setup
//! or network error it must explain in a few lines. After each, the manifest must never claim a
//! hash the bucket lacks, and running the deploy again must converge.

mod support;

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cdn_deploy::state::format::{decode_root, RootDoc};
use sha2::{Digest, Sha256};
use support::{
    assert_exit, cli, copy_fixture, hash_of, http_get, manifest_at, moto, new_bucket, output_text,
    rt, FaultProxy,
};

const MANIFEST: &str = ".cdn-deploy/manifest.json";
/// A process still running after this long is killed and the test fails. Never a speed
/// assertion: every run here takes seconds when the machine is idle.
const WATCHDOG: Duration = Duration::from_secs(120);
const MIB: usize = 1024 * 1024;

// ---- processes --------------------------------------------------------------------------------

/// A running binary whose output is collected in the background.
struct Running {
    child: Child,
    stdout: Option<thread::JoinHandle<Vec<u8>>>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
    started: Instant,
}

fn spawn(cmd: &mut Command) -> Running {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start cargo-cdn-deploy");
    let collect = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
    Running {
        child,
        stdout: Some(stdout),
        stderr: Some(stderr),
        started: Instant::now(),
    }
}

/// Runs to completion under the watchdog.
fn run(cmd: &mut Command) -> Output {
    spawn(cmd).wait()
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// `kill -SIG pid`.
    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// `kill -9`, and reaped.
    fn kill9(&mut self) -> Output {
        self.child.kill().expect("kill -9 the deploy");
        self.wait()
    }

    /// Waits for the exit (killing it after the watchdog, which fails the test).
    fn wait(&mut self) -> Output {
        let deadline = self.started + WATCHDOG;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the deploy") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait().expect("reap the deploy");
                let out = self.output(status);
                panic!(
                    "still running after {WATCHDOG:?}: killed.\n{}",
                    output_text(&out)
                );
            }
            thread::sleep(Duration::from_millis(25));
        };
        self.output(status)
    }

    fn output(&mut self, status: ExitStatus) -> Output {
        let join = |h: Option<thread::JoinHandle<Vec<u8>>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        Output {
            status,
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        }
    }

    /// Polls `cond` until it holds; fails if the process exits first or the watchdog expires.
    fn wait_until(&mut self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            if cond() {
                return;
            }
            if self.exited() {
                let out = self.wait();
                panic!("the deploy exited before {what}:\n{}", output_text(&out));
            }
            if Instant::now() >= deadline {
                let out = self.kill9();
                panic!("{what}: not within {WATCHDOG:?}\n{}", output_text(&out));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that panics mid-way leaves no deploy running behind it.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A deploy of `dir` to `bucket` (moto unless the caller changes AWS_ENDPOINT_URL).
fn deploy(bucket: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = cli();
    cmd.arg("--bucket").arg(bucket).args(extra).arg(dir);
    cmd
}

/// The same, through `endpoint` (a fault proxy) and naming its lock holder.
fn deploy_via(endpoint: &str, holder: &str, bucket: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = deploy(bucket, dir, extra);
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("CDN_DEPLOY_LOCK_HOLDER", holder);
    cmd
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---- sites and the bucket ---------------------------------------------------------------------

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (rel, bytes) in files {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// A site folder: a page and `clips` media files of `clip_size` bytes, whose bytes depend on
/// `version` (so two versions differ in every file).
fn media_site(dir: &Path, version: u8, clips: usize, clip_size: usize) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![(
        "index.html".to_string(),
        format!("<!doctype html><title>v{version}</title>\n").into_bytes(),
    )];
    for i in 0..clips {
        let mut bytes = vec![version.wrapping_mul(31).wrapping_add(i as u8); clip_size];
        bytes[..16].copy_from_slice(format!("v{version:03} clip {i:06}").as_bytes());
        files.push((format!("media/clip-{i}.bin"), bytes));
    }
    write_files(dir, &files);
    files
}

fn temp_site() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("site-")
        .tempdir()
        .expect("temporary site folder")
}

/// The root as stored, decoded; `None` before the first deploy.
fn root_of(bucket: &str) -> Option<(RootDoc, Vec<u8>)> {
    rt().block_on(moto().try_get(bucket, MANIFEST))
        .map(|(bytes, _)| (decode_root(&bytes).expect("the root decodes"), bytes))
}

/// The invariant: every record with a hash names bytes the bucket holds under its key.
/// Returns how many records were checked.
fn assert_manifest_truthful(bucket: &str, when: &str) -> usize {
    let (_, records) = manifest_at(bucket, "");
    let mut checked = 0;
    for (key, entry) in &records {
        let Some(want) = hash_of(entry) else { continue };
        let Some((bytes, _)) = rt().block_on(moto().try_get(bucket, key)) else {
            panic!("{when}: the manifest records s3://{bucket}/{key} with sha256 {want}, but there is no such object");
        };
        assert_eq!(
            sha(&bytes),
            want,
            "{when}: the manifest claims a hash for s3://{bucket}/{key} that the bucket does not hold"
        );
        checked += 1;
    }
    checked
}

/// The bucket holds exactly these bytes, the manifest records each with its hash, and the
/// root is settled (no lock, nothing in progress).
fn assert_deployed(bucket: &str, files: &[(String, Vec<u8>)]) {
    let (root, records) = manifest_at(bucket, "");
    assert!(root.lock.is_none(), "the lock is released: {:?}", root.lock);
    assert!(
        root.in_progress.is_none(),
        "no deploy in progress: {:?}",
        root.in_progress
    );
    for (rel, bytes) in files {
        let (got, _) = rt().block_on(moto().get(bucket, rel));
        assert_eq!(sha(&got), sha(bytes), "s3://{bucket}/{rel} holds the build");
        let entry = records
            .get(rel)
            .unwrap_or_else(|| panic!("{rel} is not in the manifest"));
        assert_eq!(hash_of(entry), Some(sha(bytes)), "{rel} in the manifest");
    }
    assert_manifest_truthful(bucket, "after the deploy");
}

/// A further run of the same deploy is a no-op: one GET of the root, nothing else.
fn assert_noop(bucket: &str, dir: &Path) {
    let mark = moto().mark();
    let out = run(&mut deploy(bucket, dir, &[]));
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out).starts_with("Nothing to deploy"),
        "{}",
        output_text(&out)
    );
    let requests = moto().requests_since(mark, bucket);
    assert_eq!(requests.len(), 1, "exactly one request: {requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].key().as_deref(), Some(MANIFEST));
}

/// The multipart uploads moto has under way in `bucket`, as (key, upload id).
fn multipart_uploads(bucket: &str) -> Vec<(String, String)> {
    let out = rt()
        .block_on(async {
            moto()
                .s3()
                .await
                .list_multipart_uploads()
                .bucket(bucket)
                .send()
                .await
        })
        .expect("list multipart uploads");
    out.uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap_or_default().to_string(),
                u.upload_id().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// How many parts of the upload moto holds. Read with a plain GET: moto 5.2.5 answers
/// ListParts with a `ListPartsResponse` root element, which the Rust SDK rejects (it expects
/// `ListPartsResult`); moto does not check signatures.
fn parts_landed(bucket: &str, key: &str, upload_id: &str) -> usize {
    let id: String = upload_id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let response = http_get(moto().port(), &format!("/{bucket}/{key}?uploadId={id}"));
    assert_eq!(response.status, 200, "ListParts: {response:?}");
    String::from_utf8_lossy(&response.body)
        .matches("<Part>")
        .count()
}

/// A proxy that reads PUT bodies at `bps` bytes/s.
fn throttled(bps: usize) -> FaultProxy {
    FaultProxy::with_args(&[format!("--throttle-put-bps={bps}")])
}

fn lock_holder(bucket: &str) -> Option<(String, u64)> {
    root_of(bucket).and_then(|(r, _)| r.lock.map(|l| (l.holder, l.renewals)))
}

// ---- 1. kill -9 mid-deploy --------------------------------------------------------------------

/// Deploys v1, then starts a throttled deploy of v2 and kills it with SIGKILL a second after it
/// took the lock, while its uploads (4 s each at least) are in flight.
fn killed_deploy(bucket: &str, site: &Path, ttl: &str, holder: &str) -> Vec<(String, Vec<u8>)> {
    media_site(site, 1, 4, MIB);
    assert_exit(&run(&mut deploy(bucket, site, &[])), 0);
    let v2 = media_site(site, 2, 4, MIB);

    let proxy = throttled(256 * 1024);
    let mut running = spawn(&mut deploy_via(
        &proxy.endpoint(),
        holder,
        bucket,
        site,
        &["--lock-ttl", ttl],
    ));
    running.wait_until("the deploy took the lock", || {
        lock_holder(bucket).is_some_and(|(h, _)| h == holder)
    });
    // A second into uploads that take 4 s at least.
    thread::sleep(Duration::from_secs(1));
    let out = running.kill9();
    assert_eq!(out.status.code(), None, "killed by a signal");
    // Nothing of the dead deploy may land later through the proxy's open connections.
    drop(proxy);

    let (root, _) = root_of(bucket).expect("a root");
    assert!(
        root.in_progress.is_some(),
        "the deploy was killed before it recorded its outcome"
    );
    assert_manifest_truthful(bucket, "right after kill -9");
    v2
}

#[test]
fn killed_deploy_lapses_and_the_next_deploy_waits_and_takes_over() {
    let bucket = new_bucket("killed-wait");
    let site = temp_site();
    let v2 = killed_deploy(&bucket, site.path(), "5s", "killed run 1");
    let killed_at = Instant::now();

    let out = run(&mut deploy(&bucket, site.path(), &["--lock-wait", "60s"]));
    let blocked = killed_at.elapsed();
    assert_exit(&out, 0);
    eprintln!(
        "figure: a deploy killed with --lock-ttl 5s held up the next one (--lock-wait 60s) for {:.1}s from the kill to its exit; it said: {:?}",
        blocked.as_secs_f64(),
        stderr_of(&out).lines().find(|l| l.contains("waiting for the deploy lock"))
    );
    assert_deployed(&bucket, &v2);
    assert_noop(&bucket, site.path());
}

#[test]
fn killed_deploy_makes_the_next_one_exit_4_until_unlocked() {
    let bucket = new_bucket("killed-exit4");
    let site = temp_site();
    // The default TTL (60 s): the dead lock is certainly still live for the next run.
    let v2 = killed_deploy(&bucket, site.path(), "60s", "killed run 2");

    let out = run(&mut deploy(&bucket, site.path(), &[]));
    assert_exit(&out, 4);
    let err = stderr_of(&out);
    assert!(err.starts_with("error: another deploy holds"), "{err}");
    assert!(err.contains("killed run 2"), "names the holder: {err}");
    assert!(err.contains("`cargo cdn-deploy unlock`"), "{err}");
    assert_manifest_truthful(&bucket, "after the refused deploy");

    let out = run(cli().args(["unlock", "--bucket", &bucket, "--yes"]));
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out).contains("killed run 2"),
        "{}",
        output_text(&out)
    );
    let out = run(&mut deploy(&bucket, site.path(), &[]));
    assert_exit(&out, 0);
    assert_deployed(&bucket, &v2);
    assert_noop(&bucket, site.path());
}

/// A site of more than 128 files keeps its records in a base, and a deploy that changes them
/// all records its intent as a planned base beside the root (not as unverified records). This
/// deploys v1 (150 pages, 2 media files, a page), then starts v2, which changes every file,
/// and kills it once its first pages have landed. Returns v1's files, written back into the
/// folder: a revert, which differs from the bucket only where the dead deploy wrote.
fn dead_large_deploy(bucket: &str, site: &Path) -> Vec<(String, Vec<u8>)> {
    let pages = |version: u8| -> Vec<(String, Vec<u8>)> {
        (0..150)
            .map(|i| {
                (
                    format!("p/{i:03}.txt"),
                    format!("page {i} of version {version}\n").into_bytes(),
                )
            })
            .collect()
    };
    let mut v1 = media_site(site, 1, 2, MIB);
    v1.extend(pages(1));
    write_files(site, &v1);
    assert_exit(&run(&mut deploy(bucket, site, &[])), 0);
    assert!(
        root_of(bucket).expect("root").0.base.is_some(),
        "the records live in a base"
    );

    media_site(site, 2, 2, MIB);
    let v2_pages = pages(2);
    write_files(site, &v2_pages);
    let proxy = throttled(256 * 1024);
    let holder = "killed large run";
    let mut running = spawn(&mut deploy_via(
        &proxy.endpoint(),
        holder,
        bucket,
        site,
        &["--lock-ttl", "5s"],
    ));
    running.wait_until("the dead deploy's first pages landed", || {
        lock_holder(bucket).is_some_and(|(h, _)| h == holder)
            && rt()
                .block_on(moto().try_get(bucket, &v2_pages[0].0))
                .is_some_and(|(b, _)| b == v2_pages[0].1)
    });
    running.kill9();
    drop(proxy);
    let (root, _) = root_of(bucket).expect("root");
    assert!(
        root.in_progress
            .as_ref()
            .is_some_and(|p| p.planned.is_some()),
        "the dead deploy recorded a planned base: {:?}",
        root.in_progress
    );
    // The records still describe the state before the dead deploy: what it may have changed is
    // in its planned base, which the next deploy must read (so no truthfulness check here).
    write_files(site, &v1);
    v1
}

#[test]
fn after_a_dead_large_deploy_is_unlocked_the_next_deploy_repairs_what_it_wrote() {
    let bucket = new_bucket("large-unlock");
    let site = temp_site();
    let v1 = dead_large_deploy(&bucket, site.path());
    assert_exit(
        &run(cli().args(["unlock", "--bucket", &bucket, "--yes"])),
        0,
    );
    let out = run(&mut deploy(&bucket, site.path(), &[]));
    assert_exit(&out, 0);
    assert_manifest_truthful(&bucket, "after the deploy that followed a dead large one");
    assert_deployed(&bucket, &v1);
}

#[test]
fn waiting_out_a_dead_large_deploy_still_repairs_what_it_wrote() {
    let bucket = new_bucket("large-wait");
    let site = temp_site();
    let v1 = dead_large_deploy(&bucket, site.path());
    let out = run(&mut deploy(&bucket, site.path(), &["--lock-wait", "60s"]));
    assert_exit(&out, 0);
    assert_manifest_truthful(&bucket, "after waiting out a dead large deploy");
    assert_deployed(&bucket, &v1);
}

// ---- 2. lost responses on the root writes -----------------------------------------------------

/// The proxy's log lines for PUTs of the root and of site files, in order.
fn proxy_puts(log: &Path, bucket: &str) -> Vec<(bool, String)> {
    let text = fs::read_to_string(log).expect("read the proxy log");
    let root = format!("PUT /{bucket}/{MANIFEST}");
    let site = format!("PUT /{bucket}/");
    text.lines()
        .filter_map(|l| {
            let l = l.strip_prefix("fault-proxy ")?;
            if l.starts_with(&root) {
                Some((true, l.to_string()))
            } else if l.starts_with(&site) && !l.contains("/.cdn-deploy/") {
                Some((false, l.to_string()))
            } else {
                None
            }
        })
        .collect()
}

fn proxy_log(tag: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join(format!("{tag}.log"));
    (dir, path)
}

#[test]
fn lost_response_to_the_lock_write_is_recognised_as_our_own_lock() {
    let bucket = new_bucket("lost-lock");
    let site = copy_fixture("site");
    let (_logs, log) = proxy_log("lost-lock");
    let proxy = FaultProxy::with_args(&[
        format!("--drop-response-put={MANIFEST}"),
        "--drop-times=1".to_string(),
        format!("--log={}", log.display()),
    ]);
    let out = run(&mut deploy_via(
        &proxy.endpoint(),
        "lost lock run",
        &bucket,
        site.path(),
        &["--lock-ttl", "600s"],
    ));
    assert_exit(&out, 0);
    drop(proxy);

    let puts = proxy_puts(&log, &bucket);
    let first_root = puts.iter().find(|(root, _)| *root).expect("a root PUT");
    assert!(
        first_root.1.contains("inject=drop") && first_root.1.contains("upstream=200"),
        "the lock write landed and its answer was lost: {puts:#?}"
    );
    let files = fixture_files(site.path());
    assert_deployed(&bucket, &files);
    assert_noop(&bucket, site.path());
}

/// Every root PUT's response is dropped until the budget runs out: all attempts the SDK makes
/// at the lock write (the first lands, the retries get 412 from our own landed write), then the
/// first attempt at the final root write (it lands; the retry gets 412). The deploy must read
/// the root back both times and recognise its own writes.
#[test]
fn lost_responses_to_the_lock_write_and_the_final_root_write() {
    let bucket = new_bucket("lost-final");
    let site = copy_fixture("site");
    let (_logs, log) = proxy_log("lost-final");
    let drops = cdn_deploy::cloud::aws::ATTEMPTS + 1;
    let proxy = FaultProxy::with_args(&[
        format!("--drop-response-put={MANIFEST}"),
        format!("--drop-times={drops}"),
        format!("--log={}", log.display()),
    ]);
    let out = run(&mut deploy_via(
        &proxy.endpoint(),
        "lost final run",
        &bucket,
        site.path(),
        // No renewal comes between the two writes.
        &["--lock-ttl", "600s"],
    ));
    assert_exit(&out, 0);
    drop(proxy);

    // What the drops hit, read from the proxy's log: the root PUTs before the first site PUT
    // are the lock write's attempts, those after the last site PUT the final write's.
    let puts = proxy_puts(&log, &bucket);
    let first_site = puts.iter().position(|(root, _)| !root).expect("site PUTs");
    let last_site = puts.iter().rposition(|(root, _)| !root).expect("site PUTs");
    let lock_attempts: Vec<&String> = puts[..first_site].iter().map(|(_, l)| l).collect();
    let final_attempts: Vec<&String> = puts[last_site + 1..].iter().map(|(_, l)| l).collect();
    assert!(
        !lock_attempts.is_empty() && lock_attempts.iter().all(|l| l.contains("inject=drop")),
        "every attempt at the lock write lost its answer: {puts:#?}"
    );
    assert!(
        final_attempts
            .first()
            .is_some_and(|l| l.contains("inject=drop") && l.contains("upstream=200")),
        "the final root write landed and its answer was lost: {puts:#?}"
    );
    eprintln!(
        "figure: lock write attempts {}, final root write attempts {} ({:?})",
        lock_attempts.len(),
        final_attempts.len(),
        final_attempts
    );
    let files = fixture_files(site.path());
    assert_deployed(&bucket, &files);
    assert_noop(&bucket, site.path());
}

/// The fixture's deployable files (no dotfiles but `.well-known/`).
fn fixture_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.expect("walk");
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("inside")
            .components()
            .map(|c| c.as_os_str().to_str().expect("utf-8").to_string())
            .collect::<Vec<_>>()
            .join("/");
        let hidden = rel.split('/').any(|c| c.starts_with('.')) && !rel.starts_with(".well-known/");
        if !hidden {
            out.push((rel, fs::read(entry.path()).expect("read")));
        }
    }
    out
}

// ---- 3. a hung endpoint -----------------------------------------------------------------------

/// A listener on loopback that accepts every connection and never answers.
fn black_hole() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("address").port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    port
}

#[test]
fn hung_endpoint_times_out_and_names_it() {
    let port = black_hole();
    let site = temp_site();
    media_site(site.path(), 1, 1, 1000);
    let started = Instant::now();
    let out = run(deploy("hung-bucket", site.path(), &["--timeout", "2s"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")));
    eprintln!(
        "figure: against an endpoint that never answers, --timeout 2s exited {:?} after {:.1}s:\n{}",
        out.status.code(),
        started.elapsed().as_secs_f64(),
        stderr_of(&out)
    );
    assert_exit(&out, 1);
    let err = stderr_of(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "names the endpoint: {err}"
    );
    assert_clean(&err, "hung endpoint");
}

// ---- 4. multipart uploads killed and interrupted ----------------------------------------------

/// A site with a page and one large file of `size` bytes (sparse: zeros but a header).
fn large_site(dir: &Path, size: u64) {
    write_files(
        dir,
        &[(
            "index.html".to_string(),
            b"<!doctype html><title>big</title>\n".to_vec(),
        )],
    );
    let path = dir.join("big.bin");
    let file = fs::File::create(&path).expect("create big.bin");
    file.set_len(size).expect("size big.bin");
    drop(file);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"large file header"))
        .expect("write big.bin");
}

#[test]
fn killed_multipart_upload_is_aborted_by_the_next_deploy() {
    let bucket = new_bucket("killed-multipart");
    let site = temp_site();
    large_site(site.path(), 40 * MIB as u64);
    let proxy = throttled(MIB);
    let mut running = spawn(&mut deploy_via(
        &proxy.endpoint(),
        "killed multipart run",
        &bucket,
        site.path(),
        &["--lock-ttl", "5s", "-j", "4"],
    ));
    running.wait_until("a multipart upload is under way", || {
        !multipart_uploads(&bucket).is_empty()
    });
    running.kill9();
    drop(proxy);
    let left = multipart_uploads(&bucket);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0, "big.bin");

    let mark = moto().mark();
    let out = run(&mut deploy(&bucket, site.path(), &["--lock-wait", "60s"]));
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out).contains("Aborted 1 unfinished multipart upload"),
        "{}",
        output_text(&out)
    );
    assert_eq!(multipart_uploads(&bucket), Vec::new(), "nothing left");
    let aborts: Vec<_> = moto()
        .requests_since(mark, &bucket)
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.query().contains(&left[0].1))
        .collect();
    assert_eq!(
        aborts.len(),
        1,
        "the leftover upload was aborted by the deploy"
    );
    let big = fs::read(site.path().join("big.bin")).expect("read big.bin");
    let page = fs::read(site.path().join("index.html")).expect("read index.html");
    assert_deployed(
        &bucket,
        &[("big.bin".into(), big), ("index.html".into(), page)],
    );
}

#[test]
fn ctrl_c_during_a_large_multipart_upload_aborts_it_and_exits_130() {
    let bucket = new_bucket("sigint-multipart");
    let site = temp_site();
    large_site(site.path(), 200 * MIB as u64);
    let proxy = throttled(MIB);
    let mut running = spawn(&mut deploy_via(
        &proxy.endpoint(),
        "interrupted run",
        &bucket,
        site.path(),
        &["-j", "4"],
    ));
    let mut upload = None;
    running.wait_until("a part of the multipart upload landed", || {
        upload = multipart_uploads(&bucket).into_iter().next();
        upload
            .as_ref()
            .is_some_and(|(key, id)| parts_landed(&bucket, key, id) >= 1)
    });
    let signalled = Instant::now();
    running.signal("INT");
    let out = running.wait();
    eprintln!(
        "figure: SIGINT during a 200 MiB multipart upload: exit {:?} {:.2}s after the signal",
        out.status.code(),
        signalled.elapsed().as_secs_f64()
    );
    assert_exit(&out, 130);
    drop(proxy);

    assert_eq!(
        multipart_uploads(&bucket),
        Vec::new(),
        "the upload was aborted"
    );
    assert!(
        rt().block_on(moto().try_get(&bucket, "big.bin")).is_none(),
        "big.bin never landed"
    );
    let (root, records) = manifest_at(&bucket, "");
    assert!(
        root.lock.is_none() && root.in_progress.is_none(),
        "{root:?}"
    );
    assert!(
        records.get("big.bin").and_then(hash_of).is_none(),
        "big.bin is not recorded as landed: {:?}",
        records.get("big.bin")
    );
    assert_manifest_truthful(&bucket, "after Ctrl-C");
}

// ---- 5. unlock --------------------------------------------------------------------------------

fn foreign_root(holder: &str, id: &str) -> String {
    serde_json::json!({
        "version": 2,
        "prefix": "",
        "lock": {
            "holder": holder,
            "id": id,
            "started": "2026-01-01T00:00:00Z",
            "expires": "2999-01-01T00:00:00Z",
        },
    })
    .to_string()
}

#[test]
fn unlock_asks_for_yes_without_a_terminal_then_removes_a_live_lock() {
    let bucket = new_bucket("unlock");
    let site = copy_fixture("site");
    let written = foreign_root("github-actions run 7", "other");
    rt().block_on(moto().put(&bucket, MANIFEST, written.clone()));

    let out = run(&mut deploy(&bucket, site.path(), &[]));
    assert_exit(&out, 4);
    assert!(
        stderr_of(&out).contains("github-actions run 7"),
        "{}",
        output_text(&out)
    );

    let out = run(cli().args(["unlock", "--bucket", &bucket]));
    assert_exit(&out, 2);
    assert!(
        stderr_of(&out).contains("pass --yes"),
        "{}",
        output_text(&out)
    );
    assert!(
        stdout_of(&out).contains("github-actions run 7"),
        "shows the holder: {}",
        output_text(&out)
    );
    assert_clean(&stderr_of(&out), "unlock without --yes");
    let (_, bytes) = root_of(&bucket).expect("root");
    assert_eq!(bytes, written.as_bytes(), "nothing written without --yes");

    let out = run(cli().args(["unlock", "--bucket", &bucket, "--yes"]));
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out).contains("Lock removed"),
        "{}",
        output_text(&out)
    );
    let (root, _) = root_of(&bucket).expect("root");
    assert!(root.lock.is_none(), "the lock is gone: {root:?}");

    let out = run(&mut deploy(&bucket, site.path(), &[]));
    assert_exit(&out, 0);
    assert_deployed(&bucket, &fixture_files(site.path()));

    let out = run(cli().args(["unlock", "--bucket", &bucket]));
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out).contains("is not locked: nothing to do"),
        "{}",
        output_text(&out)
    );
}

// ---- 6. every error without a dump ------------------------------------------------------------

/// stderr is a short message: `error: ` first, a few lines, no Debug output, no panic.
#[track_caller]
fn assert_clean(err: &str, case: &str) {
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("error: ")),
        "{case}: stderr starts with `error: `:\n{err}"
    );
    assert!(lines.len() <= 4, "{case}: at most a few lines:\n{err}");
    assert_no_dump(err, case);
}

/// No line of `err` looks like a panic or a Rust Debug dump.
#[track_caller]
fn assert_no_dump(err: &str, case: &str) {
    for line in err.lines() {
        for bad in ["Error {", "source:", "panicked", "RUST_BACKTRACE", "{ "] {
            assert!(
                !line.contains(bad),
                "{case}: stderr line contains {bad:?}:\n{err}"
            );
        }
    }
}

/// Runs a deploy of a small site set up by `setup`, and checks the exit code, that the
/// message is clean, and that it carries `hint`.
fn error_case(case: &str, code: i32, hint: &str, setup: impl FnOnce(&mut Command)) -> String {
    let site = temp_site();
    media_site(site.path(), 1, 1, 1000);
    let mut cmd = deploy("t-error-cases", site.path(), &["--timeout", "2s"]);
    setup(&mut cmd);
    let started = Instant::now();
    let out = run(&mut cmd);
    let err = stderr_of(&out);
    eprintln!(
        "case {case}: exit {:?} after {:.1}s\n{err}",
        out.status.code(),
        started.elapsed().as_secs_f64()
    );
    assert_exit(&out, code);
    assert_clean(&err, case);
    assert!(
        err.contains(hint),
        "{case}: carries the hint {hint:?}:\n{err}"
    );
    err
}

fn no_env_credentials(cmd: &mut Command) {
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
}

#[test]
fn error_access_key_with_trailing_newline() {
    let err = error_case(
        "AWS_ACCESS_KEY_ID with a newline",
        2,
        "fix the variable",
        |c| {
            c.env("AWS_ACCESS_KEY_ID", "test\n");
        },
    );
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
}

#[test]
fn error_empty_secret_key() {
    let err = error_case("empty AWS_SECRET_ACCESS_KEY", 2, "fix the variable", |c| {
        c.env("AWS_SECRET_ACCESS_KEY", "");
    });
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
}

#[test]
fn error_invalid_region() {
    error_case("--region 'us_east 1'", 2, "like us-east-1", |c| {
        c.env_remove("AWS_ENDPOINT_URL")
            .args(["--region", "us_east 1"]);
    });
}

#[test]
fn error_unknown_profile_with_env_credentials() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let empty = dir.path().join("empty");
    fs::write(&empty, "").expect("write empty config");
    let err = error_case("--profile nosuchprofile", 2, "hint:", |c| {
        c.env("AWS_CONFIG_FILE", &empty)
            .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
            .args(["--profile", "nosuchprofile"]);
    });
    assert!(err.contains("nosuchprofile"), "{err}");
}

#[test]
fn error_connection_refused() {
    let err = error_case("connection refused", 1, "hint:", |c| {
        c.env("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
    });
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn error_dns_failure() {
    let err = error_case("DNS failure", 1, "hint:", |c| {
        c.env("AWS_ENDPOINT_URL", "http://no-such-host.invalid");
    });
    assert!(err.contains("no-such-host.invalid"), "{err}");
}

#[test]
fn error_tls_to_a_plain_http_server() {
    let endpoint = format!("https://127.0.0.1:{}", moto().port());
    let err = error_case("TLS to plain HTTP", 1, "hint:", |c| {
        c.env("AWS_ENDPOINT_URL", &endpoint);
    });
    assert!(err.contains(&endpoint), "{err}");
    assert!(
        err.contains("is it an https:// URL for a plain http server?"),
        "says why: {err}"
    );
}

#[test]
fn error_no_credentials() {
    error_case("no credentials", 2, "hint:", no_env_credentials);
}

#[test]
fn error_imds_unreachable() {
    error_case("IMDS unreachable", 2, "hint:", |c| {
        no_env_credentials(c);
        c.env_remove("AWS_EC2_METADATA_DISABLED")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1");
    });
}

#[test]
fn error_expired_sso_token() {
    let home = tempfile::tempdir().expect("temporary HOME");
    let config = home.path().join("config");
    fs::write(
        &config,
        "[profile deployer]\n\
         sso_session = corp\n\
         sso_account_id = 111122223333\n\
         sso_role_name = Deployer\n\
         region = us-east-1\n\
         \n\
         [sso-session corp]\n\
         sso_start_url = https://corp.awsapps.com/start\n\
         sso_region = us-east-1\n",
    )
    .expect("write the AWS config");
    let err = error_case("expired SSO token", 2, "aws sso login", |c| {
        no_env_credentials(c);
        c.env("HOME", home.path())
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
            .args(["--profile", "deployer"]);
    });
    assert!(err.contains("hint:"), "{err}");
}

// ---- 7. a lock taken over while the deploy runs -----------------------------------------------

#[test]
fn lock_taken_over_mid_deploy_stops_the_deploy_with_exit_4() {
    let bucket = new_bucket("taken-over");
    let site = temp_site();
    // Six 1 MiB files two at a time at 256 KiB/s: about 12 s of uploads.
    let files = media_site(site.path(), 1, 6, MIB);
    let proxy = throttled(256 * 1024);
    let holder = "overtaken run";
    let mut running = spawn(&mut deploy_via(
        &proxy.endpoint(),
        holder,
        &bucket,
        site.path(),
        &["--lock-ttl", "6s", "-j", "2"],
    ));
    running.wait_until("the deploy took its lock and renewed it", || {
        lock_holder(&bucket).is_some_and(|(h, renewals)| h == holder && renewals >= 1)
    });
    let written = foreign_root("github-actions run 8", "thief");
    rt().block_on(moto().put(&bucket, MANIFEST, written.clone()));
    let out = running.wait();
    drop(proxy);

    assert_exit(&out, 4);
    // stderr carries the progress lines of the run (no terminal: plain lines), then the error.
    let err = stderr_of(&out);
    let last = &err[err.rfind("error: ").expect("an error line")..];
    assert!(
        last.starts_with("error: the deploy lock in s3://") && last.contains("was taken over"),
        "{err}"
    );
    assert_clean(last, "lock taken over");
    assert_no_dump(&err, "lock taken over");
    let (_, bytes) = root_of(&bucket).expect("root");
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        written,
        "the root written by the other holder stays"
    );
    let all = moto().requests(&bucket);
    assert!(
        all.iter()
            .any(|r| r.method == "PUT" && r.key().as_deref() == Some(MANIFEST) && r.status == 412),
        "the deploy's renewal was refused: {all:#?}"
    );
    // It stopped before its next write: the page (written only once every asset landed) never
    // went up, not every asset did, and nothing was deleted.
    let landed = |key: &str| {
        all.iter()
            .any(|r| r.method == "PUT" && r.status == 200 && r.key().as_deref() == Some(key))
    };
    assert!(!landed("index.html"), "{all:#?}");
    let assets = files
        .iter()
        .filter(|(rel, _)| rel.starts_with("media/") && landed(rel))
        .count();
    assert!(
        assets < files.len() - 1,
        "not every asset was written: {all:#?}"
    );
    assert!(
        !all.iter()
            .any(|r| r.method == "DELETE" || (r.method == "POST" && r.query().contains("delete"))),
        "{all:#?}"
    );
}
