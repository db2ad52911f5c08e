//! The history of deploys kept in the root: an entry per deploy, each with what undoing it
//! restores (its reverse delta), inline while small or in a state object when large; bounded to
//! `keep-deploys`; and which state objects the root still refers to. Pure.

use std::collections::{BTreeMap, BTreeSet};

use crate::local::headers::Headers;
use crate::state::entry::Entry;
use crate::state::format::{
    gzip_json, EntryDoc, HeaderTable, HistoryDoc, Interner, Reverse, ReverseDoc, RootDoc,
};
use crate::state::view::Changes;

/// Records the inline reverse deltas of the whole history may hold together: past it, a
/// deploy's reverse delta goes to a state object, so the root stays small.
pub const INLINE_MAX: usize = 256;

/// The default `keep-deploys`.
pub const DEFAULT_KEEP: usize = 10;

/// Re-encodes the inline reverse deltas of `root.history`, which index `old_headers`, against
/// the root's current headers table (rebuilt whenever the delta changes).
pub fn reindex(root: &mut RootDoc, old_headers: &[Headers]) {
    let mut interner = Interner::default();
    let mut table = HeaderTable::default();
    for h in &root.headers {
        table.slot(h);
    }
    for entry in &mut root.history {
        if let Reverse::Inline(map) = &mut entry.reverse {
            for doc in map.values_mut().flatten() {
                let e = interner.entry(doc, old_headers);
                *doc = table.doc(&e);
            }
        }
    }
    root.headers = table.list;
}

/// The reverse delta of a deploy as stored: inline in the root when the history's inline
/// records stay within [`INLINE_MAX`], else a history part to write (its bytes), referenced by
/// the returned `Reverse` once the caller knows where the part lands.
pub enum Placed {
    Inline(Reverse),
    Part(Vec<u8>, u64),
}

pub fn place(root: &mut RootDoc, reverse: &Changes) -> Placed {
    let inline_now: usize = root
        .history
        .iter()
        .map(|h| match &h.reverse {
            Reverse::Inline(m) => m.len(),
            Reverse::Stored { .. } => 0,
        })
        .sum();
    if inline_now + reverse.len() <= INLINE_MAX {
        let mut table = HeaderTable::default();
        for h in &root.headers {
            table.slot(h);
        }
        let map: BTreeMap<String, Option<EntryDoc>> = reverse
            .iter()
            .map(|(k, e)| (k.clone(), e.as_ref().map(|e| table.doc(e))))
            .collect();
        root.headers = table.list;
        Placed::Inline(Reverse::Inline(map))
    } else {
        Placed::Part(part_bytes(reverse), reverse.len() as u64)
    }
}

/// A reverse delta as a gzip member of its own.
pub fn part_bytes(reverse: &Changes) -> Vec<u8> {
    let records: Vec<(&str, Option<&Entry>)> = reverse
        .iter()
        .map(|(k, e)| (k.as_str(), e.as_ref()))
        .collect();
    records_part_bytes(&records)
}

/// [`part_bytes`] of records given in key order, without a map of them.
pub fn records_part_bytes(reverse: &[(&str, Option<&Entry>)]) -> Vec<u8> {
    let mut table = HeaderTable::default();
    for e in reverse.iter().filter_map(|(_, e)| *e) {
        table.slot(&e.headers);
    }
    gzip_json(&PartRef {
        table: &table,
        reverse,
    })
}

/// A [`ReverseDoc`] serialized from the records themselves: a large deploy's reverse delta
/// holds one record per file, and is not copied into a document first.
struct PartRef<'a> {
    table: &'a HeaderTable,
    reverse: &'a [(&'a str, Option<&'a Entry>)],
}

impl serde::Serialize for PartRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Entries<'a>(&'a PartRef<'a>);
        impl serde::Serialize for Entries<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let PartRef { table, reverse } = self.0;
                s.collect_map(
                    reverse
                        .iter()
                        .map(|(k, e)| (k, e.map(|e| table.known_doc(e)))),
                )
            }
        }
        let mut doc = s.serialize_struct("ReverseDoc", 2)?;
        doc.serialize_field("h", &self.table.list)?;
        doc.serialize_field("e", &Entries(self))?;
        doc.end()
    }
}

/// The records of an inline reverse delta.
pub fn inline_records(map: &BTreeMap<String, Option<EntryDoc>>, headers: &[Headers]) -> Changes {
    let mut interner = Interner::default();
    map.iter()
        .map(|(k, d)| (k.clone(), d.as_ref().map(|d| interner.entry(d, headers))))
        .collect()
}

/// The records of a stored reverse delta.
pub fn part_records(doc: &ReverseDoc) -> Changes {
    let mut interner = Interner::default();
    doc.entries
        .iter()
        .map(|(k, d)| {
            (
                k.clone(),
                d.as_ref().map(|d| interner.entry(d, &doc.headers)),
            )
        })
        .collect()
}

/// Appends `entry` and drops the oldest entries beyond `keep`. Returns the state objects only
/// dropped entries referred to.
pub fn push(root: &mut RootDoc, entry: HistoryDoc, keep: usize) -> Vec<String> {
    let before = referenced(root);
    root.history.push(entry);
    if root.history.len() > keep {
        let excess = root.history.len() - keep;
        root.history.drain(..excess);
    }
    let after = referenced(root);
    before.difference(&after).cloned().collect()
}

/// Every state object the root refers to: its base, a planned base, stored reverse deltas.
pub fn referenced(root: &RootDoc) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(b) = &root.base {
        out.insert(b.key.clone());
    }
    if let Some(p) = root.in_progress.as_ref().and_then(|p| p.planned.as_ref()) {
        out.insert(p.key.clone());
    }
    for h in &root.history {
        if let Reverse::Stored { key, .. } = &h.reverse {
            out.insert(key.clone());
        }
    }
    out
}

/// The lowest deploy number the history holds once a deploy numbered `seq` is recorded with
/// `keep` entries kept: a rollback can go back to any of them.
pub fn oldest_kept(root: &RootDoc, seq: u64, keep: usize) -> u64 {
    if keep == 0 {
        return seq;
    }
    let mut seqs: Vec<u64> = root.history.iter().map(|h| h.seq).collect();
    seqs.push(seq);
    seqs.sort_unstable();
    let from = seqs.len().saturating_sub(keep);
    seqs[from]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::default_headers;
    use crate::state::entry::Entry;
    use crate::state::format::DeployInfo;
    use std::sync::Arc;

    fn entry(seq: u64, reverse: Reverse) -> HistoryDoc {
        HistoryDoc {
            seq,
            deploy: DeployInfo::default(),
            uploaded: 0,
            deleted: 0,
            retired: 0,
            invalidations: Vec::new(),
            reverse,
        }
    }

    fn changes(n: usize) -> Changes {
        (0..n)
            .map(|i| {
                let k = format!("p{i}.html");
                let e = Entry::live([1; 32], 1, Arc::new(default_headers(&k)));
                (k, Some(e))
            })
            .collect()
    }

    #[test]
    fn small_reverse_deltas_stay_inline_large_ones_go_to_a_part() {
        let mut root = RootDoc::new("");
        let Placed::Inline(r) = place(&mut root, &changes(3)) else {
            panic!("inline")
        };
        root.history.push(entry(1, r));
        assert_eq!(root.headers.len(), 1);
        let Placed::Part(bytes, n) = place(&mut root, &changes(INLINE_MAX)) else {
            panic!("part")
        };
        assert_eq!(n, INLINE_MAX as u64);
        let doc: ReverseDoc =
            serde_json::from_slice(&crate::state::format::gunzip(&bytes).expect("gzip"))
                .expect("json");
        assert_eq!(part_records(&doc), changes(INLINE_MAX));
    }

    #[test]
    fn a_part_reads_back_as_the_records_it_was_made_from() {
        let mut reverse = changes(5);
        reverse.insert("gone.css".into(), None);
        let mut odd = Entry::live([7; 32], 9, Arc::new(default_headers("x.js")));
        odd.life = crate::state::entry::Life::Retired { since: 5, seq: 2 };
        odd.version = Some("v1".into());
        reverse.insert("x.js".into(), Some(odd));
        let doc = crate::state::format::decode_reverse(&part_bytes(&reverse)).expect("decodes");
        assert_eq!(
            doc.headers.len(),
            2,
            "one table entry per distinct header set"
        );
        assert_eq!(part_records(&doc), reverse);
    }

    #[test]
    fn trimming_returns_what_only_dropped_entries_used() {
        let mut root = RootDoc::new("");
        root.history.push(entry(
            1,
            Reverse::Stored {
                key: "a".into(),
                at: 0,
                len: 1,
                keys: 1,
            },
        ));
        root.history
            .push(entry(2, Reverse::Inline(BTreeMap::new())));
        let dropped = push(&mut root, entry(3, Reverse::Inline(BTreeMap::new())), 2);
        assert_eq!(dropped, ["a"]);
        assert_eq!(
            root.history.iter().map(|h| h.seq).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(oldest_kept(&root, 4, 2), 3);
        assert_eq!(oldest_kept(&root, 4, 10), 2);
        assert_eq!(oldest_kept(&root, 4, 0), 4);
    }

    #[test]
    fn reindexing_keeps_records_equal() {
        let mut root = RootDoc::new("");
        let Placed::Inline(r) = place(&mut root, &changes(2)) else {
            panic!("inline")
        };
        root.history.push(entry(1, r));
        let old = root.headers.clone();
        root.headers = vec![default_headers("x.png")];
        reindex(&mut root, &old);
        let Reverse::Inline(map) = &root.history[0].reverse else {
            panic!("inline")
        };
        assert_eq!(inline_records(map, &root.headers), changes(2));
        assert_eq!(root.headers.len(), 2);
    }
}
