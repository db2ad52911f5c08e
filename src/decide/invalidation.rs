//! The CloudFront paths a deploy must invalidate on one distribution, collapsed to evict the least.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Bound;
use std::rc::Rc;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The path budget of one deploy on one distribution before paths are collapsed to wildcards.
/// CloudFront bills paths, not requests: the first 1,000 paths a month are free, then each path
/// costs, and a wildcard counts as one path however much it covers. 100 exact paths keep ten
/// deploys a month inside the free tier while covering any ordinary edit exactly (a page, its
/// aliases, a few assets). A deploy that changes more is a broad rebuild, where a few wildcards
/// over the changed folders evict little that was not changing anyway; a larger budget would buy
/// few avoided evictions at a real price on every deploy.
pub const DEFAULT_MAX_PATHS: usize = 100;
/// CloudFront's limit on file (non-wildcard) paths in progress per distribution.
pub const MAX_FILE_PATHS: usize = 3000;
/// CloudFront's limit on wildcard paths in progress per distribution.
pub const MAX_WILDCARDS: usize = 15;
/// The longest invalidation path CloudFront accepts.
pub const MAX_PATH_LEN: usize = 4000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distribution {
    pub id: String,
    /// "" or like "/site" (leading '/', no trailing '/').
    pub origin_path: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Uploaded for the first time; `immutable` = its Cache-Control says immutable
    /// (content-hashed name).
    New {
        immutable: bool,
    },
    Changed,
    Deleted,
}

/// Paths of this distribution's invalidations still in progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InFlight {
    pub files: usize,
    pub wildcards: usize,
}

/// `K` is any string: a deploy passes keys borrowed from its plan and its build list (a first
/// deploy of 100,000 files has 100,000 changes, which need not be copied).
pub struct Input<'a, K: AsRef<str> = String> {
    /// Full S3 keys (the deploy prefix included).
    pub changes: &'a [(K, Change)],
    /// Full S3 keys of objects that stay as they are (to count evictions).
    pub unchanged: &'a [K],
    /// Budget: collapse only when the exact paths exceed it.
    pub max_paths: usize,
    pub in_flight: InFlight,
    /// Unique per deploy run; feeds the CallerReference.
    pub deploy_id: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Batch {
    pub distribution: String,
    /// Final, sorted, deduplicated, encoded.
    pub paths: Vec<String>,
    /// How many of `paths` end in '*'.
    pub wildcards: usize,
    /// Unchanged objects (keys, not paths) that some path in `paths` covers.
    pub evicted_unchanged: usize,
    pub caller_reference: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidationError {
    /// Even `/*` does not fit next to the invalidations in flight: the caller waits and retries.
    #[error("CloudFront distribution {distribution} has {wildcards} wildcard and {files} file invalidation paths in progress; no room for more until some complete")]
    Saturated {
        distribution: String,
        files: usize,
        wildcards: usize,
    },
}

/// Room for one batch: what the budget and the invalidations in flight leave.
#[derive(Clone, Copy, Debug)]
struct Limits {
    wildcards: usize,
    files: usize,
    total: usize,
}

/// None when nothing needs invalidating (e.g. only new immutable files, or no key under the
/// origin path).
pub fn plan<K: AsRef<str>>(
    dist: &Distribution,
    input: &Input<K>,
) -> Result<Option<Batch>, InvalidationError> {
    let room = Limits {
        wildcards: MAX_WILDCARDS.saturating_sub(input.in_flight.wildcards),
        files: MAX_FILE_PATHS.saturating_sub(input.in_flight.files),
        total: input.max_paths.max(1),
    };
    let required = required_paths(dist, input.changes);
    if required.is_empty() {
        return Ok(None);
    }
    let changed: HashSet<&str> = input.changes.iter().map(|(k, _)| k.as_ref()).collect();
    let objects = unchanged_objects(dist, input.unchanged, &changed);
    let wildcards = required.iter().filter(|p| p.ends_with('*')).count();
    let files = required.len() - wildcards;
    let paths = if required.len() <= input.max_paths
        && files <= room.files
        && wildcards <= room.wildcards
    {
        required
    } else {
        match collapse(&required, &objects, room) {
            Some(paths) => paths,
            // `/*` covers every path of the distribution: it is the answer of last resort.
            None if room.wildcards >= 1 => vec!["/*".to_string()],
            None => {
                return Err(InvalidationError::Saturated {
                    distribution: dist.id.clone(),
                    files: input.in_flight.files,
                    wildcards: input.in_flight.wildcards,
                })
            }
        }
    };
    let evicted_unchanged = count_evicted(&paths, &objects);
    Ok(Some(Batch {
        distribution: dist.id.clone(),
        wildcards: paths.iter().filter(|p| p.ends_with('*')).count(),
        evicted_unchanged,
        caller_reference: caller_reference(&dist.id, input.deploy_id, &paths),
        paths,
    }))
}

/// The URL paths (encoded) that serve one S3 key on this distribution, aliases included; empty
/// if the key is outside the origin path.
pub fn url_paths(dist: &Distribution, key: &str) -> Vec<String> {
    let Some(path) = served_path(&dist.origin_path, key) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for raw in aliases(&path) {
        let encoded = encode_path(raw);
        // Aliases of a key with `~`, `*` or `?` before the file name collapse to one wildcard.
        if !out.contains(&encoded) {
            out.push(encoded);
        }
    }
    out
}

/// Encodes a raw URL path for an invalidation: percent-encodes non-ASCII bytes and RFC 1738
/// unsafe characters, nothing else (CloudFront ignores a path with anything else encoded). A path
/// with `*`, `~` or `?` cannot be named exactly and becomes the wildcard of what precedes the
/// first of them; a path longer than [`MAX_PATH_LEN`] becomes the wildcard of the longest prefix
/// that fits.
pub fn encode_path(raw: &str) -> String {
    // `*` would be a wildcard at the end and is refused elsewhere (its `%2A` is accepted but
    // invalidates nothing), raw `~` is refused and `%7E` reportedly does not invalidate, and `?`
    // would start a query string: a wildcard over the preceding part is the exact-most cover.
    let (body, wildcard) = match raw.find(['*', '~', '?']) {
        Some(i) => (&raw[..i], true),
        None => (raw, false),
    };
    let mut out = escape(body);
    if out.len() > MAX_PATH_LEN || (wildcard && out.len() + 1 > MAX_PATH_LEN) {
        // The encoded path is ASCII; a cut right after a '%' or one byte later would split an
        // escape, which CloudFront would read as a different (invalid) path.
        let mut cut = MAX_PATH_LEN - 1;
        let bytes = out.as_bytes();
        if bytes.get(cut - 1) == Some(&b'%') {
            cut -= 1;
        } else if bytes.get(cut - 2) == Some(&b'%') {
            cut -= 2;
        }
        out.truncate(cut);
        out.push('*');
    } else if wildcard {
        out.push('*');
    }
    out
}

/// Percent-encodes every non-ASCII byte, control character and RFC 1738 unsafe character except
/// the three that `encode_path` turns into wildcards (they stay raw, so that an unchanged
/// object's path still compares against wildcard prefixes exactly).
fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    escape_into(&mut out, raw);
    out
}

fn escape_into(out: &mut String, raw: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let needs_escape = |b: u8| {
        // Outside printable ASCII: control characters, DEL and every byte of a non-ASCII char.
        !(0x20..0x7f).contains(&b)
            || matches!(
                b,
                b' ' | b'"'
                    | b'<'
                    | b'>'
                    | b'#'
                    | b'%'
                    | b'{'
                    | b'}'
                    | b'|'
                    | b'\\'
                    | b'^'
                    | b'['
                    | b']'
                    | b'`'
            )
    };
    if !raw.bytes().any(needs_escape) {
        out.push_str(raw);
        return;
    }
    for b in raw.bytes() {
        if needs_escape(b) {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(b));
        }
    }
}

/// The raw URL path of a key on a distribution whose origin reads from `origin_path`, or None
/// when the distribution does not serve the key.
fn served_path(origin_path: &str, key: &str) -> Option<String> {
    Some(format!("/{}", below_origin(origin_path, key)?))
}

/// The part of a key below the origin path (origin "/site" serves the keys under "site/").
fn below_origin<'a>(origin_path: &str, key: &'a str) -> Option<&'a str> {
    let origin = origin_path.trim_matches('/');
    if origin.is_empty() {
        Some(key)
    } else {
        key.strip_prefix(origin)?.strip_prefix('/')
    }
}

/// The raw URL paths one object answers on: itself, and for an index document its folder with
/// and without the trailing slash (CloudFront caches each under its own key). Every alias is a
/// prefix of the first path, which the eviction count relies on.
fn aliases(path: &str) -> Vec<&str> {
    match path.strip_suffix("index.html") {
        Some(dir) if dir.ends_with('/') => {
            let mut out = vec![path, dir];
            if dir.len() > 1 {
                out.push(&dir[..dir.len() - 1]);
            }
            out
        }
        _ => vec![path],
    }
}

/// Rules 1–4: the deduplicated, sorted paths the changes need, without those that a required
/// wildcard already covers (sending them would only cost money).
fn required_paths<K: AsRef<str>>(dist: &Distribution, changes: &[(K, Change)]) -> Vec<String> {
    let mut set = BTreeSet::new();
    for (key, change) in changes {
        // A new immutable file was never requested under its content-hashed name: nothing cached.
        if *change != (Change::New { immutable: true }) {
            set.extend(url_paths(dist, key.as_ref()));
        }
    }
    let mut bodies: Vec<&str> = set.iter().filter_map(|p| p.strip_suffix('*')).collect();
    bodies.sort_unstable();
    let mut antichain: BTreeSet<&str> = BTreeSet::new();
    for body in bodies {
        if covering(&antichain, body).is_none() {
            antichain.insert(body);
        }
    }
    set.iter()
        .filter(|p| match p.strip_suffix('*') {
            Some(body) => antichain.contains(body),
            None => covering(&antichain, p).is_none(),
        })
        .cloned()
        .collect()
}

/// The wildcard body in an antichain (no body a prefix of another) that is a prefix of `text`.
/// Only the greatest body not above `text` can be: anything sorting between a prefix of `text`
/// and `text` has that prefix too, so it would not be in an antichain.
fn covering<'a>(antichain: &BTreeSet<&'a str>, text: &str) -> Option<&'a str> {
    antichain
        .range::<str, _>((Bound::Unbounded, Bound::Included(text)))
        .next_back()
        .copied()
        .filter(|body| text.starts_with(body))
}

/// An unchanged object as the eviction count sees it: its URL path, escaped with `*`, `~` and
/// `?` kept raw so that it compares against wildcard prefixes as CloudFront would. Its aliases
/// are prefixes of it (`aliases` works on the escaped form, since "index.html" needs no escape).
#[derive(Debug)]
struct Object {
    main: String,
}

/// The unchanged objects served by the distribution, sorted by path; keys that also appear among
/// the changes are changes, not unchanged objects.
fn unchanged_objects<K: AsRef<str>>(
    dist: &Distribution,
    keys: &[K],
    changed: &HashSet<&str>,
) -> Vec<Object> {
    let mut out: Vec<Object> = keys
        .iter()
        .map(AsRef::as_ref)
        .filter(|k| !changed.contains(k))
        .filter_map(|k| {
            let rest = below_origin(&dist.origin_path, k)?;
            let mut main = String::with_capacity(rest.len() + 1);
            main.push('/');
            escape_into(&mut main, rest);
            Some(Object { main })
        })
        .collect();
    out.sort_unstable_by(|a, b| a.main.cmp(&b.main));
    out.dedup_by(|a, b| a.main == b.main);
    out
}

/// The index range of the sorted `items` whose key starts with `prefix` (they are contiguous).
fn prefix_range<T>(items: &[T], key: impl Fn(&T) -> &str, prefix: &str) -> (usize, usize) {
    let lo = items.partition_point(|i| key(i) < prefix);
    let hi = items.partition_point(|i| {
        let k = key(i);
        k < prefix || k.starts_with(prefix)
    });
    (lo, hi.max(lo))
}

/// Unchanged objects that a path of the batch covers: a wildcard through any URL path of the
/// object, an exact path by being one of them.
fn count_evicted(paths: &[String], objects: &[Object]) -> usize {
    let mut hit = vec![false; objects.len()];
    let mut exact: HashSet<&str> = HashSet::new();
    for path in paths {
        match path.strip_suffix('*') {
            Some(body) => {
                let (lo, hi) = prefix_range(objects, |o| o.main.as_str(), body);
                hit[lo..hi].iter_mut().for_each(|h| *h = true);
            }
            None => {
                exact.insert(path.as_str());
            }
        }
    }
    objects
        .iter()
        .zip(&hit)
        .filter(|(o, &h)| h || aliases(&o.main).iter().any(|a| exact.contains(a)))
        .count()
}

fn caller_reference(distribution: &str, deploy_id: &str, paths: &[String]) -> String {
    let mut hash = Sha256::new();
    hash.update(distribution.as_bytes());
    hash.update(b"\n");
    hash.update(deploy_id.as_bytes());
    hash.update(b"\n");
    hash.update(paths.join("\n").as_bytes());
    let digest = hex::encode(hash.finalize());
    format!("cdn-deploy-{}", &digest[..32])
}

// ---------------------------------------------------------------------------------------------
// Collapsing to wildcards.
//
// Candidate wildcards are restricted to three forms: `P*` where P is a prefix of a required path
// ending at a '/' (a folder, `/blog/*`), `/d*` where the exact path `/d` is required and `/d/` is
// a candidate folder (the one way to cover a folder together with its slashless index alias),
// and the rule-4 wildcards that are themselves required. `/*` is kept out of the search and is
// used only when nothing else fits. Other prefixes (`/blog/p*`) are not considered: they rarely
// cover a meaningful group, and the restriction keeps the search small.
//
// All candidates and exact paths form a trie under the "is a string prefix of" order, and a
// wildcard covers exactly the trie below it, so an optimal answer is an antichain of wildcards
// plus the exact paths no wildcard covers. The search is a dynamic program over that trie,
// children before parents. A node's table maps (wildcards used, exact paths left) to the fewest
// evictions in its subtree, keeping only Pareto-optimal cells: a cell is dropped when another
// with no more wildcards, no more exact paths and no more evictions exists, since that one is at
// least as good under every limit and strictly better on the path-count tie-break. Exact paths
// left are capped by the budget, which keeps tables small (at most 16 × (budget + 1) cells).
// Evictions are counted per candidate from the sorted unchanged paths; objects that an exact
// required path already evicts (an alias shared with a changed key) are left out of those counts
// because every answer evicts them. Ties in evictions and path count go to the lexicographically
// smallest sorted path list: a cell keeps the smallest list (as a rope of ranks in the global
// sorted order, compared lazily), and because each trie subtree occupies a contiguous range of
// that order, joining children in order yields sorted lists and keeps that choice optimal.
// ---------------------------------------------------------------------------------------------

/// A list of output paths as ranks in their global sorted order, concatenated without copying.
/// Lists built from the same cells share their parts, which the comparison exploits.
#[derive(Debug)]
enum Rope {
    Nil,
    One(usize),
    /// Both halves and the total length.
    Cat(Rc<Rope>, Rc<Rope>, usize),
}

impl Rope {
    fn len(&self) -> usize {
        match self {
            Rope::Nil => 0,
            Rope::One(_) => 1,
            Rope::Cat(_, _, len) => *len,
        }
    }
}

fn cat(a: &Rc<Rope>, b: &Rc<Rope>) -> Rc<Rope> {
    match (a.as_ref(), b.as_ref()) {
        (Rope::Nil, _) => Rc::clone(b),
        (_, Rope::Nil) => Rc::clone(a),
        _ => Rc::new(Rope::Cat(Rc::clone(a), Rc::clone(b), a.len() + b.len())),
    }
}

/// The ranks of a rope in order.
fn ranks(rope: &Rope) -> Vec<usize> {
    let mut out = Vec::with_capacity(rope.len());
    let mut stack = vec![rope];
    while let Some(top) = stack.pop() {
        match top {
            Rope::Nil => {}
            Rope::One(rank) => out.push(*rank),
            Rope::Cat(a, b, _) => {
                stack.push(b);
                stack.push(a);
            }
        }
    }
    out
}

/// Lexicographic order of two ropes. Both are walked in step; a part that both have at the same
/// position is skipped whole, so lists that differ in a few places compare in a few steps.
fn cmp_ropes(a: &Rc<Rope>, b: &Rc<Rope>) -> Ordering {
    let mut left: Vec<&Rc<Rope>> = vec![a];
    let mut right: Vec<&Rc<Rope>> = vec![b];
    loop {
        let (Some(&p), Some(&q)) = (left.last(), right.last()) else {
            let rest = |side: &[&Rc<Rope>]| side.iter().map(|r| r.len()).sum::<usize>();
            return rest(&left).cmp(&rest(&right));
        };
        if Rc::ptr_eq(p, q) {
            left.pop();
            right.pop();
            continue;
        }
        // Split the longer part first, so that a shared part surfaces on both sides at once.
        let split_left = match (p.as_ref(), q.as_ref()) {
            (Rope::Nil, _) => {
                left.pop();
                continue;
            }
            (_, Rope::Nil) => {
                right.pop();
                continue;
            }
            (Rope::One(x), Rope::One(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                left.pop();
                right.pop();
                continue;
            }
            (Rope::Cat(..), Rope::One(_)) => true,
            (Rope::One(_), Rope::Cat(..)) => false,
            (Rope::Cat(..), Rope::Cat(..)) => p.len() >= q.len(),
        };
        let side = if split_left { &mut left } else { &mut right };
        if let Some(top) = side.pop() {
            if let Rope::Cat(x, y, _) = top.as_ref() {
                side.push(y);
                side.push(x);
            }
        }
    }
}

/// One Pareto-optimal way to handle a subtree.
#[derive(Clone, Debug)]
struct Cell {
    wildcards: usize,
    files: usize,
    evicted: usize,
    paths: Rc<Rope>,
}

/// Dense (wildcards, files) grid that keeps, per position, the fewest evictions and then the
/// smallest path list.
struct Grid {
    width: usize,
    cells: Vec<Option<Cell>>,
}

impl Grid {
    fn new(max_wildcards: usize, max_files: usize) -> Grid {
        let width = max_files + 1;
        Grid {
            width,
            cells: vec![None; (max_wildcards + 1) * width],
        }
    }

    fn offer(
        &mut self,
        wildcards: usize,
        files: usize,
        evicted: usize,
        paths: impl FnOnce() -> Rc<Rope>,
    ) {
        let Some(slot) = self.cells.get_mut(wildcards * self.width + files) else {
            return;
        };
        match slot {
            Some(cur) if evicted > cur.evicted => {}
            Some(cur) if evicted == cur.evicted => {
                let paths = paths();
                if cmp_ropes(&paths, &cur.paths) == Ordering::Less {
                    cur.paths = paths;
                }
            }
            _ => {
                *slot = Some(Cell {
                    wildcards,
                    files,
                    evicted,
                    paths: paths(),
                })
            }
        }
    }

    /// The cells that no other cell dominates, in (wildcards, files) order.
    fn into_pareto(self) -> Vec<Cell> {
        let width = self.width;
        // best[i] = fewest evictions over all cells at or below (w, f) componentwise.
        let mut best = vec![usize::MAX; self.cells.len()];
        let mut out = Vec::new();
        for (i, cell) in self.cells.into_iter().enumerate() {
            let (w, f) = (i / width, i % width);
            let below = if w > 0 { best[i - width] } else { usize::MAX };
            let left = if f > 0 { best[i - 1] } else { usize::MAX };
            let dominated_at = below.min(left);
            best[i] = dominated_at;
            if let Some(cell) = cell {
                if cell.evicted < dominated_at {
                    best[i] = cell.evicted;
                    out.push(cell);
                }
            }
        }
        out
    }
}

fn max_of(cells: &[Cell], f: impl Fn(&Cell) -> usize) -> usize {
    cells.iter().map(f).max().unwrap_or(0)
}

/// Every way to handle two sibling subtrees together, within the limits.
fn join(a: &[Cell], b: &[Cell], lim: Limits) -> Vec<Cell> {
    let max_w = lim
        .wildcards
        .min(max_of(a, |c| c.wildcards) + max_of(b, |c| c.wildcards));
    let max_f = lim
        .files
        .min(max_of(a, |c| c.files) + max_of(b, |c| c.files));
    let mut grid = Grid::new(max_w, max_f);
    for x in a {
        for y in b {
            let (w, f) = (x.wildcards + y.wildcards, x.files + y.files);
            if w > max_w {
                // `b` is in wildcard order: the rest needs even more.
                break;
            }
            if f > max_f || w + f > lim.total {
                continue;
            }
            grid.offer(w, f, x.evicted + y.evicted, || cat(&x.paths, &y.paths));
        }
    }
    grid.into_pareto()
}

/// Adds one exact path that stays exact to every cell.
fn append_exact(cells: Vec<Cell>, leaf: &Rc<Rope>, lim: Limits) -> Vec<Cell> {
    cells
        .into_iter()
        .filter(|c| c.files < lim.files && c.wildcards + c.files < lim.total)
        .map(|c| Cell {
            files: c.files + 1,
            paths: cat(&c.paths, leaf),
            ..c
        })
        .collect()
}

enum Kid {
    Node(usize),
    Exact(usize),
}

/// A path the answer can contain: its text, and whether a `*` follows it. Ordered as the path
/// itself would be, without making the string.
#[derive(Clone, Copy, Debug)]
struct Output<'a>(&'a str, bool);

impl PartialEq for Output<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Output<'_> {}

impl Output<'_> {
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.bytes().chain(self.1.then_some(b'*'))
    }
}

impl Ord for Output<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        let n = a.len().min(b.len());
        // The texts decide unless one is a prefix of the other; then the short tails do.
        a[..n]
            .cmp(&b[..n])
            .then_with(|| self.bytes().skip(n).cmp(other.bytes().skip(n)))
    }
}

impl PartialOrd for Output<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Output<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)?;
        if self.1 {
            f.write_str("*")?;
        }
        Ok(())
    }
}

struct Node<'a> {
    prefix: &'a str,
    required: bool,
    kids: Vec<Kid>,
}

/// The best set of paths covering `required` within `room`, or None when only `/*` would do.
fn collapse(required: &[String], objects: &[Object], room: Limits) -> Option<Vec<String>> {
    let lim = Limits {
        wildcards: room.wildcards.min(room.total),
        files: room.files.min(room.total),
        total: room.total,
    };
    let exact: Vec<&str> = required
        .iter()
        .filter(|p| !p.ends_with('*'))
        .map(String::as_str)
        .collect();
    let bodies: Vec<&str> = required
        .iter()
        .filter_map(|p| p.strip_suffix('*'))
        .collect();

    // Candidate prefixes (see the comment above), with whether they are required wildcards.
    let mut candidates: BTreeMap<&str, bool> = BTreeMap::new();
    candidates.insert("/", false);
    for path in exact.iter().chain(&bodies) {
        for (i, b) in path.bytes().enumerate() {
            if b == b'/' {
                candidates.entry(&path[..=i]).or_insert(false);
            }
        }
    }
    for body in &bodies {
        candidates.insert(body, true);
    }
    let folder_names: Vec<&str> = exact
        .iter()
        .filter(|p| !p.ends_with('/'))
        .filter(|p| candidates.contains_key(format!("{p}/").as_str()))
        .copied()
        .collect();
    for name in folder_names {
        candidates.entry(name).or_insert(false);
    }

    // Every string the answer can contain, sorted: a path list is a sequence of their ranks.
    // Borrowed, a wildcard as its body: a first deploy may need 100,000 exact paths.
    let mut outputs: Vec<Output> = candidates
        .keys()
        .map(|c| Output(c, true))
        .chain(exact.iter().map(|p| Output(p, false)))
        .collect();
    outputs.sort_unstable();
    outputs.dedup();
    let rank = |o: Output| outputs.binary_search(&o).ok();

    // The trie, nodes in sorted (pre-)order; a candidate sorts before an exact path with the
    // same text, so that the path falls under the wildcard that covers it.
    let mut items: Vec<(&str, bool)> = candidates
        .keys()
        .map(|c| (*c, false))
        .chain(exact.iter().map(|p| (*p, true)))
        .collect();
    items.sort_unstable();
    let mut nodes: Vec<Node> = Vec::with_capacity(candidates.len());
    let mut stack: Vec<usize> = Vec::new();
    for (text, is_exact) in items {
        while let Some(&top) = stack.last() {
            if text.starts_with(nodes[top].prefix) {
                break;
            }
            stack.pop();
        }
        let kid = if is_exact {
            Kid::Exact(rank(Output(text, false))?)
        } else {
            nodes.push(Node {
                prefix: text,
                required: candidates.get(text).copied().unwrap_or(false),
                kids: Vec::new(),
            });
            Kid::Node(nodes.len() - 1)
        };
        if let Some(&parent) = stack.last() {
            nodes[parent].kids.push(kid);
        }
        if !is_exact {
            stack.push(nodes.len() - 1);
        }
    }

    drop(candidates);

    // Unchanged objects whose eviction depends on the choice of wildcards.
    let free: Vec<&str> = {
        let claimed: HashSet<&str> = exact.iter().copied().collect();
        objects
            .iter()
            .filter(|o| !aliases(&o.main).iter().any(|a| claimed.contains(a)))
            .map(|o| o.main.as_str())
            .collect()
    };
    let evicted_by = |prefix: &str| {
        let (lo, hi) = prefix_range(&free, |m| m, prefix);
        hi - lo
    };

    // A site may change 100,000 paths in as many folders: every table, leaf and list of
    // children is made when needed and freed as soon as its parent has used it.
    let mut tables: Vec<Vec<Cell>> = vec![Vec::new(); nodes.len()];
    for v in (0..nodes.len()).rev() {
        let kids = std::mem::take(&mut nodes[v].kids);
        let node = &nodes[v];
        // A required wildcard covers the whole subtree: no combination of the children.
        let mut options: Vec<Cell> = if node.required {
            Vec::new()
        } else {
            vec![Cell {
                wildcards: 0,
                files: 0,
                evicted: 0,
                paths: Rc::new(Rope::Nil),
            }]
        };
        for kid in &kids {
            // Each child's table is taken even when it is of no more use, so that it is freed.
            let table = match kid {
                Kid::Node(c) => std::mem::take(&mut tables[*c]),
                Kid::Exact(_) => Vec::new(),
            };
            if options.is_empty() {
                continue;
            }
            options = match kid {
                Kid::Exact(r) => append_exact(options, &Rc::new(Rope::One(*r)), lim),
                Kid::Node(_) => join(&options, &table, lim),
            };
        }
        let root = v == 0;
        if (!root || node.required) && lim.wildcards >= 1 {
            if let Some(r) = rank(Output(node.prefix, true)) {
                options.push(Cell {
                    wildcards: 1,
                    files: 0,
                    evicted: evicted_by(node.prefix),
                    paths: Rc::new(Rope::One(r)),
                });
            }
        }
        let mut grid = Grid::new(
            max_of(&options, |c| c.wildcards),
            max_of(&options, |c| c.files),
        );
        for cell in options {
            let paths = cell.paths;
            grid.offer(cell.wildcards, cell.files, cell.evicted, || paths);
        }
        tables[v] = grid.into_pareto();
    }

    let best = tables.first()?.iter().min_by(|a, b| {
        a.evicted
            .cmp(&b.evicted)
            .then((a.wildcards + a.files).cmp(&(b.wildcards + b.files)))
            .then_with(|| cmp_ropes(&a.paths, &b.paths))
    })?;
    Some(
        ranks(&best.paths)
            .into_iter()
            .filter_map(|r| outputs.get(r).map(ToString::to_string))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn root() -> Distribution {
        Distribution {
            id: "E1ROOT".to_string(),
            origin_path: String::new(),
        }
    }

    fn site() -> Distribution {
        Distribution {
            id: "E2SITE".to_string(),
            origin_path: "/site".to_string(),
        }
    }

    fn keys(names: &[&str], change: Change) -> Vec<(String, Change)> {
        names.iter().map(|k| (k.to_string(), change)).collect()
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn input<'a>(
        changes: &'a [(String, Change)],
        unchanged: &'a [String],
        max_paths: usize,
    ) -> Input<'a> {
        Input {
            changes,
            unchanged,
            max_paths,
            in_flight: InFlight::default(),
            deploy_id: "deploy-1",
        }
    }

    fn batch(dist: &Distribution, input: &Input) -> Batch {
        match plan(dist, input) {
            Ok(Some(b)) => b,
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn outputs_sort_as_their_paths() {
        let texts = [
            "/", "/a", "/a/", "/a*", "/a/b", "/a)", "/a+", "/b", "/a/b/", "",
        ];
        let all: Vec<Output> = texts
            .iter()
            .flat_map(|t| [Output(t, false), Output(t, true)])
            .collect();
        for x in &all {
            for y in &all {
                assert_eq!(
                    x.cmp(y),
                    x.to_string().cmp(&y.to_string()),
                    "{x} against {y}"
                );
            }
        }
    }

    #[test]
    fn index_aliases() {
        let cases: &[(&str, &[&str])] = &[
            ("index.html", &["/index.html", "/"]),
            ("blog/index.html", &["/blog/index.html", "/blog/", "/blog"]),
            ("a/b/index.html", &["/a/b/index.html", "/a/b/", "/a/b"]),
            ("a/myindex.html", &["/a/myindex.html"]),
            ("a/index.htm", &["/a/index.htm"]),
            ("a/index.html/x", &["/a/index.html/x"]),
            ("a/b.css", &["/a/b.css"]),
        ];
        for (key, want) in cases {
            assert_eq!(url_paths(&root(), key), strings(want), "{key}");
        }
    }

    #[test]
    fn origin_path_is_stripped() {
        let cases: &[(&str, &[&str])] = &[
            ("site/index.html", &["/index.html", "/"]),
            ("site/a/b.css", &["/a/b.css"]),
            (
                "site/docs/index.html",
                &["/docs/index.html", "/docs/", "/docs"],
            ),
            ("other/a.css", &[]),
            ("siteX/a.css", &[]),
            ("site", &[]),
            ("a.css", &[]),
        ];
        for (key, want) in cases {
            assert_eq!(url_paths(&site(), key), strings(want), "{key}");
        }
        let nested = Distribution {
            id: "E3".to_string(),
            origin_path: "/a/b".to_string(),
        };
        assert_eq!(url_paths(&nested, "a/b/c.html"), ["/c.html"]);
        assert!(url_paths(&nested, "a/c.html").is_empty());
        // Out-of-scope keys are neither required nor counted as evicted.
        let changes = keys(&["site/a.html", "other/b.html"], Change::Changed);
        let unchanged = strings(&["other/c.html", "site/d.html"]);
        let b = batch(&site(), &input(&changes, &unchanged, 100));
        assert_eq!(b.paths, ["/a.html"]);
        assert_eq!(b.evicted_unchanged, 0);
        let outside = keys(&["other/a.html"], Change::Deleted);
        assert_eq!(plan(&site(), &input(&outside, &unchanged, 100)), Ok(None));
    }

    #[test]
    fn encoding() {
        let cases: &[(&str, &str)] = &[
            ("/a b.html", "/a%20b.html"),
            ("/c++/x+y.html", "/c++/x+y.html"),
            ("/100%.html", "/100%25.html"),
            ("/c#.html", "/c%23.html"),
            ("/search?q=1", "/search*"),
            ("/docs/~tmp.html", "/docs/*"),
            ("/~user/x.html", "/*"),
            ("/a/b*c.html", "/a/b*"),
            ("/a/*", "/a/*"),
            ("/it's.html", "/it's.html"),
            ("/café", "/caf%C3%A9"),
            ("/cafe\u{301}", "/cafe%CC%81"),
            ("/a;b=c,d@e:f-g.h_i!$&()", "/a;b=c,d@e:f-g.h_i!$&()"),
            ("/\"<>{}|\\^[]`", "/%22%3C%3E%7B%7D%7C%5C%5E%5B%5D%60"),
            ("/tab\there\n\u{7f}", "/tab%09here%0A%7F"),
            ("/日本", "/%E6%97%A5%E6%9C%AC"),
        ];
        for (raw, want) in cases {
            assert_eq!(encode_path(raw), *want, "{raw:?}");
        }
        // NFC and NFD spellings are different keys and stay different paths.
        assert_eq!(url_paths(&root(), "café.html"), ["/caf%C3%A9.html"]);
        assert_eq!(url_paths(&root(), "cafe\u{301}.html"), ["/cafe%CC%81.html"]);
        // All aliases of a key with `~` in its folder name collapse into one wildcard.
        assert_eq!(url_paths(&root(), "a~b/index.html"), ["/a*"]);
    }

    fn escapes_are_whole(path: &str) -> bool {
        let b = path.as_bytes();
        b.iter().enumerate().all(|(i, &c)| {
            c != b'%'
                || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        })
    }

    #[test]
    fn long_keys_become_wildcards_that_fit() {
        let long = "a".repeat(5000);
        let paths = url_paths(&root(), &long);
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0].len(), MAX_PATH_LEN);
        assert!(paths[0].starts_with("/aaa") && paths[0].ends_with("a*"));
        for pad in 0..3 {
            let key = format!("{}{}", "x".repeat(pad), "é".repeat(2500));
            let p = &url_paths(&root(), &key)[0];
            assert!(
                p.len() <= MAX_PATH_LEN && p.len() >= MAX_PATH_LEN - 3,
                "{pad}"
            );
            assert!(p.ends_with("%A9*") || p.ends_with("%C3*"), "{pad}");
            assert!(escapes_are_whole(p.trim_end_matches('*')), "{pad}");
            assert_eq!(p.matches('*').count(), 1);
        }
        // Exactly at the limit stays exact; one more byte does not.
        let at = format!("/{}", "b".repeat(MAX_PATH_LEN - 1));
        assert_eq!(encode_path(&at), at);
        let over = format!("/{}", "b".repeat(MAX_PATH_LEN));
        assert_eq!(encode_path(&over).len(), MAX_PATH_LEN);
        assert!(encode_path(&over).ends_with('*'));
    }

    #[test]
    fn which_changes_need_paths() {
        let only_new_immutable = keys(
            &["assets/app.3f2a9c1b.js", "assets/index-D4nq1Xk_.css"],
            Change::New { immutable: true },
        );
        assert_eq!(
            plan(&root(), &input(&only_new_immutable, &[], 100)),
            Ok(None)
        );

        let mut changes = only_new_immutable.clone();
        changes.push(("about.html".to_string(), Change::New { immutable: false }));
        changes.push(("index.html".to_string(), Change::Changed));
        changes.push(("old.html".to_string(), Change::Deleted));
        let b = batch(&root(), &input(&changes, &[], 100));
        assert_eq!(b.paths, ["/", "/about.html", "/index.html", "/old.html"]);
        assert_eq!(b.wildcards, 0);
        assert_eq!(b.evicted_unchanged, 0);
        assert_eq!(b.distribution, "E1ROOT");
    }

    #[test]
    fn required_wildcards_count_evictions_and_absorb_what_they_cover() {
        let changes = keys(
            &["docs/a~b.html", "docs/ab.html", "x.html"],
            Change::Changed,
        );
        let unchanged = strings(&["docs/a.html", "docs/b.html", "y.html"]);
        let b = batch(&root(), &input(&changes, &unchanged, 100));
        assert_eq!(b.paths, ["/docs/a*", "/x.html"]);
        assert_eq!(b.wildcards, 1);
        assert_eq!(b.evicted_unchanged, 1);
    }

    fn numbered(prefix: &str, n: usize, ext: &str) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}{ext}")).collect()
    }

    fn changed(names: &[String]) -> Vec<(String, Change)> {
        names.iter().map(|k| (k.clone(), Change::Changed)).collect()
    }

    #[test]
    fn one_changed_folder_collapses_to_its_wildcard() {
        let changes = changed(&numbered("blog/p", 40, ".html"));
        let unchanged = numbered("about/u", 10, ".html");
        let b = batch(&root(), &input(&changes, &unchanged, 10));
        assert_eq!(b.paths, ["/blog/*"]);
        assert_eq!((b.wildcards, b.evicted_unchanged), (1, 0));

        // With the folder's index page changed too, `/blog*` also covers the `/blog` alias.
        let mut with_index = changes.clone();
        with_index.push(("blog/index.html".to_string(), Change::Changed));
        let b = batch(&root(), &input(&with_index, &unchanged, 10));
        assert_eq!(b.paths, ["/blog*"]);
        assert_eq!(b.evicted_unchanged, 0);

        // ... unless `/blog*` would evict a neighbour: then the folder and the alias apart.
        let mut unchanged = unchanged;
        unchanged.push("blogroll.html".to_string());
        let b = batch(&root(), &input(&with_index, &unchanged, 10));
        assert_eq!(b.paths, ["/blog", "/blog/*"]);
        assert_eq!(b.evicted_unchanged, 0);
    }

    #[test]
    fn picks_the_folder_whose_wildcard_evicts_fewer() {
        let mut names = numbered("a/p", 8, ".html");
        names.extend(numbered("b/p", 8, ".html"));
        let changes = changed(&names);
        let mut unchanged = numbered("a/u", 5, ".html");
        unchanged.extend(numbered("b/u", 2, ".html"));
        unchanged.extend(numbered("c/u", 20, ".html"));
        let b = batch(&root(), &input(&changes, &unchanged, 10));
        let mut want = numbered("/a/p", 8, ".html");
        want.push("/b/*".to_string());
        assert_eq!(b.paths, want);
        assert_eq!(b.evicted_unchanged, 2);

        // A tighter budget needs both wildcards; a looser one none.
        let b = batch(&root(), &input(&changes, &unchanged, 5));
        assert_eq!(b.paths, ["/a/*", "/b/*"]);
        assert_eq!(b.evicted_unchanged, 7);
        let b = batch(&root(), &input(&changes, &unchanged, 16));
        assert_eq!((b.paths.len(), b.evicted_unchanged), (16, 0));
    }

    #[test]
    fn deeper_folders_beat_their_parent_when_it_evicts_more() {
        let mut names = numbered("docs/v1/p", 30, ".html");
        names.extend(numbered("docs/v2/p", 30, ".html"));
        let changes = changed(&names);
        let unchanged = numbered("docs/v3/u", 50, ".html");
        let b = batch(&root(), &input(&changes, &unchanged, 10));
        assert_eq!(b.paths, ["/docs/v1/*", "/docs/v2/*"]);
        assert_eq!(b.evicted_unchanged, 0);
        // With nothing to protect, one wildcard beats two.
        let b = batch(&root(), &input(&changes, &[], 10));
        assert_eq!(b.paths, ["/docs/*"]);
    }

    #[test]
    fn in_flight_limits() {
        let small = keys(&["a.html", "b/c.html"], Change::Changed);
        let many = changed(&numbered("blog/p", 40, ".html"));
        let with = |changes: &[(String, Change)], max: usize, files: usize, wildcards: usize| {
            plan(
                &root(),
                &Input {
                    changes,
                    unchanged: &[],
                    max_paths: max,
                    in_flight: InFlight { files, wildcards },
                    deploy_id: "d",
                },
            )
        };
        // No wildcard room, but exact paths fit.
        let b = with(&small, 100, 0, 15).ok().flatten();
        assert_eq!(b.map(|b| b.paths), Some(strings(&["/a.html", "/b/c.html"])));
        // No wildcard room and too many exact paths: wait.
        let err = with(&many, 10, 0, 15);
        assert_eq!(
            err,
            Err(InvalidationError::Saturated {
                distribution: "E1ROOT".to_string(),
                files: 0,
                wildcards: 15
            })
        );
        let message = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("E1ROOT") && message.contains("15 wildcard"),
            "{message}"
        );
        // No file room: a root file can only be covered by `/*`.
        let b = with(&small, 100, 3000, 0).ok().flatten();
        assert_eq!(b.map(|b| b.paths), Some(strings(&["/*"])));
        // Room for one file: the rest goes under the folder wildcard that evicts nothing.
        let three = keys(
            &["blog/a.html", "blog/b.html", "docs/c.html"],
            Change::Changed,
        );
        let docs = strings(&["docs/v.html"]);
        let one_file_left = Input {
            in_flight: InFlight {
                files: 2999,
                wildcards: 0,
            },
            ..input(&three, &docs, 100)
        };
        let b = plan(&root(), &one_file_left).ok().flatten();
        assert_eq!(
            b.map(|b| b.paths),
            Some(strings(&["/blog/*", "/docs/c.html"]))
        );
        // One wildcard left and two folders to collapse: `/*` is the last resort.
        let mut two = numbered("a/p", 20, ".html");
        two.extend(numbered("b/p", 20, ".html"));
        let b = with(&changed(&two), 10, 0, 14).ok().flatten();
        assert_eq!(b.map(|b| b.paths), Some(strings(&["/*"])));
        // A zero budget still allows one path.
        let b = with(&many, 0, 0, 0).ok().flatten();
        assert_eq!(b.map(|b| b.paths), Some(strings(&["/blog/*"])));
    }

    #[test]
    fn caller_reference_is_deterministic_per_deploy() {
        let changes = keys(&["a.html", "b.html"], Change::Changed);
        let first = batch(&root(), &input(&changes, &[], 100));
        let again = batch(&root(), &input(&changes, &[], 100));
        assert_eq!(first.caller_reference, again.caller_reference);
        let r = &first.caller_reference;
        assert!(r.starts_with("cdn-deploy-") && r.len() == "cdn-deploy-".len() + 32);
        assert!(r["cdn-deploy-".len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit()));
        let other_deploy = Input {
            deploy_id: "deploy-2",
            ..input(&changes, &[], 100)
        };
        assert_ne!(batch(&root(), &other_deploy).caller_reference, *r);
        let other_dist = Distribution {
            id: "E9".to_string(),
            origin_path: String::new(),
        };
        assert_ne!(
            batch(&other_dist, &input(&changes, &[], 100)).caller_reference,
            *r
        );
        let fewer = keys(&["a.html"], Change::Changed);
        assert_ne!(
            batch(&root(), &input(&fewer, &[], 100)).caller_reference,
            *r
        );
    }

    /// A small deterministic generator for the large fixtures.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    fn covers(paths: &[String], required: &str) -> bool {
        let target = required.strip_suffix('*').unwrap_or(required);
        paths.iter().any(|p| match p.strip_suffix('*') {
            Some(body) => target.starts_with(body),
            None => p == required,
        })
    }

    #[test]
    fn large_deploy_covers_every_path_within_limits() {
        // 500 folders in 20 sections; 5,000 changed files with a skew towards a few sections,
        // 50,000 unchanged files spread evenly.
        let mut rng = Lcg(7);
        let folder = |i: usize| format!("s{}/d{}/", i / 25, i % 25);
        let mut names: Vec<String> = (0..500).map(|i| format!("{}p0.html", folder(i))).collect();
        for j in 500..5000 {
            let i = rng.next(500).min(rng.next(500));
            names.push(format!("{}p{j}.html", folder(i)));
        }
        let changes = changed(&names);
        let unchanged: Vec<String> = (0..50_000)
            .map(|j| format!("{}u{j}.html", folder(rng.next(500))))
            .collect();
        for max_paths in [100, 1000, 3000] {
            let b = batch(&root(), &input(&changes, &unchanged, max_paths));
            assert!(b.paths.len() <= max_paths && b.wildcards <= MAX_WILDCARDS);
            for (key, _) in &changes {
                for p in url_paths(&root(), key) {
                    assert!(covers(&b.paths, &p), "{p} not covered");
                }
            }
        }
    }

    /// s3deploy's rule, modelled on its description: an index page is invalidated as its folder
    /// (`/d/`); if more than 8 paths remain they are collapsed into folder wildcards one folder
    /// level at a time, deepest first, until at most 8 remain; failing that, `/*`.
    fn s3deploy_rule(dist: &Distribution, changes: &[(String, Change)]) -> Vec<String> {
        const THRESHOLD: usize = 8;
        let mut paths: BTreeSet<String> = changes
            .iter()
            .filter_map(|(k, _)| served_path(&dist.origin_path, k))
            .map(|p| match p.strip_suffix("index.html") {
                Some(dir) if dir.ends_with('/') => dir.to_string(),
                _ => p,
            })
            .map(|p| encode_path(&p))
            .collect();
        if paths.len() <= THRESHOLD {
            return paths.into_iter().collect();
        }
        let depth = |p: &str| p.matches('/').count() - 1;
        let deepest = paths.iter().map(|p| depth(p)).max().unwrap_or(0);
        for level in (1..=deepest).rev() {
            paths = paths
                .into_iter()
                .map(|p| {
                    if depth(&p) < level {
                        return p;
                    }
                    let cut = p
                        .match_indices('/')
                        .nth(level)
                        .map_or(p.len(), |(i, _)| i + 1);
                    format!("{}*", &p[..cut])
                })
                .collect();
            if paths.len() <= THRESHOLD {
                return paths.into_iter().collect();
            }
        }
        vec!["/*".to_string()]
    }

    fn scenario_figures(
        name: &str,
        changes: &[(String, Change)],
        unchanged: &[String],
    ) -> (Batch, usize, usize) {
        let dist = root();
        let ours = batch(&dist, &input(changes, unchanged, 100));
        let changed_keys: HashSet<&str> = changes.iter().map(|(k, _)| k.as_str()).collect();
        let objects = unchanged_objects(&dist, unchanged, &changed_keys);
        let theirs = s3deploy_rule(&dist, changes);
        let their_evicted = count_evicted(&theirs, &objects);
        let required = required_paths(&dist, changes);
        let their_stale = required.iter().filter(|p| !covers(&theirs, p)).count();
        let sample = |paths: &[String]| {
            if paths.len() <= 6 {
                format!("{paths:?}")
            } else {
                format!(
                    "{} paths, e.g. {:?} … {:?}",
                    paths.len(),
                    &paths[..3],
                    &paths[paths.len() - 2..]
                )
            }
        };
        println!("{name}: {} required paths", required.len());
        println!(
            "  cdn-deploy: {} ({} wildcards), {} unchanged evicted",
            sample(&ours.paths),
            ours.wildcards,
            ours.evicted_unchanged
        );
        if ours.paths.len() > 6 && ours.wildcards > 0 {
            let wild: Vec<&String> = ours.paths.iter().filter(|p| p.ends_with('*')).collect();
            println!("              wildcards {wild:?}");
        }
        println!(
            "  s3deploy:   {}, {} unchanged evicted, {} required paths left stale",
            sample(&theirs),
            their_evicted,
            their_stale
        );
        for p in &required {
            assert!(covers(&ours.paths, p), "{p}");
        }
        assert!(ours.evicted_unchanged <= their_evicted);
        (ours, their_evicted, their_stale)
    }

    #[test]
    fn compare_with_s3deploy_rule() {
        // (0) The fixture edit, fixtures/site -> fixtures/site-v2.
        let mut changes = changed(&[
            "about/index.html".to_string(),
            "blog/café-au-lait/index.html".into(),
            "blog/first-post/index.html".into(),
            "blog/index.html".into(),
            "index.html".into(),
        ]);
        changes.push((
            "blog/second-post/index.html".into(),
            Change::New { immutable: false },
        ));
        for k in ["assets/index-Cq2Lm9Xz.js", "assets/index-Cq2Lm9Xz.js.map"] {
            changes.push((k.into(), Change::New { immutable: true }));
        }
        for k in [
            "assets/index-BX7a9_kq.js",
            "assets/index-BX7a9_kq.js.map",
            "img/hero.jpg",
        ] {
            changes.push((k.into(), Change::Deleted));
        }
        let unchanged: Vec<String> = [
            "404.html",
            ".well-known/security.txt",
            "assets/index-D4nq1Xk3.css",
            "assets/vendor.3f2a9c1b.js",
            "docs/getting started.html",
            "favicon.ico",
            "img/logo.png",
            "robots.txt",
            "site.webmanifest",
            "sitemap.xml",
        ]
        .iter()
        .map(|k| k.to_string())
        .collect();
        let (ours, _, _) = scenario_figures("(0) fixture edit", &changes, &unchanged);
        assert_eq!((ours.paths.len(), ours.evicted_unchanged), (20, 0));

        // (1) One changed page, 200 unchanged pages elsewhere.
        let changes = keys(&["blog/a/index.html"], Change::Changed);
        let unchanged: Vec<String> = (0..200).map(|i| format!("blog/p{i}/index.html")).collect();
        let (ours, evicted, stale) = scenario_figures("(1) one page", &changes, &unchanged);
        assert_eq!(ours.paths, ["/blog/a", "/blog/a/", "/blog/a/index.html"]);
        assert_eq!((ours.evicted_unchanged, evicted, stale), (0, 0, 2));

        // (2) 40 changed files in docs/, 10 unchanged beside them, 300 elsewhere.
        let changes = changed(&numbered("docs/p", 40, ".html"));
        let mut unchanged = numbered("docs/u", 10, ".html");
        unchanged.extend(numbered("blog/u", 150, ".html"));
        unchanged.extend(numbered("assets/u", 150, ".css"));
        let (ours, evicted, _) = scenario_figures("(2) one folder", &changes, &unchanged);
        assert_eq!(
            (ours.paths.len(), ours.evicted_unchanged, evicted),
            (40, 0, 10)
        );

        // (3) 500 changed files over 60 folders (skewed towards some), 2,000 unchanged over the
        // same 60 and 40 more folders.
        let mut rng = Lcg(42);
        let folder = |i: usize| {
            if i < 60 {
                format!("sec{}/f{i}/", i % 6)
            } else if i < 80 {
                format!("sec{}/g{i}/", i % 6)
            } else {
                format!("misc{i}/")
            }
        };
        let mut names: Vec<String> = (0..60).map(|i| format!("{}p{i}.html", folder(i))).collect();
        for j in 60..500 {
            let i = rng.next(60).min(rng.next(60));
            names.push(format!("{}p{j}.html", folder(i)));
        }
        let changes = changed(&names);
        let unchanged: Vec<String> = (0..2000)
            .map(|j| format!("{}u{j}.html", folder(rng.next(100))))
            .collect();
        let (ours, evicted, _) = scenario_figures("(3) 60 folders", &changes, &unchanged);
        assert!(ours.paths.len() <= 100);
        assert!(ours.evicted_unchanged < evicted);
    }

    // ---- property tests ------------------------------------------------------------------

    const FOLDERS: [&str; 7] = ["", "a/", "ab/", "a/a/", "a/ab/", "ab/a/", "ab/ab/"];
    /// "a" makes keys like `a` beside `a/index.html`: the file and the folder's alias share `/a`.
    const FILES: [&str; 5] = ["index.html", "x.html", "y z.css", "t~1.js", "a"];

    #[derive(Clone, Debug)]
    struct Case {
        dist: Distribution,
        changes: Vec<(String, Change)>,
        unchanged: Vec<String>,
        max_paths: usize,
        in_flight: InFlight,
        seed: u64,
    }

    impl Case {
        fn input(&self) -> Input<'_> {
            Input {
                changes: &self.changes,
                unchanged: &self.unchanged,
                max_paths: self.max_paths,
                in_flight: self.in_flight,
                deploy_id: "prop",
            }
        }
    }

    fn arb_case() -> impl Strategy<Value = Case> {
        (
            proptest::collection::vec(0u8..10, FOLDERS.len() * FILES.len()),
            1usize..8,
            prop_oneof![Just(0usize), 2995usize..=3000],
            prop_oneof![Just(0usize), 0usize..=15],
            any::<bool>(),
            any::<u64>(),
        )
            .prop_map(|(states, max_paths, files, wildcards, nested, seed)| {
                let mut changes = Vec::new();
                let mut unchanged = Vec::new();
                let all = FOLDERS
                    .iter()
                    .flat_map(|d| FILES.iter().map(move |f| format!("{d}{f}")));
                for (key, state) in all.zip(states) {
                    match state {
                        4 | 5 => unchanged.push(key),
                        6 => changes.push((key, Change::New { immutable: true })),
                        7 => changes.push((key, Change::New { immutable: false })),
                        8 => changes.push((key, Change::Changed)),
                        9 => changes.push((key, Change::Deleted)),
                        _ => {}
                    }
                }
                Case {
                    dist: Distribution {
                        id: "EPROP".to_string(),
                        origin_path: if nested {
                            "/a".to_string()
                        } else {
                            String::new()
                        },
                    },
                    changes,
                    unchanged,
                    max_paths,
                    in_flight: InFlight { files, wildcards },
                    seed,
                }
            })
    }

    fn shuffle<T>(items: &mut [T], seed: u64) {
        let mut rng = Lcg(seed);
        for i in (1..items.len()).rev() {
            items.swap(i, rng.next(i + 1));
        }
    }

    enum Expect {
        Nothing,
        Paths(Vec<String>, usize),
        Saturated,
        TooBig,
    }

    /// The rules of the brief, checked by trying every subset of candidate wildcards.
    fn brute_force(case: &Case) -> Expect {
        let dist = &case.dist;
        let mut required: BTreeSet<String> = BTreeSet::new();
        for (key, change) in &case.changes {
            if *change != (Change::New { immutable: true }) {
                required.extend(url_paths(dist, key));
            }
        }
        let bodies: Vec<String> = required
            .iter()
            .filter_map(|p| p.strip_suffix('*'))
            .map(String::from)
            .collect();
        let covered_by = |t: &str, own: Option<&str>| {
            bodies
                .iter()
                .any(|b| Some(b.as_str()) != own && t.starts_with(b.as_str()))
        };
        let wild: Vec<String> = bodies
            .iter()
            .filter(|b| !covered_by(b, Some(b.as_str())))
            .cloned()
            .collect();
        let exact: Vec<String> = required
            .iter()
            .filter(|p| !p.ends_with('*') && !covered_by(p, None))
            .cloned()
            .collect();
        if exact.is_empty() && wild.is_empty() {
            return Expect::Nothing;
        }
        let changed: HashSet<&str> = case.changes.iter().map(|(k, _)| k.as_str()).collect();
        let objects: Vec<Vec<String>> = case
            .unchanged
            .iter()
            .filter(|k| !changed.contains(k.as_str()))
            .filter_map(|k| served_path(&dist.origin_path, k))
            .map(|p| aliases(&p).into_iter().map(escape).collect())
            .collect();
        let room_w = MAX_WILDCARDS.saturating_sub(case.in_flight.wildcards);
        let room_f = MAX_FILE_PATHS.saturating_sub(case.in_flight.files);
        let budget = case.max_paths.max(1);
        let evicts = |paths: &[String]| {
            objects
                .iter()
                .filter(|aliases| {
                    aliases
                        .iter()
                        .any(|a| covers(paths, a) || paths.contains(a))
                })
                .count()
        };
        if exact.len() + wild.len() <= case.max_paths
            && exact.len() <= room_f
            && wild.len() <= room_w
        {
            let mut all: Vec<String> = exact.clone();
            all.extend(wild.iter().map(|b| format!("{b}*")));
            all.sort();
            let ev = evicts(&all);
            return Expect::Paths(all, ev);
        }
        let mut folders: BTreeSet<String> = BTreeSet::new();
        for p in exact.iter().chain(&wild) {
            for (i, _) in p.match_indices('/').filter(|(i, _)| *i > 0) {
                folders.insert(p[..=i].to_string());
            }
        }
        let mut candidates: BTreeSet<String> = folders.clone();
        candidates.extend(wild.iter().cloned());
        for p in &exact {
            if folders.contains(&format!("{p}/")) {
                candidates.insert(p.clone());
            }
        }
        let candidates: Vec<String> = candidates.into_iter().collect();
        if candidates.len() > 14 {
            return Expect::TooBig;
        }
        let bit = |cond: bool, i: usize| if cond { 1u128 << i } else { 0 };
        let cover: Vec<u128> = candidates
            .iter()
            .map(|c| {
                exact
                    .iter()
                    .enumerate()
                    .map(|(i, p)| bit(p.starts_with(c.as_str()), i))
                    .sum()
            })
            .collect();
        let cover_wild: Vec<u128> = candidates
            .iter()
            .map(|c| {
                wild.iter()
                    .enumerate()
                    .map(|(i, q)| bit(q.starts_with(c.as_str()), i))
                    .sum()
            })
            .collect();
        let all_exact: u128 = (0..exact.len()).map(|i| 1u128 << i).sum();
        let all_wild: u128 = (0..wild.len()).map(|i| 1u128 << i).sum();
        let mut best: Option<(usize, usize, Vec<String>)> = None;
        for mask in 0u32..(1 << candidates.len()) {
            let chosen: Vec<usize> = (0..candidates.len())
                .filter(|i| mask >> i & 1 == 1)
                .collect();
            if chosen.len() > room_w {
                continue;
            }
            let (mut ce, mut cw) = (0u128, 0u128);
            for &i in &chosen {
                ce |= cover[i];
                cw |= cover_wild[i];
            }
            if cw != all_wild {
                continue;
            }
            let files = (all_exact & !ce).count_ones() as usize;
            let total = chosen.len() + files;
            if total > budget || files > room_f {
                continue;
            }
            let mut paths: Vec<String> = chosen
                .iter()
                .map(|&i| format!("{}*", candidates[i]))
                .collect();
            paths.extend(
                exact
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| ce >> i & 1 == 0)
                    .map(|(_, p)| p.clone()),
            );
            paths.sort();
            let ev = evicts(&paths);
            let key = (ev, total, paths);
            if best.as_ref().is_none_or(|b| key < *b) {
                best = Some(key);
            }
        }
        match best {
            Some((ev, _, paths)) => Expect::Paths(paths, ev),
            None if room_w >= 1 => {
                let all = vec!["/*".to_string()];
                let ev = evicts(&all);
                Expect::Paths(all, ev)
            }
            None => Expect::Saturated,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn batches_obey_the_rules(case in arb_case()) {
            let result = plan(&case.dist, &case.input());
            let mut required: BTreeSet<String> = BTreeSet::new();
            for (key, change) in &case.changes {
                if *change != (Change::New { immutable: true }) {
                    required.extend(url_paths(&case.dist, key));
                }
            }
            let room_w = MAX_WILDCARDS.saturating_sub(case.in_flight.wildcards);
            let room_f = MAX_FILE_PATHS.saturating_sub(case.in_flight.files);

            // (e) determinism, and independence from the order of the input.
            let mut shuffled = case.clone();
            shuffle(&mut shuffled.changes, case.seed);
            shuffle(&mut shuffled.unchanged, case.seed ^ 1);
            prop_assert_eq!(&plan(&case.dist, &case.input()), &result);
            prop_assert_eq!(&plan(&case.dist, &shuffled.input()), &result);

            let expected = brute_force(&case);
            let batch = match result {
                Ok(Some(b)) => b,
                Ok(None) => {
                    prop_assert!(required.is_empty());
                    prop_assert!(matches!(expected, Expect::Nothing));
                    return Ok(());
                }
                Err(InvalidationError::Saturated { .. }) => {
                    prop_assert_eq!(room_w, 0);
                    prop_assert!(matches!(expected, Expect::Saturated | Expect::TooBig));
                    return Ok(());
                }
            };
            let wildcards = batch.paths.iter().filter(|p| p.ends_with('*')).count();
            let files = batch.paths.len() - wildcards;
            prop_assert_eq!(wildcards, batch.wildcards);
            let mut sorted = batch.paths.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&sorted, &batch.paths);
            // (a) every required path is covered.
            for p in &required {
                prop_assert!(covers(&batch.paths, p), "{} not covered by {:?}", p, batch.paths);
            }
            // (c) limits.
            prop_assert!(wildcards <= room_w && files <= room_f);
            let exact_fit = required.len() <= case.max_paths
                && required.iter().filter(|p| !p.ends_with('*')).count() <= room_f
                && required.iter().filter(|p| p.ends_with('*')).count() <= room_w;
            if !exact_fit {
                prop_assert!(batch.paths.len() <= case.max_paths.max(1));
            }
            // (b) within the budget, only rule-4 wildcards evict anything, besides the unchanged
            // objects that share a URL with a changed one (`a` and `a/index.html` both answer `/a`).
            if exact_fit && batch.wildcards == 0 {
                let changed: HashSet<&str> = case.changes.iter().map(|(k, _)| k.as_str()).collect();
                let sharing = case
                    .unchanged
                    .iter()
                    .filter(|k| !changed.contains(k.as_str()))
                    .filter(|k| url_paths(&case.dist, k).iter().any(|p| required.contains(p)))
                    .count();
                prop_assert_eq!(batch.evicted_unchanged, sharing);
            }
            // (d) `*` only once, and last.
            for p in &batch.paths {
                prop_assert!(p.starts_with('/'));
                prop_assert!(p.find('*').is_none_or(|i| i == p.len() - 1), "{}", p);
                prop_assert!(p.len() <= MAX_PATH_LEN);
            }
            // (f) optimal: same evictions, path count and tie-break as trying every subset.
            match expected {
                Expect::Paths(paths, evicted) => {
                    prop_assert_eq!(batch.evicted_unchanged, evicted);
                    prop_assert_eq!(&batch.paths, &paths);
                }
                Expect::TooBig => {}
                Expect::Nothing | Expect::Saturated => prop_assert!(false, "brute force disagrees"),
            }
        }

        #[test]
        fn encoded_paths_are_well_formed(raw in "/[a-z~*?%é ./+#\\[\\]]{0,12}") {
            let p = encode_path(&raw);
            prop_assert!(p.starts_with('/'));
            prop_assert!(p.find('*').is_none_or(|i| i == p.len() - 1));
            prop_assert!(!p.contains('~') && !p.contains('?') && !p.contains(' '));
            prop_assert!(p.is_ascii());
            prop_assert!(escapes_are_whole(&p));
        }
    }
}
