//! The effective settings of one run: command-line values validated and normalized, and the
//! environment (CI, terminal, lock holder, git commit) sensed once.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::aws::AwsOptions;
use crate::cli::Args;
use crate::error::Error;
use crate::manifest::{LOCK_NAME, MANIFEST_NAME};
use crate::plan::PlanOptions;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Clone, Debug)]
pub struct Settings {
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
    pub lock_ttl: Duration,
    pub verbosity: Verbosity,
    pub env: Environment,
}

/// Where this deploy writes: known once the bucket and prefix are (they may come from the
/// distribution).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub prefix: String,
    pub manifest_key: String,
    pub lock_key: String,
}

impl Target {
    /// `s3://bucket/prefix/` for messages.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
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
    pub fn from_args(args: Args, env: Environment) -> Result<Settings, Error> {
        let dir = args.dir.ok_or_else(|| {
            Error::Usage(
                format!("no build folder given: pass the folder to deploy, e.g. `{} --bucket my-site dist/`", env.program),
            )
        })?;
        let (bucket, url_prefix) = match &args.bucket {
            Some(raw) => {
                let (b, p) = split_bucket(raw)?;
                (Some(b), p)
            }
            None if args.domain.is_some() || !args.distributions.is_empty() => (None, None),
            None => {
                return Err(Error::Usage(
                    "no bucket given: pass --bucket NAME (or set CDN_DEPLOY_BUCKET), or --domain HOST to take it from the CloudFront distribution".into(),
                ))
            }
        };
        let prefix = match (args.prefix, url_prefix) {
            (Some(_), Some(_)) => {
                return Err(Error::Usage(format!(
                    "the prefix is given twice: in --bucket {:?} and in --prefix; keep one",
                    args.bucket.unwrap_or_default()
                )))
            }
            (Some(p), None) | (None, Some(p)) => Some(normalize_prefix(&p)?),
            (None, None) => None,
        };
        let manifest_key = match args.manifest_key {
            Some(k) if k.is_empty() || k.ends_with('/') || k.starts_with('/') => {
                return Err(Error::Usage(format!(
                    "--manifest-key {k:?} must be an object key such as `deploy/manifest.json`"
                )))
            }
            other => other,
        };
        if let Some(id) = args
            .distributions
            .iter()
            .find(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(Error::Usage(format!(
                "--distribution {id:?} is not a CloudFront distribution id (like E2ABC123DEF456)"
            )));
        }
        let endpoint_url = match args.endpoint_url {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(Error::Usage(format!(
                    "--endpoint-url {url:?} must start with http:// or https://"
                )))
            }
            other => other,
        };
        let env_endpoint = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()));
        Ok(Settings {
            dir,
            bucket,
            prefix,
            manifest_key,
            distributions: args.distributions,
            domain: args.domain,
            max_paths: args.max_paths,
            invalidate: !args.no_invalidate,
            wait: args.wait.then(|| Duration::from_secs(args.wait_timeout)),
            aws: AwsOptions {
                region: args.region,
                profile: args.profile,
                endpoint_url,
                env_endpoint,
            },
            plan: PlanOptions {
                force: args.force,
                delete: !args.no_delete,
                max_delete: args.max_delete,
            },
            dry_run: args.dry_run,
            json: args.json,
            concurrency: usize::from(args.concurrency),
            include: args.include,
            exclude: args.exclude,
            lock_ttl: Duration::from_secs(args.lock_ttl.max(60)),
            verbosity: if args.quiet {
                Verbosity::Quiet
            } else if args.verbose > 0 {
                Verbosity::Verbose
            } else {
                Verbosity::Normal
            },
            env,
        })
    }

    /// Where the deploy writes, once the bucket and prefix are known.
    pub fn target(&self, bucket: String, prefix: String) -> Target {
        let default_manifest = format!("{prefix}{MANIFEST_NAME}");
        let (manifest_key, lock_key) = match &self.manifest_key {
            Some(k) if *k != default_manifest => (k.clone(), format!("{k}.lock")),
            _ => (default_manifest, format!("{prefix}{LOCK_NAME}")),
        };
        Target {
            bucket,
            prefix,
            manifest_key,
            lock_key,
        }
    }
}

/// Accepts `name`, `s3://name` and `s3://name/prefix`; checks the name against S3's rules so a
/// typo fails here and not as an obscure HTTP error.
fn split_bucket(raw: &str) -> Result<(String, Option<String>), Error> {
    let rest = raw.strip_prefix("s3://").unwrap_or(raw);
    let (name, prefix) = match rest.split_once('/') {
        Some((n, p)) if raw.starts_with("s3://") => (n, (!p.is_empty()).then(|| p.to_string())),
        _ => (rest, None),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;

    fn settings(argv: &[&str]) -> Result<Settings, Error> {
        let mut full = vec!["cargo-cdn-deploy"];
        full.extend_from_slice(argv);
        Settings::from_args(parse(full).expect("parse"), Environment::default())
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
        assert_eq!(t.manifest_key, "docs/v1/.cdn-deploy/manifest.json");
        assert_eq!(t.lock_key, "docs/v1/.cdn-deploy/lock.json");
        assert_eq!(t.url(), "s3://my-site/docs/v1/");
        let s = settings(&["--bucket", "s3://my-site/docs/", "dist"]).expect("ok");
        assert_eq!(
            (s.bucket.as_deref(), s.prefix.as_deref()),
            (Some("my-site"), Some("docs/"))
        );
        let s =
            settings(&["--bucket", "b12", "--manifest-key", "state/m.json", "dist"]).expect("ok");
        assert_eq!(target(&s).lock_key, "state/m.json.lock");
        assert_eq!(normalize_prefix("").expect("empty"), "");
        let s = settings(&["--domain", "www.example.com", "dist"]).expect("from CloudFront");
        assert_eq!((s.bucket, s.prefix), (None, None));
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
