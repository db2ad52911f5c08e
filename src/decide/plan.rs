//! The deploy plan: which local files to upload (and why), which known keys to delete, which are
//! unchanged, and what the manifest says before, during and after the deploy. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::local::headers::{is_html, Headers};
use crate::decide::invalidation::Change;
use crate::state::manifest::{DeployInfo, Entry, Manifest};
use crate::local::scan::LocalFile;

/// The default `--max-delete`: large enough for any ordinary rebuild, small enough to stop a
/// deploy of the wrong folder from emptying a site.
pub const DEFAULT_MAX_DELETE: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    pub force: bool,
    /// `false` with `--no-delete`: removed files stay in the bucket and in the manifest.
    pub delete: bool,
    pub max_delete: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            force: false,
            delete: true,
            max_delete: DEFAULT_MAX_DELETE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    New,
    Content,
    Headers,
    Forced,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::Content => "content",
            Reason::Headers => "headers",
            Reason::Forced => "forced",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: [u8; 32],
    pub headers: Headers,
    pub reason: Reason,
    pub html: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    pub key: String,
    pub size: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Everything that is not HTML first, then HTML, each group sorted by key.
    pub uploads: Vec<Upload>,
    /// Sorted by key; run after every upload has landed.
    pub deletes: Vec<Delete>,
    pub unchanged: Vec<String>,
    /// Keys that would be deleted but for `--no-delete`.
    pub kept: Vec<String>,
    /// Keys a previous deploy changed without a successful invalidation.
    pub pending: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.uploads.is_empty() && self.deletes.is_empty()
    }

    pub fn upload_bytes(&self) -> u64 {
        self.uploads.iter().map(|u| u.size).sum()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("refusing to delete {count} objects (the limit is {max}): check that this is the right build folder, then pass --max-delete {count} (or --no-delete)")]
    TooManyDeletes { count: usize, max: usize },
}

/// Compares the local files, with the headers they would be uploaded with, against the manifest.
pub fn plan(
    local: &[(LocalFile, Headers)],
    manifest: Option<&Manifest>,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let mut html = Vec::new();
    for (file, headers) in local {
        let known = manifest.and_then(|m| m.files.get(&file.key));
        let hash = hex::encode(file.sha256);
        let reason = match known {
            None => Some(Reason::New),
            Some(e) if e.sha256.as_deref() != Some(hash.as_str()) || e.size != file.size => {
                Some(Reason::Content)
            }
            Some(e) if &e.headers != headers => Some(Reason::Headers),
            Some(_) if opts.force => Some(Reason::Forced),
            Some(_) => None,
        };
        let Some(reason) = reason else {
            plan.unchanged.push(file.key.clone());
            continue;
        };
        let upload = Upload {
            key: file.key.clone(),
            rel: file.rel.clone(),
            path: file.path.clone(),
            size: file.size,
            sha256: file.sha256,
            headers: headers.clone(),
            reason,
            html: is_html(&file.rel),
        };
        if upload.html {
            html.push(upload);
        } else {
            plan.uploads.push(upload);
        }
    }
    plan.uploads.sort_by(|a, b| a.key.cmp(&b.key));
    html.sort_by(|a, b| a.key.cmp(&b.key));
    plan.uploads.extend(html);
    plan.unchanged.sort();

    if let Some(m) = manifest {
        plan.pending = m.pending_invalidation.iter().cloned().collect();
        let present: BTreeSet<&str> = local.iter().map(|(f, _)| f.key.as_str()).collect();
        for (key, entry) in &m.files {
            if present.contains(key.as_str()) {
                continue;
            }
            if opts.delete {
                plan.deletes.push(Delete {
                    key: key.clone(),
                    size: entry.size,
                });
            } else {
                plan.kept.push(key.clone());
            }
        }
    }
    if plan.deletes.len() > opts.max_delete {
        return Err(PlanError::TooManyDeletes {
            count: plan.deletes.len(),
            max: opts.max_delete,
        });
    }
    Ok(plan)
}

/// The keys whose cached copies are stale once the writes had these outcomes, for the
/// invalidation planner: what landed, plus what earlier deploys left pending. Keys whose write
/// failed are left out: they stay unverified in the manifest and the next deploy rewrites and
/// invalidates them.
pub fn stale(plan: &Plan, up: &[Outcome], del: &[Outcome]) -> Vec<(String, Change)> {
    let mut out: BTreeMap<String, Change> = plan
        .pending
        .iter()
        .map(|k| (k.clone(), Change::Changed))
        .collect();
    for (u, outcome) in plan.uploads.iter().zip(up) {
        if *outcome != Outcome::Done {
            continue;
        }
        let change = match u.reason {
            Reason::New => Change::New {
                immutable: u
                    .headers
                    .cache_control
                    .as_deref()
                    .is_some_and(|c| c.contains("immutable")),
            },
            _ => Change::Changed,
        };
        out.insert(u.key.clone(), change);
    }
    for (d, outcome) in plan.deletes.iter().zip(del) {
        if *outcome == Outcome::Done {
            out.insert(d.key.clone(), Change::Deleted);
        }
    }
    out.into_iter().collect()
}

/// What became of one planned write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The bucket confirmed it.
    Done,
    /// Attempted; the bucket may or may not have it.
    Failed,
    /// Never attempted: the bucket is as it was.
    Skipped,
}

/// The manifest that truthfully describes the bucket after the planned writes had these outcomes
/// (`uploads[i]` went `up[i]`, `deletes[i]` went `del[i]`). A key whose write failed stays known
/// but unverified, so the next deploy rewrites it and can still delete it.
pub fn settle(
    before: Option<&Manifest>,
    plan: &Plan,
    up: &[Outcome],
    del: &[Outcome],
    deploy: DeployInfo,
) -> Manifest {
    let mut next = Manifest::new(deploy);
    if let Some(m) = before {
        next.files = m.files.clone();
        next.pending_invalidation = m.pending_invalidation.clone();
    }
    for (u, outcome) in plan.uploads.iter().zip(up) {
        match outcome {
            Outcome::Done => {
                next.files.insert(
                    u.key.clone(),
                    Entry {
                        sha256: Some(hex::encode(u.sha256)),
                        size: u.size,
                        headers: u.headers.clone(),
                    },
                );
            }
            Outcome::Failed => {
                let e = Entry::unverified(next.files.get(&u.key), &u.headers);
                next.files.insert(u.key.clone(), e);
            }
            Outcome::Skipped => {}
        }
    }
    for (d, outcome) in plan.deletes.iter().zip(del) {
        match outcome {
            Outcome::Done => {
                next.files.remove(&d.key);
            }
            Outcome::Failed => {
                if let Some(e) = next.files.get_mut(&d.key) {
                    e.sha256 = None;
                }
            }
            Outcome::Skipped => {}
        }
    }
    next
}

/// The manifest written before the first upload: every key the deploy will touch is marked
/// unverified, so a crash at any point leaves a manifest that claims nothing false.
pub fn intent(before: Option<&Manifest>, plan: &Plan, mut deploy: DeployInfo) -> Manifest {
    deploy.in_progress = true;
    let up = vec![Outcome::Failed; plan.uploads.len()];
    let del = vec![Outcome::Failed; plan.deletes.len()];
    settle(before, plan, &up, &del, deploy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::{default_headers, IMMUTABLE};

    fn file(rel: &str, byte: u8, size: u64) -> (LocalFile, Headers) {
        (
            LocalFile {
                path: PathBuf::from("/site").join(rel),
                rel: rel.into(),
                key: rel.into(),
                size,
                sha256: [byte; 32],
            },
            default_headers(rel),
        )
    }

    fn entry(rel: &str, byte: u8, size: u64) -> Entry {
        Entry {
            sha256: Some(hex::encode([byte; 32])),
            size,
            headers: default_headers(rel),
        }
    }

    fn manifest(entries: &[(&str, Entry)]) -> Manifest {
        let mut m = Manifest::new(DeployInfo::default());
        for (k, e) in entries {
            m.files.insert((*k).into(), e.clone());
        }
        m
    }

    fn reasons(p: &Plan) -> Vec<(&str, Reason)> {
        p.uploads
            .iter()
            .map(|u| (u.key.as_str(), u.reason))
            .collect()
    }

    /// The local × manifest matrix, one row per case.
    #[test]
    fn local_by_manifest_matrix() {
        let mut changed_headers = entry("h.css", 1, 10);
        changed_headers.headers.cache_control = Some(IMMUTABLE.into());
        let mut unverified = entry("u.css", 1, 10);
        unverified.sha256 = None;
        let m = manifest(&[
            ("same.css", entry("same.css", 1, 10)),
            ("content.css", entry("content.css", 2, 10)),
            ("size.css", entry("size.css", 1, 11)),
            ("h.css", changed_headers),
            ("u.css", unverified),
            ("gone.png", entry("gone.png", 3, 99)),
        ]);
        let local = vec![
            file("same.css", 1, 10),
            file("content.css", 1, 10),
            file("size.css", 1, 10),
            file("h.css", 1, 10),
            file("u.css", 1, 10),
            file("new.css", 1, 10),
        ];
        let p = plan(&local, Some(&m), &PlanOptions::default()).expect("plan");
        assert_eq!(
            reasons(&p),
            vec![
                ("content.css", Reason::Content),
                ("h.css", Reason::Headers),
                ("new.css", Reason::New),
                ("size.css", Reason::Content),
                ("u.css", Reason::Content),
            ]
        );
        assert_eq!(p.unchanged, vec!["same.css"]);
        assert_eq!(
            p.deletes,
            vec![Delete {
                key: "gone.png".into(),
                size: 99
            }]
        );

        let forced = PlanOptions {
            force: true,
            ..PlanOptions::default()
        };
        let p = plan(&local, Some(&m), &forced).expect("plan");
        assert!(p.unchanged.is_empty());
        assert!(reasons(&p).contains(&("same.css", Reason::Forced)));
        // A real difference is reported as such even under --force.
        assert!(reasons(&p).contains(&("content.css", Reason::Content)));
    }

    #[test]
    fn no_manifest_uploads_everything_and_deletes_nothing() {
        let local = vec![file("a.html", 1, 1), file("b.js", 2, 2)];
        let p = plan(&local, None, &PlanOptions::default()).expect("plan");
        assert_eq!(
            reasons(&p),
            vec![("b.js", Reason::New), ("a.html", Reason::New)]
        );
        assert!(p.deletes.is_empty());
    }

    #[test]
    fn html_goes_last() {
        let local = vec![
            file("index.html", 1, 1),
            file("z/app.js", 1, 1),
            file("a/page.htm", 1, 1),
            file("img/x.png", 1, 1),
        ];
        let p = plan(&local, None, &PlanOptions::default()).expect("plan");
        let keys: Vec<_> = p.uploads.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["img/x.png", "z/app.js", "a/page.htm", "index.html"]);
    }

    #[test]
    fn unchanged_rebuild_is_empty() {
        let local = vec![file("a.html", 1, 1)];
        let m = manifest(&[("a.html", entry("a.html", 1, 1))]);
        let p = plan(&local, Some(&m), &PlanOptions::default()).expect("plan");
        assert!(p.is_empty());
    }

    #[test]
    fn delete_limit_and_no_delete() {
        let m = manifest(&[
            ("a.css", entry("a.css", 1, 1)),
            ("b.css", entry("b.css", 1, 1)),
            ("keep.css", entry("keep.css", 1, 1)),
        ]);
        let local = vec![file("keep.css", 1, 1)];
        let tight = PlanOptions {
            max_delete: 1,
            ..PlanOptions::default()
        };
        assert_eq!(
            plan(&local, Some(&m), &tight),
            Err(PlanError::TooManyDeletes { count: 2, max: 1 })
        );
        let exact = PlanOptions {
            max_delete: 2,
            ..PlanOptions::default()
        };
        assert_eq!(
            plan(&local, Some(&m), &exact).expect("plan").deletes.len(),
            2
        );
        let keep = PlanOptions {
            delete: false,
            max_delete: 0,
            ..PlanOptions::default()
        };
        let p = plan(&local, Some(&m), &keep).expect("plan");
        assert!(p.deletes.is_empty());
        assert_eq!(p.kept, vec!["a.css", "b.css"]);
    }

    #[test]
    fn stale_keys_are_what_landed_plus_pending() {
        let mut m = manifest(&[
            ("old.css", entry("old.css", 1, 1)),
            ("gone.css", entry("gone.css", 1, 1)),
        ]);
        m.pending_invalidation.insert("earlier.html".into());
        let local = vec![
            file("old.css", 2, 2),
            file("app.3f2a9c1b.js", 2, 2),
            file("new.html", 2, 2),
            file("failed.png", 2, 2),
        ];
        let p = plan(&local, Some(&m), &PlanOptions::default()).expect("plan");
        let keys: Vec<_> = p.uploads.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(
            keys,
            ["app.3f2a9c1b.js", "failed.png", "old.css", "new.html"]
        );
        use Outcome::*;
        let got = stale(&p, &[Done, Failed, Done, Done], &[Done]);
        assert_eq!(
            got,
            vec![
                (
                    "app.3f2a9c1b.js".to_string(),
                    Change::New { immutable: true }
                ),
                ("earlier.html".into(), Change::Changed),
                ("gone.css".into(), Change::Deleted),
                ("new.html".into(), Change::New { immutable: false }),
                ("old.css".into(), Change::Changed),
            ]
        );
    }

    #[test]
    fn settle_records_only_what_landed() {
        let m = manifest(&[
            ("changed.css", entry("changed.css", 1, 1)),
            ("failed.css", entry("failed.css", 1, 1)),
            ("gone.css", entry("gone.css", 1, 1)),
            ("gone2.css", entry("gone2.css", 1, 1)),
        ]);
        let local = vec![
            file("changed.css", 2, 2),
            file("failed.css", 2, 2),
            file("new.css", 2, 2),
            file("new2.css", 2, 2),
            file("skipped.html", 2, 2),
        ];
        let p = plan(&local, Some(&m), &PlanOptions::default()).expect("plan");
        let keys: Vec<_> = p.uploads.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "changed.css",
                "failed.css",
                "new.css",
                "new2.css",
                "skipped.html"
            ]
        );
        use Outcome::*;
        let next = settle(
            Some(&m),
            &p,
            &[Done, Failed, Done, Failed, Skipped],
            &[Done, Failed],
            DeployInfo::default(),
        );
        let hash = |k: &str| next.files.get(k).map(|e| e.sha256.clone());
        assert_eq!(hash("changed.css"), Some(Some(hex::encode([2; 32]))));
        assert_eq!(hash("failed.css"), Some(None));
        assert_eq!(hash("new.css"), Some(Some(hex::encode([2; 32]))));
        assert_eq!(hash("new2.css"), Some(None), "a failed new key stays known");
        assert_eq!(
            hash("skipped.html"),
            None,
            "never attempted, never recorded"
        );
        assert_eq!(hash("gone.css"), None);
        assert_eq!(hash("gone2.css"), Some(None));

        let during = intent(Some(&m), &p, DeployInfo::default());
        assert!(during.deploy.in_progress);
        assert!(during.files.values().all(|e| e.sha256.is_none()));
        assert_eq!(during.files.len(), 7);
    }
}
