//! One key's record in the manifest: what the bucket holds under it (hash, size, headers), where
//! it stands in the site's life (live, retired, left in place, kept for rollback), and the
//! canonical fingerprint that lets a deploy compare a range of keys without reading it.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::local::headers::Headers;

pub type Sha = [u8; 32];

/// The record of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// sha256 of the source bytes (for a gzip-stored file, of the file before compression).
    /// `None`: a write was attempted and its outcome is unknown, so the next deploy rewrites the
    /// key (and may delete it) but never trusts it.
    pub sha256: Option<Sha>,
    pub size: u64,
    pub headers: Arc<Headers>,
    /// The S3 VersionId the object was written with, when the bucket keeps versions.
    pub version: Option<String>,
    pub life: Life,
}

/// Where a key stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Life {
    /// Part of the site as last deployed.
    Live,
    /// A content-hashed file that left the build: kept so that open tabs and cached pages can
    /// still load it, deleted by a later deploy once its window has passed. `since` is a Unix
    /// time in seconds, `seq` the deploy that retired it.
    Retired { since: i64, seq: u64 },
    /// Not in the last build, but left in place on purpose (excluded, or `--no-delete`).
    Left,
    /// A copy of bytes a kept deploy still references, made before they were overwritten or
    /// deleted, so that a rollback can restore them. Needed while a deploy numbered `until` or
    /// lower is kept in the history.
    Kept { until: u64 },
}

impl Entry {
    pub fn live(sha256: Sha, size: u64, headers: Arc<Headers>) -> Entry {
        Entry {
            sha256: Some(sha256),
            size,
            headers,
            version: None,
            life: Life::Live,
        }
    }

    pub fn is_live(&self) -> bool {
        self.life == Life::Live
    }

    /// The same record with its content marked unknown.
    pub fn unverified(&self) -> Entry {
        Entry {
            sha256: None,
            version: None,
            ..self.clone()
        }
    }

    /// Whether the bytes under the key never change: its Cache-Control says `immutable` (a
    /// content-hashed name, or a rule that says so). Such a file is retired, not deleted, when
    /// it leaves the build, and never needs an invalidation.
    pub fn is_immutable(&self) -> bool {
        self.headers.is_immutable()
    }
}

/// The fingerprint of a run of live records in key order: what a deploy computes from the build
/// folder for the same range and compares, so that an unchanged range is never read. 128 bits
/// of sha256 over a canonical binary form (not JSON, whose spelling could vary).
#[derive(Clone, Debug, Default)]
pub struct Fingerprint {
    hash: Sha256,
    count: usize,
}

impl Fingerprint {
    pub fn new() -> Fingerprint {
        Fingerprint::default()
    }

    /// Adds one live record; callers add them in key order.
    pub fn add(&mut self, key: &str, sha256: Option<&Sha>, size: u64, headers: &Headers) {
        let h = &mut self.hash;
        field(h, key.as_bytes());
        match sha256 {
            Some(s) => {
                h.update([1]);
                h.update(s);
            }
            None => h.update([0]),
        }
        h.update(size.to_be_bytes());
        field(h, headers.content_type.as_bytes());
        for value in [
            &headers.cache_control,
            &headers.content_encoding,
            &headers.content_disposition,
            &headers.content_language,
        ] {
            match value {
                Some(v) => {
                    h.update([1]);
                    field(h, v.as_bytes());
                }
                None => h.update([0]),
            }
        }
        h.update((headers.metadata.len() as u64).to_be_bytes());
        for (k, v) in &headers.metadata {
            field(h, k.as_bytes());
            field(h, v.as_bytes());
        }
        h.update([u8::from(headers.gzip)]);
        self.count += 1;
    }

    pub fn add_entry(&mut self, key: &str, entry: &Entry) {
        self.add(key, entry.sha256.as_ref(), entry.size, &entry.headers);
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// 32 hex characters.
    pub fn finish(self) -> String {
        let digest = self.hash.finalize();
        hex::encode(&digest[..16])
    }
}

/// Length-prefixed, so that no two sequences of fields share an encoding.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::default_headers;

    fn fp(items: &[(&str, Option<Sha>, u64, Headers)]) -> String {
        let mut f = Fingerprint::new();
        for (k, s, z, h) in items {
            f.add(k, s.as_ref(), *z, h);
        }
        f.finish()
    }

    #[test]
    fn fingerprint_sees_every_field_and_the_boundaries() {
        let h = default_headers("a.css");
        let base = fp(&[("a.css", Some([1; 32]), 3, h.clone())]);
        assert_eq!(base.len(), 32);
        assert_eq!(base, fp(&[("a.css", Some([1; 32]), 3, h.clone())]));
        let mut other = h.clone();
        other.cache_control = None;
        let mut meta = h.clone();
        meta.metadata.insert("a".into(), "b".into());
        let mut gz = h.clone();
        gz.gzip = true;
        for changed in [
            fp(&[("a.css", None, 3, h.clone())]),
            fp(&[("a.css", Some([2; 32]), 3, h.clone())]),
            fp(&[("a.css", Some([1; 32]), 4, h.clone())]),
            fp(&[("b.css", Some([1; 32]), 3, h.clone())]),
            fp(&[("a.css", Some([1; 32]), 3, other)]),
            fp(&[("a.css", Some([1; 32]), 3, meta)]),
            fp(&[("a.css", Some([1; 32]), 3, gz)]),
            fp(&[]),
        ] {
            assert_ne!(changed, base);
        }
        // Field boundaries are unambiguous: "ab"+"c" is not "a"+"bc".
        let mut x = Headers::new("c");
        x.cache_control = Some("ab".into());
        let mut y = Headers::new("c");
        y.cache_control = Some("a".into());
        y.content_encoding = Some("b".into());
        assert_ne!(
            fp(&[("k", None, 0, x)]),
            fp(&[("k", None, 0, y)]),
            "fields do not run into each other"
        );
    }
}
