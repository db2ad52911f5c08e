//! The effective settings of one run: every source layered by precedence, validated and
//! normalized, and the environment (CI, terminal, lock holder, git commit) sensed once.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use sha2::{Digest, Sha256};

use crate::cli::Args;
use crate::cloud::aws::AwsOptions;
use crate::decide::invalidation::DEFAULT_MAX_PATHS;
use crate::decide::plan::{PlanOptions, DEFAULT_MAX_DELETE};
use crate::error::Error;
use crate::local::rules::HeaderRule;
use crate::state::history::DEFAULT_KEEP;
use crate::state::layout::Layout;
pub mod sources;

use self::sources::{FileTable, Layer, Origin, SourceError};

/// Requests in flight by default. Measured with a 30 ms round trip against a server that is not
/// the bottleneck (.ci/bench-concurrency): 64 uploads small files 1.5x faster than 32 for
/// less CPU and 3 MiB more memory; 128 gains little more, and 64 requests every 30 ms stay
/// under S3's 3,500 writes per second per prefix.
pub const DEFAULT_CONCURRENCY: u64 = 64;
/// How long a request may go unanswered before it is retried (three attempts in all).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// A dead deploy blocks others at most this long: renewed every third of it, the lock of a
/// live deploy never lapses on a healthy connection.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(60);
/// How long retired content-hashed files stay: a week covers a tab left open over a weekend,
/// and a page cached by a browser or a service worker for days; old chunks are small.
pub const DEFAULT_KEEP_OLD_ASSETS: Duration = Duration::from_secs(7 * 86_400);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub command: crate::cli::Command,
    /// `--yes`: no question asked before a rollback or an unlock.
    pub yes: bool,
    pub headers: Vec<HeaderRule>,
    /// `false`: no built-in Cache-Control policy, only the rules'.
    pub default_headers: bool,
    pub print_config: bool,
    /// The `--target` in effect, if any.
    pub target_name: Option<String>,
    /// Every value set by some source, with that source's name (for `-v` and `--print-config`).
    pub origins: BTreeMap<String, (Value, String)>,
    pub dir: PathBuf,
    /// `None`: taken from the distribution's S3 origin.
    pub bucket: Option<String>,
    /// "" or ends with '/'; `None`: taken from the distribution's OriginPath, else "".
    pub prefix: Option<String>,
    manifest_key: Option<String>,
    pub distributions: Vec<String>,
    pub domain: Option<String>,
    pub max_paths: usize,
    pub invalidate: bool,
    pub wait: Option<Duration>,
    pub aws: AwsOptions,
    pub plan: PlanOptions,
    pub dry_run: bool,
    pub json: bool,
    pub concurrency: usize,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Globs of files whose bytes never change under their name, besides those the built-in
    /// detection recognises.
    pub immutable: Vec<String>,
    pub lock_ttl: Duration,
    /// How long to wait for another deploy's lock; zero fails at once.
    pub lock_wait: Duration,
    pub keep_deploys: usize,
    /// Deploy a folder that looks like a project root.
    pub allow_project_dir: bool,
    pub verify: bool,
    pub verify_url: Option<String>,
    /// A broken same-site reference stops the deploy instead of warning.
    pub strict: bool,
    pub verbosity: Verbosity,
    pub env: Environment,
}

/// Where this deploy writes: known once the bucket and prefix are (they may come from the
/// distribution).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub layout: Layout,
}

impl Target {
    /// `s3://bucket/prefix/` for messages.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.layout.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.layout.prefix
    }
}

/// What the run learns from its surroundings, read once at start.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// Progress bars only for a person watching a terminal, never in CI logs.
    pub interactive: bool,
    /// Who takes the deploy lock: a CI run id, or a random id for a local run.
    pub holder: String,
    pub git_commit: Option<String>,
    /// How the user runs the tool, for hints: `cargo cdn-deploy` or `npx cdn-deploy`.
    pub program: &'static str,
    /// An S3 endpoint set through `AWS_ENDPOINT_URL(_S3)`: S3-compatible stores want path-style.
    pub env_endpoint: bool,
}

impl Environment {
    pub fn sense(var: impl Fn(&str) -> Option<String>) -> Environment {
        let ci = [
            "CI",
            "GITHUB_ACTIONS",
            "GITLAB_CI",
            "BUILDKITE",
            "CIRCLECI",
            "JENKINS_URL",
        ]
        .iter()
        .any(|v| var(v).is_some_and(|s| !s.is_empty() && s != "false" && s != "0"));
        Environment {
            program: crate::cli::program(var("CDN_DEPLOY_LAUNCHER").as_deref()),
            env_endpoint: ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
                .iter()
                .any(|v| var(v).is_some_and(|s| !s.is_empty())),
            interactive: !ci && std::io::stderr().is_terminal(),
            holder: holder(&var),
            git_commit: [
                "GITHUB_SHA",
                "CI_COMMIT_SHA",
                "BUILDKITE_COMMIT",
                "CIRCLE_SHA1",
                "GIT_COMMIT",
            ]
            .iter()
            .find_map(|v| var(v).filter(|s| !s.is_empty())),
        }
    }
}

/// A lock holder that says which CI job holds it, and never a user or host name (the lock may be
/// publicly readable).
fn holder(var: &impl Fn(&str) -> Option<String>) -> String {
    if let Some(h) = var("CDN_DEPLOY_LOCK_HOLDER").filter(|s| !s.is_empty()) {
        return h;
    }
    let ci = [
        ("GITHUB_RUN_ID", "github-actions run"),
        ("CI_JOB_ID", "gitlab job"),
        ("BUILDKITE_BUILD_ID", "buildkite build"),
        ("CIRCLE_WORKFLOW_JOB_ID", "circleci job"),
        ("BUILD_TAG", "jenkins"),
    ];
    for (name, label) in ci {
        if let Some(id) = var(name).filter(|s| !s.is_empty()) {
            return format!("{label} {id}");
        }
    }
    let seed = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    let digest = Sha256::digest(seed.as_bytes());
    format!("local run {}", hex::encode(&digest[..6]))
}

impl Settings {
    /// Settings from the command line alone, as if no configuration file or variable existed.
    pub fn from_args(args: Args, env: Environment) -> Result<Settings, Error> {
        let cwd = std::env::current_dir().unwrap_or_default();
        Settings::layered(args, env, Vec::new(), &cwd)
    }

    /// Settings from every source: flags > `CDN_DEPLOY_*` > cdn-deploy.toml > package.json
    /// `"cdn-deploy"` > Cargo.toml `[package.metadata.cdn-deploy]`.
    pub fn load(
        args: Args,
        env: Environment,
        vars: &[(String, String)],
        cwd: &Path,
    ) -> Result<Settings, Error> {
        let target = args
            .target
            .clone()
            .or_else(|| var(vars, "CDN_DEPLOY_TARGET"));
        let files = discover(&args, vars, cwd)?;
        if let Some(name) = &target {
            let mut known: Vec<String> = files.iter().flat_map(FileTable::target_names).collect();
            known.sort();
            known.dedup();
            if !known.contains(name) {
                return Err(SourceError::UnknownTarget {
                    name: name.clone(),
                    known,
                }
                .into());
            }
        }
        // Every file's base settings by precedence, then every file's target on top, so a
        // target overrides base settings wherever they were written.
        let mut bases = Vec::new();
        let mut targets = Vec::new();
        for file in &files {
            let mut layers = file.layers(target.as_deref())?.into_iter();
            bases.extend(layers.next());
            targets.extend(layers);
        }
        let mut layers = bases;
        layers.extend(targets);
        layers.extend(sources::env_layer(vars)?);
        let mut settings = Settings::layered(args, env, layers, cwd)?;
        settings.target_name = target;
        Ok(settings)
    }

    fn layered(
        args: Args,
        env: Environment,
        mut layers: Vec<Layer>,
        cwd: &Path,
    ) -> Result<Settings, Error> {
        layers.push(flag_layer(&args));
        let merged = sources::merge(&layers);
        let text = |key: &str| -> Option<String> {
            merged
                .get(key)
                .and_then(|(v, _)| v.as_str().map(str::to_string))
        };
        let list = |key: &str| -> Vec<String> {
            match merged.get(key).map(|(v, _)| v) {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let flag = |key: &str| merged.get(key).and_then(|(v, _)| v.as_bool());
        let duration =
            |key: &str, min: u64, max: u64, default: Duration| -> Result<Duration, Error> {
                match merged.get(key) {
                    Some((v, origin)) => {
                        let d = v
                            .as_u64()
                            .map(Duration::from_secs)
                            .or_else(|| v.as_str().and_then(sources::parse_duration))
                            .ok_or_else(|| SourceError::WrongType {
                                origin: origin.label.clone(),
                                key: key.to_string(),
                                expected: "a duration such as \"30s\", \"12h\" or \"7d\"",
                                found: format!("{v}"),
                            })?;
                        let secs = sources::in_range(key, d.as_secs(), origin, min, max)?;
                        Ok(Duration::from_secs(secs))
                    }
                    None => Ok(default),
                }
            };
        let count = |key: &str, min: u64, max: u64, default: u64| -> Result<u64, Error> {
            match merged.get(key) {
                Some((v, origin)) => Ok(sources::in_range(
                    key,
                    v.as_u64().unwrap_or(u64::MAX),
                    origin,
                    min,
                    max,
                )?),
                None => Ok(default),
            }
        };

        // A folder given on the command line is taken as is; one from a file is relative to
        // that file.
        // Only a deploy needs a build folder; `--print-config` shows what is set.
        let needs_dir = args.command == crate::cli::Command::Deploy && !args.print_config;
        let dir = match (args.dir.clone(), merged.get("dir")) {
            (Some(d), _) => d,
            (None, Some((Value::String(d), origin))) => match &origin.base {
                Some(base) => base.join(d),
                None => cwd.join(d),
            },
            _ if !needs_dir => PathBuf::new(),
            _ => {
                return Err(Error::Usage(format!(
                    "no build folder given: pass the folder to deploy, e.g. `{} --bucket my-site dist/`, or set `dir` in the configuration",
                    env.program
                )))
            }
        };
        let distributions = list("distribution");
        let domain = text("domain").map(|d| normalize_domain(&d));
        let (bucket, url_prefix) = match text("bucket") {
            Some(raw) => {
                crate::cli::set_bucket_origin(match origin_of(&merged, "bucket").as_str() {
                    "command line" => "--bucket".to_string(),
                    other => other.to_string(),
                });
                let (b, p) = split_bucket(&raw).map_err(|e| {
                    Error::Usage(format!("{}: {e}", origin_of(&merged, "bucket")))
                })?;
                (Some(b), p)
            }
            None if domain.is_some() || !distributions.is_empty() || args.print_config => {
                (None, None)
            }
            None => {
                return Err(Error::Usage(
                    "no bucket given: pass --bucket NAME, set `bucket` in the configuration, or --domain HOST to take it from the CloudFront distribution".into(),
                ))
            }
        };
        let prefix = match (text("prefix"), url_prefix) {
            (Some(_), Some(_)) => {
                return Err(Error::Usage(format!(
                    "the prefix is given twice: in `bucket` {:?} and in `prefix`; keep one",
                    text("bucket").unwrap_or_default()
                )))
            }
            (Some(p), None) | (None, Some(p)) => Some(normalize_prefix(&p)?),
            (None, None) => None,
        };
        let manifest_key = match text("manifest-key") {
            Some(k) if k.is_empty() || k.ends_with('/') || k.starts_with('/') => {
                return Err(Error::Usage(format!(
                    "`manifest-key` {k:?} must be an object key such as `deploy/manifest.json`"
                )))
            }
            other => other,
        };
        if let Some(id) = distributions
            .iter()
            .find(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(Error::Usage(format!(
                "distribution {id:?} is not a CloudFront distribution id (like E2ABC123DEF456)"
            )));
        }
        let endpoint_url = match text("endpoint-url") {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(Error::Usage(format!(
                    "endpoint url {url:?} must start with http:// or https://"
                )))
            }
            other => other,
        };
        let invalidate = flag("invalidate").unwrap_or(true);
        let wait = flag("wait").unwrap_or(false);
        if wait && !invalidate {
            return Err(Error::Usage(format!(
                "`wait` ({}) asks to wait for an invalidation that `invalidate = false` ({}) turns off; drop one",
                origin_of(&merged, "wait"),
                origin_of(&merged, "invalidate")
            )));
        }
        let keep_deploys = usize::try_from(count("keep-deploys", 0, 1000, DEFAULT_KEEP as u64)?)
            .unwrap_or(DEFAULT_KEEP);
        let headers: Vec<HeaderRule> = match merged.get("headers") {
            Some((v, origin)) => serde_json::from_value(v.clone())
                .map_err(|e| Error::Usage(format!("{}: `headers`: {e}", origin.label)))?,
            None => Vec::new(),
        };
        Ok(Settings {
            command: args.command.clone(),
            yes: args.yes,
            dir,
            bucket,
            prefix,
            manifest_key,
            distributions,
            domain,
            max_paths: usize::try_from(count("max-paths", 1, 3000, DEFAULT_MAX_PATHS as u64)?)
                .unwrap_or(DEFAULT_MAX_PATHS),
            invalidate,
            wait: if wait {
                Some(duration(
                    "wait-timeout",
                    1,
                    86_400,
                    Duration::from_secs(900),
                )?)
            } else {
                None
            },
            aws: AwsOptions {
                region: text("region"),
                profile: text("profile"),
                endpoint_url,
                env_endpoint: env.env_endpoint,
                timeout: duration("timeout", 1, 3600, DEFAULT_TIMEOUT)?,
            },
            plan: PlanOptions {
                force: args.force,
                delete: flag("delete").unwrap_or(true),
                max_delete: usize::try_from(count(
                    "max-delete",
                    0,
                    u64::MAX,
                    DEFAULT_MAX_DELETE as u64,
                )?)
                .unwrap_or(usize::MAX),
                delete_excluded: flag("delete-excluded").unwrap_or(false),
                allow_mass_delete: flag("allow-mass-delete").unwrap_or(false),
                keep_old_assets: i64::try_from(
                    duration(
                        "keep-old-assets",
                        0,
                        10 * 365 * 86_400,
                        DEFAULT_KEEP_OLD_ASSETS,
                    )?
                    .as_secs(),
                )
                .unwrap_or(i64::MAX),
                keep_copies: keep_deploys > 0,
            },
            dry_run: args.dry_run,
            json: args.json,
            concurrency: usize::try_from(count("concurrency", 1, 256, DEFAULT_CONCURRENCY)?)
                .unwrap_or(32),
            include: list("include"),
            exclude: list("exclude"),
            immutable: list("immutable"),
            lock_ttl: duration("lock-ttl", 3, 3600, DEFAULT_LOCK_TTL)?,
            lock_wait: duration("lock-wait", 0, 86_400, Duration::ZERO)?,
            keep_deploys,
            allow_project_dir: flag("allow-project-dir").unwrap_or(false),
            verify: flag("verify").unwrap_or(false),
            verify_url: text("verify-url"),
            strict: flag("strict").unwrap_or(false),
            headers,
            default_headers: flag("default-headers").unwrap_or(true),
            verbosity: if args.quiet {
                Verbosity::Quiet
            } else if args.verbose > 0 {
                Verbosity::Verbose
            } else {
                Verbosity::Normal
            },
            print_config: args.print_config,
            target_name: None,
            origins: merged
                .into_iter()
                .map(|(k, (v, o))| (k, (v, o.label)))
                .collect(),
            env,
        })
    }

    /// Where the deploy writes, once the bucket and prefix are known.
    pub fn target(&self, bucket: String, prefix: String) -> Target {
        Target {
            bucket,
            layout: Layout::new(&prefix, self.manifest_key.as_deref()),
        }
    }

    /// The effective configuration as TOML, each value annotated with the source that set it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(t) = &self.target_name {
            out.push_str(&format!("# target: {t}\n"));
        }
        let mut rules = None;
        for (key, (value, origin)) in &self.origins {
            if key == "headers" {
                rules = Some((value, origin));
                continue;
            }
            let rendered = toml_value(value);
            out.push_str(&format!("{key} = {rendered}  # {origin}\n"));
        }
        if let Some((Value::Array(list), origin)) = rules {
            for rule in list {
                out.push_str(&format!("\n[[headers]]  # {origin}\n"));
                if let Value::Object(fields) = rule {
                    for (k, v) in fields {
                        out.push_str(&format!("{k} = {}\n", toml_value(v)));
                    }
                }
            }
        }
        out
    }
}

fn origin_of(merged: &BTreeMap<String, (Value, Origin)>, key: &str) -> String {
    merged
        .get(key)
        .map(|(_, o)| o.label.clone())
        .unwrap_or_else(|| "default".into())
}

fn toml_value(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k:?} = {}", toml_value(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(toml_value).collect();
            format!("[{}]", parts.join(", "))
        }
        // JSON strings, numbers and booleans are spelled the same in TOML.
        other => other.to_string(),
    }
}

fn var(vars: &[(String, String)], name: &str) -> Option<String> {
    vars.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// The configuration files that apply, lowest precedence first.
fn discover(args: &Args, vars: &[(String, String)], cwd: &Path) -> Result<Vec<FileTable>, Error> {
    let explicit = args
        .config
        .clone()
        .or_else(|| var(vars, "CDN_DEPLOY_CONFIG").map(PathBuf::from));
    if let Some(path) = explicit {
        let path = cwd.join(path);
        if !path.is_file() {
            return Err(Error::Usage(format!(
                "--config {}: no such file",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let table = if name == "Cargo.toml" {
            sources::read_cargo(Some(&path), args.package.as_deref(), cwd)?
        } else if name.ends_with(".json") {
            sources::read_package_json(&path)?
        } else {
            Some(sources::read_toml(&path)?)
        };
        return table.map(|t| vec![t]).ok_or_else(|| {
            Error::Usage(format!(
                "{} has no cdn-deploy settings (a \"cdn-deploy\" key in package.json, [package.metadata.cdn-deploy] in Cargo.toml)",
                path.display()
            ))
        });
    }
    let mut files = Vec::new();
    // Cargo is asked only when asked for (`--manifest-path`, `-p`), or when the Cargo.toml
    // found has cdn-deploy settings: a web project, or a Rust project configured by flags, never
    // needs a working cargo.
    let explicit = args.manifest_path.is_some() || args.package.is_some();
    let cargo_toml = args
        .manifest_path
        .clone()
        .or_else(|| sources::find_up(cwd, "Cargo.toml"))
        .filter(|path| {
            explicit || std::fs::read_to_string(path).is_ok_and(|text| has_cdn_deploy_table(&text))
        });
    if let Some(manifest) = cargo_toml {
        if let Some(t) = sources::read_cargo(Some(&manifest), args.package.as_deref(), cwd)? {
            files.push(t);
        }
    }
    // Under `npm run`, npm names the project's package.json.
    let package_json = var(vars, "npm_package_json")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| sources::find_up(cwd, "package.json"));
    if let Some(pj) = package_json {
        if let Some(t) = sources::read_package_json(&pj)? {
            files.push(t);
        }
    }
    if let Some(toml) = sources::find_up(cwd, "cdn-deploy.toml") {
        files.push(sources::read_toml(&toml)?);
    }
    Ok(files)
}

/// The values given as flags, as the top layer.
fn flag_layer(args: &Args) -> Layer {
    let mut values = Map::new();
    let mut put = |key: &str, v: Option<Value>| {
        if let Some(v) = v {
            values.insert(key.to_string(), v);
        }
    };
    put("bucket", args.bucket.clone().map(Value::from));
    put("prefix", args.prefix.clone().map(Value::from));
    put("domain", args.domain.clone().map(Value::from));
    put("region", args.region.clone().map(Value::from));
    put("profile", args.profile.clone().map(Value::from));
    put("endpoint-url", args.endpoint_url.clone().map(Value::from));
    put("manifest-key", args.manifest_key.clone().map(Value::from));
    let list = |l: &Vec<String>| (!l.is_empty()).then(|| Value::from(l.clone()));
    put("distribution", list(&args.distributions));
    put("include", list(&args.include));
    put("exclude", list(&args.exclude));
    put("max-delete", args.max_delete.map(|n| Value::from(n as u64)));
    put("concurrency", args.concurrency.map(Value::from));
    put("max-paths", args.max_paths.map(|n| Value::from(n as u64)));
    put("lock-ttl", args.lock_ttl.clone().map(Value::from));
    put("lock-wait", args.lock_wait.clone().map(Value::from));
    put("timeout", args.timeout.clone().map(Value::from));
    put("wait-timeout", args.wait_timeout.clone().map(Value::from));
    put(
        "keep-old-assets",
        args.keep_old_assets.clone().map(Value::from),
    );
    put("keep-deploys", args.keep_deploys.map(Value::from));
    put("verify-url", args.verify_url.clone().map(Value::from));
    put("immutable", list(&args.immutable));
    put(
        "delete-excluded",
        args.delete_excluded.then_some(Value::Bool(true)),
    );
    put(
        "allow-mass-delete",
        args.allow_mass_delete.then_some(Value::Bool(true)),
    );
    put(
        "allow-project-dir",
        args.allow_project_dir.then_some(Value::Bool(true)),
    );
    put("verify", args.verify.then_some(Value::Bool(true)));
    put("strict", args.strict.then_some(Value::Bool(true)));
    put("delete", args.no_delete.then_some(Value::Bool(false)));
    put(
        "invalidate",
        args.no_invalidate.then_some(Value::Bool(false)),
    );
    put("wait", args.wait.then_some(Value::Bool(true)));
    if let Some(dir) = &args.dir {
        values.insert("dir".into(), Value::from(dir.to_string_lossy().to_string()));
    }
    Layer {
        origin: Origin {
            label: "command line".into(),
            base: None,
        },
        values,
    }
}

/// Accepts `name`, `s3://name` and `s3://name/prefix`; checks the name against S3's rules so a
/// typo fails here and not as an obscure HTTP error.
fn split_bucket(raw: &str) -> Result<(String, Option<String>), Error> {
    let trimmed = raw.trim();
    let rest = trimmed.strip_prefix("s3://").unwrap_or(trimmed);
    // `my-site/` and `my-site/docs/` read as `s3://my-site/` and `s3://my-site/docs/`.
    let (name, prefix) = match rest.split_once('/') {
        Some((n, p)) => (n, (!p.is_empty()).then(|| p.to_string())),
        None => (rest, None),
    };
    let valid = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if !valid {
        return Err(Error::Usage(format!(
            "{raw:?} is not a valid bucket name: 3-63 characters of a-z, 0-9, '.' and '-'"
        )));
    }
    Ok((name.to_string(), prefix))
}

/// `https://www.example.com/` and `WWW.Example.com.` both mean `www.example.com`.
fn normalize_domain(raw: &str) -> String {
    let s = raw.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split(['/', '?', '#']).next().unwrap_or(s);
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// "" stays ""; `docs`, `/docs`, `docs/` all become `docs/`.
pub fn normalize_prefix(raw: &str) -> Result<String, Error> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(Error::Usage(format!(
            "--prefix {raw:?} has an empty, '.' or '..' segment"
        )));
    }
    Ok(format!("{trimmed}/"))
}

/// Whether a Cargo.toml has `[package.metadata.cdn-deploy]` (a package merely named
/// `cdn-deploy` does not count). One that does not parse is left to cargo to explain.
fn has_cdn_deploy_table(text: &str) -> bool {
    match text.parse::<toml::Table>() {
        Ok(t) => t
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("cdn-deploy"))
            .is_some(),
        Err(_) => text.contains("cdn-deploy"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;

    fn settings(argv: &[&str]) -> Result<Settings, Error> {
        let mut full = vec!["cargo-cdn-deploy"];
        full.extend_from_slice(argv);
        Settings::from_args(parse(full).expect("parse"), Environment::default())
    }

    #[test]
    fn cargo_is_asked_only_when_the_manifest_has_the_table() {
        let named =
            "[package]\nname = \"cargo-cdn-deploy\"\n[dependencies]\ncdn-deploy-x = \"1\"\n";
        assert!(!has_cdn_deploy_table(named));
        let table = "[package]\nname = \"site\"\n[package.metadata.cdn-deploy]\nbucket = \"b\"\n";
        assert!(has_cdn_deploy_table(table));
        let dotted = "[package]\nname = \"site\"\nmetadata.cdn-deploy.bucket = \"b\"\n";
        assert!(has_cdn_deploy_table(dotted));
        assert!(
            has_cdn_deploy_table("[package\ncdn-deploy"),
            "broken: cargo explains"
        );
    }

    fn target(s: &Settings) -> Target {
        s.target(
            s.bucket.clone().unwrap_or_default(),
            s.prefix.clone().unwrap_or_default(),
        )
    }

    #[test]
    fn prefixes_and_keys() {
        let s = settings(&["--bucket", "my-site", "--prefix", "/docs/v1", "dist"]).expect("ok");
        assert_eq!(s.prefix.as_deref(), Some("docs/v1/"));
        let t = target(&s);
        assert_eq!(t.layout.manifest_key, "docs/v1/.cdn-deploy/manifest.json");
        assert_eq!(t.url(), "s3://my-site/docs/v1/");
        let s = settings(&["--bucket", "s3://my-site/docs/", "dist"]).expect("ok");
        assert_eq!(
            (s.bucket.as_deref(), s.prefix.as_deref()),
            (Some("my-site"), Some("docs/"))
        );
        let s =
            settings(&["--bucket", "b12", "--manifest-key", "state/m.json", "dist"]).expect("ok");
        assert_eq!(target(&s).layout.state_dir, "state/m/");
        assert_eq!(normalize_prefix("").expect("empty"), "");
        let s = settings(&["--domain", "www.example.com", "dist"]).expect("from CloudFront");
        assert_eq!((s.bucket, s.prefix), (None, None));
        let s = settings(&["--domain", "https://WWW.Example.com/", "dist"]).expect("url");
        assert_eq!(s.domain.as_deref(), Some("www.example.com"));
        let s = settings(&["--bucket", "my-site/", "dist"]).expect("trailing slash");
        assert_eq!(
            (s.bucket.as_deref(), s.prefix.as_deref()),
            (Some("my-site"), None)
        );
        let s = settings(&["--bucket", "my-site/docs", "dist"]).expect("bucket and prefix");
        assert_eq!(s.prefix.as_deref(), Some("docs/"));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for argv in [
            &["--bucket", "My_Site", "dist"][..],
            &["--bucket", "ab", "dist"],
            &["--bucket", "site", "--prefix", "a/../b", "dist"],
            &["--bucket", "site", "--prefix", "a//b", "dist"],
            &["--bucket", "s3://site/x", "--prefix", "y", "dist"],
            &[
                "--bucket",
                "site",
                "--endpoint-url",
                "127.0.0.1:9000",
                "dist",
            ],
            &["--bucket", "site"],
            &["dist"],
            &["--bucket", "site", "--distribution", "E1/x", "dist"],
        ] {
            let err = settings(argv).expect_err("must fail");
            assert_eq!(err.exit_code(), 2, "{argv:?}: {err}");
        }
    }

    #[test]
    fn lock_holder_names_the_ci_run_only() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            Environment::sense(move |k| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let e = env(&[
            ("CI", "true"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_SHA", "abc"),
        ]);
        assert_eq!(e.holder, "github-actions run 42");
        assert_eq!(e.git_commit.as_deref(), Some("abc"));
        assert!(!e.interactive);
        let e = env(&[]);
        assert!(e.holder.starts_with("local run "), "{}", e.holder);
    }
}
