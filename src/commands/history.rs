//! `history`: the deploys kept for rollback, newest first, from the manifest's root (one GET).

use std::fmt::Write as _;

use serde::Serialize;

use crate::commands::deploy::connect;
use crate::commands::remote;
use crate::error::{code, Error};
use crate::output::progress::Reporter;
use crate::output::report;
use crate::settings::Settings;
use crate::state::format::{HistoryDoc, Reverse, RootDoc};

#[derive(Debug, Serialize)]
pub struct Item {
    pub id: String,
    pub seq: u64,
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
    pub uploaded: u64,
    pub deleted: u64,
    pub retired: u64,
    /// Files a rollback to the deploy before this one would touch.
    pub changed: u64,
    pub invalidations: Vec<String>,
    /// The deploy the site is at now.
    pub live: bool,
}

pub fn items(root: &RootDoc) -> Vec<Item> {
    let latest = root.history.last().map(|h| h.seq);
    root.history
        .iter()
        .rev()
        .map(|h: &HistoryDoc| Item {
            id: h.deploy.id.clone(),
            seq: h.seq,
            time: h.deploy.time.clone(),
            git_commit: h.deploy.git_commit.clone(),
            kind: h.deploy.kind.clone(),
            restored: h.deploy.restored.clone(),
            uploaded: h.uploaded,
            deleted: h.deleted,
            retired: h.retired,
            changed: match &h.reverse {
                Reverse::Inline(m) => m.len() as u64,
                Reverse::Stored { keys, .. } => *keys,
            },
            invalidations: h.invalidations.clone(),
            live: Some(h.seq) == latest && root.seq == h.seq,
        })
        .collect()
}

pub fn render(target: &str, items: &[Item], program: &str) -> String {
    let mut out = String::new();
    if items.is_empty() {
        let _ = writeln!(out, "No deploy is recorded in {target} yet.");
        return out;
    }
    let _ = writeln!(out, "Deploys kept in {target}, newest first:");
    for i in items {
        let commit = i
            .git_commit
            .as_deref()
            .map(|c| format!("  commit {}", &c[..c.len().min(12)]))
            .unwrap_or_default();
        let kind = match (&*i.kind, &i.restored) {
            ("rollback", Some(to)) => format!("  rollback to {to}"),
            ("rollback", None) => "  rollback".to_string(),
            _ => String::new(),
        };
        let invalidations = if i.invalidations.is_empty() {
            String::new()
        } else {
            format!("  invalidation {}", i.invalidations.join(", "))
        };
        let _ = writeln!(
            out,
            "{} #{:<4} {}{kind}{commit}\n        {} uploaded, {} deleted, {} retired{invalidations}",
            if i.live { "*" } else { " " },
            i.seq,
            i.id,
            i.uploaded,
            i.deleted,
            i.retired,
        );
    }
    if items.len() > 1 {
        let _ = writeln!(
            out,
            "* is live. `{program} rollback` goes back to #{}; `{program} rollback --to ID` to any of them.",
            items[1].seq
        );
    } else {
        let _ = writeln!(
            out,
            "* is live. A rollback needs an earlier deploy: there is none yet."
        );
    }
    out
}

pub async fn history(settings: &Settings) -> Result<u8, Error> {
    let reporter = Reporter::new(settings.verbosity, false);
    let session = connect(settings, &reporter).await?;
    let view = remote::read_root(&session.bucket, &session.target.layout).await?;
    let list = items(&view.root);
    if settings.json {
        report::print_json(&list);
    } else {
        print!(
            "{}",
            render(&session.target.url(), &list, crate::cli::program_name())
        );
    }
    Ok(code::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::format::DeployInfo;

    #[test]
    fn newest_first_with_the_live_one_marked() {
        let mut root = RootDoc::new("");
        for seq in 1..=3 {
            root.history.push(HistoryDoc {
                seq,
                deploy: DeployInfo {
                    id: format!("2026-11-2{seq}T10:00:00Z-00{seq}a"),
                    time: format!("2026-11-2{seq}T10:00:00Z"),
                    git_commit: Some("0123456789abcdef0123".into()),
                    ..DeployInfo::default()
                },
                uploaded: seq,
                deleted: 0,
                retired: 0,
                invalidations: vec!["E1:I9".into()],
                reverse: Reverse::Inline(Default::default()),
            });
        }
        root.seq = 3;
        let list = items(&root);
        assert_eq!(list.iter().map(|i| i.seq).collect::<Vec<_>>(), [3, 2, 1]);
        assert!(list[0].live && !list[1].live);
        let text = render("s3://b/", &list, "cargo cdn-deploy");
        assert!(text.starts_with("Deploys kept in s3://b/, newest first:\n* #3    2026-11-23T10:00:00Z-003a  commit 0123456789ab"), "{text}");
        assert!(
            text.contains("`cargo cdn-deploy rollback` goes back to #2"),
            "{text}"
        );
        assert_eq!(
            render("s3://b/", &[], "x"),
            "No deploy is recorded in s3://b/ yet.\n"
        );
    }
}
