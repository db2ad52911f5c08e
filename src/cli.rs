//! The command line: subcommands, options, help text with examples, and the `cargo` calling
//! convention. Syntax only; meaning is given to the values in `settings`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  cargo cdn-deploy --bucket my-site dist/
      Upload what changed in dist/ since the last deploy, delete what was removed.
  cargo cdn-deploy --domain www.example.com --wait --verify dist/
      Find the distribution by its alias and the bucket by its S3 origin, invalidate
      exactly the changed paths, wait, then fetch them through CloudFront to prove it.
  cargo cdn-deploy --bucket my-site --dry-run dist/
      Show the diff (+ new, ~ changed, - removed, = unchanged) without writing anything.
  cargo cdn-deploy --bucket my-site --prefix docs/ --json site/
      Deploy under s3://my-site/docs/ and print the result as one JSON document.
  cargo cdn-deploy --bucket assets --endpoint-url http://127.0.0.1:9000 dist/
      Deploy to an S3-compatible store (path-style addressing).
  cargo cdn-deploy history --bucket my-site
      The deploys kept for rollback, newest first.
  cargo cdn-deploy rollback --bucket my-site --distribution E2ABC123
      Back to the previous deploy, by server-side copies: no build folder needed.
  cargo cdn-deploy verify --domain www.example.com
      Is what CloudFront serves what the last deploy uploaded?
  cargo cdn-deploy unlock --bucket my-site
      Remove the lock of a deploy that died (shows who held it, asks first).
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
5 refused for safety (delete guards, project folder, secret-looking files, untrusted manifest),
6 verify found stale URLs, 130/143 interrupted.";

/// What to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Command {
    #[default]
    Deploy,
    History,
    Rollback {
        to: Option<String>,
    },
    Verify {
        all: bool,
    },
    Unlock,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Deploy DIR (what a bare `cdn-deploy DIR` does).
    Deploy {
        /// The build folder to deploy (for example dist/, public/, out/, build/).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// List the deploys kept for rollback, newest first.
    History,
    /// Restore a kept deploy by server-side copies (no build folder, nothing uploaded).
    Rollback {
        /// The id of the deploy to restore, as `history` shows it [default: the one before
        /// the last].
        #[arg(long, value_name = "ID")]
        to: Option<String>,
    },
    /// Fetch the last deploy's changes through CloudFront and compare them with the manifest.
    Verify {
        /// Check every file, not only those the last deploy changed.
        #[arg(long)]
        all: bool,
    },
    /// Remove the lock of a deploy that died: shows the holder and its age, asks first.
    Unlock,
}

#[derive(Debug, Parser)]
#[command(
    name = "cargo-cdn-deploy",
    bin_name = "cargo cdn-deploy",
    version,
    about = "Deploy a static site to S3: upload only what changed, delete only what was removed, invalidate exactly that on CloudFront.",
    after_help = EXAMPLES,
    max_term_width = 100,
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,

    /// The build folder to deploy (for example dist/, public/, out/, build/).
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,

    #[command(flatten)]
    args: Args,
}

/// Every option, shared by all subcommands.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Filled from the subcommand and DIR.
    #[arg(skip)]
    pub command: Command,
    #[arg(skip)]
    pub dir: Option<PathBuf>,

    /// The S3 bucket to deploy to [default: the S3 origin of --domain or --distribution].
    #[arg(long, value_name = "NAME", global = true)]
    pub bucket: Option<String>,

    /// Deploy under this key prefix (a folder in the bucket), e.g. `docs/`
    /// [default: the distribution's OriginPath, else none].
    #[arg(long, value_name = "PREFIX", global = true)]
    pub prefix: Option<String>,

    /// CloudFront distribution to invalidate after the upload (repeatable).
    #[arg(long = "distribution", value_name = "ID", action = ArgAction::Append, global = true)]
    pub distributions: Vec<String>,

    /// Find the CloudFront distribution by this alias (e.g. www.example.com), and the bucket and
    /// prefix by its S3 origin.
    #[arg(long, value_name = "HOST", global = true)]
    pub domain: Option<String>,

    /// Invalidate at most this many paths per distribution before collapsing to wildcards
    /// (chosen to evict the fewest unchanged files). Each path beyond CloudFront's free 1,000 a
    /// month costs; a wildcard counts as one path.
    /// [default: 100]
    #[arg(long, value_name = "N", value_parser = parse_max_paths, global = true)]
    pub max_paths: Option<usize>,

    /// Upload without invalidating CloudFront.
    #[arg(long, conflicts_with = "wait", global = true)]
    pub no_invalidate: bool,

    /// Return only when CloudFront reports the invalidations completed.
    #[arg(long, global = true)]
    pub wait: bool,

    /// Give up waiting after this long (exit 1; the deploy itself is complete).
    /// [default: 15m]
    #[arg(long, value_name = "DURATION", global = true)]
    pub wait_timeout: Option<String>,

    /// After the deploy (and --wait), fetch every changed URL through CloudFront and compare
    /// it with what was uploaded (exit 6 when anything is stale).
    #[arg(long, global = true)]
    pub verify: bool,

    /// Fetch through this base URL instead of the distribution's domain (verify).
    #[arg(long, value_name = "URL", global = true)]
    pub verify_url: Option<String>,

    /// AWS region of the bucket [default: from AWS_REGION or the profile].
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,

    /// AWS profile to use [default: AWS_PROFILE, else "default"].
    #[arg(long, value_name = "NAME", global = true)]
    pub profile: Option<String>,

    /// S3 endpoint of an S3-compatible store (MinIO, R2, garage...); enables path-style.
    #[arg(long, value_name = "URL", global = true)]
    pub endpoint_url: Option<String>,

    /// A request unanswered this long is retried; after three attempts the run fails (exit 1).
    /// [default: 30s]
    #[arg(long, value_name = "DURATION", global = true)]
    pub timeout: Option<String>,

    /// Show what would be uploaded and deleted; make no write request.
    #[arg(long, short = 'n', global = true)]
    pub dry_run: bool,

    /// Print one JSON document on stdout (and nothing else there).
    #[arg(long, global = true)]
    pub json: bool,

    /// Answer yes to the question `rollback` and `unlock` ask on a terminal (for CI).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,

    /// Upload every file, even unchanged ones.
    #[arg(long, global = true)]
    pub force: bool,

    /// Keep objects whose files were removed (they stay in the manifest and the bucket).
    #[arg(long, global = true)]
    pub no_delete: bool,

    /// Delete files an earlier deploy uploaded that --exclude now leaves out (by default they
    /// are left alone, as `aws s3 sync --exclude` does).
    #[arg(long, global = true)]
    pub delete_excluded: bool,

    /// Refuse the deploy (exit 5, nothing written) if it would delete more than N objects.
    /// [default: 256]
    #[arg(long, value_name = "N", global = true)]
    pub max_delete: Option<usize>,

    /// Allow a deploy that removes more than half of the live files, or the root index.html
    /// (refused by default: it is what deploying the wrong folder looks like).
    #[arg(long, global = true)]
    pub allow_mass_delete: bool,

    /// Deploy a folder that looks like a project root (package.json, node_modules/,
    /// Cargo.toml, a lockfile, .git/).
    #[arg(long, global = true)]
    pub allow_project_dir: bool,

    /// How long content-hashed files removed from the build stay for open tabs and cached
    /// pages (`30s`, `12h`, `7d`; `0` deletes at once).
    /// [default: 7d]
    #[arg(long, value_name = "DURATION", global = true)]
    pub keep_old_assets: Option<String>,

    /// Deploys kept for rollback (their replaced pages are kept as copies); 0 keeps none.
    /// [default: 10]
    #[arg(long, value_name = "N", global = true)]
    pub keep_deploys: Option<u64>,

    /// Requests in flight at once.
    /// [default: 32]
    #[arg(long, short = 'j', value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=256), global = true)]
    pub concurrency: Option<u64>,

    /// Also deploy files matching this glob, even dotfiles or secret-looking names (repeatable).
    #[arg(long, value_name = "GLOB", action = ArgAction::Append, global = true)]
    pub include: Vec<String>,

    /// Leave out files matching this glob, e.g. `*.map` (repeatable).
    #[arg(long, value_name = "GLOB", action = ArgAction::Append, global = true)]
    pub exclude: Vec<String>,

    /// Treat files matching this glob as content-hashed: cached for a year, retired when removed
    /// (repeatable; for names the built-in detection does not recognise).
    #[arg(long, value_name = "GLOB", action = ArgAction::Append, global = true)]
    pub immutable: Vec<String>,

    /// Stop (exit 5) when a page references a same-site file that is neither in the build nor
    /// kept in the bucket, instead of warning.
    #[arg(long, global = true)]
    pub strict: bool,

    /// Key of the manifest [default: <prefix>.cdn-deploy/manifest.json].
    #[arg(long, value_name = "KEY", global = true)]
    pub manifest_key: Option<String>,

    /// A dead deploy's lock lapses after this long; a live deploy renews it.
    /// [default: 60s]
    #[arg(long, value_name = "DURATION", global = true)]
    pub lock_ttl: Option<String>,

    /// Wait up to this long for another deploy's lock instead of failing at once.
    /// [default: 0s]
    #[arg(long, value_name = "DURATION", global = true)]
    pub lock_wait: Option<String>,

    /// Use the named target of the configuration (e.g. staging) over its base settings.
    #[arg(long, value_name = "NAME", global = true)]
    pub target: Option<String>,

    /// Read settings from this file only (cdn-deploy.toml, package.json or Cargo.toml) instead
    /// of looking for them.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// The Cargo.toml whose [package.metadata.cdn-deploy] applies.
    #[arg(long, value_name = "PATH", global = true)]
    pub manifest_path: Option<PathBuf>,

    /// The workspace package whose [package.metadata.cdn-deploy] applies.
    #[arg(long, short = 'p', value_name = "NAME", global = true)]
    pub package: Option<String>,

    /// Print the effective configuration as TOML, each value with its source, and exit.
    #[arg(long, global = true)]
    pub print_config: bool,

    /// Less output: errors only.
    #[arg(long, short = 'q', conflicts_with = "verbose", global = true)]
    pub quiet: bool,

    /// More output: every file, skipped files, timings.
    #[arg(long, short = 'v', action = ArgAction::Count, global = true)]
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

static PROGRAM: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Records how the user runs the tool, once, at start.
pub fn set_program_name(name: &'static str) {
    let _ = PROGRAM.set(name);
}

/// How the user runs the tool, for hints in messages: `cargo cdn-deploy` unless the npm
/// launcher started it.
pub fn program_name() -> &'static str {
    PROGRAM.get().copied().unwrap_or("cargo cdn-deploy")
}

static BUCKET_ORIGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records where the bucket name came from (`--bucket`, `CDN_DEPLOY_BUCKET`, a file…), once.
pub fn set_bucket_origin(label: String) {
    let _ = BUCKET_ORIGIN.set(label);
}

/// Where the bucket name came from, for hints: `--bucket` unless a source said otherwise.
pub fn bucket_origin() -> &'static str {
    BUCKET_ORIGIN.get().map_or("--bucket", String::as_str)
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
    let command = Cli::command()
        .bin_name(program)
        .after_help(EXAMPLES.replace("cargo cdn-deploy", program));
    let matches = command.try_get_matches_from(argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let mut args = cli.args;
    args.dir = cli.dir;
    args.command = match cli.command {
        None => Command::Deploy,
        Some(Sub::Deploy { dir }) => {
            if dir.is_some() {
                args.dir = dir;
            }
            Command::Deploy
        }
        Some(Sub::History) => Command::History,
        Some(Sub::Rollback { to }) => Command::Rollback { to },
        Some(Sub::Verify { all }) => Command::Verify { all },
        Some(Sub::Unlock) => Command::Unlock,
    };
    Ok(args)
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
        assert_eq!(a.command, Command::Deploy);
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
    fn subcommands_share_the_options() {
        let a = parse([
            "x",
            "cdn-deploy",
            "rollback",
            "--bucket",
            "b",
            "--to",
            "id1",
            "-y",
        ])
        .expect("rollback");
        assert_eq!(
            a.command,
            Command::Rollback {
                to: Some("id1".into())
            }
        );
        assert!(a.yes);
        assert_eq!(a.bucket.as_deref(), Some("b"));
        let a = parse(["x", "--bucket", "b", "unlock"]).expect("options before");
        assert_eq!(a.command, Command::Unlock);
        let a = parse(["x", "verify", "--all", "--domain", "www.example.com"]).expect("verify");
        assert_eq!(a.command, Command::Verify { all: true });
        let a = parse(["x", "history", "--json"]).expect("history");
        assert!(a.json && a.command == Command::History);
        let a = parse(["x", "deploy", "--dry-run", "out"]).expect("deploy");
        assert_eq!(
            (a.command, a.dir),
            (Command::Deploy, Some(PathBuf::from("out")))
        );
        // A folder that happens to share a name with nothing is a folder.
        let a = parse(["x", "public"]).expect("dir");
        assert_eq!(a.dir, Some(PathBuf::from("public")));
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
    fn help_has_examples_and_subcommands() {
        let err = parse(["cargo-cdn-deploy", "--help"]).expect_err("help exits");
        let text = err.to_string();
        assert!(text.contains("Examples:"));
        assert!(text.contains("cargo cdn-deploy --bucket my-site --dry-run dist/"));
        for sub in ["history", "rollback", "verify", "unlock"] {
            assert!(text.contains(sub), "{sub} in {text}");
        }
    }
}
