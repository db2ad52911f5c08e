//! One run of the pipeline: resolve the distributions, scan and read the manifest together,
//! plan, then either report (dry run, nothing to do) or execute, wait, and summarize.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cloud::aws;
use crate::cloud::cdn::Cdn;
use crate::cloud::cloudfront::CloudFront;
use crate::settings::{Settings, Target, Verbosity};
use crate::decide::distribution::{self, Serving};
use crate::error::{code, Error};
use crate::commands::execute::{self, Cancel, Executed, Invalidated, Job, Remote, Stores};
use crate::local::headers;
use crate::state::manifest::DeployInfo;
use crate::decide::plan::{self, Outcome, Plan};
use crate::output::progress::Reporter;
use crate::output::report::{self, Context};
use crate::local::rules::Rules;
use crate::cloud::s3::S3Bucket;
use crate::local::scan::{self, LocalFile, ScanOptions};

pub async fn deploy(settings: &Settings) -> Result<u8, Error> {
    let started = Instant::now();
    let reporter = Arc::new(Reporter::new(
        settings.verbosity,
        settings.env.interactive && !settings.json,
    ));
    for (key, (value, origin)) in &settings.origins {
        reporter.detail(&format!("{key} = {value} (from {origin})"));
    }
    let rules = Rules::new(&settings.headers, settings.default_headers)
        .map_err(|e| Error::Usage(e.to_string()))?;
    scan::check_root(&settings.dir)?;
    let clients = aws::clients(&settings.aws).await?;
    let cdn = CloudFront::new(clients.cloudfront);

    // The distributions may decide the bucket and prefix, so they come first; their origins
    // are checked before anything is read or written.
    let servings = resolve(&cdn, settings).await?;
    let target = target(settings, &servings)?;
    for s in &servings {
        reporter.detail(&format!(
            "CloudFront {} serves s3://{}/{}",
            s.id,
            s.bucket,
            distribution::prefix_of(&s.origin_path)
        ));
    }

    // Hash the folder and read the manifest at the same time: both are needed to plan.
    let scan_opts = ScanOptions {
        root: settings.dir.clone(),
        prefix: target.prefix.clone(),
        include: settings.include.clone(),
        exclude: settings.exclude.clone(),
    };
    let scan_reporter = Arc::clone(&reporter);
    let scanning =
        tokio::task::spawn_blocking(move || scan::scan(&scan_opts, scan_reporter.as_ref()));
    let bucket = S3Bucket::new(clients.s3, target.bucket.clone(), settings.concurrency);
    let reading = execute::read_manifest(&bucket, &target.manifest_key);
    let (scanned, remote) = tokio::join!(scanning, reading);
    let scanned =
        scanned.map_err(|e| Error::Usage(format!("the scan stopped unexpectedly: {e}")))??;
    let remote = remote?;
    reporter.finish();
    for skipped in &scanned.skipped {
        reporter.detail(&format!("skipped {} ({:?})", skipped.rel, skipped.reason));
    }
    check_reserved(&target, &scanned.files)?;

    let local: Vec<_> = scanned
        .files
        .into_iter()
        .map(|f| {
            let h = rules.headers_for(&f.rel);
            (f, h)
        })
        .collect();
    let plan = plan::plan(&local, remote.manifest.as_ref(), &settings.plan)?;
    let dir = settings.dir.display().to_string();
    let context = |elapsed| Context {
        dir: &dir,
        bucket: &target.bucket,
        prefix: &target.prefix,
        scanned_files: local.len(),
        scanned_bytes: local.iter().map(|(f, _)| f.size).sum(),
        elapsed,
    };
    let job = Job {
        manifest_key: target.manifest_key.clone(),
        lock_key: target.lock_key.clone(),
        holder: settings.env.holder.clone(),
        lock_ttl: settings.lock_ttl,
        deploy: DeployInfo {
            time: execute::rfc3339(time::OffsetDateTime::now_utc()),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: settings.env.git_commit.clone(),
            in_progress: false,
        },
        concurrency: settings.concurrency,
        distributions: if settings.invalidate {
            servings
        } else {
            Vec::new()
        },
        max_paths: settings.max_paths,
        deploy_id: String::new(),
        cdn_backoff: execute::CDN_BACKOFF
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect(),
    };
    let job = Job {
        deploy_id: format!("{} {}", job.deploy.time, job.holder),
        ..job
    };
    let nothing_to_do =
        plan.is_empty() && (plan.pending.is_empty() || job.distributions.is_empty());
    if !plan.pending.is_empty() && job.distributions.is_empty() && settings.invalidate {
        reporter.line(&format!(
            "note: {} changed files of an earlier deploy were never invalidated on CloudFront; pass --distribution or --domain to invalidate them",
            plan.pending.len()
        ));
    }

    if settings.dry_run || nothing_to_do {
        let invalidations = if settings.dry_run {
            preview(&cdn, &job, &plan, remote.manifest.as_ref(), &local).await
        } else {
            Vec::new()
        };
        let ctx = context(started.elapsed());
        let done = Executed {
            plan,
            invalidations,
            ..Executed::default()
        };
        if settings.json {
            print_json(&report::document(&ctx, &done, settings.dry_run, code::OK));
        } else if settings.dry_run {
            let verbose = settings.verbosity == Verbosity::Verbose;
            print!("{}", report::dry_run(&ctx, &done, verbose));
        } else if settings.verbosity != Verbosity::Quiet {
            print!("{}", report::summary(&ctx, &done));
        }
        return Ok(code::OK);
    }

    let cancel = Arc::new(Cancel::default());
    let signals = tokio::spawn(watch_signals(Arc::clone(&cancel), Arc::clone(&reporter)));
    let done = execute::execute(
        Stores {
            bucket: &bucket,
            cdn: &cdn,
        },
        &job,
        execute::Inputs {
            local: &local,
            opts: &settings.plan,
        },
        (
            Remote {
                manifest: remote.manifest,
                etag: remote.etag,
            },
            plan,
        ),
        reporter.as_ref(),
        &cancel,
    )
    .await;
    signals.abort();
    reporter.finish();
    let done = done?;
    let mut exit = match done.interrupted {
        Some(c) => c,
        None if !done.is_complete() => code::PARTIAL,
        None if done.invalidation_failed() => code::FAILURE,
        None => code::OK,
    };
    if let Some(timeout) = settings.wait {
        if exit == code::OK && !wait(&cdn, &done.invalidations, timeout, &reporter).await {
            exit = code::FAILURE;
        }
    }
    let ctx = context(started.elapsed());
    if settings.json {
        print_json(&report::document(&ctx, &done, false, exit));
    } else if settings.verbosity != Verbosity::Quiet || exit != code::OK {
        print!("{}", report::summary(&ctx, &done));
    }
    Ok(exit)
}

/// The distributions named by `--domain` and `--distribution`, each with the S3 origin that
/// serves the bucket.
async fn resolve<C: Cdn>(cdn: &C, settings: &Settings) -> Result<Vec<Serving>, Error> {
    let mut out: Vec<Serving> = Vec::new();
    let cdn_error = |id: &str, source| Error::Cdn {
        what: "cannot read",
        distribution: id.to_string(),
        source,
    };
    if let Some(host) = &settings.domain {
        let all = cdn
            .distributions()
            .await
            .map_err(|e| cdn_error("distributions", e))?;
        let found = distribution::by_domain(host, &all)?;
        out.push(distribution::serving(found, settings.bucket.as_deref())?);
    }
    for id in &settings.distributions {
        if out.iter().any(|s| s.id == *id) {
            continue;
        }
        let facts = cdn.distribution(id).await.map_err(|e| cdn_error(id, e))?;
        let bucket = settings
            .bucket
            .as_deref()
            .or_else(|| out.first().map(|s| s.bucket.as_str()));
        out.push(distribution::serving(&facts, bucket)?);
    }
    let mut buckets: Vec<String> = out.iter().map(|s| s.bucket.clone()).collect();
    buckets.sort();
    buckets.dedup();
    if buckets.len() > 1 {
        return Err(distribution::ResolveError::DifferentBuckets { buckets }.into());
    }
    Ok(out)
}

fn target(settings: &Settings, servings: &[Serving]) -> Result<Target, Error> {
    let bucket = match (&settings.bucket, servings.first()) {
        (Some(b), _) => b.clone(),
        (None, Some(s)) => s.bucket.clone(),
        (None, None) => return Err(Error::Usage("no bucket given: pass --bucket NAME".into())),
    };
    let prefix = match (&settings.prefix, servings.first()) {
        (Some(p), _) => p.clone(),
        (None, Some(s)) => distribution::prefix_of(&s.origin_path),
        (None, None) => String::new(),
    };
    for s in servings {
        distribution::check_prefix(s, &prefix)?;
    }
    Ok(settings.target(bucket, prefix))
}

/// The batches a dry run would send: exact, since the invalidations in flight are read.
async fn preview<C: Cdn>(
    cdn: &C,
    job: &Job,
    plan: &Plan,
    manifest: Option<&crate::state::manifest::Manifest>,
    local: &[(LocalFile, headers::Headers)],
) -> Vec<Invalidated> {
    let up = vec![Outcome::Done; plan.uploads.len()];
    let del = vec![Outcome::Done; plan.deletes.len()];
    let stale = plan::stale(plan, &up, &del);
    let known: std::collections::BTreeSet<&String> = local
        .iter()
        .map(|(f, _)| &f.key)
        .chain(manifest.into_iter().flat_map(|m| m.files.keys()))
        .collect();
    let unchanged = execute::unchanged_keys(known.into_iter(), &stale);
    let mut out = Vec::new();
    for target in &job.distributions {
        let mut item = Invalidated::nothing(&target.id);
        match execute::batch(cdn, target, job, &stale, &unchanged).await {
            Ok(Some(b)) => {
                item.paths = b.paths;
                item.wildcards = b.wildcards;
                item.evicted_unchanged = b.evicted_unchanged;
            }
            Ok(None) => {}
            Err(e) => item.error = Some(e.to_string()),
        }
        out.push(item);
    }
    out
}

/// Polls until every invalidation reports Completed; false on timeout or error.
async fn wait<C: Cdn>(
    cdn: &C,
    invalidations: &[Invalidated],
    timeout: Duration,
    reporter: &Reporter,
) -> bool {
    let deadline = Instant::now() + timeout;
    for inv in invalidations {
        let Some(id) = &inv.id else { continue };
        reporter.line(&format!(
            "waiting for CloudFront {} to complete invalidation {id}",
            inv.distribution
        ));
        loop {
            match cdn.status(&inv.distribution, id).await {
                // CloudFront says "Completed"; some tools and emulators say "COMPLETED".
                Ok(status) if status.eq_ignore_ascii_case("completed") => break,
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Ok(status) => {
                    eprintln!(
                        "error: invalidation {id} on {} is still {status} after {}s; the deploy itself is complete",
                        inv.distribution,
                        timeout.as_secs()
                    );
                    return false;
                }
                Err(e) => {
                    eprintln!(
                        "error: cannot read invalidation {id} on {}: {e}",
                        inv.distribution
                    );
                    return false;
                }
            }
        }
    }
    true
}

/// The manifest and lock keys belong to the tool; a site file must never overwrite them.
fn check_reserved(target: &Target, files: &[LocalFile]) -> Result<(), Error> {
    match files
        .iter()
        .find(|f| f.key == target.manifest_key || f.key == target.lock_key)
    {
        Some(f) => Err(Error::Usage(format!(
            "{} would be uploaded to s3://{}/{}, where the deploy keeps its manifest or lock: pass another --manifest-key, or --exclude it",
            f.path.display(),
            target.bucket,
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

/// The first SIGINT/SIGTERM lets the uploads in flight finish and records them; a later one
/// exits at once (the manifest written before the uploads keeps the bucket state truthful).
/// A second signal within a moment of the first is the same Ctrl-C arriving twice (from the
/// terminal and forwarded by the npm launcher), so it is ignored.
async fn watch_signals(cancel: Arc<Cancel>, reporter: Arc<Reporter>) {
    const ECHO: Duration = Duration::from_millis(500);
    let first = next_signal().await;
    let at = Instant::now();
    cancel.cancel(first);
    reporter
        .line("stopping: letting the uploads in flight finish (press Ctrl-C again to quit now)");
    loop {
        let again = next_signal().await;
        if at.elapsed() > ECHO {
            std::process::exit(i32::from(again));
        }
    }
}

#[cfg(unix)]
async fn next_signal() -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
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
