//! The deploy plan: for every key the build and the manifest's known ranges hold, what happens
//! to it (upload, header update, keep a copy first, retire, revive, leave in place, delete,
//! expire), the guards that refuse a destructive plan, and the records the manifest holds
//! before (intent) and after (settle) the writes. Pure: no I/O.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::decide::invalidation::Change;
use crate::local::headers::{is_html, Headers};
use crate::local::scan::{InBuild, Key, LocalFile, PartSums};
use crate::state::entry::{Entry, Life, Sha};
use crate::state::layout::Layout;
use crate::state::view::{ChangeSet, Changes};

/// The default `--max-delete`: large enough for any ordinary rebuild, small enough to stop a
/// deploy of the wrong folder from emptying a site.
pub const DEFAULT_MAX_DELETE: usize = 256;
/// The proportional guard only speaks up past this many removals: removing 3 of a 4-page site
/// is an ordinary edit.
pub const MASS_DELETE_FLOOR: usize = 5;
/// S3 copies objects server-side up to this size in one request.
pub const COPY_MAX: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    pub force: bool,
    /// `false` with `--no-delete`: removed files stay in the bucket and in the manifest.
    pub delete: bool,
    /// Delete files an earlier deploy uploaded that `--exclude` now leaves out.
    pub delete_excluded: bool,
    pub max_delete: usize,
    /// Skip the proportional and root-page delete guards.
    pub allow_mass_delete: bool,
    /// Seconds a retired content-hashed file stays; 0 deletes at once.
    pub keep_old_assets: i64,
    /// Keep a copy of the mutable objects a deploy overwrites or deletes, for rollbacks.
    pub keep_copies: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            force: false,
            delete: true,
            delete_excluded: false,
            max_delete: DEFAULT_MAX_DELETE,
            allow_mass_delete: false,
            keep_old_assets: 7 * 86_400,
            keep_copies: true,
        }
    }
}

/// Facts of this run the plan depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moment {
    /// Unix seconds.
    pub now: i64,
    /// This deploy's number.
    pub seq: u64,
    /// The lowest deploy number the history holds once this deploy is recorded.
    pub oldest_kept: u64,
    /// Whether the deploy before this one stays in the history, so that a rollback to it can
    /// need the bytes this one replaces. When not (the first deploy, history turned off or kept
    /// to one entry), no copy is kept.
    pub previous_kept: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    New,
    Content,
    Headers,
    Forced,
    /// A rollback puts back an earlier deploy's object.
    Restore,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::Content => "content",
            Reason::Headers => "headers",
            Reason::Forced => "forced",
            Reason::Restore => "restore",
        }
    }
}

/// Where the bytes of a write come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The build folder.
    File(InBuild),
    /// The object itself, copied onto itself with new headers: nothing is sent.
    Restyle,
    /// Another object in the bucket (a kept copy, or an older version of the key). Boxed: only
    /// a rollback copies, and a large deploy plans one write per file.
    Copy(Box<CopyFrom>),
}

/// The object a server-side copy reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyFrom {
    pub from: String,
    pub version: Option<String>,
}

/// A server-side copy of an object's current bytes to the kept store, made before the object
/// is overwritten or deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keep {
    pub to: String,
    pub sha256: Sha,
    pub size: u64,
    pub gzip: bool,
    /// The version to copy, on a bucket that keeps versions.
    pub version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Shared with the scanned file's.
    pub key: Key,
    pub source: Source,
    pub size: u64,
    pub sha256: Sha,
    /// Per-part sha256 of a large file, taken while scanning.
    pub parts: Option<PartSums>,
    pub headers: Arc<Headers>,
    pub reason: Reason,
    pub html: bool,
    /// Boxed: most writes keep nothing, and a large deploy plans one write per file.
    pub keep: Option<Box<Keep>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteKind {
    /// A page or other mutable file that left the build: deleted and invalidated.
    Removed,
    /// A retired content-hashed file past its window: deleted, nothing to invalidate.
    Expired,
    /// A kept copy no kept deploy needs any more.
    Garbage,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    pub key: String,
    pub size: u64,
    pub kind: DeleteKind,
    pub keep: Option<Box<Keep>>,
}

/// Why a record stays in the bucket although the build no longer has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeftWhy {
    Excluded,
    NoDelete,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Everything that is not HTML first, then HTML, each group sorted by key.
    pub writes: Vec<Write>,
    /// Sorted by key; run after every write has landed.
    pub deletes: Vec<Delete>,
    /// Content-hashed files that left the build: they stay, recorded as retired.
    pub retire: Vec<String>,
    /// Retired or left files back in the build with the same bytes and headers: live again,
    /// nothing sent.
    pub revive: Vec<String>,
    /// Files not in the build that stay in place, newly so in this deploy.
    pub left: Vec<(String, LeftWhy)>,
    /// Files not in the build that stayed in place in an earlier deploy and still do.
    pub still_left: usize,
    /// Retired files still inside their window.
    pub still_retired: usize,
    pub unchanged: usize,
    /// Keys an earlier deploy changed without a successful invalidation.
    pub pending: Vec<String>,
    /// Kept copies that already hold bytes this deploy would keep: recorded as needed for
    /// longer, not copied again.
    pub bumps: Vec<String>,
}

impl Plan {
    /// No write, no delete, and no record to change.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
            && self.deletes.is_empty()
            && self.retire.is_empty()
            && self.revive.is_empty()
            && self.left.is_empty()
    }

    /// Bytes read from the build folder and sent.
    pub fn upload_bytes(&self) -> u64 {
        self.writes
            .iter()
            .filter(|w| matches!(w.source, Source::File(_)))
            .map(|w| w.size)
            .sum()
    }

    pub fn site_deletes(&self) -> impl Iterator<Item = &Delete> {
        self.deletes
            .iter()
            .filter(|d| d.kind != DeleteKind::Garbage)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("refusing to delete {count} objects (the limit is {max}): check that this is the right build folder, then pass --max-delete {count} (or --no-delete)")]
    TooManyDeletes { count: usize, max: usize },
    #[error("refusing to remove {count} of the {known} files the last deploy left live (more than half): check that this is the right build folder; if the site really shrinks this much, pass --allow-mass-delete")]
    MassDelete { count: usize, known: u64 },
    #[error("refusing to delete the site's root page {key}: the new build has no index.html at its top; check the build folder, or pass --allow-mass-delete if the site really has no root page")]
    RootPage { key: String },
}

/// One file of the build with the headers it would be uploaded with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    pub file: LocalFile,
    pub headers: Arc<Headers>,
}

/// What the plan needs to know about the manifest.
pub struct Known<'a> {
    pub layout: &'a Layout,
    /// Every known record in key order (the chunks read, with the delta applied).
    pub records: Vec<(&'a String, &'a Entry)>,
    /// Whether a key lies in a range whose records are known.
    pub is_known: &'a dyn Fn(&str) -> bool,
    /// Live records in the whole manifest, read or not.
    pub live: u64,
    pub pending: Vec<String>,
}

/// Compares the build with the known part of the manifest. `excluded` says whether a path
/// (relative to the build folder) is left out by `--exclude`.
pub fn plan(
    local: &[Local],
    known: &Known,
    opts: &PlanOptions,
    moment: Moment,
    excluded: &dyn Fn(&str) -> bool,
) -> Result<Plan, PlanError> {
    let layout = known.layout;
    let mut plan = Plan {
        pending: known.pending.clone(),
        ..Plan::default()
    };
    let records: BTreeMap<&str, &Entry> = known
        .records
        .iter()
        .map(|(k, e)| (k.as_str(), *e))
        .collect();
    // One list, sized for a first deploy (untouched capacity costs no memory), sorted into
    // its two waves at the end.
    let mut writes = Vec::with_capacity(local.len());
    let mut present = std::collections::HashSet::new();
    for l in local {
        let f = &l.file;
        present.insert(&*f.key);
        if !(known.is_known)(&f.key) {
            // A range whose records match the build exactly: nothing to do there.
            plan.unchanged += 1;
            continue;
        }
        let write = |source, reason, keep| Write {
            key: Arc::clone(&f.key),
            source,
            size: f.size,
            sha256: f.sha256,
            parts: f.parts.clone(),
            headers: Arc::clone(&l.headers),
            reason,
            html: is_html(f.rel()),
            keep,
        };
        let file = Source::File(f.at.clone());
        let w = match records.get(&*f.key) {
            None => Some(write(file, Reason::New, None)),
            Some(e) => {
                let same_bytes = e.sha256 == Some(f.sha256) && e.size == f.size;
                let same_headers = *e.headers == *l.headers;
                let keep = keep_for(layout, e, opts, moment.previous_kept);
                match (same_bytes, same_headers) {
                    (true, true) if e.is_live() && !opts.force => None,
                    (true, true) if e.is_live() => Some(write(file, Reason::Forced, None)),
                    (true, true) => {
                        plan.revive.push(f.key.to_string());
                        None
                    }
                    // Same stored bytes, other headers: S3 rewrites the headers in place.
                    (true, false) if e.headers.gzip == l.headers.gzip && f.size <= COPY_MAX => {
                        Some(write(Source::Restyle, Reason::Headers, None))
                    }
                    (true, false) => Some(write(file, Reason::Headers, keep)),
                    (false, _) => Some(write(file, Reason::Content, keep)),
                }
            }
        };
        match w {
            Some(w) => writes.push(w),
            None if plan.revive.last().is_none_or(|k| **k != *f.key) => plan.unchanged += 1,
            None => {}
        }
    }
    // Keys are unique: an unstable sort is exact, and needs no buffer as large as the list.
    writes.sort_unstable_by(|a, b| (a.html, &a.key).cmp(&(b.html, &b.key)));
    plan.writes = writes;

    for (key, e) in &known.records {
        if present.contains(key.as_str()) {
            continue;
        }
        if let Life::Kept { until } = e.life {
            if until < moment.oldest_kept && layout.is_state_object(key) {
                plan.deletes.push(Delete {
                    key: (*key).clone(),
                    size: e.size,
                    kind: DeleteKind::Garbage,
                    keep: None,
                });
            }
            continue;
        }
        if layout.is_reserved(key) {
            // Validation refuses such a manifest; this is the last line of defence.
            continue;
        }
        let rel = key.strip_prefix(&layout.prefix).unwrap_or(key);
        let stays = if excluded(rel) && !opts.delete_excluded {
            Some(LeftWhy::Excluded)
        } else if !opts.delete {
            Some(LeftWhy::NoDelete)
        } else {
            None
        };
        match (&e.life, stays) {
            (Life::Live, Some(why)) => plan.left.push(((*key).clone(), why)),
            (Life::Left, Some(_)) => plan.still_left += 1,
            (Life::Retired { .. }, Some(_)) => plan.still_retired += 1,
            (Life::Live | Life::Left, None) if e.is_immutable() && opts.keep_old_assets > 0 => {
                plan.retire.push((*key).clone());
            }
            (Life::Live | Life::Left, None) => plan.deletes.push(Delete {
                key: (*key).clone(),
                size: e.size,
                kind: DeleteKind::Removed,
                keep: keep_for(layout, e, opts, moment.previous_kept),
            }),
            (Life::Retired { since, seq }, None) => {
                if moment.now - since >= opts.keep_old_assets && *seq <= moment.oldest_kept {
                    plan.deletes.push(Delete {
                        key: (*key).clone(),
                        size: e.size,
                        kind: DeleteKind::Expired,
                        keep: None,
                    });
                } else {
                    plan.still_retired += 1;
                }
            }
            (Life::Kept { .. }, _) => {}
        }
    }
    plan.deletes.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    dedupe_keeps(&mut plan, &records);
    guard(&plan, known, opts, local)?;
    // The plan lives through the whole deploy; a first deploy plans one write per file.
    plan.writes.shrink_to_fit();
    plan.deletes.shrink_to_fit();
    Ok(plan)
}

/// One copy per kept sha256: bytes already kept (and trusted), or kept earlier in this plan,
/// are not copied again; their record is only kept longer.
fn dedupe_keeps(plan: &mut Plan, records: &BTreeMap<&str, &Entry>) {
    let mut seen = std::collections::HashSet::new();
    let keeps = plan
        .writes
        .iter_mut()
        .map(|w| &mut w.keep)
        .chain(plan.deletes.iter_mut().map(|d| &mut d.keep));
    for keep in keeps {
        let Some(k) = keep else { continue };
        let stored = records
            .get(k.to.as_str())
            .is_some_and(|e| e.sha256.is_some() && matches!(e.life, Life::Kept { .. }));
        if stored || !seen.insert(k.to.clone()) {
            plan.bumps.push(k.to.clone());
            *keep = None;
        }
    }
    plan.bumps.sort();
    plan.bumps.dedup();
}

/// A copy of the current bytes, when they are worth keeping for a rollback: the record is
/// trusted, the file mutable (a content-hashed one stays through its retirement), and the
/// bucket does not keep versions of it already.
pub fn keep_for(
    layout: &Layout,
    e: &Entry,
    opts: &PlanOptions,
    previous_kept: bool,
) -> Option<Box<Keep>> {
    let sha = e.sha256?;
    if !opts.keep_copies
        || !previous_kept
        || e.is_immutable()
        || !matches!(e.life, Life::Live | Life::Left)
    {
        return None;
    }
    if e.version.is_some() {
        return None;
    }
    Some(Box::new(Keep {
        to: layout.kept_key(&sha, e.headers.gzip),
        sha256: sha,
        size: e.size,
        gzip: e.headers.gzip,
        version: None,
    }))
}

/// The delete guards: an absolute cap, and a proportional one with the root page, for the
/// deploy of a wrong folder (a project root, an empty build) that would wipe the live site.
fn guard(plan: &Plan, known: &Known, opts: &PlanOptions, local: &[Local]) -> Result<(), PlanError> {
    let site: Vec<&Delete> = plan.site_deletes().collect();
    if site.len() > opts.max_delete {
        return Err(PlanError::TooManyDeletes {
            count: site.len(),
            max: opts.max_delete,
        });
    }
    if opts.allow_mass_delete {
        return Ok(());
    }
    let removed = site
        .iter()
        .filter(|d| d.kind == DeleteKind::Removed)
        .count()
        + plan.retire.len();
    if removed > MASS_DELETE_FLOOR && removed as u64 * 2 > known.live {
        return Err(PlanError::MassDelete {
            count: removed,
            known: known.live,
        });
    }
    let root_page = format!("{}index.html", known.layout.prefix);
    let has_root = local.iter().any(|l| *l.file.key == *root_page);
    if !has_root
        && site
            .iter()
            .any(|d| d.key == root_page && d.kind == DeleteKind::Removed)
    {
        return Err(PlanError::RootPage { key: root_page });
    }
    Ok(())
}

/// What became of one planned write or delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The bucket confirmed it.
    Done,
    /// Attempted; the bucket may or may not have it.
    Failed,
    /// Never attempted: the bucket is as it was.
    Skipped,
}

/// The records written before the first write (the intent): every key a write or delete may
/// touch is marked unverified, and every kept copy about to be made is recorded unverified, so
/// a crash at any point leaves a manifest that claims nothing false.
pub fn intent(plan: &Plan, current: &dyn Fn(&str) -> Option<Entry>, moment: Moment) -> Changes {
    let mut out = Changes::new();
    for w in &plan.writes {
        let e = current(&w.key).unwrap_or_else(|| Entry {
            sha256: None,
            size: w.size,
            headers: Arc::clone(&w.headers),
            version: None,
            life: Life::Live,
        });
        out.insert(w.key.to_string(), Some(e.unverified()));
        if let Some(k) = &w.keep {
            out.insert(k.to.clone(), Some(kept_record(k, current, moment, false)));
        }
    }
    for d in &plan.deletes {
        if let Some(e) = current(&d.key) {
            out.insert(d.key.clone(), Some(e.unverified()));
        }
        if let Some(k) = &d.keep {
            out.insert(k.to.clone(), Some(kept_record(k, current, moment, false)));
        }
    }
    out
}

fn kept_record(
    k: &Keep,
    current: &dyn Fn(&str) -> Option<Entry>,
    moment: Moment,
    verified: bool,
) -> Entry {
    // The bytes were live up to the deploy before this one.
    let needed = moment.seq.saturating_sub(1);
    let until = match current(&k.to).map(|e| e.life) {
        Some(Life::Kept { until }) => until.max(needed),
        _ => needed,
    };
    Entry {
        sha256: verified.then_some(k.sha256),
        size: k.size,
        headers: Arc::new(Headers::new("application/octet-stream")),
        version: None,
        life: Life::Kept { until },
    }
}

/// The outcome of each write and delete, in plan order, with the VersionId of each write that
/// the bucket reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub writes: Vec<Outcome>,
    /// By write index, only for writes that got one: most buckets keep no versions.
    pub versions: BTreeMap<usize, String>,
    /// Whether each write's kept copy landed (`None`: no copy was needed).
    pub keeps: Vec<Option<Outcome>>,
    pub deletes: Vec<Outcome>,
    pub delete_keeps: Vec<Option<Outcome>>,
    /// Whether the manifest-only changes (retire, revive, left) are recorded: not when the
    /// deploy stopped before its deletes.
    pub bookkeeping: bool,
}

impl Outcomes {
    /// Nothing attempted yet.
    pub fn skipped(plan: &Plan) -> Outcomes {
        Outcomes::all(plan, Outcome::Skipped, false)
    }

    /// Everything landed (what a large deploy's planned state assumes).
    pub fn all_done(plan: &Plan) -> Outcomes {
        Outcomes::all(plan, Outcome::Done, true)
    }

    fn all(plan: &Plan, outcome: Outcome, bookkeeping: bool) -> Outcomes {
        Outcomes {
            writes: vec![outcome; plan.writes.len()],
            versions: BTreeMap::new(),
            keeps: plan
                .writes
                .iter()
                .map(|w| w.keep.as_ref().map(|_| outcome))
                .collect(),
            deletes: vec![outcome; plan.deletes.len()],
            delete_keeps: plan
                .deletes
                .iter()
                .map(|d| d.keep.as_ref().map(|_| outcome))
                .collect(),
            bookkeeping,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.writes
            .iter()
            .chain(&self.deletes)
            .all(|o| *o == Outcome::Done)
    }
}

/// The records that truthfully describe the bucket after the planned writes had these
/// outcomes. A key whose write failed stays known but unverified, so the next deploy rewrites
/// it and can still delete it; a key never attempted keeps its record.
pub fn settle(
    plan: &Plan,
    out: &Outcomes,
    current: &dyn Fn(&str) -> Option<Entry>,
    moment: Moment,
) -> Changes {
    settled(plan, out, current, moment).into_changes()
}

/// What [`settle`] gives, in key order with the keys borrowed from the plan: a large deploy's
/// settled state holds a record per file, so it is not copied into a map, its keys are the
/// plan's, and a write that landed as planned is recorded as a pointer to it (24 bytes a file
/// instead of 128).
pub fn settled<'a>(
    plan: &'a Plan,
    out: &Outcomes,
    current: &dyn Fn(&str) -> Option<Entry>,
    moment: Moment,
) -> Settled<'a> {
    let keeps = plan.writes.iter().filter(|w| w.keep.is_some()).count()
        + plan.deletes.iter().filter(|d| d.keep.is_some()).count();
    let mut records: Vec<(&'a str, Rec<'a>)> =
        Vec::with_capacity(plan.writes.len() + plan.deletes.len() + keeps);
    for (i, w) in plan.writes.iter().enumerate() {
        match out.writes[i] {
            Outcome::Done => match out.versions.get(&i) {
                None => records.push((&w.key, Rec::Wrote(w))),
                Some(version) => {
                    let e = Entry {
                        version: Some(version.clone()),
                        ..landed(w)
                    };
                    records.push((&w.key, Rec::own(Some(e))));
                }
            },
            Outcome::Failed => {
                let e = current(&w.key).unwrap_or_else(|| Entry {
                    sha256: None,
                    ..landed(w)
                });
                records.push((&w.key, Rec::own(Some(e.unverified()))));
            }
            Outcome::Skipped => {}
        }
        if let (Some(k), Some(o)) = (&w.keep, out.keeps.get(i).copied().flatten()) {
            settle_keep(&mut records, k, o, current, moment);
        }
    }
    for (i, d) in plan.deletes.iter().enumerate() {
        match out.deletes[i] {
            Outcome::Done => {
                records.push((&d.key, Rec::own(None)));
            }
            Outcome::Failed => {
                if let Some(e) = current(&d.key) {
                    records.push((&d.key, Rec::own(Some(e.unverified()))));
                }
            }
            Outcome::Skipped => {}
        }
        if let (Some(k), Some(o)) = (&d.keep, out.delete_keeps.get(i).copied().flatten()) {
            settle_keep(&mut records, k, o, current, moment);
        }
    }
    sort_last_wins(&mut records);
    let mut settled = Settled(records);

    // The few records set after the writes (kept copies still needed, lives changed without a
    // write) override what is there, as inserts into a map would.
    let mut later: BTreeMap<&'a str, Option<Entry>> = BTreeMap::new();
    for key in &plan.bumps {
        let needed = moment.seq.saturating_sub(1);
        let key = key.as_str();
        let slot = if later.contains_key(key) {
            later.get_mut(key).and_then(Option::as_mut)
        } else {
            settled.entry_mut(key)
        };
        match slot {
            Some(e) => {
                if let Life::Kept { until } = &mut e.life {
                    *until = (*until).max(needed);
                }
            }
            None => {
                if let Some(mut e) = current(key) {
                    if let Life::Kept { until } = &mut e.life {
                        *until = (*until).max(needed);
                        later.insert(key, Some(e));
                    }
                }
            }
        }
    }
    if out.bookkeeping {
        let mut relife = |key: &'a str, life: Life| {
            if let Some(mut e) = current(key) {
                e.life = life;
                later.insert(key, Some(e));
            }
        };
        for key in &plan.retire {
            relife(
                key,
                Life::Retired {
                    since: moment.now,
                    seq: moment.seq,
                },
            );
        }
        for key in &plan.revive {
            relife(key, Life::Live);
        }
        for (key, _) in &plan.left {
            relife(key, Life::Left);
        }
    }
    if !later.is_empty() {
        settled
            .0
            .extend(later.into_iter().map(|(k, e)| (k, Rec::own(e))));
        sort_last_wins(&mut settled.0);
    }
    settled
}

/// The record of a write that landed.
fn landed(w: &Write) -> Entry {
    Entry {
        sha256: Some(w.sha256),
        size: w.size,
        headers: Arc::clone(&w.headers),
        version: None,
        life: Life::Live,
    }
}

/// Sorts records by key, keeping of each key the one pushed last.
fn sort_last_wins<T>(records: &mut Vec<(&str, T)>) {
    // Keys are normally unique (a write, a delete or a kept copy each): then an unstable sort,
    // which needs no buffer as large as the records, is exact.
    let mut keys: Vec<&str> = records.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    if keys.windows(2).all(|w| w[0] != w[1]) {
        records.sort_unstable_by(|a, b| a.0.cmp(b.0));
        return;
    }
    drop(keys);
    // A stable sort of the reversed list puts the last push of a key first; dedup keeps firsts.
    records.reverse();
    records.sort_by(|a, b| a.0.cmp(b.0));
    records.dedup_by(|a, b| a.0 == b.0);
}

/// One settled record: a write that landed as planned (its record is made when read), or a
/// record of its own (`None`: the key is gone).
#[derive(Debug)]
enum Rec<'a> {
    Wrote(&'a Write),
    Own(Option<Box<Entry>>),
}

impl Rec<'_> {
    fn own(e: Option<Entry>) -> Self {
        Rec::Own(e.map(Box::new))
    }

    fn entry(&self) -> Option<Cow<'_, Entry>> {
        match self {
            Rec::Wrote(w) => Some(Cow::Owned(landed(w))),
            Rec::Own(e) => e.as_deref().map(Cow::Borrowed),
        }
    }
}

/// A deploy's new records in key order, each key once, keys borrowed from its plan.
#[derive(Debug)]
pub struct Settled<'a>(Vec<(&'a str, Rec<'a>)>);

impl<'a> Settled<'a> {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (*k).cmp(key))
    }

    /// The record of `key`: `None` when the deploy leaves it as it was, `Some(None)` when the
    /// key is gone.
    pub fn get(&self, key: &str) -> Option<Option<Cow<'_, Entry>>> {
        self.find(key).ok().map(|i| self.0[i].1.entry())
    }

    /// The record of `key` to change in place (`None`: not settled here, or gone).
    fn entry_mut(&mut self, key: &str) -> Option<&mut Entry> {
        let i = self.find(key).ok()?;
        let rec = &mut self.0[i].1;
        if let Rec::Wrote(w) = rec {
            *rec = Rec::own(Some(landed(w)));
        }
        match rec {
            Rec::Own(e) => e.as_deref_mut(),
            Rec::Wrote(_) => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<Cow<'_, Entry>>)> {
        self.0.iter().map(|(k, r)| (*k, r.entry()))
    }

    pub fn into_changes(self) -> Changes {
        self.0
            .into_iter()
            .map(|(k, r)| {
                let e = match r {
                    Rec::Wrote(w) => Some(landed(w)),
                    Rec::Own(e) => e.map(|b| *b),
                };
                (k.to_string(), e)
            })
            .collect()
    }
}

impl ChangeSet for Settled<'_> {
    fn records(&self) -> impl Iterator<Item = (&str, Option<Cow<'_, Entry>>)> {
        self.0.iter().map(|(k, r)| (*k, r.entry()))
    }

    fn has(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }
}

fn settle_keep<'a>(
    records: &mut Vec<(&'a str, Rec<'a>)>,
    k: &'a Keep,
    outcome: Outcome,
    current: &dyn Fn(&str) -> Option<Entry>,
    moment: Moment,
) {
    match outcome {
        Outcome::Done => {
            records.push((&k.to, Rec::own(Some(kept_record(k, current, moment, true)))));
        }
        Outcome::Failed => {
            records.push((
                &k.to,
                Rec::own(Some(kept_record(k, current, moment, false))),
            ));
        }
        Outcome::Skipped => {}
    }
}

/// The keys whose cached copies are stale once the writes had these outcomes, for the
/// invalidation planner: what landed, plus what earlier deploys left pending. A header update
/// changes what is served, so it is invalidated too; retired and expired files never served
/// other bytes under their name, so they are not.
pub fn stale<'p>(plan: &'p Plan, out: &Outcomes) -> Vec<(&'p str, Change)> {
    // Borrowed keys, sorted in place: a first deploy of 100,000 files makes 100,000 of them,
    // which need not be copied, nor held a second time in a map.
    let mut stale: Vec<(&str, Change)> = plan
        .pending
        .iter()
        .map(|k| (k.as_str(), Change::Changed))
        .collect();
    for (w, o) in plan.writes.iter().zip(&out.writes) {
        if *o != Outcome::Done {
            continue;
        }
        let change = match w.reason {
            Reason::New => Change::New {
                immutable: w.headers.is_immutable(),
            },
            _ => Change::Changed,
        };
        stale.push((&w.key, change));
    }
    for (d, o) in plan.deletes.iter().zip(&out.deletes) {
        if *o == Outcome::Done && d.kind == DeleteKind::Removed {
            stale.push((&d.key, Change::Deleted));
        }
    }
    sort_last_wins(&mut stale);
    stale
}

/// What undoing this plan restores: each site key it may change, with its record before (None:
/// absent). Manifest-only changes (retire, revive, leave) are included, so a rollback restores
/// the site exactly as it was.
pub fn reverse(plan: &Plan, layout: &Layout, current: &dyn Fn(&str) -> Option<Entry>) -> Changes {
    reverse_keys(plan, layout)
        .map(|k| (k.to_string(), current(k)))
        .collect()
}

/// The keys of [`reverse`], in no particular order and possibly repeated.
pub fn reverse_keys<'p>(plan: &'p Plan, layout: &'p Layout) -> impl Iterator<Item = &'p str> {
    plan.writes
        .iter()
        .map(|w| &*w.key)
        .chain(
            plan.deletes
                .iter()
                .filter(|d| d.kind != DeleteKind::Garbage)
                .map(|d| d.key.as_str()),
        )
        .chain(plan.retire.iter().map(String::as_str))
        .chain(plan.revive.iter().map(String::as_str))
        .chain(plan.left.iter().map(|(k, _)| k.as_str()))
        .filter(|k| !layout.is_reserved(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::{default_headers, IMMUTABLE};

    fn layout() -> Layout {
        Layout::new("", None)
    }

    fn local(rel: &str, byte: u8, size: u64) -> Local {
        Local {
            file: {
                let at = InBuild::new(std::path::Path::new("/site"), 0);
                let mut f = LocalFile::new(&at, "", rel, size);
                f.sha256 = [byte; 32];
                f
            },
            headers: Arc::new(default_headers(rel)),
        }
    }

    fn entry(rel: &str, byte: u8, size: u64) -> Entry {
        Entry::live([byte; 32], size, Arc::new(default_headers(rel)))
    }

    struct Fixture {
        layout: Layout,
        records: BTreeMap<String, Entry>,
    }

    impl Fixture {
        fn new(entries: &[(&str, Entry)]) -> Fixture {
            Fixture {
                layout: layout(),
                records: entries
                    .iter()
                    .map(|(k, e)| ((*k).to_string(), e.clone()))
                    .collect(),
            }
        }

        fn plan(&self, local: &[Local], opts: &PlanOptions, m: Moment) -> Result<Plan, PlanError> {
            let known = Known {
                layout: &self.layout,
                records: self.records.iter().collect(),
                is_known: &|_| true,
                live: self.records.values().filter(|e| e.is_live()).count() as u64,
                pending: Vec::new(),
            };
            plan(local, &known, opts, m, &|rel: &str| rel.ends_with(".map"))
        }

        fn current(&self) -> impl Fn(&str) -> Option<Entry> + '_ {
            |k| self.records.get(k).cloned()
        }
    }

    fn reasons(p: &Plan) -> Vec<(&str, Reason)> {
        p.writes.iter().map(|u| (&*u.key, u.reason)).collect()
    }

    fn moment() -> Moment {
        Moment {
            now: 1_000_000,
            seq: 5,
            oldest_kept: 1,
            previous_kept: true,
        }
    }

    /// The local × manifest matrix, one row per case.
    #[test]
    fn local_by_manifest_matrix() {
        let mut changed_headers = entry("h.css", 1, 10);
        changed_headers.headers = Arc::new(Headers {
            cache_control: Some(IMMUTABLE.into()),
            ..default_headers("h.css")
        });
        let mut unverified = entry("u.css", 1, 10);
        unverified.sha256 = None;
        let mut retired = entry("r.3f2a9c1b.js", 1, 10);
        retired.life = Life::Retired { since: 1, seq: 2 };
        let f = Fixture::new(&[
            ("same.css", entry("same.css", 1, 10)),
            ("content.css", entry("content.css", 2, 10)),
            ("size.css", entry("size.css", 1, 11)),
            ("h.css", changed_headers),
            ("u.css", unverified),
            ("r.3f2a9c1b.js", retired),
            ("gone.png", entry("gone.png", 3, 99)),
        ]);
        let files = vec![
            local("same.css", 1, 10),
            local("content.css", 1, 10),
            local("size.css", 1, 10),
            local("h.css", 1, 10),
            local("u.css", 1, 10),
            local("new.css", 1, 10),
            local("r.3f2a9c1b.js", 1, 10),
        ];
        let p = f
            .plan(&files, &PlanOptions::default(), moment())
            .expect("plan");
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
        let h = &p.writes[1];
        assert_eq!(
            h.source,
            Source::Restyle,
            "same bytes: headers updated in place"
        );
        assert!(
            p.writes[0].keep.is_some(),
            "the old content.css is kept for rollbacks"
        );
        assert!(
            p.writes[4].keep.is_none(),
            "unverified bytes are not worth keeping"
        );
        assert_eq!(p.unchanged, 1);
        assert_eq!(p.revive, ["r.3f2a9c1b.js"]);
        assert_eq!(p.deletes.len(), 1);
        assert_eq!(p.deletes[0].key, "gone.png");
        assert_eq!(p.deletes[0].kind, DeleteKind::Removed);

        let forced = PlanOptions {
            force: true,
            ..PlanOptions::default()
        };
        let p = f.plan(&files, &forced, moment()).expect("plan");
        assert!(reasons(&p).contains(&("same.css", Reason::Forced)));
        assert!(reasons(&p).contains(&("content.css", Reason::Content)));
    }

    #[test]
    fn hashed_files_retire_pages_go_and_retired_files_expire() {
        let mut old = entry("a-OldHash1.js", 1, 1);
        old.life = Life::Retired {
            since: 1_000_000 - 8 * 86_400,
            seq: 2,
        };
        let mut recent = entry("b-NewHash2.js", 1, 1);
        recent.life = Life::Retired {
            since: 1_000_000 - 86_400,
            seq: 4,
        };
        let mut still_used = entry("c-UsedHash.js", 1, 1);
        still_used.life = Life::Retired { since: 1, seq: 3 };
        let f = Fixture::new(&[
            ("index.html", entry("index.html", 1, 1)),
            ("app-Dk3l9xQa.js", entry("app-Dk3l9xQa.js", 1, 1)),
            ("about.html", entry("about.html", 1, 1)),
            ("a-OldHash1.js", old),
            ("b-NewHash2.js", recent),
            ("c-UsedHash.js", still_used),
        ]);
        let files = vec![local("index.html", 1, 1)];
        let m = Moment {
            oldest_kept: 2,
            ..moment()
        };
        let p = f.plan(&files, &PlanOptions::default(), m).expect("plan");
        assert_eq!(p.retire, ["app-Dk3l9xQa.js"]);
        let deletes: Vec<(&str, DeleteKind)> =
            p.deletes.iter().map(|d| (d.key.as_str(), d.kind)).collect();
        assert_eq!(
            deletes,
            [
                ("a-OldHash1.js", DeleteKind::Expired),
                ("about.html", DeleteKind::Removed)
            ],
            "b is inside its window; c is still live in a kept deploy"
        );
        assert_eq!(p.still_retired, 2);

        // With no window, a hashed file is deleted at once, as a page is.
        let now = PlanOptions {
            keep_old_assets: 0,
            ..PlanOptions::default()
        };
        let p = f.plan(&files, &now, m).expect("plan");
        assert!(p.retire.is_empty());
        assert!(p
            .deletes
            .iter()
            .any(|d| d.key == "app-Dk3l9xQa.js" && d.kind == DeleteKind::Removed));

        let out = Outcomes::all_done(&p);
        let next = settle(&p, &out, &f.current(), m);
        assert_eq!(next["about.html"], None);
        let p = f.plan(&files, &PlanOptions::default(), m).expect("plan");
        let next = settle(&p, &Outcomes::all_done(&p), &f.current(), m);
        assert_eq!(
            next["app-Dk3l9xQa.js"].as_ref().map(|e| e.life.clone()),
            Some(Life::Retired {
                since: 1_000_000,
                seq: 5
            })
        );
    }

    #[test]
    fn excluded_and_no_delete_leave_files_in_place() {
        let f = Fixture::new(&[
            ("index.html", entry("index.html", 1, 1)),
            ("app.js.map", entry("app.js.map", 1, 1)),
            ("old.html", entry("old.html", 1, 1)),
        ]);
        let files = vec![local("index.html", 1, 1)];
        let p = f
            .plan(&files, &PlanOptions::default(), moment())
            .expect("plan");
        assert_eq!(p.left, [("app.js.map".to_string(), LeftWhy::Excluded)]);
        assert_eq!(p.deletes.len(), 1);
        let keep = PlanOptions {
            delete: false,
            ..PlanOptions::default()
        };
        let p = f.plan(&files, &keep, moment()).expect("plan");
        assert!(p.deletes.is_empty());
        assert_eq!(p.left.len(), 2);
        let purge = PlanOptions {
            delete_excluded: true,
            ..PlanOptions::default()
        };
        let p = f.plan(&files, &purge, moment()).expect("plan");
        assert_eq!(p.deletes.len(), 2);
    }

    #[test]
    fn delete_guards() {
        let mut entries: Vec<(String, Entry)> = (0..20)
            .map(|i| {
                let k = format!("p{i}.html");
                let e = entry(&k, 1, 1);
                (k, e)
            })
            .collect();
        entries.push(("index.html".into(), entry("index.html", 1, 1)));
        let refs: Vec<(&str, Entry)> = entries
            .iter()
            .map(|(k, e)| (k.as_str(), e.clone()))
            .collect();
        let f = Fixture::new(&refs);
        // A project root deployed by mistake: none of the pages, plus other files.
        let wrong = vec![local("package.json", 1, 1), local("src/main.js", 1, 1)];
        let err = f
            .plan(&wrong, &PlanOptions::default(), moment())
            .unwrap_err();
        assert_eq!(
            err,
            PlanError::MassDelete {
                count: 21,
                known: 21
            }
        );
        assert!(err.to_string().contains("--allow-mass-delete"));
        let tight = PlanOptions {
            max_delete: 3,
            allow_mass_delete: true,
            ..PlanOptions::default()
        };
        assert_eq!(
            f.plan(&wrong, &tight, moment()).unwrap_err(),
            PlanError::TooManyDeletes { count: 21, max: 3 }
        );
        // Half the pages go, the root page with them.
        let mut half: Vec<Local> = (0..15)
            .map(|i| local(&format!("p{i}.html"), 1, 1))
            .collect();
        let err = f
            .plan(&half, &PlanOptions::default(), moment())
            .unwrap_err();
        assert_eq!(
            err,
            PlanError::RootPage {
                key: "index.html".into()
            }
        );
        half.push(local("index.html", 1, 1));
        assert!(f.plan(&half, &PlanOptions::default(), moment()).is_ok());
        let allow = PlanOptions {
            allow_mass_delete: true,
            ..PlanOptions::default()
        };
        assert!(f.plan(&wrong, &allow, moment()).is_ok());
        // A small site may lose most of its files: under the floor.
        let small = Fixture::new(&[
            ("index.html", entry("index.html", 1, 1)),
            ("a.html", entry("a.html", 1, 1)),
            ("b.html", entry("b.html", 1, 1)),
        ]);
        assert!(small
            .plan(
                &[local("index.html", 1, 1)],
                &PlanOptions::default(),
                moment()
            )
            .is_ok());
    }

    #[test]
    fn intent_settle_and_reverse() {
        let f = Fixture::new(&[
            ("changed.css", entry("changed.css", 1, 1)),
            ("failed.css", entry("failed.css", 1, 1)),
            ("gone.css", entry("gone.css", 1, 1)),
            ("gone2.css", entry("gone2.css", 1, 1)),
        ]);
        let files = vec![
            local("changed.css", 2, 2),
            local("failed.css", 2, 2),
            local("new.css", 2, 2),
            local("skipped.html", 2, 2),
        ];
        let m = moment();
        let p = f.plan(&files, &PlanOptions::default(), m).expect("plan");
        let keys: Vec<_> = p.writes.iter().map(|w| &*w.key).collect();
        assert_eq!(
            keys,
            ["changed.css", "failed.css", "new.css", "skipped.html"]
        );

        let during = intent(&p, &f.current(), m);
        assert!(during
            .iter()
            .filter(|(k, _)| !f.layout.is_reserved(k))
            .all(|(_, e)| e.as_ref().is_some_and(|e| e.sha256.is_none())));
        let kept: Vec<_> = during.keys().filter(|k| f.layout.is_reserved(k)).collect();
        assert_eq!(
            kept.len(),
            1,
            "all four old files hold the same bytes: one copy: {kept:?}"
        );
        let copies = p.writes.iter().filter_map(|w| w.keep.as_ref()).count()
            + p.deletes.iter().filter_map(|d| d.keep.as_ref()).count();
        assert_eq!(copies, 1);

        use Outcome::*;
        let out = Outcomes {
            writes: vec![Done, Failed, Done, Skipped],
            versions: BTreeMap::from([(0, "v9".into())]),
            keeps: vec![Some(Done), None, None, None],
            deletes: vec![Done, Failed],
            delete_keeps: vec![None, None],
            bookkeeping: true,
        };
        let next = settle(&p, &out, &f.current(), m);
        let hash = |k: &str| next.get(k).map(|e| e.as_ref().map(|e| e.sha256));
        assert_eq!(hash("changed.css"), Some(Some(Some([2; 32]))));
        assert_eq!(
            next["changed.css"]
                .as_ref()
                .and_then(|e| e.version.clone())
                .as_deref(),
            Some("v9")
        );
        assert_eq!(hash("failed.css"), Some(Some(None)));
        assert_eq!(hash("new.css"), Some(Some(Some([2; 32]))));
        assert_eq!(
            hash("skipped.html"),
            None,
            "never attempted, never recorded"
        );
        assert_eq!(hash("gone.css"), Some(None), "deleted");
        assert_eq!(
            hash("gone2.css"),
            Some(Some(None)),
            "delete failed: unverified"
        );
        let kept_key = f.layout.kept_key(&[1; 32], false);
        let kept = next[&kept_key].as_ref().expect("kept");
        assert_eq!(kept.sha256, Some([1; 32]));
        assert_eq!(kept.life, Life::Kept { until: 4 });

        // The borrowed form holds the same records, in key order, each key once.
        let borrowed = settled(&p, &out, &f.current(), m);
        let keys: Vec<&str> = borrowed.iter().map(|(k, _)| k).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert!(borrowed.has("gone.css") && !borrowed.has("skipped.html"));
        assert_eq!(borrowed.into_changes(), next);

        let back = reverse(&p, &f.layout, &f.current());
        assert_eq!(back["new.css"], None);
        assert_eq!(back["changed.css"], Some(entry("changed.css", 1, 1)));
        assert!(back.keys().all(|k| !f.layout.is_reserved(k)));
    }

    /// A first deploy of 100,000 files holds one build record and one write per file: their
    /// size is the tool's memory per file.
    #[test]
    fn per_file_records_stay_small() {
        let (record, write) = (std::mem::size_of::<Local>(), std::mem::size_of::<Write>());
        assert!(record <= 80, "a build record takes {record} bytes");
        assert!(write <= 104, "a planned write takes {write} bytes");
        // A write holds its file's key, not a copy of it.
        let files = vec![local("a.html", 1, 10), local("b.css", 2, 10)];
        let p = Fixture::new(&[])
            .plan(&files, &PlanOptions::default(), moment())
            .expect("plan");
        assert_eq!(p.writes.len(), 2);
        for w in &p.writes {
            let l = files
                .iter()
                .find(|l| l.file.key == w.key)
                .expect("its file");
            assert!(Arc::ptr_eq(&l.file.key, &w.key), "{} copied", w.key);
        }
    }

    #[test]
    fn of_records_pushed_for_one_key_the_last_wins() {
        let mut records = vec![("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5), ("b", 6)];
        sort_last_wins(&mut records);
        assert_eq!(records, [("a", 5), ("b", 6), ("c", 4)]);
    }
}
