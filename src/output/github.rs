//! CI-native output under GitHub Actions: a Markdown summary of the deploy appended to
//! `$GITHUB_STEP_SUMMARY`, and errors as `::error` annotations. Elsewhere, nothing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::commands::execute::Executed;
use crate::commands::verify::Verified;
use crate::decide::plan::{DeleteKind, Outcome, Source};
use crate::output::report::Context;

/// The Markdown summary of a deploy (or a dry run).
pub fn markdown(ctx: &Context, done: &Executed, verified: Option<&Verified>) -> String {
    let plan = &done.plan;
    let mut out = String::new();
    let dry = done.outcomes.writes.is_empty() && !plan.writes.is_empty();
    let _ = writeln!(
        out,
        "### cdn-deploy: `{}` → `{}`{}\n",
        ctx.dir,
        ctx.target(),
        if dry { " (dry run)" } else { "" }
    );
    let ok = |i: usize| dry || done.outcomes.writes.get(i) == Some(&Outcome::Done);
    let uploads: Vec<&str> = plan
        .writes
        .iter()
        .enumerate()
        .filter(|(i, w)| ok(*i) && matches!(w.source, Source::File(_)))
        .map(|(_, w)| &*w.key)
        .collect();
    let copies: Vec<&str> = plan
        .writes
        .iter()
        .enumerate()
        .filter(|(i, w)| ok(*i) && !matches!(w.source, Source::File(_)))
        .map(|(_, w)| &*w.key)
        .collect();
    let deleted: Vec<&str> = plan
        .deletes
        .iter()
        .enumerate()
        .filter(|(i, d)| {
            d.kind == DeleteKind::Removed
                && (dry || done.outcomes.deletes.get(*i) == Some(&Outcome::Done))
        })
        .map(|(_, d)| d.key.as_str())
        .collect();
    let _ = writeln!(out, "| | files |\n|---|---|");
    let _ = writeln!(out, "| uploaded | {} |", uploads.len());
    if !copies.is_empty() {
        let _ = writeln!(out, "| updated by server-side copy | {} |", copies.len());
    }
    let _ = writeln!(out, "| deleted | {} |", deleted.len());
    let _ = writeln!(
        out,
        "| retired (kept for open tabs) | {} |",
        plan.retire.len()
    );
    let _ = writeln!(out, "| unchanged | {} |", plan.unchanged);
    if !done.failures.is_empty() {
        let _ = writeln!(out, "| **failed** | {} |", done.failures.len());
    }
    let list = |out: &mut String, title: &str, keys: &[&str]| {
        if keys.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n<details><summary>{title} ({})</summary>\n",
            keys.len()
        );
        for k in keys.iter().take(500) {
            let _ = writeln!(out, "- `{k}`");
        }
        let _ = writeln!(out, "\n</details>");
    };
    list(&mut out, "Uploaded", &uploads);
    list(&mut out, "Deleted", &deleted);
    let retired: Vec<&str> = plan.retire.iter().map(String::as_str).collect();
    list(&mut out, "Retired", &retired);
    for inv in &done.invalidations {
        let id = inv.id.as_deref().unwrap_or("not sent");
        let _ = writeln!(
            out,
            "\n**CloudFront {}**: {} path{} (invalidation `{id}`){}",
            inv.distribution,
            inv.paths.len(),
            if inv.paths.len() == 1 { "" } else { "s" },
            inv.error
                .as_deref()
                .map(|e| format!(" — failed: {e}"))
                .unwrap_or_default()
        );
        let paths: Vec<&str> = inv.paths.iter().map(String::as_str).collect();
        list(&mut out, "Paths", &paths);
    }
    if let Some(v) = verified {
        if v.stale.is_empty() {
            let _ = writeln!(
                out,
                "\n**Verified** through {}: {} URLs fresh.",
                v.base, v.checked
            );
        } else {
            let _ = writeln!(
                out,
                "\n**Stale** through {}: {} of {} URLs:\n",
                v.base,
                v.stale.len(),
                v.checked
            );
            for s in v.stale.iter().take(100) {
                let _ = writeln!(out, "- `{}`: {}", s.url, s.served);
            }
        }
    }
    out
}

/// Appends the summary when running under GitHub Actions.
pub fn summary(ctx: &Context, done: &Executed, verified: Option<&Verified>) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let text = markdown(ctx, done, verified);
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(Path::new(&path))
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        eprintln!("warning: cannot append the deploy summary to $GITHUB_STEP_SUMMARY: {e}");
    }
}

/// An error as a GitHub annotation: one `::error` line, its newlines encoded as the runner
/// expects.
pub fn annotation(message: &str) -> String {
    let escaped = message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    format!("::error title=cdn-deploy::{escaped}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_one_line() {
        assert_eq!(
            annotation("a 50% failure\n  hint: run again"),
            "::error title=cdn-deploy::a 50%25 failure%0A  hint: run again"
        );
    }
}
