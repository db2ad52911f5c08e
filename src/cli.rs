//! The command line: options, help text with examples, and the `cargo` calling convention.
//! Syntax only; meaning is given to the values in `config`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

const EXAMPLES: &str = "\
Examples:
  cargo cdn-deploy --bucket my-site dist/
      Upload what changed in dist/ since the last deploy, delete what was removed.
  cargo cdn-deploy --bucket my-site --distribution E2ABC123 dist/
      The same, then invalidate exactly the changed paths on CloudFront.
  cargo cdn-deploy --domain www.example.com --wait dist/
      Find the distribution by its alias and the bucket by its S3 origin; wait for the
      invalidation to complete.
  cargo cdn-deploy --bucket my-site --dry-run dist/
      Show the diff (+ new, ~ changed, - removed, = unchanged) without writing anything.
  cargo cdn-deploy --bucket my-site --prefix docs/ --json site/
      Deploy under s3://my-site/docs/ and print the result as one JSON document.
  cargo cdn-deploy --bucket assets --endpoint-url http://127.0.0.1:9000 dist/
      Deploy to an S3-compatible store (path-style addressing).
  cargo cdn-deploy --target staging
      Use the settings kept in cdn-deploy.toml, package.json \"cdn-deploy\" or Cargo.toml
      [package.metadata.cdn-deploy], with their staging target on top.
  cargo cdn-deploy --print-config
      Show the effective settings and where each one came from.

The deploy keeps a manifest at <prefix>.cdn-deploy/manifest.json in the bucket and compares
sha256 hashes against it, so an unchanged rebuild uploads nothing, and only keys it deployed
are ever deleted.

Exit codes: 0 success, 1 AWS or file system failure, 2 usage or configuration error,
3 partial deploy (rerun to finish), 4 another deploy holds the lock or changed the manifest,
5 refused for safety (delete limit, empty folder, secret-looking files, unreadable manifest),
130/143 interrupted.";

#[derive(Debug, Parser)]
#[command(
    name = "cargo-cdn-deploy",
    bin_name = "cargo cdn-deploy",
    version,
    about = "Deploy a static site to S3: upload only what changed, delete only what was removed.",
    after_help = EXAMPLES,
    max_term_width = 100
)]
pub struct Args {
    /// The build folder to deploy (for example dist/, public/, out/, build/).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The S3 bucket to deploy to [default: the S3 origin of --domain or --distribution].
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,

    /// Deploy under this key prefix (a folder in the bucket), e.g. `docs/`
    /// [default: the distribution's OriginPath, else none].
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// CloudFront distribution to invalidate after the upload (repeatable).
    #[arg(long = "distribution", value_name = "ID", action = ArgAction::Append)]
    pub distributions: Vec<String>,

    /// Find the CloudFront distribution by this alias (e.g. www.example.com), and the bucket and
    /// prefix by its S3 origin.
    #[arg(long, value_name = "HOST")]
    pub domain: Option<String>,

    /// Invalidate at most this many paths per distribution before collapsing to wildcards
    /// (chosen to evict the fewest unchanged files). Each path beyond CloudFront's free 1,000 a
    /// month costs; a wildcard counts as one path.
    /// [default: 100]
    #[arg(long, value_name = "N", value_parser = parse_max_paths)]
    pub max_paths: Option<usize>,

    /// Upload without invalidating CloudFront.
    #[arg(long, conflicts_with = "wait")]
    pub no_invalidate: bool,

    /// Return only when CloudFront reports the invalidations completed.
    #[arg(long)]
    pub wait: bool,

    /// Give up waiting after this many seconds (exit 1; the deploy itself is complete).
    /// [default: 900]
    #[arg(long, value_name = "SECS")]
    pub wait_timeout: Option<u64>,

    /// AWS region of the bucket [default: from AWS_REGION or the profile].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// AWS profile to use [default: AWS_PROFILE, else "default"].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// S3 endpoint of an S3-compatible store (MinIO, R2, garage...); enables path-style.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Show what would be uploaded and deleted; make no write request.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Print one JSON document on stdout (and nothing else there).
    #[arg(long)]
    pub json: bool,

    /// Upload every file, even unchanged ones.
    #[arg(long)]
    pub force: bool,

    /// Keep objects whose files were removed (they stay in the manifest and the bucket).
    #[arg(long)]
    pub no_delete: bool,

    /// Refuse the deploy (exit 5, nothing written) if it would delete more than N objects.
    /// [default: 256]
    #[arg(long, value_name = "N")]
    pub max_delete: Option<usize>,

    /// Requests in flight at once.
    /// [default: 16]
    #[arg(long, short = 'j', value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: Option<u64>,

    /// Also deploy files matching this glob, even dotfiles or secret-looking names (repeatable).
    #[arg(long, value_name = "GLOB", action = ArgAction::Append)]
    pub include: Vec<String>,

    /// Leave out files matching this glob, e.g. `*.map` (repeatable).
    #[arg(long, value_name = "GLOB", action = ArgAction::Append)]
    pub exclude: Vec<String>,

    /// Key of the manifest [default: <prefix>.cdn-deploy/manifest.json]; the lock sits beside it.
    #[arg(long, value_name = "KEY")]
    pub manifest_key: Option<String>,

    /// Seconds after which another deploy may take over this deploy's lock.
    /// [default: 1800]
    #[arg(long, value_name = "SECS")]
    pub lock_ttl: Option<u64>,

    /// Use the named target of the configuration (e.g. staging) over its base settings.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// Read settings from this file only (cdn-deploy.toml, package.json or Cargo.toml) instead
    /// of looking for them.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The Cargo.toml whose [package.metadata.cdn-deploy] applies.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,

    /// The workspace package whose [package.metadata.cdn-deploy] applies.
    #[arg(long, short = 'p', value_name = "NAME")]
    pub package: Option<String>,

    /// Print the effective configuration as TOML, each value with its source, and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Less output: errors only.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,

    /// More output: every file, skipped files, timings.
    #[arg(long, short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
}

fn parse_max_paths(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=3000).contains(&n) => Ok(n),
        _ => Err("expected a number of paths from 1 to 3000".into()),
    }
}

/// How the user runs the tool: `npx cdn-deploy` when the npm launcher started it (it sets
/// `CDN_DEPLOY_LAUNCHER=npx`), `cargo cdn-deploy` otherwise. Help and hints use it.
pub fn program(launcher: Option<&str>) -> &'static str {
    match launcher {
        Some("npx") => "npx cdn-deploy",
        _ => "cargo cdn-deploy",
    }
}

/// Parses argv, accepting both `cargo-cdn-deploy cdn-deploy …` (as cargo invokes it) and
/// `cargo-cdn-deploy …` (run directly); `program` names the tool in help and usage.
pub fn parse_as<I, T>(argv: I, program: &'static str) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    if argv.get(1).is_some_and(|a| a == "cdn-deploy") {
        argv.remove(1);
    }
    let command = Args::command()
        .bin_name(program)
        .after_help(EXAMPLES.replace("cargo cdn-deploy", program));
    let matches = command.try_get_matches_from(argv)?;
    Args::from_arg_matches(&matches)
}

/// [`parse_as`] for the cargo subcommand.
pub fn parse<I, T>(argv: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    parse_as(argv, program(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_and_direct_invocation() {
        let a = parse(["cargo-cdn-deploy", "cdn-deploy", "--bucket", "b", "dist"]).expect("cargo");
        assert_eq!(a.bucket.as_deref(), Some("b"));
        assert_eq!(a.dir, Some(PathBuf::from("dist")));
        let a = parse(["cargo-cdn-deploy", "--bucket", "b", "dist"]).expect("direct");
        assert_eq!(a.dir, Some(PathBuf::from("dist")));
        let a = parse(["x", "--distribution", "E1", "--distribution", "E2", "d"]).expect("ids");
        assert_eq!(a.distributions, ["E1", "E2"]);
        assert!(parse(["x", "--max-paths", "0", "d"]).is_err());
        assert!(parse(["x", "--wait", "--no-invalidate", "d"]).is_err());
        assert!(parse(["cargo-cdn-deploy", "-q", "-v"]).is_err());
        assert!(parse(["cargo-cdn-deploy", "--concurrency", "0"]).is_err());
    }

    #[test]
    fn help_names_the_launcher() {
        let err = parse_as(["cdn-deploy", "--help"], program(Some("npx"))).expect_err("help");
        let text = err.to_string();
        assert!(
            text.contains("Usage: npx cdn-deploy [OPTIONS] [DIR]"),
            "{text}"
        );
        assert!(text.contains("npx cdn-deploy --bucket my-site --dry-run dist/"));
        assert!(!text.contains("cargo cdn-deploy"));
    }

    #[test]
    fn help_has_examples() {
        let err = parse(["cargo-cdn-deploy", "--help"]).expect_err("help exits");
        let text = err.to_string();
        assert!(text.contains("Examples:"));
        assert!(text.contains("cargo cdn-deploy --bucket my-site --dry-run dist/"));
    }
}
