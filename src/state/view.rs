//! A deploy's view of the manifest: the root it read, the chunks it read, and the records they
//! hold; which chunks can differ from the build (and must be read); and the next root once the
//! deploy's changes are known, with a new base when the delta grows too large. Pure: the caller
//! fetches bytes and hands them in.

use sha2::{Digest, Sha256};
use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::ops::Bound;

use crate::local::headers::Headers;
use crate::state::entry::{Entry, Fingerprint, Life, Sha};
use crate::state::format::{
    decode_chunk, gzip_json, validate_entries, BaseRef, ChunkDoc, ChunkRef, HeaderTable, Interner,
    ManifestError, RootDoc,
};
use crate::state::layout::Layout;

/// Records the root may carry in its delta before a deploy writes a new base. A root with a
/// full delta is still small (about 7 KB compressed), and a base is rewritten only once that
/// many records have changed since the last one.
pub const DELTA_MAX: usize = 128;

/// Chunks this close in the base are read together.
const READ_GAP: u64 = 32 * 1024;
/// Ranged reads of the base made at once, at most.
pub const MAX_READS: usize = 8;

/// A record as a deploy would have it, for comparing a range against the build folder.
pub struct Wanted<'a> {
    pub key: &'a str,
    pub sha256: &'a Sha,
    pub size: u64,
    pub headers: &'a Headers,
}

/// Why chunks must be read besides differing from the build.
#[derive(Clone, Debug, Default)]
pub struct Housekeeping {
    /// Now, in Unix seconds.
    pub now: i64,
    /// How long retired files stay, in seconds.
    pub keep_old_assets: i64,
    /// The lowest deploy number the history will still hold after this deploy.
    pub oldest_kept: u64,
    /// Fingerprint of the settings that leave records in place.
    pub left_by: String,
    /// `--force`, or a verification of everything: read every chunk.
    pub everything: bool,
}

pub struct View {
    pub layout: Layout,
    pub root: RootDoc,
    /// The root's ETag; `None` when there is no manifest yet.
    pub etag: Option<String>,
    pub interner: Interner,
    /// Base records of the chunks read.
    base: BTreeMap<String, Entry>,
    /// The root's delta, decoded (`None`: gone since the base).
    delta: BTreeMap<String, Option<Entry>>,
    read: Vec<bool>,
}

/// The new records a deploy leaves, by key (`None`: the key is gone from the manifest).
pub type Changes = BTreeMap<String, Option<Entry>>;

/// New records in key order, each key once (`None`: the key is gone): a [`Changes`] map, or a
/// large deploy's settled state, which borrows its keys from the plan and makes the record of
/// each write that landed as planned only when it is read.
pub trait ChangeSet {
    fn records(&self) -> impl Iterator<Item = (&str, Option<Cow<'_, Entry>>)>;
    fn has(&self, key: &str) -> bool;
}

impl ChangeSet for Changes {
    fn records(&self) -> impl Iterator<Item = (&str, Option<Cow<'_, Entry>>)> {
        self.iter()
            .map(|(k, e)| (k.as_str(), e.as_ref().map(Cow::Borrowed)))
    }

    fn has(&self, key: &str) -> bool {
        self.contains_key(key)
    }
}

/// A base object ready to write, with its chunk table.
pub struct NewBase {
    pub key: String,
    pub bytes: Vec<u8>,
    pub chunks: Vec<ChunkRef>,
    /// Byte ranges of the extra members appended after the chunks, in order.
    pub extras: Vec<(u64, u64)>,
}

impl View {
    /// No manifest yet.
    pub fn empty(layout: Layout) -> View {
        let root = RootDoc::new(&layout.prefix);
        View::from_root(layout, root, None)
    }

    /// A root as read (already validated against `layout`).
    pub fn from_root(layout: Layout, mut root: RootDoc, etag: Option<String>) -> View {
        if root.legacy {
            root.prefix.clone_from(&layout.prefix);
        }
        let mut interner = Interner::default();
        let delta = root
            .delta
            .iter()
            .map(|(k, d)| {
                let e = d.as_ref().map(|d| interner.entry(d, &root.headers));
                (k.clone(), e)
            })
            .collect();
        let read = vec![false; root.chunks.len()];
        View {
            layout,
            root,
            etag,
            interner,
            base: BTreeMap::new(),
            delta,
            read,
        }
    }

    /// The chunk a key belongs to; `None` when there is no base (every record is in the root).
    pub fn chunk_of(&self, key: &str) -> Option<usize> {
        let chunks = &self.root.chunks;
        if chunks.is_empty() {
            return None;
        }
        let i = chunks.partition_point(|c| c.last.as_str() < key);
        Some(i.min(chunks.len() - 1))
    }

    /// Whether every record of the range that holds `key` is known.
    pub fn is_known(&self, key: &str) -> bool {
        self.chunk_of(key).is_none_or(|i| self.read[i])
    }

    pub fn all_read(&self) -> bool {
        self.read.iter().all(|r| *r)
    }

    pub fn chunks_read(&self) -> usize {
        self.read.iter().filter(|r| **r).count()
    }

    /// The current record of a key (delta applied), if the key is known and recorded.
    pub fn current(&self, key: &str) -> Option<&Entry> {
        match self.delta.get(key) {
            Some(e) => e.as_ref(),
            None => self.base.get(key),
        }
    }

    /// Every known record, in key order: the read chunks' and, without a base, all of them.
    pub fn known(&self) -> Vec<(&String, &Entry)> {
        merge(
            self.base.iter().map(|(k, e)| (k, Some(e))),
            self.delta.iter().map(|(k, e)| (k, e.as_ref())),
        )
        .filter(|(k, _)| self.is_known(k))
        .collect()
    }

    /// Live records in the whole manifest (read or not).
    pub fn live_count(&self) -> u64 {
        if self.root.chunks.is_empty() {
            self.delta
                .values()
                .filter(|e| e.as_ref().is_some_and(Entry::is_live))
                .count() as u64
        } else {
            self.root.chunks.iter().map(|c| c.live).sum()
        }
    }

    /// The chunks to read: those whose live records can differ from `wanted` (sorted by key),
    /// and those whose retired, kept or left records fall due.
    pub fn to_read(&self, wanted: &[Wanted], why: &Housekeeping) -> Vec<usize> {
        let chunks = &self.root.chunks;
        if chunks.is_empty() {
            return Vec::new();
        }
        let mut prints: Vec<Fingerprint> = vec![Fingerprint::new(); chunks.len()];
        for w in wanted {
            if let Some(i) = self.chunk_of(w.key) {
                prints[i].add(w.key, Some(w.sha256), w.size, w.headers);
            }
        }
        let left_changed = self.root.left_by.as_deref().unwrap_or("") != why.left_by;
        prints
            .into_iter()
            .zip(chunks)
            .enumerate()
            .filter(|(i, (print, c))| {
                !self.read[*i]
                    && (why.everything
                        || print.count() as u64 != c.live
                        || print.clone().finish() != c.hash
                        || c.retired.is_some_and(|(since, seq)| {
                            why.now - since >= why.keep_old_assets && seq <= why.oldest_kept
                        })
                        || c.kept.is_some_and(|until| until < why.oldest_kept)
                        || (c.left > 0 && left_changed))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Chunks not read yet.
    pub fn unread(&self) -> Vec<usize> {
        (0..self.read.len()).filter(|i| !self.read[*i]).collect()
    }

    /// The byte range of the base that holds these chunks: one ranged GET reads them all.
    pub fn span(&self, chunks: &[usize]) -> Option<(u64, u64)> {
        let refs = chunks.iter().filter_map(|i| self.root.chunks.get(*i));
        let start = refs.clone().map(|c| c.at).min()?;
        let end = refs.map(|c| c.at + c.len).max()?;
        Some((start, end))
    }

    /// The byte ranges of the base to read for these chunks, at the same time: neighbouring
    /// chunks share a read, and so do chunks a short gap apart (reading the gap costs less than
    /// a request), up to [`MAX_READS`] reads. One range over all of them would read most of a
    /// large base for a few scattered changes.
    pub fn read_ranges(&self, chunks: &[usize]) -> Vec<(u64, u64)> {
        let mut refs: Vec<(u64, u64)> = chunks
            .iter()
            .filter_map(|i| self.root.chunks.get(*i))
            .map(|c| (c.at, c.at + c.len))
            .collect();
        refs.sort_unstable();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for (start, end) in refs {
            match ranges.last_mut() {
                Some(last) if start <= last.1 + READ_GAP => last.1 = last.1.max(end),
                _ => ranges.push((start, end)),
            }
        }
        while ranges.len() > MAX_READS {
            // Join the two reads with the smallest gap between them.
            let i = (1..ranges.len())
                .min_by_key(|i| ranges[*i].0 - ranges[*i - 1].1)
                .unwrap_or(1);
            ranges[i - 1].1 = ranges[i].1;
            ranges.remove(i);
        }
        ranges
    }

    /// Takes in the bytes of a ranged read of the base starting at `start`: every chunk wholly
    /// inside them becomes known. Each is checked against the layout before it is trusted.
    pub fn absorb(&mut self, start: u64, bytes: &[u8]) -> Result<(), ManifestError> {
        let end = start + bytes.len() as u64;
        let mut taken = BTreeMap::new();
        for i in 0..self.root.chunks.len() {
            let c = &self.root.chunks[i];
            if self.read[i] || c.at < start || c.at + c.len > end {
                continue;
            }
            let lo = usize::try_from(c.at - start).unwrap_or(usize::MAX);
            let hi = lo.saturating_add(usize::try_from(c.len).unwrap_or(usize::MAX));
            let slice = bytes
                .get(lo..hi)
                .ok_or_else(|| ManifestError::Corrupt("a chunk past the end of the base".into()))?;
            let doc = decode_chunk(slice)?;
            validate_entries(&self.layout, doc.entries.iter().map(|(k, e)| (k, Some(e))))?;
            for (key, d) in doc.entries {
                if self.chunk_of(&key) != Some(i) {
                    return Err(ManifestError::Corrupt(format!(
                        "{key:?} is outside the range of its chunk"
                    )));
                }
                let e = self.interner.entry(&d, &doc.headers);
                taken.insert(key, e);
            }
            self.read[i] = true;
        }
        // Rebuilt from sorted records the map's nodes are full, not the half-empty ones that
        // inserting records one by one leaves: the records of a whole base take a third less.
        if !taken.is_empty() {
            self.base = std::mem::take(&mut self.base)
                .into_iter()
                .chain(taken)
                .collect();
        }
        Ok(())
    }

    /// Every key where a large deploy's planned state differs from this one is in doubt: it may
    /// have been written. Such keys become unverified (and planned keys unknown here are
    /// recorded), so the deploy that takes over rewrites them and may delete them. Needs every
    /// chunk read, and the planned state whole.
    pub fn doubt(&mut self, planned: &BTreeMap<String, Entry>) {
        let mut changes = Changes::new();
        for (key, p) in planned {
            match self.current(key) {
                Some(c) if c == p => {}
                Some(c) => {
                    changes.insert(key.clone(), Some(c.unverified()));
                }
                None => {
                    changes.insert(key.clone(), Some(p.unverified()));
                }
            }
        }
        for (key, c) in self.known() {
            if !planned.contains_key(key) {
                changes.insert(key.clone(), Some(c.unverified()));
            }
        }
        for (k, e) in changes {
            self.delta.insert(k, e);
        }
    }

    /// The delta after `changes`: records that differ from the base, tombstones for base keys
    /// that are gone.
    fn delta_after(&self, changes: &impl ChangeSet) -> BTreeMap<String, Option<Entry>> {
        let mut delta = self.delta.clone();
        for (key, new) in changes.records() {
            if self.same_as_base(key, new.as_deref()) {
                delta.remove(key);
            } else {
                delta.insert(key.to_string(), new.map(Cow::into_owned));
            }
        }
        delta
    }

    /// Whether `new` is what the base already says of `key` (absent counts as gone).
    fn same_as_base(&self, key: &str, new: Option<&Entry>) -> bool {
        match (new, self.base.get(key)) {
            (Some(n), Some(b)) => n == b,
            (None, None) => true,
            _ => false,
        }
    }

    /// How many records [`Self::delta_after`] would hold, without building it: a large
    /// deploy's changes are as many as its files.
    fn delta_len_after(&self, changes: &impl ChangeSet) -> usize {
        let kept = self.delta.keys().filter(|k| !changes.has(k)).count();
        let changed = changes
            .records()
            .filter(|(k, new)| !self.same_as_base(k, new.as_deref()))
            .count();
        kept + changed
    }

    /// Whether `changes` fit in the root's delta, or need a new base (then every chunk must
    /// be read first).
    pub fn needs_rebase(&self, changes: &impl ChangeSet) -> bool {
        // Without a base every record lives in the delta, so a site of more than DELTA_MAX
        // files always has one.
        self.delta_len_after(changes) > DELTA_MAX
    }

    /// The root fields for the state after `changes`, when they fit in the delta: the new
    /// delta (with its headers table) and the chunk table with every read chunk's counts and
    /// fingerprint recomputed. The caller sets everything else (lock, history…).
    pub fn next_root(&self, changes: &impl ChangeSet) -> RootDoc {
        let delta = self.delta_after(changes);
        let mut root = self.root.clone();
        // A kept copy may be recorded in a chunk that was not read (its record needs nothing
        // from the old one): the chunk's due marker only moves earlier.
        for (key, new) in changes.records() {
            let Some(i) = self.chunk_of(key) else {
                continue;
            };
            if self.read[i] {
                continue;
            }
            if let Some(Entry {
                life: Life::Kept { until },
                ..
            }) = new.as_deref()
            {
                let c = &mut root.chunks[i];
                c.kept = Some(c.kept.map_or(*until, |u| u.min(*until)));
            }
        }
        for i in 0..root.chunks.len() {
            if !self.read[i] {
                continue;
            }
            let (lo, hi) = self.bounds(i);
            let base = self
                .base
                .range::<str, _>((lo, hi))
                .map(|(k, e)| (k, Some(e)));
            let delta_range = delta
                .range::<str, _>((lo, hi))
                .map(|(k, e)| (k, e.as_ref()));
            summarize(&mut root.chunks[i], merge(base, delta_range));
        }
        let mut table = HeaderTable::default();
        root.delta = delta
            .iter()
            .map(|(k, e)| (k.clone(), e.as_ref().map(|e| table.doc(e))))
            .collect();
        root.headers = table.list;
        root
    }

    /// A new base holding every record after `changes` (every chunk must have been read), and
    /// the root fields that go with it (empty delta). `extras` are gzip members appended after
    /// the chunks (a history part), whose ranges come back in [`NewBase::extras`].
    pub fn rebase(&self, changes: &impl ChangeSet, extras: &[Vec<u8>]) -> (RootDoc, NewBase) {
        // Streamed twice (to count, then to encode): the records are never gathered.
        let all = || {
            let before = overlay(
                self.base
                    .iter()
                    .map(|(k, e)| (k.as_str(), Some(Cow::Borrowed(e)))),
                self.delta
                    .iter()
                    .map(|(k, e)| (k.as_str(), e.as_ref().map(Cow::Borrowed))),
            );
            overlay(before, changes.records()).filter_map(|(k, e)| e.map(|e| (k, e)))
        };
        let base = build_base(&self.layout, all().count(), all(), extras);
        let mut root = self.root.clone();
        root.delta.clear();
        root.headers.clear();
        root.chunks.clone_from(&base.chunks);
        root.base = Some(BaseRef {
            key: base.key.clone(),
            size: base.bytes.len() as u64,
            chunks_end: None,
        });
        (root, base)
    }

    /// The key range of chunk `i` as map bounds.
    fn bounds(&self, i: usize) -> (Bound<&str>, Bound<&str>) {
        let chunks = &self.root.chunks;
        let lo = match i {
            0 => Bound::Unbounded,
            _ => Bound::Excluded(chunks[i - 1].last.as_str()),
        };
        let hi = if i + 1 == chunks.len() {
            Bound::Unbounded
        } else {
            Bound::Included(chunks[i].last.as_str())
        };
        (lo, hi)
    }
}

/// Base records overlaid with delta records (`None`: gone), in key order.
fn merge<'a, K: Ord>(
    base: impl Iterator<Item = (K, Option<&'a Entry>)>,
    delta: impl Iterator<Item = (K, Option<&'a Entry>)>,
) -> impl Iterator<Item = (K, &'a Entry)> {
    overlay(base, delta).filter_map(|(k, e)| e.map(|e| (k, e)))
}

/// Two key-ordered runs of records as one, in key order; where both hold a key, `top`'s record
/// wins (`None`: gone). Streams: a large deploy's records are never gathered twice.
fn overlay<K: Ord, E>(
    under: impl Iterator<Item = (K, Option<E>)>,
    top: impl Iterator<Item = (K, Option<E>)>,
) -> impl Iterator<Item = (K, Option<E>)> {
    let (mut under, mut top) = (under.peekable(), top.peekable());
    std::iter::from_fn(move || match (under.peek(), top.peek()) {
        (Some((u, _)), Some((t, _))) => match u.cmp(t) {
            std::cmp::Ordering::Less => under.next(),
            std::cmp::Ordering::Greater => top.next(),
            std::cmp::Ordering::Equal => {
                under.next();
                top.next()
            }
        },
        (Some(_), None) => under.next(),
        (None, _) => top.next(),
    })
}

/// Recomputes a chunk's counts, fingerprint and due dates from its records.
fn summarize<'a>(c: &mut ChunkRef, records: impl Iterator<Item = (impl AsRef<str>, &'a Entry)>) {
    let mut print = Fingerprint::new();
    let (mut retired, mut kept, mut left): (Option<(i64, u64)>, Option<u64>, u64) = (None, None, 0);
    for (k, e) in records {
        match e.life {
            Life::Live => print.add_entry(k.as_ref(), e),
            Life::Retired { since, seq } => {
                retired = Some(match retired {
                    Some((s, q)) => (s.min(since), q.min(seq)),
                    None => (since, seq),
                });
            }
            Life::Kept { until } => kept = Some(kept.map_or(until, |u| u.min(until))),
            Life::Left => left += 1,
        }
    }
    c.live = print.count() as u64;
    c.hash = print.finish();
    c.retired = retired;
    c.kept = kept;
    c.left = left;
}

/// How many records a chunk of a base holding `n` records takes: about √(2n), so that a
/// one-file change reads one chunk and rewrites a root that lists n/√(2n) chunks, which keeps
/// both small (about 440 records a chunk for 100,000 files).
pub fn chunk_size(n: usize) -> usize {
    let root = (2.0 * n as f64).sqrt() as usize;
    root.next_power_of_two().clamp(64, 1024)
}

/// Encodes records (in key order) as a base: chunks of gzip JSON, one member each.
pub fn build_base(
    layout: &Layout,
    count: usize,
    records: impl Iterator<Item = (impl AsRef<str>, impl Borrow<Entry>)>,
    extras: &[Vec<u8>],
) -> NewBase {
    let size = chunk_size(count);
    let mut bytes = Vec::new();
    let mut chunks = Vec::new();
    let mut records = records.peekable();
    while records.peek().is_some() {
        let group: Vec<(_, _)> = records.by_ref().take(size).collect();
        let mut table = HeaderTable::default();
        let doc = ChunkDoc {
            entries: group
                .iter()
                .map(|(k, e)| (k.as_ref().to_string(), table.doc(e.borrow())))
                .collect(),
            headers: Vec::new(),
        };
        let doc = ChunkDoc {
            headers: table.list,
            ..doc
        };
        let member = gzip_json(&doc);
        let mut c = ChunkRef {
            last: group
                .last()
                .map(|(k, _)| k.as_ref().to_string())
                .unwrap_or_default(),
            at: bytes.len() as u64,
            len: member.len() as u64,
            live: 0,
            hash: String::new(),
            retired: None,
            kept: None,
            left: 0,
        };
        summarize(&mut c, group.iter().map(|(k, e)| (k.as_ref(), e.borrow())));
        bytes.extend_from_slice(&member);
        chunks.push(c);
    }
    let mut ranges = Vec::new();
    for extra in extras {
        ranges.push((bytes.len() as u64, extra.len() as u64));
        bytes.extend_from_slice(extra);
    }
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    NewBase {
        key: layout.base_key(&sha),
        bytes,
        chunks,
        extras: ranges,
    }
}

/// The root and every record of a manifest, from the bytes of its root and of its base: what
/// inspection tools (and the end-to-end tests) read.
pub fn materialize(
    layout: &Layout,
    root: &[u8],
    base: Option<&[u8]>,
) -> Result<(RootDoc, BTreeMap<String, Entry>), ManifestError> {
    let doc = crate::state::format::decode_root(root)?;
    crate::state::format::validate_root(&doc, layout)?;
    let mut view = View::from_root(layout.clone(), doc, None);
    if let Some(bytes) = base {
        view.absorb(0, bytes)?;
    }
    if !view.all_read() {
        return Err(ManifestError::Corrupt("the base is missing".into()));
    }
    let records = view
        .known()
        .into_iter()
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    Ok((view.root, records))
}

/// Every record of a whole base object (a planned state, read for recovery).
pub fn read_whole(
    layout: &Layout,
    chunks: &[ChunkRef],
    bytes: &[u8],
    interner: &mut Interner,
) -> Result<BTreeMap<String, Entry>, ManifestError> {
    let mut out = BTreeMap::new();
    for c in chunks {
        let lo = usize::try_from(c.at).unwrap_or(usize::MAX);
        let hi = lo.saturating_add(usize::try_from(c.len).unwrap_or(usize::MAX));
        let slice = bytes
            .get(lo..hi)
            .ok_or_else(|| ManifestError::Corrupt("a chunk past the end of the base".into()))?;
        let doc = decode_chunk(slice)?;
        validate_entries(layout, doc.entries.iter().map(|(k, e)| (k, Some(e))))?;
        for (k, d) in &doc.entries {
            out.insert(k.clone(), interner.entry(d, &doc.headers));
        }
    }
    Ok(out)
}

/// The chunk table of a base object, rebuilt from its members (a planned base carries none in
/// any root): members are split where each gzip member ends.
pub fn chunk_table_of(bytes: &[u8]) -> Result<Vec<ChunkRef>, ManifestError> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let mut decoder = flate2::bufread::GzDecoder::new(&bytes[at..]);
        let mut json = Vec::new();
        decoder
            .read_to_end(&mut json)
            .map_err(|e| ManifestError::Corrupt(format!("bad gzip data: {e}")))?;
        let rest = decoder.into_inner().len();
        let len = bytes.len() - at - rest;
        if len == 0 {
            break;
        }
        // Extra members (history parts) are not chunks: they decode as something else.
        if let Ok(doc) = serde_json::from_slice::<ChunkDoc>(&json) {
            if let Some((last, _)) = doc.entries.iter().next_back() {
                out.push(ChunkRef {
                    last: last.clone(),
                    at: at as u64,
                    len: len as u64,
                    live: 0,
                    hash: String::new(),
                    retired: None,
                    kept: None,
                    left: 0,
                });
            }
        }
        at += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::local::headers::default_headers;
    use crate::state::format::decode_root;

    fn layout() -> Layout {
        Layout::new("", None)
    }

    fn live(byte: u8, rel: &str) -> Entry {
        Entry::live([byte; 32], 1, Arc::new(default_headers(rel)))
    }

    fn records(n: usize) -> BTreeMap<String, Entry> {
        (0..n)
            .map(|i| {
                let k = format!("p/{i:05}.html");
                let e = live((i % 250) as u8, &k);
                (k, e)
            })
            .collect()
    }

    /// A view with a base of `n` records and nothing read.
    fn based(n: usize) -> (View, NewBase) {
        let recs = records(n);
        let list: Vec<(&String, &Entry)> = recs.iter().collect();
        let base = build_base(&layout(), list.len(), list.iter().copied(), &[]);
        let mut root = RootDoc::new("");
        root.chunks.clone_from(&base.chunks);
        root.base = Some(BaseRef {
            key: base.key.clone(),
            size: base.bytes.len() as u64,
            chunks_end: None,
        });
        let root = decode_root(&root.encode()).expect("round trip");
        (View::from_root(layout(), root, Some("\"e\"".into())), base)
    }

    fn wanted_of(recs: &BTreeMap<String, Entry>) -> Vec<(String, Sha, u64, Headers)> {
        recs.iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    e.sha256.unwrap_or_default(),
                    e.size,
                    (*e.headers).clone(),
                )
            })
            .collect()
    }

    fn as_wanted(w: &[(String, Sha, u64, Headers)]) -> Vec<Wanted<'_>> {
        w.iter()
            .map(|(k, s, z, h)| Wanted {
                key: k,
                sha256: s,
                size: *z,
                headers: h,
            })
            .collect()
    }

    #[test]
    fn an_unchanged_build_reads_nothing_and_one_change_reads_one_chunk() {
        let (view, _) = based(5000);
        assert_eq!(chunk_size(5000), 128);
        assert_eq!(view.root.chunks.len(), 40);
        let mut recs = records(5000);
        let w = wanted_of(&recs);
        assert!(view
            .to_read(&as_wanted(&w), &Housekeeping::default())
            .is_empty());
        recs.insert("p/02500.html".into(), live(99, "p/02500.html"));
        let w = wanted_of(&recs);
        let read = view.to_read(&as_wanted(&w), &Housekeeping::default());
        assert_eq!(read, [view.chunk_of("p/02500.html").expect("chunk")]);
        // A new key and a removed key each make their chunk differ.
        let mut recs = records(5000);
        recs.remove("p/00000.html");
        recs.insert("zz.html".into(), live(1, "zz.html"));
        let w = wanted_of(&recs);
        assert_eq!(
            view.to_read(&as_wanted(&w), &Housekeeping::default()),
            [0, 39]
        );
    }

    #[test]
    fn scattered_chunks_are_read_in_a_few_ranges_that_skip_the_gaps() {
        let (mut view, base) = based(40_000);
        let n = view.root.chunks.len();
        assert!(n > 50, "{n} chunks");
        let ranges = view.read_ranges(&[3, 4, 5]);
        assert_eq!(ranges.len(), 1, "neighbours share a read");
        // Four chunks with more than a gap's worth of bytes between each.
        let mut spread: Vec<usize> = Vec::new();
        for (i, c) in view.root.chunks.iter().enumerate() {
            let clear = spread.last().is_none_or(|j| {
                let p = &view.root.chunks[*j];
                c.at > p.at + p.len + 2 * READ_GAP
            });
            if clear && spread.len() < 4 {
                spread.push(i);
            }
        }
        assert_eq!(spread.len(), 4, "a base large enough for the test");
        let ranges = view.read_ranges(&spread);
        assert_eq!(
            ranges.len(),
            4,
            "far apart: one read each, at the same time"
        );
        let read: u64 = ranges.iter().map(|(s, e)| e - s).sum();
        assert!(read * 10 < base.bytes.len() as u64, "the gaps are not read");
        let many: Vec<usize> = (0..n).step_by(3).collect();
        let ranges = view.read_ranges(&many);
        assert!(ranges.len() <= MAX_READS);
        for (start, end) in &ranges {
            let bytes = &base.bytes[*start as usize..*end as usize];
            view.absorb(*start, bytes).expect("absorb");
        }
        assert!(
            many.iter().all(|i| view.read[*i]),
            "every chunk asked for is read"
        );
    }

    #[test]
    fn absorbing_a_span_and_writing_the_next_root() {
        let (mut view, base) = based(5000);
        let i = view.chunk_of("p/02500.html").expect("chunk");
        let (start, end) = view.span(&[i]).expect("span");
        let slice = &base.bytes[start as usize..end as usize];
        view.absorb(start, slice).expect("absorb");
        assert!(view.is_known("p/02500.html") && !view.is_known("p/00000.html"));
        assert_eq!(view.current("p/02500.html"), Some(&live(0, "p/02500.html")));

        let mut changes = Changes::new();
        changes.insert("p/02500.html".into(), Some(live(7, "p/02500.html")));
        changes.insert("p/02501.html".into(), None);
        assert!(!view.needs_rebase(&changes));
        let next = view.next_root(&changes);
        assert_eq!(next.delta.len(), 2);
        assert_eq!(next.chunks[i].live, view.root.chunks[i].live - 1);
        assert_ne!(next.chunks[i].hash, view.root.chunks[i].hash);
        for j in (0..40).filter(|j| *j != i) {
            assert_eq!(next.chunks[j], view.root.chunks[j]);
        }
        // The next deploy, with the same build, reads nothing.
        let mut recs = records(5000);
        recs.insert("p/02500.html".into(), live(7, "p/02500.html"));
        recs.remove("p/02501.html");
        let again = View::from_root(layout(), decode_root(&next.encode()).expect("rt"), None);
        let w = wanted_of(&recs);
        assert!(again
            .to_read(&as_wanted(&w), &Housekeeping::default())
            .is_empty());
    }

    #[test]
    fn a_large_change_rebases_and_the_result_reads_back() {
        let (mut view, base) = based(3000);
        view.absorb(0, &base.bytes).expect("all");
        assert!(view.all_read());
        let mut changes = Changes::new();
        for i in 0..(DELTA_MAX + 1) {
            let k = format!("p/{i:05}.html");
            changes.insert(k.clone(), Some(live(200, &k)));
        }
        assert!(view.needs_rebase(&changes));
        let extra = gzip_json(&"a history part");
        let (root, nb) = view.rebase(&changes, std::slice::from_ref(&extra));
        assert!(root.delta.is_empty());
        let len = extra.len() as u64;
        assert_eq!(nb.extras, [(nb.bytes.len() as u64 - len, len)]);
        let mut fresh = View::from_root(layout(), decode_root(&root.encode()).expect("rt"), None);
        fresh.absorb(0, &nb.bytes).expect("absorb");
        assert!(fresh.all_read());
        assert_eq!(
            fresh.current("p/00001.html"),
            Some(&live(200, "p/00001.html"))
        );
        assert_eq!(fresh.live_count(), 3000);
        assert_eq!(
            chunk_table_of(&nb.bytes).expect("table").len(),
            root.chunks.len()
        );
    }

    #[test]
    fn due_chunks_are_read() {
        let (view, _) = based(300);
        let mut root = view.root.clone();
        root.chunks[1].retired = Some((1000, 3));
        root.chunks[2].kept = Some(4);
        root.chunks[3].left = 2;
        root.left_by = Some("a".into());
        let view = View::from_root(layout(), root, None);
        let recs = records(300);
        let w = wanted_of(&recs);
        let w = as_wanted(&w);
        let hk = |now, oldest, left: &str| Housekeeping {
            now,
            keep_old_assets: 100,
            oldest_kept: oldest,
            left_by: left.into(),
            everything: false,
        };
        assert!(
            view.to_read(&w, &hk(1050, 3, "a")).is_empty(),
            "nothing due"
        );
        assert_eq!(
            view.to_read(&w, &hk(1100, 3, "a")),
            [1],
            "retired long enough"
        );
        assert!(
            view.to_read(&w, &hk(1100, 2, "a")).is_empty(),
            "a kept deploy still uses it"
        );
        assert_eq!(
            view.to_read(&w, &hk(0, 5, "a")),
            [2],
            "kept copy no longer needed"
        );
        assert_eq!(view.to_read(&w, &hk(0, 0, "b")), [3], "exclusions changed");
        let mut all = hk(0, 0, "a");
        all.everything = true;
        assert_eq!(view.to_read(&w, &all).len(), view.root.chunks.len());
    }

    #[test]
    fn doubt_marks_what_a_large_deploy_may_have_written() {
        let (mut view, base) = based(200);
        view.absorb(0, &base.bytes).expect("all");
        let mut planned = records(200);
        planned.insert("p/00001.html".into(), live(77, "p/00001.html"));
        planned.remove("p/00002.html");
        planned.insert("new.html".into(), live(5, "new.html"));
        view.doubt(&planned);
        assert_eq!(view.current("p/00001.html").and_then(|e| e.sha256), None);
        assert_eq!(view.current("p/00002.html").and_then(|e| e.sha256), None);
        assert_eq!(view.current("new.html").and_then(|e| e.sha256), None);
        assert!(view
            .current("p/00003.html")
            .and_then(|e| e.sha256)
            .is_some());
    }
}
