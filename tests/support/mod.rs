//! Test ground shared by the integration tests: one moto server per test binary, an S3 client
//! and helpers for it, the CLI binary wired to moto, fixture copies and a fault-injecting proxy.

// Each test binary compiles its own copy of this module and uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;

const NOT_INSTALLED: &str =
    "moto server 5.2.5 is not installed: run .ci/setup (or: python3 -m venv \
     target/moto && target/moto/bin/pip install \"moto[server]==5.2.5\")";

/// How long moto may take to answer its first request (a cold venv imports a lot).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Ports are picked by binding port 0 and releasing it, so another process can take the port
/// before moto binds it; such a start is retried on a new port.
const START_ATTEMPTS: usize = 5;
/// The request log counts as complete once it stops growing for this long.
const LOG_SETTLE: Duration = Duration::from_millis(150);
/// Other tests of the same binary share the server and may keep the log growing; after this
/// long the log is read as it is (their lines are filtered out by bucket anyway).
const LOG_SETTLE_MAX: Duration = Duration::from_secs(5);

/// The moto server of this test process. See [`moto`].
pub struct Moto {
    port: u16,
    log: PathBuf,
    // Never written to and never dropped (it lives in a static): the launcher exits when its
    // stdin reaches EOF, which happens when this process exits, however it exits.
    _server: Child,
}

/// One line of moto's request log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path and query as sent, percent-encoded (`/bucket/caf%C3%A9.html?x-id=PutObject`).
    /// werkzeug logs `%2B`, `%26`, `%7E`, ... decoded, so such ASCII characters appear raw.
    pub path: String,
    pub status: u16,
}

/// The response headers of an object that deploys set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeadInfo {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_encoding: Option<String>,
    pub etag: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// A fault-injecting proxy in front of moto (`tests/support/fault_proxy.py`): PUTs whose
/// decoded path contains one of the given substrings get `403 AccessDenied`, everything else is
/// forwarded. Stopped on drop.
pub struct FaultProxy {
    port: u16,
    child: Child,
}

/// The moto server shared by all tests of this binary, started on first use.
///
/// Panics (never skips) when moto is not installed: a test ground that silently skips proves
/// nothing.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

/// A tokio runtime for sync `#[test]`s: `support::rt().block_on(moto().list_keys(&bucket))`.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build the tokio runtime for tests")
    })
}

/// A valid bucket name (lowercase, 3–63 characters) that no other call in this process returns.
pub fn unique_bucket(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("-{}-{n}", std::process::id());
    let mut tag: String = tag
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    tag.truncate(63 - "t-".len() - suffix.len());
    format!("t-{tag}{suffix}")
}

/// One deploy of `dir` to `bucket` through the CLI, with `extra` arguments.
pub fn deploy(bucket: &str, dir: &Path, extra: &[&str]) -> Output {
    cli()
        .arg("--bucket")
        .arg(bucket)
        .args(extra)
        .arg(dir)
        .output()
        .expect("run cargo-cdn-deploy")
}

/// Every file of a build folder by key.
pub fn build_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).expect("inside");
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_str().expect("utf-8"))
                .collect::<Vec<_>>()
                .join("/");
            (key, fs::read(e.path()).expect("read"))
        })
        .collect()
}

/// The CLI binary with moto's environment and nothing from the developer's or CI's environment
/// that would change what it does or prints.
pub fn cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-cdn-deploy"));
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str() {
            if is_foreign_env(name) {
                cmd.env_remove(name);
            }
        }
    }
    cmd.envs(moto().env());
    // Keep ~/.aws out: a developer's profile could set a region, endpoint or credentials.
    let nowhere = target_dir().join("moto-logs/no-aws-config");
    cmd.env("AWS_CONFIG_FILE", &nowhere);
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", &nowhere);
    cmd
}

/// Copies `fixtures/<name>` into a new temporary folder; the site is at `tmp.path()` itself.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let src = manifest_dir().join("fixtures").join(name);
    assert!(src.is_dir(), "fixture {} does not exist", src.display());
    // Not tempfile's default ".tmp" prefix: a site root whose own name is a dotfile could trip
    // the scanner's dotfile rule and make tests fail for the wrong reason.
    let tmp = tempfile::Builder::new()
        .prefix("site-")
        .tempdir()
        .expect("create a temporary folder for the fixture");
    copy_tree(&src, tmp.path());
    tmp
}

/// Copies a folder tree, creating `dst`; file names keep their exact bytes.
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap_or_else(|e| panic!("create {}: {e}", dst.display()));
    let entries =
        fs::read_dir(src).unwrap_or_else(|e| panic!("read folder {}: {e}", src.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("read folder {}: {e}", src.display()));
        let from = entry.path();
        // The OS name as is, so non-ASCII names keep their exact bytes (normalization included).
        let to = dst.join(entry.file_name());
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("stat {}: {e}", from.display()));
        if kind.is_dir() {
            copy_tree(&from, &to);
        } else if kind.is_file() {
            fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
        } else {
            panic!("fixtures hold only files and folders: {}", from.display());
        }
    }
}

/// The manifest of the deploy target under `prefix`: its root and every record (the base read
/// whole when there is one).
pub fn manifest_at(
    bucket: &str,
    prefix: &str,
) -> (
    cdn_deploy::state::format::RootDoc,
    BTreeMap<String, cdn_deploy::state::entry::Entry>,
) {
    let layout = cdn_deploy::state::layout::Layout::new(prefix, None);
    let (root, _) = rt().block_on(moto().get(bucket, &layout.manifest_key));
    let doc = cdn_deploy::state::format::decode_root(&root).expect("the root decodes");
    let base = doc
        .base
        .as_ref()
        .map(|b| rt().block_on(moto().get(bucket, &b.key)).0);
    cdn_deploy::state::view::materialize(&layout, &root, base.as_deref())
        .expect("the manifest is whole and valid")
}

/// Hex sha256 of a record, `None` when unverified.
pub fn hash_of(e: &cdn_deploy::state::entry::Entry) -> Option<String> {
    e.sha256.map(hex::encode)
}

pub fn cloudfront() -> aws_sdk_cloudfront::Client {
    let conf = aws_sdk_cloudfront::Config::builder()
        .behavior_version(aws_sdk_cloudfront::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudfront::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudfront::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(moto().endpoint())
        .build();
    aws_sdk_cloudfront::Client::from_conf(conf)
}

/// Creates a distribution in moto with one S3 origin per `(bucket, origin_path)`.
pub fn distribution(aliases: &[&str], origins: &[(&str, &str)]) -> String {
    let items: Vec<aws_sdk_cloudfront::types::Origin> = origins
        .iter()
        .enumerate()
        .map(|(i, (bucket, path))| {
            aws_sdk_cloudfront::types::Origin::builder()
                .id(format!("o{i}"))
                .domain_name(format!("{bucket}.s3.us-east-1.amazonaws.com"))
                .origin_path(*path)
                .s3_origin_config(
                    aws_sdk_cloudfront::types::S3OriginConfig::builder()
                        .origin_access_identity("")
                        .build(),
                )
                .build()
                .expect("origin")
        })
        .collect();
    let config = aws_sdk_cloudfront::types::DistributionConfig::builder()
        .caller_reference(unique_bucket("ref"))
        .aliases(
            aws_sdk_cloudfront::types::Aliases::builder()
                .quantity(aliases.len() as i32)
                .set_items(Some(aliases.iter().map(|a| a.to_string()).collect()))
                .build()
                .expect("aliases"),
        )
        .origins(
            aws_sdk_cloudfront::types::Origins::builder()
                .quantity(items.len() as i32)
                .set_items(Some(items))
                .build()
                .expect("origins"),
        )
        .default_cache_behavior(
            aws_sdk_cloudfront::types::DefaultCacheBehavior::builder()
                .target_origin_id("o0")
                .viewer_protocol_policy(
                    aws_sdk_cloudfront::types::ViewerProtocolPolicy::RedirectToHttps,
                )
                .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
                .build()
                .expect("behavior"),
        )
        .comment("cdn-deploy test")
        .enabled(true)
        .build()
        .expect("config");
    let out = rt()
        .block_on(
            cloudfront()
                .create_distribution()
                .distribution_config(config)
                .send(),
        )
        .unwrap_or_else(|e| {
            panic!(
                "create distribution: {}",
                aws_sdk_cloudfront::error::DisplayErrorContext(e)
            )
        });
    out.distribution().expect("distribution").id().to_string()
}

/// Every invalidation of the distribution, oldest first, as sorted path lists.
pub fn invalidations(id: &str) -> Vec<Vec<String>> {
    let cf = cloudfront();
    let list = rt()
        .block_on(cf.list_invalidations().distribution_id(id).send())
        .expect("list invalidations");
    let summaries = list
        .invalidation_list()
        .map(|l| l.items().to_vec())
        .unwrap_or_default();
    let mut out: Vec<(aws_sdk_cloudfront::primitives::DateTime, Vec<String>)> = summaries
        .iter()
        .map(|s| {
            let inv = rt()
                .block_on(cf.get_invalidation().distribution_id(id).id(s.id()).send())
                .expect("get invalidation");
            let mut paths = inv
                .invalidation()
                .and_then(|i| i.invalidation_batch())
                .and_then(|b| b.paths())
                .map(|p| p.items().to_vec())
                .unwrap_or_default();
            paths.sort();
            (*s.create_time(), paths)
        })
        .collect();
    out.sort_by_key(|(t, _)| (t.secs(), t.subsec_nanos()));
    out.into_iter().map(|(_, p)| p).collect()
}

/// A fresh bucket in moto.
pub fn new_bucket(tag: &str) -> String {
    let bucket = unique_bucket(tag);
    rt().block_on(moto().create_bucket(&bucket));
    bucket
}

/// A command's exit status and output, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", output_text(out));
}

impl Moto {
    fn start() -> Moto {
        let python = python();
        let launcher = manifest_dir().join("tests/support/moto_launcher.py");
        prune_old_logs();
        let log = log_dir().join(format!("moto-{}-{}.log", exe_stem(), std::process::id()));
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let out = File::create(&log)
                .unwrap_or_else(|e| panic!("create moto log {}: {e}", log.display()));
            let err = out.try_clone().expect("duplicate the moto log handle");
            let mut child = Command::new(&python)
                .arg(&launcher)
                .args(["127.0.0.1", &port.to_string()])
                .env("PYTHONUNBUFFERED", "1")
                .env("PYTHONIOENCODING", "utf-8:backslashreplace")
                .stdin(Stdio::piped())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("start {} {}: {e}", python.display(), launcher.display())
                });
            match wait_until_up(&mut child, port) {
                Startup::Up => {
                    return Moto {
                        port,
                        log,
                        _server: child,
                    }
                }
                Startup::Exited(status) => {
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    if !text.contains("in use") {
                        panic!(
                            "moto exited at startup ({status}); log {}:\n{}\n{NOT_INSTALLED}",
                            log.display(),
                            tail(&text, 40)
                        );
                    }
                    failures.push(format!("port {port}: {}", tail(&text, 3)));
                }
                Startup::TimedOut => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    panic!(
                        "moto did not answer on 127.0.0.1:{port} within {STARTUP_TIMEOUT:?}; \
                         log {}:\n{}",
                        log.display(),
                        tail(&text, 40)
                    );
                }
            }
        }
        panic!(
            "moto could not bind a port in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        );
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// moto's stderr: werkzeug's request log, one line per request.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The environment an AWS tool needs to talk to this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Number of complete log lines so far; pass it to [`Moto::requests_since`] to see only
    /// the requests made after this point.
    pub fn mark(&self) -> usize {
        complete_lines(&self.settled_log()).len()
    }

    /// Every request to `bucket` (its own path, its objects, its subresources) so far.
    pub fn requests(&self, bucket: &str) -> Vec<Request> {
        self.requests_since(0, bucket)
    }

    /// The requests to `bucket` logged after `mark` (from [`Moto::mark`]).
    pub fn requests_since(&self, mark: usize, bucket: &str) -> Vec<Request> {
        let exact = format!("/{bucket}");
        let object = format!("/{bucket}/");
        let query = format!("/{bucket}?");
        complete_lines(&self.settled_log())
            .into_iter()
            .skip(mark)
            .filter_map(parse_log_line)
            .filter(|r| {
                r.path == exact || r.path.starts_with(&object) || r.path.starts_with(&query)
            })
            .collect()
    }

    /// The log once it has stopped growing: werkzeug may write a request's line just after the
    /// client has its response.
    fn settled_log(&self) -> String {
        let read = || {
            fs::read(&self.log)
                .unwrap_or_else(|e| panic!("read moto log {}: {e}", self.log.display()))
        };
        let deadline = Instant::now() + LOG_SETTLE_MAX;
        let mut last = read();
        loop {
            thread::sleep(LOG_SETTLE);
            let now = read();
            if now.len() == last.len() || Instant::now() >= deadline {
                return String::from_utf8_lossy(&now).into_owned();
            }
            last = now;
        }
    }

    /// An S3 client for this server: static test credentials, us-east-1, path-style.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint())
    }

    pub async fn create_bucket(&self, bucket: &str) {
        self.s3()
            .await
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {bucket}: {}", DisplayErrorContext(e)));
    }

    /// All keys of the bucket, every page, sorted.
    pub async fn list_keys(&self, bucket: &str) -> Vec<String> {
        let client = self.s3().await;
        let mut pages = client
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.unwrap_or_else(|e| panic!("list s3://{bucket}: {}", DisplayErrorContext(e)));
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys.sort();
        keys
    }

    /// The object's bytes (as stored: a gzip-encoded body stays compressed) and headers.
    pub async fn get(&self, bucket: &str, key: &str) -> (Vec<u8>, HeadInfo) {
        self.try_get(bucket, key)
            .await
            .unwrap_or_else(|| panic!("s3://{bucket}/{key} does not exist"))
    }

    /// Like [`Moto::get`], but `None` when the key does not exist.
    pub async fn try_get(&self, bucket: &str, key: &str) -> Option<(Vec<u8>, HeadInfo)> {
        let result = self
            .s3()
            .await
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return None,
            Err(e) => panic!("get s3://{bucket}/{key}: {}", DisplayErrorContext(e)),
        };
        let head = HeadInfo {
            content_type: out.content_type().map(str::to_string),
            cache_control: out.cache_control().map(str::to_string),
            content_encoding: out.content_encoding().map(str::to_string),
            etag: out.e_tag().map(str::to_string),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        };
        let body = out
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("read body of s3://{bucket}/{key}: {e}"))
            .into_bytes()
            .to_vec();
        Some((body, head))
    }

    /// Stores `bytes` at `key` with no headers set; returns the ETag.
    pub async fn put(&self, bucket: &str, key: &str, bytes: impl Into<Vec<u8>>) -> String {
        let out = self
            .s3()
            .await
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(bytes.into()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {}", DisplayErrorContext(e)));
        out.e_tag().unwrap_or_default().to_string()
    }

    pub async fn delete(&self, bucket: &str, key: &str) {
        self.s3()
            .await
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete s3://{bucket}/{key}: {}", DisplayErrorContext(e)));
    }
}

impl Request {
    /// The object key, percent-decoded (`None` for requests to the bucket itself).
    pub fn key(&self) -> Option<String> {
        let path = self.path.split_once('?').map_or(&*self.path, |(p, _)| p);
        let (_bucket, key) = path.trim_start_matches('/').split_once('/')?;
        (!key.is_empty()).then(|| percent_decode(key))
    }

    /// The query string without its `?` (`""` when there is none).
    pub fn query(&self) -> &str {
        self.path.split_once('?').map_or("", |(_, q)| q)
    }
}

impl FaultProxy {
    /// Starts a proxy in front of [`moto`] that denies PUTs whose decoded path contains any of
    /// `deny_put`.
    pub fn start(deny_put: &[&str]) -> FaultProxy {
        FaultProxy::start_denying(deny_put, &[])
    }

    /// Like [`FaultProxy::start`], and also denies POSTs whose decoded path contains any of
    /// `deny_post`.
    pub fn start_denying(deny_put: &[&str], deny_post: &[&str]) -> FaultProxy {
        let mut args: Vec<String> = deny_put.iter().map(|d| format!("--deny-put={d}")).collect();
        args.extend(deny_post.iter().map(|d| format!("--deny-post={d}")));
        FaultProxy::with_args(&args)
    }

    /// A proxy with any of `fault_proxy.py`'s options (`--drop-response-put=…`,
    /// `--fail-rate=0.2`, `--seed=7`, `--delay-ms=15`, `--throttle-put-bps=…`, `--log=…`); the
    /// `=` form keeps a value starting with `-` from reading as an option.
    pub fn with_args(args: &[String]) -> FaultProxy {
        let (child, port) =
            start_helper("fault_proxy.py", &["--upstream", &moto().endpoint()], args);
        FaultProxy { port, child }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An S3 client that goes through the proxy.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint())
    }
}

/// A CloudFront edge emulator in front of moto (`tests/support/edge.py`): caches every response
/// by exact path for 24 h and applies the distribution's invalidations as CloudFront would.
/// Stopped on drop.
pub struct Edge {
    port: u16,
    child: Child,
}

impl Edge {
    pub fn start(distribution: &str) -> Edge {
        let (child, port) = start_helper(
            "edge.py",
            &["--moto", &moto().endpoint(), "--distribution", distribution],
            &[],
        );
        Edge { port, child }
    }

    /// `http://127.0.0.1:PORT`, the base URL visitors would use.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GET `path` (already percent-encoded) through the edge.
    pub fn get(&self, path: &str) -> HttpResponse {
        http_get(self.port, path)
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP response, read whole.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Lowercase names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A plain HTTP/1.1 GET on loopback, `Accept-Encoding: identity`, connection closed after.
pub fn http_get(port: u16, path: &str) -> HttpResponse {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("set a read timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Starts one of the Python helpers of `tests/support/` (which print `READY <port>` once
/// listening and exit when their stdin closes); returns it and its port.
fn start_helper(script: &str, fixed: &[&str], args: &[String]) -> (Child, u16) {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    let path = manifest_dir().join("tests/support").join(script);
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    let stem = script.trim_end_matches(".py");
    let log = log_dir().join(format!(
        "{stem}-{}-{}-{n}.log",
        exe_stem(),
        std::process::id()
    ));
    let err = File::create(&log).unwrap_or_else(|e| panic!("create log {}: {e}", log.display()));
    let mut child = Command::new(python())
        .arg(&path)
        .args(["--port", "0"])
        .args(fixed)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    match line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse::<u16>().ok())
    {
        Some(port) => (child, port),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let text = fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "{script} did not report READY (got {line:?}); log {}:\n{}",
                log.display(),
                tail(&text, 40)
            );
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh client per call: a client caches connections on the runtime that first used them,
/// and tests may run on different runtimes.
fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

enum Startup {
    Up,
    Exited(ExitStatus),
    TimedOut,
}

fn wait_until_up(child: &mut Child, port: u16) -> Startup {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Startup::Exited(status);
        }
        if answers_http(port) {
            return Startup::Up;
        }
        thread::sleep(Duration::from_millis(100));
    }
    Startup::TimedOut
}

fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut status = [0u8; 7];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut status).is_ok()
        && &status == b"HTTP/1."
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local address of 127.0.0.1:0")
        .port()
}

fn python() -> PathBuf {
    let python = std::env::var_os("CDN_DEPLOY_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target/moto/bin/python"));
    if !python.is_file() {
        panic!("{NOT_INSTALLED} [no python at {}]", python.display());
    }
    python
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    manifest_dir().join("target")
}

fn log_dir() -> PathBuf {
    let dir = target_dir().join("moto-logs");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Every test process leaves its logs behind for post-mortems; a day later they are noise.
fn prune_old_logs() {
    let Ok(entries) = fs::read_dir(log_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(24 * 3600));
        if stale && entry.path().extension() == Some(OsStr::new("log")) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The test binary's name (`harness-0123abcd`), so each log says which binary wrote it.
fn exe_stem() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| {
            p.file_stem()
                .map(OsStr::to_string_lossy)
                .map(|s| s.into_owned())
        })
        .unwrap_or_else(|| "test".to_string())
}

/// Variables that would make the CLI talk to something other than moto, or behave as in CI.
fn is_foreign_env(name: &str) -> bool {
    const CI: &[&str] = &[
        "CI",
        "BUILD_ID",
        "BUILD_NUMBER",
        "CODEBUILD_BUILD_ID",
        "GITLAB_CI",
        "JENKINS_URL",
        "TEAMCITY_VERSION",
        "TF_BUILD",
        "TRAVIS",
    ];
    const PREFIXES: &[&str] = &[
        "AWS_",
        "CDN_DEPLOY_",
        "GITHUB_",
        "CI_",
        "BUILDKITE",
        "CIRCLE",
    ];
    CI.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

fn complete_lines(log: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = log.split('\n').collect();
    // The piece after the last newline is either empty or a line still being written.
    lines.pop();
    lines
}

/// Parses `127.0.0.1 - - [24/Nov/2025 18:40:01] "PUT /b/k?x-id=PutObject HTTP/1.1" 200 -`.
/// werkzeug wraps the quoted part in ANSI colours for non-200 statuses, even into a file.
fn parse_log_line(line: &str) -> Option<Request> {
    let line = strip_ansi(line);
    let start = line.find("] \"")? + 3;
    let end = line.rfind('"')?;
    let request_line = line.get(start..end)?;
    let status = line
        .get(end + 1..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let (method, rest) = request_line.split_once(' ')?;
    let (target, _version) = rest.rsplit_once(' ')?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(Request {
        method: method.to_string(),
        path: reencode_logged_target(target),
        status,
    })
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI sequence: ESC [ parameters final-letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// werkzeug logs the target as an IRI: percent-encoded UTF-8 decoded to characters, then
/// `\` escaped as `\\` and C1 controls as `\xNN`. This undoes the escapes and percent-encodes
/// every non-ASCII character again, giving the target the client sent (up to the ASCII
/// characters werkzeug also decodes).
fn reencode_logged_target(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    let mut chars = target.chars();
    while let Some(c) = chars.next() {
        let c = if c == '\\' {
            match chars.next() {
                Some('x') => {
                    let hex: String = chars.by_ref().take(2).collect();
                    u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or('\u{fffd}')
                }
                Some(other) => other,
                None => '\\',
            }
        } else {
            c
        };
        if c.is_ascii() && !c.is_ascii_control() && c != '\\' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
