//! One deploy: resolve the distributions, scan the build folder and read the manifest's root at
//! the same time, read only the chunks that can differ, plan, then either report (dry run,
//! nothing to do) or execute under the lock, wait, verify, and summarize.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::cloud::aws;
use crate::cloud::bucket::Bucket;
use crate::cloud::cdn::Cdn;
use crate::cloud::cloudfront::CloudFront;
use crate::cloud::s3::S3Bucket;
use crate::commands::execute::{self, Executed, Invalidated, Job, Ran, Stores};
use crate::commands::lease::held_by_other;
use crate::commands::lease::Lease;
use crate::commands::signals::Signals;
use crate::commands::{remote, verify};
use crate::decide::distribution::{self, Serving};
use crate::decide::plan::{self, Known, Local, Moment, Outcomes, Plan};
use crate::error::{code, Error};
use crate::local::project;
use crate::local::rules::Rules;
use crate::local::scan::{self, ScanOptions};
use crate::output::progress::Reporter;
use crate::output::report::{self, Context};
use crate::settings::{Settings, Target, Verbosity};
use crate::state::format::DeployInfo;
use crate::state::history;
use crate::state::view::{Housekeeping, View, Wanted, DELTA_MAX};

/// How many times a deploy plans again when another deploy changed the manifest first.
const ATTEMPTS: usize = 4;

/// The services of one run, and where it writes.
pub struct Session {
    pub bucket: S3Bucket,
    pub cdn: CloudFront,
    pub target: Target,
    pub servings: Vec<Serving>,
}

/// Builds the clients, resolves the distributions and the target. Shared by every subcommand.
pub async fn connect(settings: &Settings, reporter: &Reporter) -> Result<Session, Error> {
    let (session, _) = connect_reading(settings, reporter, false).await?;
    Ok(session)
}

/// [`connect`], and with `read` the manifest's root read at the same time as the distributions
/// are looked up when the bucket is known (the usual case: one round trip instead of two).
async fn connect_reading(
    settings: &Settings,
    reporter: &Reporter,
    read: bool,
) -> Result<(Session, Option<View>), Error> {
    let clients = aws::clients(&settings.aws).await?;
    let cdn = CloudFront::new(clients.cloudfront);
    // The prefix may yet come from the distribution's OriginPath: guess the common case (none)
    // and read again if the guess was wrong.
    let guess = settings
        .bucket
        .clone()
        .map(|b| settings.target(b, settings.prefix.clone().unwrap_or_default()));
    let early = guess.as_ref().map(|t| {
        S3Bucket::new(
            clients.s3.clone(),
            t.bucket.clone(),
            settings.concurrency,
            clients.s3_endpoint.clone(),
        )
    });
    let reading = async {
        match (&early, &guess) {
            (Some(b), Some(t)) if read => Some(remote::read_root(b, &t.layout).await),
            _ => None,
        }
    };
    // The distributions may decide the bucket and prefix; their origins are checked before
    // anything is written.
    let (servings, early_view) = tokio::join!(resolve(&cdn, settings), reading);
    let servings = servings?;
    let target = target(settings, &servings)?;
    for s in &servings {
        reporter.detail(&format!(
            "CloudFront {} serves s3://{}/{}",
            s.id,
            s.bucket,
            distribution::prefix_of(&s.origin_path)
        ));
    }
    let bucket = S3Bucket::new(
        clients.s3,
        target.bucket.clone(),
        settings.concurrency,
        clients.s3_endpoint,
    );
    let view = match early_view {
        Some(v) if guess.as_ref() == Some(&target) => Some(v?),
        _ if read => Some(remote::read_root(&bucket, &target.layout).await?),
        _ => None,
    };
    Ok((
        Session {
            bucket,
            cdn,
            target,
            servings,
        },
        view,
    ))
}

/// A fresh id for this run: its time and a random tail (`2026-11-20T10:04:11Z-3f2a`).
pub fn deploy_info(settings: &Settings, kind: &str) -> DeployInfo {
    let now = time::OffsetDateTime::now_utc();
    let time = crate::clock::rfc3339(now);
    let seed = format!("{}-{:?}-{}", std::process::id(), now, settings.env.holder);
    let tail = hex::encode(&Sha256::digest(seed.as_bytes())[..2]);
    DeployInfo {
        id: format!("{time}-{tail}"),
        time,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: settings.env.git_commit.clone(),
        kind: kind.to_string(),
        restored: None,
    }
}

pub fn job(settings: &Settings, session: &Session, deploy: DeployInfo) -> Job {
    Job {
        layout: session.target.layout.clone(),
        holder: settings.env.holder.clone(),
        deploy,
        concurrency: settings.concurrency,
        distributions: if settings.invalidate {
            session.servings.clone()
        } else {
            Vec::new()
        },
        max_paths: settings.max_paths,
        cdn_backoff: execute::CDN_BACKOFF
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect(),
        keep_deploys: settings.keep_deploys,
        left_by: left_by(settings),
    }
}

/// Fingerprint of the settings that leave files in place.
fn left_by(settings: &Settings) -> String {
    let text = format!(
        "{:?}|{}|{}",
        settings.exclude, settings.plan.delete, settings.plan.delete_excluded
    );
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

pub async fn deploy(settings: &Settings) -> Result<u8, Error> {
    let started = Instant::now();
    let reporter = Arc::new(Reporter::new(
        settings.verbosity,
        settings.env.interactive && !settings.json,
    ));
    for (key, (value, origin)) in &settings.origins {
        reporter.detail(&format!("{key} = {value} (from {origin})"));
    }
    let rules = Rules::new(
        &settings.headers,
        settings.default_headers,
        &settings.immutable,
    )
    .map_err(|e| Error::Usage(e.to_string()))?;
    scan::check_root(&settings.dir)?;
    if !settings.allow_project_dir {
        project::refuse_project_dir(&settings.dir)?;
    }
    // Hash the folder while the distributions are looked up and the manifest's root is read:
    // all three are needed to plan, none needs another.
    let scan_opts = ScanOptions {
        root: settings.dir.clone(),
        prefix: String::new(),
        include: settings.include.clone(),
        exclude: settings.exclude.clone(),
    };
    let scan_reporter = Arc::clone(&reporter);
    let scanning =
        tokio::task::spawn_blocking(move || scan::scan(&scan_opts, scan_reporter.as_ref()));
    // A set-up error is reported at once, without waiting for the scan.
    let (session, view) = connect_reading(settings, &reporter, true).await?;
    let mut scanned = scanning
        .await
        .map_err(|e| Error::Usage(format!("the scan stopped unexpectedly: {e}")))??;
    let layout = session.target.layout.clone();
    let bucket = &session.bucket;
    scan::rekey(&mut scanned.files, &layout.prefix)?;
    let mut view = match view {
        Some(v) => v,
        None => remote::read_root(bucket, &layout).await?,
    };
    reporter.finish();
    for skipped in &scanned.skipped {
        reporter.detail(&format!("skipped {} ({})", skipped.rel, skipped.reason));
    }
    let mut interner = crate::state::format::Interner::default();
    let local: Vec<Local> = scanned
        .files
        .into_iter()
        .map(|f| {
            let headers = interner.get(&rules.headers_for(f.rel()));
            Local { file: f, headers }
        })
        .collect();
    check_reserved(&session.target, &local)?;

    let excluded = scan::Filter::excluder(&settings.exclude)?;
    let deploy = deploy_info(settings, "deploy");
    let job = job(settings, &session, deploy);
    let lease = Lease::new(
        bucket,
        &layout.manifest_key,
        settings.lock_ttl,
        &job.deploy.id,
    );
    let signals = Signals::watch(&reporter);
    let lock_deadline = Instant::now() + settings.lock_wait;

    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        let (plan, moment) = prepare(bucket, &mut view, &local, settings, &excluded).await?;
        if attempt == 1 {
            check_links(settings, &session, &local, &plan, &view, &reporter)?;
        }
        let nothing_to_do = plan.is_empty()
            && (plan.pending.is_empty() || job.distributions.is_empty())
            && view.root.garbage.is_empty()
            && view.root.in_progress.is_none();
        if !plan.pending.is_empty() && job.distributions.is_empty() && settings.invalidate {
            reporter.line(&format!(
                "note: {} changed files of an earlier deploy were never invalidated on CloudFront; pass --distribution or --domain to invalidate them",
                plan.pending.len()
            ));
        }
        if settings.dry_run || nothing_to_do {
            signals.stop();
            let unchanged = unchanged_keys(&local, &plan, &view);
            let invalidations = if settings.dry_run {
                preview(&session.cdn, &job, &plan, &unchanged).await
            } else {
                Vec::new()
            };
            let done = Executed {
                plan,
                invalidations,
                first: view.etag.is_none(),
                ..Executed::default()
            };
            let ctx = context(settings, &session.target, &local, started.elapsed());
            if settings.json {
                report::print_json(&report::document(&ctx, &done, settings.dry_run, code::OK));
            } else if settings.dry_run {
                let verbose = settings.verbosity == Verbosity::Verbose;
                print!("{}", report::dry_run(&ctx, &done, verbose, &local));
            } else if settings.verbosity != Verbosity::Quiet {
                print!("{}", report::summary(&ctx, &done));
            }
            crate::output::github::summary(&ctx, &done, None);
            return Ok(code::OK);
        }
        if wait_for_lock(bucket, &mut view, &layout, lock_deadline, &reporter).await? {
            // The root was read again while waiting: plan against it. A dead deploy's intent is
            // recovered (its planned base read, what it may have written marked in doubt) only
            // once its lock has lapsed, so the plan made while it was held knows nothing of it.
            attempt -= 1;
            continue;
        }
        if view.root.legacy {
            legacy_lock(bucket, &layout).await?;
        }
        let unchanged = unchanged_keys(&local, &plan, &view);
        let run = execute::execute(
            Stores {
                bucket,
                cdn: &session.cdn,
            },
            &job,
            &view,
            plan,
            moment,
            &unchanged,
            &lease,
            reporter.as_ref(),
            &signals.cancel,
        );
        let ran = signals.unless_quit(run, &lease).await?;
        match ran {
            Ran::Done(done) => break *done,
            Ran::Contended(now) if attempt < ATTEMPTS => {
                reporter.line(
                    "the manifest changed since it was read: planning again against the new one",
                );
                view = match *now {
                    Some((root, etag)) => {
                        remote::view_of(&layout, root, etag).map_err(|source| Error::Manifest {
                            bucket: bucket.name().to_string(),
                            key: layout.manifest_key.clone(),
                            source,
                        })?
                    }
                    None => remote::read_root(bucket, &layout).await?,
                };
            }
            Ran::Contended(_) => {
                return Err(Error::Conflict {
                    bucket: bucket.name().to_string(),
                    key: layout.manifest_key.clone(),
                })
            }
        }
    };
    signals.stop();
    reporter.finish();
    finish(settings, &session, &local, outcome, started, &reporter).await
}

/// Checks the references of the pages and stylesheets about to be uploaded: a same-site target
/// that is neither in the build nor kept in the bucket is a warning (an error with `--strict`).
fn check_links(
    settings: &Settings,
    session: &Session,
    local: &[Local],
    plan: &Plan,
    view: &View,
    reporter: &Reporter,
) -> Result<(), Error> {
    use crate::local::links::{self, Source as Page};
    let prefix = &session.target.layout.prefix;
    let sources: Vec<Page> = plan
        .writes
        .iter()
        .filter_map(|w| match &w.source {
            crate::decide::plan::Source::File(at) => Some((w, at)),
            _ => None,
        })
        .filter_map(|(w, at)| {
            let rel = at.rel(&w.key);
            let css = crate::local::headers::is_css(rel);
            (css || w.html).then_some(Page {
                root: at.root(),
                rel,
                css,
            })
        })
        .collect();
    if sources.is_empty() {
        return Ok(());
    }
    // What the bucket serves after this deploy: the build, and every known file it does not
    // delete (retired chunks, files left in place).
    let mut exists: std::collections::HashSet<&str> = local.iter().map(|l| l.file.rel()).collect();
    let deleted: std::collections::HashSet<&str> =
        plan.deletes.iter().map(|d| d.key.as_str()).collect();
    for (key, _) in view.known() {
        if !view.layout.is_reserved(key) && !deleted.contains(key.as_str()) {
            if let Some(rel) = key.strip_prefix(prefix.as_str()) {
                exists.insert(rel);
            }
        }
    }
    // Where the build is served: the distributions' hosts, and the URL path of the prefix below
    // their OriginPath (or the prefix itself without a distribution).
    let hosts: Vec<String> = settings
        .domain
        .iter()
        .cloned()
        .chain(session.servings.iter().map(|s| s.host.clone()))
        .collect();
    let root = match session.servings.first() {
        Some(s) => prefix
            .strip_prefix(&distribution::prefix_of(&s.origin_path))
            .unwrap_or(prefix)
            .to_string(),
        None => prefix.clone(),
    };
    let site = crate::local::refs::Site::new(&hosts).with_root(&format!("/{root}"));
    let broken = links::check(&sources, &exists, &site);
    if broken.is_empty() {
        return Ok(());
    }
    if settings.strict {
        let list: Vec<String> = broken.iter().take(20).map(|b| format!("  {b}")).collect();
        return Err(Error::Refused(format!(
            "refusing to deploy pages that reference missing files (--strict):\n{}{}\n  hint: fix the build, or drop --strict to deploy with warnings",
            list.join("\n"),
            if broken.len() > 20 { format!("\n  … and {} more", broken.len() - 20) } else { String::new() }
        )));
    }
    for b in broken.iter().take(50) {
        reporter.always(&format!("warning: {b}"));
    }
    if broken.len() > 50 {
        reporter.always(&format!(
            "warning: … and {} more broken references",
            broken.len() - 50
        ));
    }
    Ok(())
}

/// Reads what the plan needs, plans, and reads the rest of the manifest when the plan turns out
/// to need a new base.
async fn prepare<B: Bucket>(
    bucket: &B,
    view: &mut View,
    local: &[Local],
    settings: &Settings,
    excluded: &dyn Fn(&str) -> bool,
) -> Result<(Plan, Moment), Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let seq = view.root.seq + 1;
    let oldest_kept = history::oldest_kept(&view.root, seq, settings.keep_deploys);
    let moment = Moment {
        now,
        seq,
        oldest_kept,
        previous_kept: seq > oldest_kept && view.root.history.iter().any(|h| h.seq + 1 == seq),
    };
    if view.root.in_progress.is_some() && !held_by_other(view) {
        remote::recover(bucket, view).await?;
    }
    let wanted: Vec<Wanted> = local
        .iter()
        .map(|l| Wanted {
            key: &l.file.key,
            sha256: &l.file.sha256,
            size: l.file.size,
            headers: &l.headers,
        })
        .collect();
    let housekeeping = Housekeeping {
        now,
        keep_old_assets: settings.plan.keep_old_assets,
        oldest_kept: moment.oldest_kept,
        left_by: left_by(settings),
        everything: settings.plan.force,
    };
    let mut needed = view.to_read(&wanted, &housekeeping);
    // Each chunk read holds at least one change. When these alone would overflow the delta, or
    // they are most of the base, the new base needs every chunk: read them all now, not in a
    // second round trip after planning.
    let chunks = view.root.chunks.len();
    if view.root.delta.len() + needed.len() > DELTA_MAX || needed.len() * 2 > chunks {
        needed = view.unread();
    }
    remote::read_chunks(bucket, view, &needed).await?;
    let mut plan = make_plan(view, local, settings, moment, excluded)?;
    if !view.all_read() && needs_rebase(view, &plan, moment) {
        let rest = view.unread();
        remote::read_chunks(bucket, view, &rest).await?;
        plan = make_plan(view, local, settings, moment, excluded)?;
    }
    Ok((plan, moment))
}

/// Whether the plan's outcome would overflow the root's delta.
fn needs_rebase(view: &View, plan: &Plan, moment: Moment) -> bool {
    let current = |k: &str| view.current(k).cloned();
    view.needs_rebase(&plan::settled(
        plan,
        &Outcomes::all_done(plan),
        &current,
        moment,
    ))
}

fn make_plan(
    view: &View,
    local: &[Local],
    settings: &Settings,
    moment: Moment,
    excluded: &dyn Fn(&str) -> bool,
) -> Result<Plan, Error> {
    let is_known = |k: &str| view.is_known(k);
    let known = Known {
        layout: &view.layout,
        records: view.known(),
        is_known: &is_known,
        live: view.live_count(),
        pending: view.root.pending_invalidation.iter().cloned().collect(),
    };
    Ok(plan::plan(local, &known, &settings.plan, moment, excluded)?)
}

/// Fails (or waits, with `--lock-wait`) while another deploy holds the lock; re-reads the root
/// while waiting. True when it waited: `view` is then the root as it is now, to plan again.
async fn wait_for_lock<B: Bucket>(
    bucket: &B,
    view: &mut View,
    layout: &crate::state::layout::Layout,
    deadline: Instant,
    reporter: &Reporter,
) -> Result<bool, Error> {
    let mut said = false;
    while let Some(lock) = view.root.lock.clone().filter(|_| held_by_other(view)) {
        if Instant::now() >= deadline {
            return Err(crate::commands::lease::locked(
                bucket.name(),
                &layout.manifest_key,
                &lock,
            ));
        }
        if !said {
            reporter.line(&format!(
                "waiting for the deploy lock, held by {} until {}",
                lock.holder, lock.expires
            ));
            said = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        *view = remote::read_root(bucket, layout).await?;
    }
    Ok(said)
}

/// While migrating from a version-1 manifest, its separate lock object still counts.
async fn legacy_lock<B: Bucket>(
    bucket: &B,
    layout: &crate::state::layout::Layout,
) -> Result<(), Error> {
    use crate::cloud::bucket::Fetch;
    let key = layout.legacy_lock_key();
    #[derive(serde::Deserialize)]
    struct Legacy {
        holder: String,
        started: String,
        expires: String,
    }
    match bucket.get(&key, None).await {
        Ok(Fetch::Found { body, .. }) => {
            let held: Option<Legacy> = serde_json::from_slice(&body).ok();
            let live = held.as_ref().is_none_or(|l| {
                crate::clock::parse(&l.expires).is_none_or(|t| t > time::OffsetDateTime::now_utc())
            });
            if live {
                let l = held.unwrap_or(Legacy {
                    holder: "unknown (the lock object is not readable)".into(),
                    started: "?".into(),
                    expires: "never".into(),
                });
                let doc = crate::state::format::LockDoc {
                    holder: l.holder,
                    id: String::new(),
                    started: l.started,
                    expires: l.expires,
                    renewals: 0,
                };
                return Err(crate::commands::lease::locked(bucket.name(), &key, &doc));
            }
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(source) => Err(Error::Bucket {
            what: "cannot read the deploy lock",
            bucket: bucket.name().to_string(),
            key,
            source,
        }),
    }
}

/// Site keys that stay as they are, so the invalidation planner can count what a wildcard
/// would evict: every file of the build not written, and what stays served though not in it.
pub fn unchanged_keys<'a>(local: &'a [Local], plan: &Plan, view: &'a View) -> Vec<&'a str> {
    let written: BTreeSet<&str> = plan.writes.iter().map(|w| &*w.key).collect();
    let mut out: Vec<&str> = local
        .iter()
        .map(|l| &*l.file.key)
        .filter(|k| !written.contains(k))
        .collect();
    let deleted: BTreeSet<&str> = plan.deletes.iter().map(|d| d.key.as_str()).collect();
    for (k, e) in view.known() {
        if !e.is_live() && !view.layout.is_reserved(k) && !deleted.contains(k.as_str()) {
            out.push(k.as_str());
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn context<'a>(
    settings: &'a Settings,
    target: &'a Target,
    local: &[Local],
    elapsed: Duration,
) -> Context<'a> {
    Context {
        dir: report::shown_dir(&settings.dir),
        rollback: false,
        bucket: &target.bucket,
        prefix: &target.layout.prefix,
        scanned_files: local.len(),
        scanned_bytes: local.iter().map(|l| l.file.size).sum(),
        elapsed,
    }
}

/// After the writes: wait for the invalidations, verify through the CDN, report, exit code.
async fn finish(
    settings: &Settings,
    session: &Session,
    local: &[Local],
    done: Executed,
    started: Instant,
    reporter: &Reporter,
) -> Result<u8, Error> {
    let mut exit = match done.interrupted {
        Some(c) => c,
        None if !done.is_complete() => code::PARTIAL,
        None if done.invalidation_failed() => code::FAILURE,
        None => code::OK,
    };
    if let Some(timeout) = settings.wait {
        if exit == code::OK && !wait(&session.cdn, &done.invalidations, timeout, reporter).await {
            exit = code::FAILURE;
        }
    }
    let mut verified = None;
    if settings.verify && exit == code::OK {
        let checked = verify::after_deploy(settings, session, &done, reporter).await?;
        if !checked.stale.is_empty() {
            exit = code::STALE;
        }
        verified = Some(checked);
    }
    let ctx = context(settings, &session.target, local, started.elapsed());
    if settings.json {
        let mut doc = report::document(&ctx, &done, false, exit);
        doc.verify = verified.clone();
        report::print_json(&doc);
    } else if settings.verbosity != Verbosity::Quiet || exit != code::OK {
        print!("{}", report::summary(&ctx, &done));
        if let Some(v) = &verified {
            print!("{}", report::verified(v));
        }
    }
    crate::output::github::summary(&ctx, &done, verified.as_ref());
    Ok(exit)
}

/// The distributions named by `--domain` and `--distribution`, each with the S3 origin that
/// serves the bucket.
pub async fn resolve<C: Cdn>(cdn: &C, settings: &Settings) -> Result<Vec<Serving>, Error> {
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
async fn preview<C: Cdn>(cdn: &C, job: &Job, plan: &Plan, unchanged: &[&str]) -> Vec<Invalidated> {
    let stale = plan::stale(plan, &Outcomes::all_done(plan));
    let mut out = Vec::new();
    for target in &job.distributions {
        let mut item = Invalidated::nothing(&target.id);
        match cdn.in_flight(&target.id).await {
            Ok(flight) => match execute::batch(target, job, &stale, unchanged, flight) {
                Ok(Some(b)) => {
                    item.paths = b.paths;
                    item.wildcards = b.wildcards;
                    item.evicted_unchanged = b.evicted_unchanged;
                }
                Ok(None) => {}
                Err(e) => item.error = Some(e.to_string()),
            },
            Err(e) => item.error = Some(format!("{e}; {}", e.hint())),
        }
        out.push(item);
    }
    out
}

/// Polls until every invalidation reports Completed; false on timeout or error.
pub async fn wait<C: Cdn>(
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
                    reporter.always(&format!(
                        "error: invalidation {id} on {} is still {status} after {}s; the deploy itself is complete",
                        inv.distribution,
                        timeout.as_secs()
                    ));
                    return false;
                }
                Err(e) => {
                    reporter.always(&format!(
                        "error: cannot read invalidation {id} on {}: {e}",
                        inv.distribution
                    ));
                    return false;
                }
            }
        }
    }
    true
}

/// The manifest and state keys belong to the tool; a site file must never overwrite them.
fn check_reserved(target: &Target, files: &[Local]) -> Result<(), Error> {
    match files.iter().find(|l| target.layout.is_reserved(&l.file.key)) {
        Some(l) => Err(Error::Usage(format!(
            "{} would be uploaded to s3://{}/{}, where the deploy keeps its manifest: pass another --manifest-key, or --exclude it",
            l.file.path().display(),
            target.bucket,
            l.file.key
        ))),
        None => Ok(()),
    }
}
