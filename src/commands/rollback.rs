//! `rollback`: puts the site back as a kept deploy left it, by server-side copies only (no build
//! folder, nothing uploaded from this machine). A rollback is a deploy: same lock, same intent,
//! same exact invalidation, recorded in the history, so rolling back twice returns to where it
//! started.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::cloud::bucket::Bucket;
use crate::commands::deploy::{connect, deploy_info, job, wait};
use crate::commands::execute::{self, Executed, Ran, Stores};
use crate::commands::lease::held_by_other;
use crate::commands::lease::Lease;
use crate::commands::remote;
use crate::commands::signals::Signals;
use crate::commands::unlock::confirm;
use crate::decide::plan::Moment;
use crate::decide::rollback;
use crate::error::{code, Error};
use crate::output::progress::Reporter;
use crate::output::report::{self, Context};
use crate::settings::{Settings, Verbosity};
use crate::state::entry::Entry;
use crate::state::format::Reverse;
use crate::state::history::{self, inline_records, part_records};
use crate::state::view::{Changes, View};

pub async fn rollback(settings: &Settings, to: Option<&str>) -> Result<u8, Error> {
    let started = Instant::now();
    let reporter = Arc::new(Reporter::new(
        settings.verbosity,
        settings.env.interactive && !settings.json,
    ));
    let session = connect(settings, &reporter).await?;
    let bucket = &session.bucket;
    let layout = session.target.layout.clone();
    let mut view = remote::read_root(bucket, &layout).await?;

    let hist = &view.root.history;
    let latest = hist.last().map(|h| h.seq);
    let target = match to {
        Some(id) => hist.iter().find(|h| h.deploy.id == id).ok_or_else(|| {
            Error::Usage(format!(
                "no kept deploy has the id {id:?}; `{} history` lists them",
                crate::cli::program_name()
            ))
        })?,
        None => hist.iter().rev().nth(1).ok_or_else(|| {
            Error::Usage(format!(
                "there is no earlier deploy to go back to in {} (the history holds {})",
                session.target.url(),
                hist.len()
            ))
        })?,
    };
    if Some(target.seq) == latest && view.root.seq == target.seq {
        println!(
            "{} is already at {}: nothing to do.",
            session.target.url(),
            target.deploy.id
        );
        return Ok(code::OK);
    }
    let target_id = target.deploy.id.clone();
    let target_seq = target.seq;

    // Undo every later deploy, newest first.
    let mut reverses: Vec<Changes> = Vec::new();
    for h in view
        .root
        .history
        .iter()
        .rev()
        .filter(|h| h.seq > target_seq)
    {
        reverses.push(match &h.reverse {
            Reverse::Inline(map) => inline_records(map, &view.root.headers),
            Reverse::Stored { key, at, len, .. } => {
                let doc = remote::read_reverse(bucket, &layout, key, *at, *len).await?;
                part_records(&doc)
            }
        });
    }
    let wanted = rollback::target_state(&reverses);

    // Every record, to find the bytes to copy from and to count what wildcards evict.
    let unread = view.unread();
    remote::read_chunks(bucket, &mut view, &unread).await?;
    let current: BTreeMap<String, Entry> = view
        .known()
        .into_iter()
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    let mut plan = rollback::plan(&wanted, &current, &layout, &settings.plan).map_err(|e| {
        Error::Refused(format!(
            "{e}\n  hint: deploy a build of that version instead"
        ))
    })?;
    plan.pending = view.root.pending_invalidation.iter().cloned().collect();

    let mut deploy = deploy_info(settings, "rollback");
    deploy.restored = Some(target_id.clone());
    let job = job(settings, &session, deploy);
    let unchanged = unchanged(&view, &plan);
    let ctx = Context {
        dir: target_id.clone(),
        rollback: true,
        bucket: &session.target.bucket,
        prefix: &layout.prefix,
        scanned_files: 0,
        scanned_bytes: 0,
        elapsed: started.elapsed(),
    };
    let preview = Executed {
        plan: plan.clone(),
        ..Executed::default()
    };
    if settings.dry_run {
        if settings.json {
            report::print_json(&report::document(&ctx, &preview, true, code::OK));
        } else {
            print!("{}", report::dry_run(&ctx, &preview, false, &[]));
        }
        return Ok(code::OK);
    }
    if plan.is_empty() {
        println!(
            "{} already serves what {target_id} deployed: nothing to do.",
            session.target.url()
        );
        return Ok(code::OK);
    }
    if !settings.json && !settings.yes {
        print!("{}", report::dry_run(&ctx, &preview, false, &[]));
    }
    if !confirm(
        settings,
        &format!("Roll {} back to {target_id}?", session.target.url()),
    )? {
        println!("Nothing was changed.");
        return Ok(code::OK);
    }

    let seq = view.root.seq + 1;
    let oldest_kept = history::oldest_kept(&view.root, seq, settings.keep_deploys);
    let moment = Moment {
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
        seq,
        oldest_kept,
        previous_kept: seq > oldest_kept,
    };
    let lease = Lease::new(
        bucket,
        &layout.manifest_key,
        settings.lock_ttl,
        &job.deploy.id,
    );
    let signals = Signals::watch(&reporter);
    if let Some(lock) = view.root.lock.as_ref().filter(|_| held_by_other(&view)) {
        return Err(crate::commands::lease::locked(
            bucket.name(),
            &layout.manifest_key,
            lock,
        ));
    }
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
    signals.stop();
    reporter.finish();
    let done = match ran {
        Ran::Done(done) => *done,
        Ran::Contended(_) => {
            return Err(Error::Conflict {
                bucket: bucket.name().to_string(),
                key: layout.manifest_key.clone(),
            })
        }
    };
    let mut exit = match done.interrupted {
        Some(c) => c,
        None if !done.is_complete() => code::PARTIAL,
        None if done.invalidation_failed() => code::FAILURE,
        None => code::OK,
    };
    if let Some(timeout) = settings.wait {
        if exit == code::OK && !wait(&session.cdn, &done.invalidations, timeout, &reporter).await {
            exit = code::FAILURE;
        }
    }
    let ctx = Context {
        elapsed: started.elapsed(),
        ..ctx
    };
    if settings.json {
        report::print_json(&report::document(&ctx, &done, false, exit));
    } else if settings.verbosity != Verbosity::Quiet || exit != code::OK {
        print!("{}", report::summary(&ctx, &done));
    }
    crate::output::github::summary(&ctx, &done, None);
    Ok(exit)
}

/// Live site keys the rollback leaves as they are.
fn unchanged<'v>(view: &'v View, plan: &crate::decide::plan::Plan) -> Vec<&'v str> {
    let touched: std::collections::BTreeSet<&str> = plan
        .writes
        .iter()
        .map(|w| &*w.key)
        .chain(plan.deletes.iter().map(|d| d.key.as_str()))
        .collect();
    view.known()
        .into_iter()
        .filter(|(k, e)| {
            !view.layout.is_reserved(k)
                && !touched.contains(k.as_str())
                && !matches!(e.life, crate::state::entry::Life::Kept { .. })
        })
        .map(|(k, _)| k.as_str())
        .collect()
}
