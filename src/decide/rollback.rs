//! The plan of a rollback: the records a kept deploy had, compared with today's, turned into
//! server-side copies (from kept copies, older versions, or objects still in the bucket with the
//! same bytes), header updates, revivals, retirements and deletes. Nothing comes from the build
//! folder. Pure.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::decide::plan::{
    CopyFrom, Delete, DeleteKind, Keep, LeftWhy, Plan, PlanOptions, Reason, Source, Write,
};
use crate::local::headers::is_html;
use crate::state::entry::{Entry, Life};
use crate::state::layout::Layout;
use crate::state::view::Changes;

/// Keys whose bytes a rollback needs and cannot find.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot restore {} file{}: the bucket no longer holds their bytes (no kept copy, no older version, no other object with the same content): {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, list(.0))]
pub struct Missing(pub Vec<String>);

fn list(keys: &[String]) -> String {
    let mut shown: Vec<&str> = keys.iter().take(10).map(String::as_str).collect();
    if keys.len() > 10 {
        shown.push("…");
    }
    shown.join(", ")
}

/// The state of the site at a kept deploy: today's records with the reverse deltas of every
/// later deploy applied, newest first (`reverses` newest first).
pub fn target_state(reverses: &[Changes]) -> Changes {
    let mut out = Changes::new();
    for r in reverses {
        for (k, e) in r {
            out.insert(k.clone(), e.clone());
        }
    }
    out
}

/// Plans the way from `current` (every record known) to the records of `target` for the keys
/// it names.
pub fn plan(
    target: &Changes,
    current: &BTreeMap<String, Entry>,
    layout: &Layout,
    opts: &PlanOptions,
) -> Result<Plan, Missing> {
    let mut plan = Plan::default();
    let mut missing = Vec::new();
    // Any object now in the bucket, by the bytes it holds, as a source of copies.
    let mut by_sha: BTreeMap<([u8; 32], bool), &String> = BTreeMap::new();
    for (k, e) in current {
        if let (Some(sha), false) = (e.sha256, layout.is_reserved(k)) {
            if matches!(e.life, Life::Live | Life::Retired { .. } | Life::Left) {
                by_sha.entry((sha, e.headers.gzip)).or_insert(k);
            }
        }
    }
    let mut html = Vec::new();
    for (key, want) in target {
        if layout.is_reserved(key) {
            continue;
        }
        let now = current.get(key);
        match want {
            Some(t) if t.is_live() => {
                let Some(sha) = t.sha256 else {
                    // The kept deploy itself did not know these bytes: nothing to restore.
                    continue;
                };
                let same_bytes = now.is_some_and(|c| c.sha256 == Some(sha) && c.size == t.size);
                let same_headers = now.is_some_and(|c| c.headers == t.headers);
                let source = match now {
                    Some(c) if same_bytes && same_headers && c.is_live() => {
                        plan.unchanged += 1;
                        continue;
                    }
                    Some(c)
                        if same_bytes && same_headers && !matches!(c.life, Life::Kept { .. }) =>
                    {
                        plan.revive.push(key.clone());
                        continue;
                    }
                    Some(c) if same_bytes && c.headers.gzip == t.headers.gzip => Source::Restyle,
                    _ => {
                        let kept = layout.kept_key(&sha, t.headers.gzip);
                        let kept_ok = current.get(&kept).is_some_and(|e| {
                            e.sha256 == Some(sha) && matches!(e.life, Life::Kept { .. })
                        });
                        if kept_ok {
                            Source::Copy(Box::new(CopyFrom {
                                from: kept,
                                version: None,
                            }))
                        } else if let Some(v) = &t.version {
                            Source::Copy(Box::new(CopyFrom {
                                from: key.clone(),
                                version: Some(v.clone()),
                            }))
                        } else if let Some(other) = by_sha.get(&(sha, t.headers.gzip)) {
                            Source::Copy(Box::new(CopyFrom {
                                from: (*other).clone(),
                                version: None,
                            }))
                        } else {
                            missing.push(key.clone());
                            continue;
                        }
                    }
                };
                let keep = now.and_then(|c| keep_for(layout, c, opts));
                let w = Write {
                    key: key.as_str().into(),
                    source,
                    size: t.size,
                    sha256: sha,
                    parts: None,
                    headers: Arc::clone(&t.headers),
                    reason: Reason::Restore,
                    html: is_html(key),
                    keep,
                };
                if w.html {
                    html.push(w);
                } else {
                    plan.writes.push(w);
                }
            }
            // The kept deploy did not have the key live: leave it out of the site.
            _ => {
                let Some(c) = now else { continue };
                let left = matches!(want, Some(t) if t.life == Life::Left);
                match c.life {
                    Life::Live if left => plan.left.push((key.clone(), LeftWhy::NoDelete)),
                    Life::Live if c.is_immutable() && opts.keep_old_assets > 0 => {
                        plan.retire.push(key.clone());
                    }
                    Life::Live => plan.deletes.push(Delete {
                        key: key.clone(),
                        size: c.size,
                        kind: DeleteKind::Removed,
                        keep: keep_for(layout, c, opts),
                    }),
                    _ => {}
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(Missing(missing));
    }
    plan.writes.sort_by(|a, b| a.key.cmp(&b.key));
    html.sort_by(|a, b| a.key.cmp(&b.key));
    plan.writes.extend(html);
    plan.deletes.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(plan)
}

/// As in a deploy: the bytes a rollback overwrites or deletes are kept, so that rolling back
/// the rollback works (the deploy it undoes is the newest in the history).
fn keep_for(layout: &Layout, e: &Entry, opts: &PlanOptions) -> Option<Box<Keep>> {
    crate::decide::plan::keep_for(layout, e, opts, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::default_headers;

    fn live(rel: &str, byte: u8) -> Entry {
        Entry::live([byte; 32], 1, Arc::new(default_headers(rel)))
    }

    fn kept(byte: u8) -> Entry {
        Entry {
            life: Life::Kept { until: 3 },
            ..live("x", byte)
        }
    }

    #[test]
    fn each_kind_of_difference() {
        let layout = Layout::new("", None);
        let mut current: BTreeMap<String, Entry> = BTreeMap::new();
        current.insert("index.html".into(), live("index.html", 2));
        current.insert("same.css".into(), live("same.css", 1));
        current.insert("new.html".into(), live("new.html", 5));
        current.insert("app-Dk3l9xQa.js".into(), live("app-Dk3l9xQa.js", 6));
        let mut retired = live("app-BX7a9_kq.js", 7);
        retired.life = Life::Retired { since: 1, seq: 4 };
        current.insert("app-BX7a9_kq.js".into(), retired);
        current.insert(layout.kept_key(&[1; 32], false), kept(1));
        current.insert("copy.txt".into(), live("copy.txt", 9));

        let mut target = Changes::new();
        target.insert("index.html".into(), Some(live("index.html", 1)));
        target.insert("same.css".into(), Some(live("same.css", 1)));
        target.insert("new.html".into(), None);
        target.insert("app-Dk3l9xQa.js".into(), None);
        target.insert("app-BX7a9_kq.js".into(), Some(live("app-BX7a9_kq.js", 7)));
        target.insert("dup.txt".into(), Some(live("dup.txt", 9)));
        let p = plan(&target, &current, &layout, &PlanOptions::default()).expect("plan");

        let writes: Vec<(&str, &Source)> = p.writes.iter().map(|w| (&*w.key, &w.source)).collect();
        assert_eq!(
            writes,
            [
                (
                    "dup.txt",
                    &Source::Copy(Box::new(CopyFrom {
                        from: "copy.txt".into(),
                        version: None,
                    }))
                ),
                (
                    "index.html",
                    &Source::Copy(Box::new(CopyFrom {
                        from: layout.kept_key(&[1; 32], false),
                        version: None,
                    }))
                ),
            ]
        );
        assert!(
            p.writes[1].keep.is_some(),
            "today's index.html is kept: rolling forward works"
        );
        assert_eq!(p.revive, ["app-BX7a9_kq.js"]);
        assert_eq!(p.retire, ["app-Dk3l9xQa.js"]);
        assert_eq!(p.deletes.len(), 1);
        assert_eq!(p.deletes[0].key, "new.html");
        assert_eq!(p.unchanged, 1);
    }

    #[test]
    fn bytes_nowhere_to_be_found_are_named() {
        let layout = Layout::new("", None);
        let mut target = Changes::new();
        target.insert("lost.html".into(), Some(live("lost.html", 3)));
        let mut versioned = live("v.html", 4);
        versioned.version = Some("v1".into());
        target.insert("v.html".into(), Some(versioned));
        let err = plan(&target, &BTreeMap::new(), &layout, &PlanOptions::default()).unwrap_err();
        assert_eq!(err, Missing(vec!["lost.html".into()]));
        assert!(err.to_string().contains("cannot restore 1 file"));
    }

    #[test]
    fn the_target_is_the_oldest_record_of_each_key() {
        let mut newest = Changes::new();
        newest.insert("a".into(), Some(live("a", 2)));
        let mut older = Changes::new();
        older.insert("a".into(), Some(live("a", 1)));
        older.insert("b".into(), None);
        let t = target_state(&[newest, older]);
        assert_eq!(t["a"], Some(live("a", 1)));
        assert_eq!(t["b"], None);
    }
}
