//! What the user reads at the end: the dry-run diff, the summary of a deploy, and the `--json`
//! document. Rendering only; every figure comes from the plan and the execution.

use std::fmt::Write as _;
use std::time::Duration;

use indicatif::HumanBytes;
use serde::Serialize;

use crate::commands::execute::{Executed, Invalidated};
use crate::decide::plan::Outcome;

/// Facts shared by every rendering.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub dir: &'a str,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub scanned_files: usize,
    pub scanned_bytes: u64,
    pub elapsed: Duration,
}

impl Context<'_> {
    fn target(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
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

/// `+ new`, `~ changed (why)`, `- removed`, `= unchanged`, then the invalidation paths.
pub fn dry_run(ctx: &Context, preview: &Executed, verbose: bool) -> String {
    let plan = &preview.plan;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Dry run: {} -> {} ({} files, {})",
        ctx.dir,
        ctx.target(),
        ctx.scanned_files,
        HumanBytes(ctx.scanned_bytes)
    );
    let width = plan
        .uploads
        .iter()
        .map(|u| u.key.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for u in &plan.uploads {
        let mark = if u.reason == crate::decide::plan::Reason::New {
            '+'
        } else {
            '~'
        };
        let _ = writeln!(
            out,
            "{mark} {:<width$}  {:>10}  {}",
            shown(&u.key),
            HumanBytes(u.size).to_string(),
            u.reason.as_str()
        );
    }
    for d in &plan.deletes {
        let _ = writeln!(out, "- {}", shown(&d.key));
    }
    for k in &plan.kept {
        let _ = writeln!(out, "  {} (removed locally, kept: --no-delete)", shown(k));
    }
    if verbose {
        for k in &plan.unchanged {
            let _ = writeln!(out, "= {}", shown(k));
        }
    } else if !plan.unchanged.is_empty() {
        let _ = writeln!(out, "= {} unchanged", plan.unchanged.len());
    }
    for inv in &preview.invalidations {
        out.push_str(&invalidation_lines(inv, true));
    }
    if plan.is_empty() {
        let _ = writeln!(out, "Nothing to deploy. Nothing was written.");
    } else {
        let _ = writeln!(
            out,
            "Would upload {} ({}) and delete {}. Nothing was written.",
            files(plan.uploads.len()),
            HumanBytes(plan.upload_bytes()),
            files(plan.deletes.len())
        );
    }
    out
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

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn files(n: usize) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

/// The one-paragraph result of a real deploy.
pub fn summary(ctx: &Context, done: &Executed) -> String {
    let secs = format!("{:.1}s", ctx.elapsed.as_secs_f64());
    let uploaded = done.uploaded().count();
    let deleted = done.deleted().count();
    let unchanged = done.plan.unchanged.len();
    let mut out = String::new();
    if done.plan.is_empty() && done.invalidations.is_empty() {
        let _ = writeln!(
            out,
            "Nothing to deploy: {unchanged} files unchanged in {} ({secs}).",
            ctx.target()
        );
        return out;
    }
    let head = if done.interrupted.is_some() {
        "Interrupted"
    } else if done.is_complete() {
        "Deployed"
    } else {
        "Partial deploy"
    };
    let _ = writeln!(
        out,
        "{head}: {} -> {}: {} uploaded ({}), {} deleted, {unchanged} unchanged in {secs}.",
        ctx.dir,
        ctx.target(),
        files(uploaded),
        HumanBytes(done.bytes_sent),
        files(deleted),
    );
    let failed = done.failures.len();
    let skipped = done
        .uploads
        .iter()
        .chain(&done.deletes)
        .filter(|o| **o == Outcome::Skipped)
        .count();
    if failed > 0 || skipped > 0 {
        let _ = writeln!(
            out,
            "{failed} failed, {skipped} not attempted. The manifest records exactly what landed: run the deploy again to finish."
        );
    }
    if !done.plan.kept.is_empty() {
        let _ = writeln!(
            out,
            "{} removed locally but kept (--no-delete).",
            files(done.plan.kept.len())
        );
    }
    for inv in &done.invalidations {
        out.push_str(&invalidation_lines(inv, false));
    }
    if done.invalidation_failed() {
        let _ = writeln!(
            out,
            "The changed paths stay recorded as not invalidated: the next deploy invalidates them again."
        );
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
    pub unchanged: usize,
    pub kept: Vec<String>,
    pub invalidations: Vec<Invalidated>,
    pub failures: Vec<FailureDoc>,
    pub files_scanned: usize,
    pub bytes_scanned: u64,
    pub bytes_uploaded: u64,
    pub duration_ms: u64,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UploadDoc {
    pub key: String,
    pub size: u64,
    pub reason: &'static str,
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

/// The `--json` document. `done` is `None` for a dry run.
pub fn document(ctx: &Context, result: &Executed, dry_run: bool, exit_code: u8) -> Document {
    let plan = &result.plan;
    let done = (!dry_run).then_some(result);
    let outcome =
        |list: Option<&Vec<Outcome>>, i: usize| list.and_then(|l| l.get(i)).copied().map(status);
    Document {
        bucket: ctx.bucket.to_string(),
        prefix: ctx.prefix.to_string(),
        dry_run,
        uploads: plan
            .uploads
            .iter()
            .enumerate()
            .map(|(i, u)| UploadDoc {
                key: u.key.clone(),
                size: u.size,
                reason: u.reason.as_str(),
                status: outcome(done.map(|d| &d.uploads), i),
            })
            .collect(),
        deletes: plan
            .deletes
            .iter()
            .enumerate()
            .map(|(i, d)| DeleteDoc {
                key: d.key.clone(),
                status: outcome(done.map(|d| &d.deletes), i),
            })
            .collect(),
        unchanged: plan.unchanged.len(),
        kept: plan.kept.clone(),
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
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::default_headers;
    use crate::decide::plan::{Delete, Plan, Reason, Upload};

    fn ctx() -> Context<'static> {
        Context {
            dir: "dist",
            bucket: "site",
            prefix: "",
            scanned_files: 3,
            scanned_bytes: 3000,
            elapsed: Duration::from_millis(1500),
        }
    }

    fn plan() -> Plan {
        let up = |key: &str, reason| Upload {
            key: key.into(),
            rel: key.into(),
            path: key.into(),
            size: 1024,
            sha256: [0; 32],
            headers: default_headers(key),
            reason,
            html: key.ends_with(".html"),
        };
        Plan {
            uploads: vec![up("app.js", Reason::New), up("index.html", Reason::Content)],
            deletes: vec![Delete {
                key: "old.js".into(),
                size: 1,
            }],
            unchanged: vec!["logo.png".into()],
            kept: vec![],
            pending: vec![],
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
        let text = dry_run(&ctx(), &preview, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("Dry run: dist -> s3://site/"));
        assert!(lines[1].starts_with("+ app.js") && lines[1].ends_with("new"));
        assert!(lines[2].starts_with("~ index.html") && lines[2].ends_with("content"));
        assert_eq!(lines[3], "- old.js");
        assert_eq!(lines[4], "= 1 unchanged");
        assert_eq!(
            lines[5],
            "CloudFront E1: would invalidate 2 paths (0 wildcards, 0 unchanged files evicted)"
        );
        assert_eq!(lines[6..8], ["  /", "  /index.html"]);
        assert!(lines[8].contains("Would upload 2 files (2.00 KiB) and delete 1 file."));
    }

    #[test]
    fn partial_summary_says_what_to_do() {
        let done = Executed {
            plan: plan(),
            uploads: vec![Outcome::Failed, Outcome::Skipped],
            deletes: vec![Outcome::Skipped],
            failures: vec![crate::commands::execute::Failure {
                key: "app.js".into(),
                error: "access denied".into(),
            }],
            ..Executed::default()
        };
        let text = summary(&ctx(), &done);
        assert!(
            text.starts_with("Partial deploy: dist -> s3://site/: 0 files uploaded"),
            "{text}"
        );
        assert!(text.contains("1 failed, 2 not attempted"));
        let doc = document(&ctx(), &done, false, 3);
        let json = serde_json::to_value(&doc).expect("json");
        assert_eq!(json["uploads"][0]["status"], "failed");
        assert_eq!(json["uploads"][1]["status"], "skipped");
        assert_eq!(json["exit_code"], 3);
        assert_eq!(json["dry_run"], false);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        assert_eq!(shown("café au lait"), "café au lait");
    }
}
