//! cargo-cdn-deploy: deploy a static site to S3, uploading only what changed since the last
//! deploy. `run` wires the pipeline: cli → config → scan → remote → plan → report/execute.

pub mod aws;
pub mod bucket;
pub mod cli;
pub mod config;
pub mod error;
pub mod execute;
pub mod headers;
pub mod manifest;
pub mod plan;
pub mod progress;
pub mod report;
pub mod s3;
pub mod scan;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Environment, Settings};
use crate::error::{code, Error};
use crate::execute::{Cancel, Job, Remote};
use crate::manifest::DeployInfo;
use crate::progress::Reporter;
use crate::report::Context;
use crate::scan::{LocalFile, ScanOptions};

/// Runs the tool on `argv` (program name first) and returns its exit code.
pub fn run<I, T>(argv: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match cli::parse(argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(code::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let json = args.json;
    let env = Environment::sense(|k| std::env::var(k).ok());
    let result = Settings::from_args(args, env).and_then(|settings| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(deploy(&settings))
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            if json {
                let doc = serde_json::json!({ "error": e.to_string(), "exit_code": e.exit_code() });
                println!("{doc}");
            }
            e.exit()
        }
    }
}

async fn deploy(settings: &Settings) -> Result<u8, Error> {
    let started = Instant::now();
    let reporter = Arc::new(Reporter::new(
        settings.verbosity,
        settings.env.interactive && !settings.json,
    ));

    // Hash the folder and read the manifest at the same time: both are needed to plan.
    let scan_opts = ScanOptions {
        root: settings.dir.clone(),
        prefix: settings.prefix.clone(),
        include: settings.include.clone(),
        exclude: settings.exclude.clone(),
    };
    let scan_reporter = Arc::clone(&reporter);
    let scanning =
        tokio::task::spawn_blocking(move || scan::scan(&scan_opts, scan_reporter.as_ref()));
    let remote = async {
        let client = aws::s3_client(&settings.aws).await?;
        let bucket = s3::S3Bucket::new(client, settings.bucket.clone(), settings.concurrency);
        let remote = execute::read_manifest(&bucket, &settings.manifest_key).await?;
        Ok::<_, Error>((bucket, remote))
    };
    let (scanned, remote) = tokio::join!(scanning, remote);
    let scanned =
        scanned.map_err(|e| Error::Usage(format!("the scan stopped unexpectedly: {e}")))??;
    let (bucket, remote) = remote?;
    reporter.finish();
    for skipped in &scanned.skipped {
        reporter.detail(&format!("skipped {} ({:?})", skipped.rel, skipped.reason));
    }
    check_reserved(settings, &scanned.files)?;

    let local: Vec<_> = scanned
        .files
        .into_iter()
        .map(|f| {
            let h = headers::default_headers(&f.rel);
            (f, h)
        })
        .collect();
    let plan = plan::plan(&local, remote.manifest.as_ref(), &settings.plan)?;
    let dir = settings.dir.display().to_string();
    let context = |elapsed| Context {
        dir: &dir,
        bucket: &settings.bucket,
        prefix: &settings.prefix,
        scanned_files: local.len(),
        scanned_bytes: local.iter().map(|(f, _)| f.size).sum(),
        elapsed,
    };

    if settings.dry_run || plan.is_empty() {
        let ctx = context(started.elapsed());
        if settings.json {
            print_json(&report::document(&ctx, &plan, None, code::OK));
        } else if settings.dry_run {
            print!(
                "{}",
                report::dry_run(
                    &ctx,
                    &plan,
                    settings.verbosity == config::Verbosity::Verbose
                )
            );
        } else if settings.verbosity != config::Verbosity::Quiet {
            print!(
                "{}",
                report::summary(
                    &ctx,
                    &execute::Executed {
                        plan,
                        ..Default::default()
                    }
                )
            );
        }
        return Ok(code::OK);
    }

    let job = Job {
        manifest_key: settings.manifest_key.clone(),
        lock_key: settings.lock_key.clone(),
        holder: settings.env.holder.clone(),
        lock_ttl: settings.lock_ttl,
        deploy: DeployInfo {
            time: execute::rfc3339(time::OffsetDateTime::now_utc()),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: settings.env.git_commit.clone(),
            in_progress: false,
        },
        concurrency: settings.concurrency,
    };
    let cancel = Arc::new(Cancel::default());
    let signals = tokio::spawn(watch_signals(Arc::clone(&cancel), Arc::clone(&reporter)));
    let done = execute::execute(
        &bucket,
        &job,
        execute::Inputs {
            local: &local,
            opts: &settings.plan,
        },
        Remote {
            manifest: remote.manifest,
            etag: remote.etag,
        },
        plan,
        reporter.as_ref(),
        &cancel,
    )
    .await;
    signals.abort();
    reporter.finish();
    let done = done?;
    let exit = match done.interrupted {
        Some(c) => c,
        None if !done.is_complete() => code::PARTIAL,
        None => code::OK,
    };
    let ctx = context(started.elapsed());
    if settings.json {
        print_json(&report::document(&ctx, &done.plan, Some(&done), exit));
    } else if settings.verbosity != config::Verbosity::Quiet || exit != code::OK {
        print!("{}", report::summary(&ctx, &done));
    }
    Ok(exit)
}

/// The manifest and lock keys belong to the tool; a site file must never overwrite them.
fn check_reserved(settings: &Settings, files: &[LocalFile]) -> Result<(), Error> {
    match files
        .iter()
        .find(|f| f.key == settings.manifest_key || f.key == settings.lock_key)
    {
        Some(f) => Err(Error::Usage(format!(
            "{} would be uploaded to s3://{}/{}, where the deploy keeps its manifest or lock: pass another --manifest-key, or --exclude it",
            f.path.display(),
            settings.bucket,
            f.key
        ))),
        None => Ok(()),
    }
}

fn print_json(doc: &report::Document) {
    match serde_json::to_string_pretty(doc) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot render the JSON report: {e}"),
    }
}

/// The first SIGINT/SIGTERM lets the uploads in flight finish and records them; a second one
/// exits at once (the manifest written before the uploads keeps the bucket state truthful).
async fn watch_signals(cancel: Arc<Cancel>, reporter: Arc<Reporter>) {
    let first = next_signal().await;
    cancel.cancel(first);
    reporter
        .line("stopping: letting the uploads in flight finish (press Ctrl-C again to quit now)");
    let second = next_signal().await;
    std::process::exit(i32::from(second));
}

#[cfg(unix)]
async fn next_signal() -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    match term {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => code::SIGINT,
            _ = term.recv() => code::SIGTERM,
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            code::SIGINT
        }
    }
}

#[cfg(not(unix))]
async fn next_signal() -> u8 {
    let _ = tokio::signal::ctrl_c().await;
    code::SIGINT
}
