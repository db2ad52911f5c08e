//! What the user reads at the end: the dry-run diff, the summary of a deploy, and the `--json`
//! document. Rendering only; every figure comes from the plan and the execution.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use indicatif::HumanBytes;
use serde::Serialize;

use crate::commands::execute::{Executed, Invalidated};
use crate::decide::plan::{DeleteKind, Local, Outcome, Reason, Source};

/// Facts shared by every rendering.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The build folder as the user named it, or what a rollback restores.
    pub dir: String,
    /// A rollback, not a deploy of a build folder.
    pub rollback: bool,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub scanned_files: usize,
    pub scanned_bytes: u64,
    pub elapsed: Duration,
}

impl Context<'_> {
    pub fn target(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The build folder as the user would name it: relative to the current folder when it is
/// inside it.
pub fn shown_dir(dir: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let rel = cwd.as_deref().and_then(|c| dir.strip_prefix(c).ok());
    match rel {
        Some(r) if r.as_os_str().is_empty() => ".".into(),
        Some(r) => r.display().to_string(),
        None => dir.display().to_string(),
    }
}

/// Keys are shown as they are, unless they hold control characters that would garble a log.
fn shown(key: &str) -> String {
    if key.chars().any(char::is_control) {
        format!("{key:?}")
    } else {
        key.to_string()
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn files(n: usize) -> String {
    format!("{n} file{}", plural(n))
}

/// `+ new`, `~ changed (why)`, `- removed`, `> retired`, `x expired`, `= unchanged`, then the
/// invalidation paths.
pub fn dry_run(ctx: &Context, preview: &Executed, verbose: bool, local: &[Local]) -> String {
    let plan = &preview.plan;
    let mut out = String::new();
    if ctx.rollback {
        let _ = writeln!(out, "Rollback of {} to {}:", ctx.target(), ctx.dir);
    } else {
        let _ = writeln!(
            out,
            "Dry run: {} -> {} ({}, {})",
            ctx.dir,
            ctx.target(),
            files(ctx.scanned_files),
            HumanBytes(ctx.scanned_bytes)
        );
    }
    let width = plan
        .writes
        .iter()
        .map(|u| u.key.chars().count())
        .chain(plan.deletes.iter().map(|d| d.key.chars().count()))
        .max()
        .unwrap_or(0)
        .min(60);
    for w in &plan.writes {
        let mark = if w.reason == Reason::New { '+' } else { '~' };
        let how = match w.source {
            Source::Restyle => " (server-side copy, nothing sent)",
            Source::Copy(_) => " (server-side copy)",
            Source::File(_) => "",
        };
        let _ = writeln!(
            out,
            "{mark} {:<width$}  {:>10}  {}{how}",
            shown(&w.key),
            HumanBytes(w.size).to_string(),
            w.reason.as_str()
        );
    }
    for d in plan
        .deletes
        .iter()
        .filter(|d| d.kind == DeleteKind::Removed)
    {
        let _ = writeln!(out, "- {:<width$}  {:>10}  removed", shown(&d.key), "");
    }
    for k in &plan.retire {
        let _ = writeln!(
            out,
            "> {:<width$}  {:>10}  retired: stays for open tabs, deleted by a later deploy",
            shown(k),
            ""
        );
    }
    for d in plan
        .deletes
        .iter()
        .filter(|d| d.kind == DeleteKind::Expired)
    {
        let _ = writeln!(
            out,
            "x {:<width$}  {:>10}  expired: retired long enough",
            shown(&d.key),
            ""
        );
    }
    for k in &plan.revive {
        let _ = writeln!(
            out,
            "< {:<width$}  {:>10}  back in the build: live again, nothing sent",
            shown(k),
            ""
        );
    }
    for (k, why) in &plan.left {
        let why = match why {
            crate::decide::plan::LeftWhy::Excluded => {
                "excluded: left in the bucket (--delete-excluded removes it)"
            }
            crate::decide::plan::LeftWhy::NoDelete => "removed locally, kept: --no-delete",
        };
        let _ = writeln!(out, "  {:<width$}  {:>10}  {why}", shown(k), "");
    }
    if verbose {
        let written: std::collections::BTreeSet<&str> =
            plan.writes.iter().map(|w| &*w.key).collect();
        for l in local.iter().filter(|l| !written.contains(&*l.file.key)) {
            let _ = writeln!(out, "= {}", shown(&l.file.key));
        }
    } else if plan.unchanged > 0 {
        let _ = writeln!(out, "= {} unchanged", plan.unchanged);
    }
    let garbage = plan
        .deletes
        .iter()
        .filter(|d| d.kind == DeleteKind::Garbage)
        .count();
    if garbage > 0 {
        let _ = writeln!(
            out,
            "  ({garbage} kept cop{} no longer needed for rollbacks would be deleted)",
            if garbage == 1 { "y" } else { "ies" }
        );
    }
    for inv in &preview.invalidations {
        out.push_str(&invalidation_lines(inv, true));
    }
    out.push_str(&first_note(preview));
    if plan.is_empty() && plan.pending.is_empty() {
        let _ = writeln!(out, "Nothing to deploy. Nothing was written.");
    } else {
        let _ = writeln!(out, "Would {}. Nothing was written.", counts(preview, true));
    }
    out
}

/// "upload 8 files (7.20 KiB), update 1, delete 3, retire 2".
fn counts(done: &Executed, planned: bool) -> String {
    let plan = &done.plan;
    let ok = |i: usize| planned || done.outcomes.writes.get(i) == Some(&Outcome::Done);
    let mut uploads = 0;
    let mut bytes = 0;
    let mut updates = 0;
    for (i, w) in plan.writes.iter().enumerate() {
        if !ok(i) {
            continue;
        }
        match w.source {
            Source::File(_) => {
                uploads += 1;
                bytes += w.size;
            }
            _ => updates += 1,
        }
    }
    let del_ok = |i: usize| planned || done.outcomes.deletes.get(i) == Some(&Outcome::Done);
    let removed = plan
        .deletes
        .iter()
        .enumerate()
        .filter(|(i, d)| d.kind == DeleteKind::Removed && del_ok(*i))
        .count();
    let expired = plan
        .deletes
        .iter()
        .enumerate()
        .filter(|(i, d)| d.kind == DeleteKind::Expired && del_ok(*i))
        .count();
    let verb = |w: &str, p: &str| {
        if planned {
            w.to_string()
        } else {
            p.to_string()
        }
    };
    let mut parts = vec![format!(
        "{} {} ({})",
        verb("upload", "uploaded"),
        files(uploads),
        HumanBytes(if planned { bytes } else { done.bytes_sent })
    )];
    if updates > 0 {
        parts.push(format!(
            "{} {updates} by server-side copy",
            verb("update", "updated")
        ));
    }
    parts.push(format!("{} {}", verb("delete", "deleted"), files(removed)));
    let retired = if planned || done.outcomes.bookkeeping {
        plan.retire.len()
    } else {
        0
    };
    if retired > 0 {
        parts.push(format!("{} {retired}", verb("retire", "retired")));
    }
    if expired > 0 {
        parts.push(format!("{} {expired} expired", verb("delete", "deleted")));
    }
    parts.join(", ")
}

/// One distribution's invalidation; with `paths`, every path on its own line.
fn invalidation_lines(inv: &Invalidated, paths: bool) -> String {
    let mut out = String::new();
    if let Some(error) = &inv.error {
        let _ = writeln!(
            out,
            "CloudFront {}: invalidation failed: {error}",
            inv.distribution
        );
        return out;
    }
    if inv.paths.is_empty() {
        let _ = writeln!(
            out,
            "CloudFront {}: nothing to invalidate",
            inv.distribution
        );
        return out;
    }
    let id = inv
        .id
        .as_deref()
        .map(|id| format!(" as {id}"))
        .unwrap_or_default();
    let verb = if inv.id.is_some() {
        "invalidated"
    } else {
        "would invalidate"
    };
    let _ = writeln!(
        out,
        "CloudFront {}: {verb} {} path{}{id} ({} wildcard{}, {} unchanged file{} evicted)",
        inv.distribution,
        inv.paths.len(),
        plural(inv.paths.len()),
        inv.wildcards,
        plural(inv.wildcards),
        inv.evicted_unchanged,
        plural(inv.evicted_unchanged),
    );
    if paths {
        for p in &inv.paths {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}

/// Why a first deploy invalidates paths at all, when it does.
fn first_note(done: &Executed) -> String {
    if done.first && done.invalidations.iter().any(|i| !i.paths.is_empty()) {
        "(A first deploy invalidates its pages and unhashed files: CloudFront may still hold an earlier site or cached errors for those paths. New content-hashed files were never requested and need none.)\n".into()
    } else {
        String::new()
    }
}

/// The one-paragraph result of a real deploy.
pub fn summary(ctx: &Context, done: &Executed) -> String {
    let secs = format!("{:.1}s", ctx.elapsed.as_secs_f64());
    let plan = &done.plan;
    let mut out = String::new();
    if plan.is_empty() && done.invalidations.is_empty() {
        let _ = writeln!(
            out,
            "Nothing to deploy: {} unchanged in {} ({secs}).",
            files(plan.unchanged),
            ctx.target()
        );
        return out;
    }
    let head = if done.interrupted.is_some() {
        "Interrupted"
    } else if done.is_complete() && ctx.rollback {
        "Rolled back"
    } else if done.is_complete() {
        "Deployed"
    } else {
        "Partial deploy"
    };
    if ctx.rollback && head == "Rolled back" {
        let _ = writeln!(
            out,
            "Rolled back {} to {}: {} in {secs}.",
            ctx.target(),
            ctx.dir,
            counts(done, false),
        );
    } else {
        let _ = writeln!(
            out,
            "{head}: {} -> {}: {}, {} unchanged in {secs}.",
            ctx.dir,
            ctx.target(),
            counts(done, false),
            plan.unchanged,
        );
    }
    let failed = done.failures.len();
    let skipped = done
        .outcomes
        .writes
        .iter()
        .chain(&done.outcomes.deletes)
        .filter(|o| **o == Outcome::Skipped)
        .count();
    if failed > 0 || skipped > 0 {
        let _ = writeln!(
            out,
            "{failed} failed, {skipped} not attempted. The manifest records exactly what landed: run the deploy again to finish."
        );
        for f in done.failures.iter().take(10) {
            let _ = writeln!(out, "  {}: {}", shown(&f.key), f.error);
        }
    }
    if done.aborted > 0 {
        let _ = writeln!(
            out,
            "Aborted {} unfinished multipart upload{} an interrupted deploy left behind.",
            done.aborted,
            plural(done.aborted)
        );
    }
    if !plan.left.is_empty() {
        let _ = writeln!(
            out,
            "{} no longer in the build left in place (excluded or --no-delete).",
            files(plan.left.len())
        );
    }
    for inv in &done.invalidations {
        out.push_str(&invalidation_lines(inv, false));
    }
    out.push_str(&first_note(done));
    if done.invalidation_failed() {
        let _ = writeln!(
            out,
            "The changed paths stay recorded as not invalidated: the next deploy invalidates them again."
        );
    }
    out
}

/// What `verify` found, for the summary.
pub fn verified(v: &crate::commands::verify::Verified) -> String {
    let mut out = String::new();
    if v.stale.is_empty() {
        let _ = writeln!(
            out,
            "Verified through {}: {} URL{} serve exactly what was deployed.",
            v.base,
            v.checked,
            plural(v.checked)
        );
    } else {
        let _ = writeln!(
            out,
            "Stale through {}: {} of {} URL{} do not serve what was deployed:",
            v.base,
            v.stale.len(),
            v.checked,
            plural(v.checked)
        );
        for s in v.stale.iter().take(50) {
            let _ = writeln!(out, "  {}  {}", s.url, s.served);
        }
        if v.stale.len() > 50 {
            let _ = writeln!(
                out,
                "  … and {} more (--json lists them all)",
                v.stale.len() - 50
            );
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Document {
    pub bucket: String,
    pub prefix: String,
    pub dry_run: bool,
    pub uploads: Vec<UploadDoc>,
    pub deletes: Vec<DeleteDoc>,
    pub retired: Vec<String>,
    pub expired: Vec<DeleteDoc>,
    pub revived: Vec<String>,
    pub left: Vec<LeftDoc>,
    pub unchanged: usize,
    pub invalidations: Vec<Invalidated>,
    pub failures: Vec<FailureDoc>,
    pub files_scanned: usize,
    pub bytes_scanned: u64,
    pub bytes_uploaded: u64,
    pub duration_ms: u64,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::commands::verify::Verified>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UploadDoc {
    pub key: String,
    pub size: u64,
    pub reason: &'static str,
    /// `upload`, or `copy` for a server-side copy (a header update, a restore).
    pub method: &'static str,
    /// `done`, `failed` or `skipped` after a real run; absent in a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct DeleteDoc {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct LeftDoc {
    pub key: String,
    pub why: crate::decide::plan::LeftWhy,
}

#[derive(Debug, Serialize)]
pub struct FailureDoc {
    pub key: String,
    pub error: String,
}

fn status(o: Outcome) -> &'static str {
    match o {
        Outcome::Done => "done",
        Outcome::Failed => "failed",
        Outcome::Skipped => "skipped",
    }
}

/// The `--json` document.
pub fn document(ctx: &Context, result: &Executed, dry_run: bool, exit_code: u8) -> Document {
    let plan = &result.plan;
    let done = (!dry_run).then_some(result);
    let outcome =
        |list: Option<&Vec<Outcome>>, i: usize| list.and_then(|l| l.get(i)).copied().map(status);
    let deletes = |kind: DeleteKind| -> Vec<DeleteDoc> {
        plan.deletes
            .iter()
            .enumerate()
            .filter(|(_, d)| d.kind == kind)
            .map(|(i, d)| DeleteDoc {
                key: d.key.clone(),
                status: outcome(done.map(|d| &d.outcomes.deletes), i),
            })
            .collect()
    };
    Document {
        bucket: ctx.bucket.to_string(),
        prefix: ctx.prefix.to_string(),
        dry_run,
        uploads: plan
            .writes
            .iter()
            .enumerate()
            .map(|(i, w)| UploadDoc {
                key: w.key.to_string(),
                size: w.size,
                reason: w.reason.as_str(),
                method: match w.source {
                    Source::File(_) => "upload",
                    _ => "copy",
                },
                status: outcome(done.map(|d| &d.outcomes.writes), i),
            })
            .collect(),
        deletes: deletes(DeleteKind::Removed),
        retired: plan.retire.clone(),
        expired: deletes(DeleteKind::Expired),
        revived: plan.revive.clone(),
        left: plan
            .left
            .iter()
            .map(|(k, why)| LeftDoc {
                key: k.clone(),
                why: *why,
            })
            .collect(),
        unchanged: plan.unchanged,
        invalidations: result.invalidations.clone(),
        failures: done
            .map(|d| {
                d.failures
                    .iter()
                    .map(|f| FailureDoc {
                        key: f.key.clone(),
                        error: f.error.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        files_scanned: ctx.scanned_files,
        bytes_scanned: ctx.scanned_bytes,
        bytes_uploaded: done.map_or(0, |d| d.bytes_sent),
        duration_ms: u64::try_from(ctx.elapsed.as_millis()).unwrap_or(u64::MAX),
        exit_code,
        verify: None,
        error: None,
    }
}

/// One JSON document on stdout.
pub fn print_json<T: Serialize>(doc: &T) {
    use std::io::Write;
    // Written as it is rendered: the report of a large first deploy lists every file.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, doc)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        // A closed pipe (`| head`) is the reader's choice, not an error to report.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the JSON report: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decide::plan::{Delete, Outcomes, Plan, Write};
    use crate::local::headers::default_headers;
    use crate::local::scan::InBuild;

    fn ctx() -> Context<'static> {
        Context {
            dir: "dist".into(),
            rollback: false,
            bucket: "site",
            prefix: "",
            scanned_files: 3,
            scanned_bytes: 3000,
            elapsed: Duration::from_millis(1500),
        }
    }

    fn plan() -> Plan {
        let up = |key: &str, reason| Write {
            key: key.into(),
            source: Source::File(InBuild::new(Path::new("/site"), 0)),
            size: 1024,
            sha256: [0; 32],
            parts: None,
            headers: Arc::new(default_headers(key)),
            reason,
            html: key.ends_with(".html"),
            keep: None,
        };
        Plan {
            writes: vec![up("app.js", Reason::New), up("index.html", Reason::Content)],
            deletes: vec![Delete {
                key: "old.html".into(),
                size: 1,
                kind: DeleteKind::Removed,
                keep: None,
            }],
            retire: vec!["app-OldHash1.js".into()],
            unchanged: 1,
            ..Plan::default()
        }
    }

    #[test]
    fn dry_run_marks() {
        let preview = Executed {
            plan: plan(),
            invalidations: vec![Invalidated {
                distribution: "E1".into(),
                paths: vec!["/".into(), "/index.html".into()],
                wildcards: 0,
                evicted_unchanged: 0,
                id: None,
                error: None,
            }],
            ..Executed::default()
        };
        let text = dry_run(&ctx(), &preview, false, &[]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("Dry run: dist -> s3://site/ (3 files"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("+ app.js") && lines[1].ends_with("new"),
            "{text}"
        );
        assert!(lines[2].starts_with("~ index.html") && lines[2].ends_with("content"));
        assert!(lines[3].starts_with("- old.html") && lines[3].ends_with("removed"));
        assert!(lines[4].starts_with("> app-OldHash1.js") && lines[4].contains("retired"));
        assert_eq!(lines[5], "= 1 unchanged");
        assert_eq!(
            lines[6],
            "CloudFront E1: would invalidate 2 paths (0 wildcards, 0 unchanged files evicted)"
        );
        assert_eq!(lines[7..9], ["  /", "  /index.html"]);
        assert_eq!(
            lines[9],
            "Would upload 2 files (2.00 KiB), delete 1 file, retire 1. Nothing was written."
        );
    }

    #[test]
    fn partial_summary_says_what_to_do() {
        let p = plan();
        let mut outcomes = Outcomes::skipped(&p);
        outcomes.writes[0] = Outcome::Failed;
        let done = Executed {
            plan: p,
            outcomes,
            failures: vec![crate::commands::execute::Failure {
                key: "app.js".into(),
                error: "access denied".into(),
            }],
            ..Executed::default()
        };
        let text = summary(&ctx(), &done);
        assert!(
            text.starts_with("Partial deploy: dist -> s3://site/: uploaded 0 files"),
            "{text}"
        );
        assert!(text.contains("1 failed, 2 not attempted"));
        assert!(text.contains("app.js: access denied"));
        let doc = document(&ctx(), &done, false, 3);
        let json = serde_json::to_value(&doc).expect("json");
        assert_eq!(json["uploads"][0]["status"], "failed");
        assert_eq!(json["uploads"][1]["status"], "skipped");
        assert_eq!(json["retired"][0], "app-OldHash1.js");
        assert_eq!(json["exit_code"], 3);
        assert_eq!(json["dry_run"], false);
    }

    #[test]
    fn control_characters_are_escaped_and_dirs_shown_relative() {
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        assert_eq!(shown("café au lait"), "café au lait");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(shown_dir(&cwd.join("dist")), "dist");
        assert_eq!(shown_dir(&cwd), ".");
        assert_eq!(shown_dir(Path::new("/elsewhere/x")), "/elsewhere/x");
    }
}
