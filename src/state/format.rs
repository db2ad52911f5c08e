//! The manifest's encoding, version 2: a small root object (gzip JSON) read by every deploy, and
//! content-addressed base objects holding the records in chunks, each chunk its own gzip member
//! so that one ranged GET reads any run of chunks. Decoding checks structure and versions;
//! `validate` checks every key against the target's layout.
//!
//! Root fields:
//! - `version` (2), `prefix` (the deploy prefix the manifest was written for), `seq` (number of
//!   the last completed deploy), `deploy` (who wrote it: id, time, tool version, git commit);
//! - `lock`: the deploy holding the target (holder, id, started, expires), absent when free;
//! - `in_progress`: the intent of the deploy under way: what it may have changed is recorded as
//!   unverified in `delta`, or, for a large deploy, in the `planned` base;
//! - `base` and `chunks`: the base object and, per chunk, its last key, byte range, number of
//!   live records, the fingerprint of its live records *with the delta applied*, and when its
//!   retired or kept records next fall due;
//! - `delta`: records that differ from the base (`null`: gone), with `headers` as their table;
//! - `history`: the kept deploys, newest last, each with what undoing it restores (`reverse`);
//! - `pending_invalidation`: keys changed without a successful invalidation;
//! - `garbage`: state objects no longer referenced, deleted by the next deploy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use serde::{Deserialize, Serialize};

use crate::local::headers::Headers;
use crate::state::entry::{Entry, Life, Sha};
use crate::state::layout::Layout;

/// The format version this build writes and the newest it reads.
pub const VERSION: u32 = 2;
/// Decompressed JSON beyond this size is refused: a manifest of a million files stays under it,
/// and a hostile object cannot make a deploy allocate without bound.
const MAX_JSON: u64 = 1 << 30;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("it is not a cdn-deploy manifest ({0})")]
    Corrupt(String),
    #[error("it was written by a newer cdn-deploy (manifest version {0}, this build reads up to {VERSION}): upgrade cdn-deploy")]
    Newer(u32),
    #[error("it was written for the prefix {recorded:?}, not {ours:?}: another deploy target's manifest must not decide what this one deletes; pass the --prefix it was written for, or another --manifest-key")]
    WrongPrefix { recorded: String, ours: String },
    #[error("it names keys this deploy must never touch:\n{}", bad_list(.0))]
    BadKeys(Vec<(String, &'static str)>),
}

fn bad_list(bad: &[(String, &'static str)]) -> String {
    let mut lines: Vec<String> = bad
        .iter()
        .take(20)
        .map(|(k, why)| format!("  {k:?}: {why}"))
        .collect();
    if bad.len() > 20 {
        lines.push(format!("  … and {} more", bad.len() - 20));
    }
    lines.join("\n")
}

/// Facts about the deploy that wrote a root. Nothing here may identify the machine or the
/// person: the manifest can be publicly readable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployInfo {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub tool_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// `deploy`, or `rollback` for a deploy that restored an earlier one.
    #[serde(default = "deploy_kind", skip_serializing_if = "is_deploy")]
    pub kind: String,
    /// For a rollback: the id of the deploy it restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
}

fn deploy_kind() -> String {
    "deploy".into()
}

fn is_deploy(kind: &String) -> bool {
    kind == "deploy"
}

/// The deploy holding the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockDoc {
    /// A CI run id or a random id, never a user or host name.
    pub holder: String,
    /// The holding deploy's id: how a deploy recognises its own lock after a lost response.
    pub id: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339; past it, another deploy may take the target over.
    pub expires: String,
    /// Bumped by every renewal, so each write of the root is distinct.
    #[serde(default)]
    pub renewals: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgressDoc {
    pub id: String,
    pub started: String,
    /// A large deploy's intent: the state it will leave if every write succeeds, written before
    /// the root. Every key where it differs from the root's state is in doubt until the deploy
    /// ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<BaseRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRef {
    pub key: String,
    pub size: u64,
    /// Where its chunks end, when more members follow them (a planned base carries the
    /// deploy's reverse delta after its chunks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_end: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// Keys above the previous chunk's `last` and up to this one belong to this chunk; the
    /// last chunk also takes every key above its `last`.
    pub last: String,
    /// Byte range of the chunk's gzip member in the base.
    pub at: u64,
    pub len: u64,
    /// Live records in the chunk, delta applied.
    pub live: u64,
    /// Fingerprint of the live records, delta applied (see `entry::Fingerprint`).
    pub hash: String,
    /// Retired records: the earliest retirement time (Unix seconds) and the lowest deploy
    /// number that retired one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<(i64, u64)>,
    /// Kept copies: the lowest deploy number one is still needed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<u64>,
    /// Records left in place (excluded, or removed under `--no-delete`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub left: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One record as stored: `s` hex sha256 (absent: unverified), `z` size, `h` index into the
/// headers table, `v` VersionId, and at most one of `r` [retired since, by deploy], `l` left,
/// `k` kept until deploy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDoc {
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(rename = "z")]
    pub size: u64,
    #[serde(rename = "h")]
    pub headers: usize,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<(i64, u64)>,
    #[serde(rename = "l", default, skip_serializing_if = "is_false")]
    pub left: bool,
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<u64>,
}

/// What undoing a deploy restores: the record each key it changed had before (`null`: absent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reverse {
    Inline(BTreeMap<String, Option<EntryDoc>>),
    /// Too large for the root: a gzip member of a state object (a base, or a history part).
    Stored {
        key: String,
        at: u64,
        len: u64,
        keys: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryDoc {
    pub seq: u64,
    pub deploy: DeployInfo,
    #[serde(default)]
    pub uploaded: u64,
    #[serde(default)]
    pub deleted: u64,
    #[serde(default)]
    pub retired: u64,
    /// CloudFront invalidation ids (`E123:I456`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalidations: Vec<String>,
    pub reverse: Reverse,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootDoc {
    pub version: u32,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub deploy: DeployInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<InProgressDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkRef>,
    /// The headers table of `delta` and of inline `reverse` records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Headers>,
    #[serde(default)]
    pub delta: BTreeMap<String, Option<EntryDoc>>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pending_invalidation: BTreeSet<String>,
    /// Fingerprint of the settings that left records in place (`exclude`, `delete = false`):
    /// when they change, the chunks holding such records are read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub garbage: Vec<String>,
    /// Read from a version-1 manifest, which did not record its prefix.
    #[serde(skip)]
    pub legacy: bool,
}

impl RootDoc {
    pub fn new(prefix: &str) -> RootDoc {
        RootDoc {
            version: VERSION,
            prefix: prefix.to_string(),
            ..RootDoc::default()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        gzip_json(self)
    }
}

/// A chunk of a base object: its records by key, with its own headers table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkDoc {
    #[serde(rename = "h")]
    pub headers: Vec<Headers>,
    #[serde(rename = "e")]
    pub entries: BTreeMap<String, EntryDoc>,
}

/// A history part: a reverse delta with its headers table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReverseDoc {
    #[serde(rename = "h")]
    pub headers: Vec<Headers>,
    #[serde(rename = "e")]
    pub entries: BTreeMap<String, Option<EntryDoc>>,
}

/// gzip-compressed JSON. The gzip header carries no time or name, so equal documents encode to
/// equal bytes, and content-addressed objects get stable names.
pub fn gzip_json<T: Serialize>(doc: &T) -> Vec<u8> {
    // Straight into the compressor: a large document is never held as text.
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    // Serializing plain maps, strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut gz, doc);
    gz.finish().unwrap_or_default()
}

/// The JSON inside gzip bytes (every member); plain JSON is accepted as is, for objects fetched
/// through a client that already decompressed them.
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, ManifestError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(MAX_JSON)
        .read_to_end(&mut out)
        .map_err(|e| ManifestError::Corrupt(format!("bad gzip data: {e}")))?;
    Ok(out)
}

fn corrupt(e: serde_json::Error) -> ManifestError {
    ManifestError::Corrupt(format!("bad JSON: {e}"))
}

/// A decoded root: this version's, or a version-1 manifest read as a root with every record in
/// its delta (the next deploy then writes a base and migrates it).
pub fn decode_root(bytes: &[u8]) -> Result<RootDoc, ManifestError> {
    let json = gunzip(bytes)?;
    // Read the version first, so a newer format is reported as such and not as corrupt.
    #[derive(Deserialize)]
    struct Probe {
        version: u32,
    }
    let probe: Probe = serde_json::from_slice(&json).map_err(corrupt)?;
    match probe.version {
        0 => Err(ManifestError::Corrupt("version 0".into())),
        1 => crate::state::v1::decode(&json),
        VERSION => {
            let root: RootDoc = serde_json::from_slice(&json).map_err(corrupt)?;
            check_root_structure(&root)?;
            Ok(root)
        }
        v => Err(ManifestError::Newer(v)),
    }
}

pub fn decode_chunk(bytes: &[u8]) -> Result<ChunkDoc, ManifestError> {
    let json = gunzip(bytes)?;
    let chunk: ChunkDoc = serde_json::from_slice(&json).map_err(corrupt)?;
    for (key, e) in &chunk.entries {
        check_entry(key, e, chunk.headers.len())?;
    }
    Ok(chunk)
}

pub fn decode_reverse(bytes: &[u8]) -> Result<ReverseDoc, ManifestError> {
    let json = gunzip(bytes)?;
    let doc: ReverseDoc = serde_json::from_slice(&json).map_err(corrupt)?;
    for (key, e) in &doc.entries {
        if let Some(e) = e {
            check_entry(key, e, doc.headers.len())?;
        }
    }
    Ok(doc)
}

fn check_root_structure(root: &RootDoc) -> Result<(), ManifestError> {
    let n = root.headers.len();
    for (key, e) in &root.delta {
        if let Some(e) = e {
            check_entry(key, e, n)?;
        }
    }
    for h in &root.history {
        if let Reverse::Inline(map) = &h.reverse {
            for (key, e) in map.iter() {
                if let Some(e) = e {
                    check_entry(key, e, n)?;
                }
            }
        }
    }
    if !root.chunks.is_empty() && root.base.is_none() {
        return Err(ManifestError::Corrupt("chunks without a base".into()));
    }
    let mut end = 0u64;
    let mut last: Option<&str> = None;
    for c in &root.chunks {
        if c.at < end || c.len == 0 || last.is_some_and(|l| l >= c.last.as_str()) {
            return Err(ManifestError::Corrupt("chunks out of order".into()));
        }
        if c.hash.len() != 32 || !c.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ManifestError::Corrupt("bad chunk fingerprint".into()));
        }
        end = c.at.saturating_add(c.len);
        last = Some(&c.last);
    }
    if let Some(b) = &root.base {
        if end > b.size {
            return Err(ManifestError::Corrupt(
                "chunks past the end of the base".into(),
            ));
        }
    }
    Ok(())
}

fn check_entry(key: &str, e: &EntryDoc, headers: usize) -> Result<(), ManifestError> {
    let bad = |why: &str| ManifestError::Corrupt(format!("{why} for {key:?}"));
    if let Some(h) = &e.sha256 {
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("bad sha256"));
        }
    }
    if e.headers >= headers {
        return Err(bad("a headers index out of range"));
    }
    let lives =
        usize::from(e.retired.is_some()) + usize::from(e.left) + usize::from(e.kept.is_some());
    if lives > 1 {
        return Err(bad("conflicting states"));
    }
    Ok(())
}

/// Interns headers for encoding: equal headers share one table slot.
#[derive(Default)]
pub struct HeaderTable {
    pub list: Vec<Headers>,
    index: HashMap<Headers, usize>,
}

impl HeaderTable {
    pub fn slot(&mut self, h: &Headers) -> usize {
        if let Some(i) = self.index.get(h) {
            return *i;
        }
        let i = self.list.len();
        self.list.push(h.clone());
        self.index.insert(h.clone(), i);
        i
    }

    pub fn doc(&mut self, e: &Entry) -> EntryDoc {
        let slot = self.slot(&e.headers);
        HeaderTable::entry_doc(e, slot)
    }

    /// The document of a record whose headers are already in the table.
    pub fn known_doc(&self, e: &Entry) -> EntryDoc {
        let slot = self.index.get(&*e.headers).copied().unwrap_or_default();
        HeaderTable::entry_doc(e, slot)
    }

    fn entry_doc(e: &Entry, headers: usize) -> EntryDoc {
        let (retired, left, kept) = match e.life {
            Life::Live => (None, false, None),
            Life::Retired { since, seq } => (Some((since, seq)), false, None),
            Life::Left => (None, true, None),
            Life::Kept { until } => (None, false, Some(until)),
        };
        EntryDoc {
            sha256: e.sha256.map(hex::encode),
            size: e.size,
            headers,
            version: e.version.clone(),
            retired,
            left,
            kept,
        }
    }
}

/// Shares equal headers between records in memory: a site of 100,000 files has a handful of
/// distinct header sets.
#[derive(Default)]
pub struct Interner {
    map: HashMap<Headers, Arc<Headers>>,
}

impl Interner {
    pub fn get(&mut self, h: &Headers) -> Arc<Headers> {
        if let Some(a) = self.map.get(h) {
            return Arc::clone(a);
        }
        let a = Arc::new(h.clone());
        self.map.insert(h.clone(), Arc::clone(&a));
        a
    }

    /// The record a document describes; `table` is the headers table it indexes (already
    /// checked by decoding).
    pub fn entry(&mut self, d: &EntryDoc, table: &[Headers]) -> Entry {
        let sha256 = d.sha256.as_deref().and_then(|h| {
            let mut out: Sha = [0; 32];
            hex::decode_to_slice(h, &mut out).ok().map(|()| out)
        });
        let headers = table
            .get(d.headers)
            .map(|h| self.get(h))
            .unwrap_or_else(|| self.get(&Headers::new("application/octet-stream")));
        let life = match (d.retired, d.left, d.kept) {
            (Some((since, seq)), _, _) => Life::Retired { since, seq },
            (_, true, _) => Life::Left,
            (_, _, Some(until)) => Life::Kept { until },
            _ => Life::Live,
        };
        Entry {
            sha256,
            size: d.size,
            headers,
            version: d.version.clone(),
            life,
        }
    }
}

/// Checks every key a root names against the layout, and the prefix it was written for.
pub fn validate_root(root: &RootDoc, layout: &Layout) -> Result<(), ManifestError> {
    // A version-1 manifest did not record its prefix: it is taken to be the prefix it sits in,
    // and one moved elsewhere cannot be trusted to belong to this one.
    let default_place = Layout::new(&layout.prefix, None).manifest_key == layout.manifest_key;
    if root.legacy && !default_place {
        return Err(ManifestError::WrongPrefix {
            recorded: "(not recorded: a version-1 manifest)".into(),
            ours: layout.prefix.clone(),
        });
    }
    if !root.legacy && root.prefix != layout.prefix {
        return Err(ManifestError::WrongPrefix {
            recorded: root.prefix.clone(),
            ours: layout.prefix.clone(),
        });
    }
    let mut bad = Vec::new();
    for (key, e) in &root.delta {
        check_key(layout, key, e.as_ref(), &mut bad);
    }
    for c in &root.chunks {
        // A chunk bound is the key of a record that may since have been deleted; it must still
        // be a key of this target.
        if let Err(why) = layout.check_site_key(&c.last) {
            if !layout.is_state_object(&c.last) {
                bad.push((c.last.clone(), why));
            }
        }
    }
    for h in &root.history {
        match &h.reverse {
            Reverse::Inline(map) => {
                for (key, e) in map {
                    check_key(layout, key, e.as_ref(), &mut bad);
                }
            }
            Reverse::Stored { key, .. } => check_object(layout, key, &mut bad),
        }
    }
    for key in root
        .base
        .iter()
        .map(|b| &b.key)
        .chain(
            root.in_progress
                .iter()
                .filter_map(|p| p.planned.as_ref().map(|b| &b.key)),
        )
        .chain(&root.garbage)
    {
        check_object(layout, key, &mut bad);
    }
    for key in &root.pending_invalidation {
        if let Err(why) = layout.check_site_key(key) {
            bad.push((key.clone(), why));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ManifestError::BadKeys(bad))
    }
}

/// Checks the records of a chunk (or any map of records) against the layout.
pub fn validate_entries<'a>(
    layout: &Layout,
    entries: impl Iterator<Item = (&'a String, Option<&'a EntryDoc>)>,
) -> Result<(), ManifestError> {
    let mut bad = Vec::new();
    for (key, e) in entries {
        check_key(layout, key, e, &mut bad);
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ManifestError::BadKeys(bad))
    }
}

fn check_key(
    layout: &Layout,
    key: &str,
    e: Option<&EntryDoc>,
    bad: &mut Vec<(String, &'static str)>,
) {
    let kept = e.is_some_and(|e| e.kept.is_some());
    if kept {
        if layout.parse_kept_key(key).is_none() {
            bad.push((key.to_string(), "a kept copy outside the state folder"));
        }
    } else if let Err(why) = layout.check_site_key(key) {
        bad.push((key.to_string(), why));
    }
}

fn check_object(layout: &Layout, key: &str, bad: &mut Vec<(String, &'static str)>) {
    if !layout.is_state_object(key) {
        bad.push((key.to_string(), "a state object outside the state folder"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::default_headers;

    fn sample() -> RootDoc {
        let mut root = RootDoc::new("docs/");
        root.headers = vec![default_headers("a.css")];
        root.delta.insert(
            "docs/a.css".into(),
            Some(EntryDoc {
                sha256: Some("ab".repeat(32)),
                size: 3,
                headers: 0,
                version: None,
                retired: None,
                left: false,
                kept: None,
            }),
        );
        root.delta.insert("docs/gone.css".into(), None);
        root
    }

    #[test]
    fn round_trip_is_stable() {
        let root = sample();
        let bytes = root.encode();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
        assert_eq!(bytes, root.encode(), "deterministic");
        assert_eq!(decode_root(&bytes), Ok(root.clone()));
        assert_eq!(validate_root(&root, &Layout::new("docs/", None)), Ok(()));
    }

    #[test]
    fn corrupt_newer_and_wrong_prefix_are_refused() {
        for (bytes, want) in [
            (&b""[..], "bad JSON"),
            (b"<html>", "bad JSON"),
            (&[0x1f, 0x8b, 0, 1, 2][..], "bad gzip"),
            (br#"{"version": 2, "delta": {"k": {"s": "xyz", "z": 1, "h": 0}}, "headers": [{"content-type": "a"}]}"#, "bad sha256"),
            (br#"{"version": 2, "delta": {"k": {"z": 1, "h": 3}}}"#, "headers index"),
            (br#"{"version": 2, "delta": {"k": {"z": 1, "h": 0, "l": true, "k": 3}}, "headers": [{"content-type": "a"}]}"#, "conflicting"),
            (br#"{"files": {}}"#, "bad JSON"),
            (br#"{"version": 0}"#, "version 0"),
        ] {
            match decode_root(bytes) {
                Err(ManifestError::Corrupt(why)) => assert!(why.contains(want), "{why}"),
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        assert_eq!(
            decode_root(br#"{"version": 3, "anything": []}"#),
            Err(ManifestError::Newer(3))
        );
        let err = validate_root(&sample(), &Layout::new("", None)).unwrap_err();
        assert!(matches!(err, ManifestError::WrongPrefix { .. }), "{err}");
    }

    #[test]
    fn keys_outside_the_target_are_named() {
        let mut root = sample();
        let doc = root.delta["docs/a.css"].clone();
        for key in [
            "index.html",
            "docs/../escape.html",
            "docs/.cdn-deploy/manifest.json",
        ] {
            root.delta.insert(key.into(), doc.clone());
        }
        let err = validate_root(&root, &Layout::new("docs/", None)).unwrap_err();
        let ManifestError::BadKeys(bad) = &err else {
            panic!("{err}")
        };
        let keys: Vec<&str> = bad.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "docs/../escape.html",
                "docs/.cdn-deploy/manifest.json",
                "index.html"
            ]
        );
        let text = err.to_string();
        assert!(
            text.contains("\"index.html\": outside the deploy prefix"),
            "{text}"
        );
    }
}
