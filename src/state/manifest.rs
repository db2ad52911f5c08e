//! The manifest: the record, kept in the bucket, of every key a deploy wrote and with what hash,
//! size and headers; its encoding (gzip JSON, sorted keys) and its validation.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

use crate::local::headers::Headers;

/// The format version this build writes and the newest it understands.
pub const VERSION: u32 = 1;

/// Where the manifest lives relative to the deploy prefix.
pub const MANIFEST_NAME: &str = ".cdn-deploy/manifest.json";
/// Where the deploy lock lives relative to the deploy prefix.
pub const LOCK_NAME: &str = ".cdn-deploy/lock.json";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    #[serde(default)]
    pub deploy: DeployInfo,
    /// Keyed by the full object key; a BTreeMap so the encoding is sorted and stable.
    #[serde(default)]
    pub files: BTreeMap<String, Entry>,
    /// Keys whose change reached the bucket but whose CDN invalidation did not succeed: the
    /// next deploy invalidates them again, so no change is ever left cached.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pending_invalidation: BTreeSet<String>,
}

/// Facts about the deploy that wrote the manifest. Nothing here may identify the machine or the
/// person: the manifest can be publicly readable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployInfo {
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub tool_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// Set while a deploy is under way: the manifest was written before the uploads, and the
    /// entries it touches are marked as not verified.
    #[serde(default, skip_serializing_if = "is_false")]
    pub in_progress: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Hex sha256 of the bytes in the bucket. `None` means the key may exist but its content is
    /// unknown (a write was attempted and its outcome is not known), so the next deploy rewrites
    /// it, and may delete it, but never trusts it.
    pub sha256: Option<String>,
    pub size: u64,
    pub headers: Headers,
}

impl Entry {
    /// The entry for a key whose content the bucket may or may not have.
    pub fn unverified(previous: Option<&Entry>, headers: &Headers) -> Entry {
        Entry {
            sha256: None,
            size: previous.map_or(0, |e| e.size),
            headers: previous.map_or_else(|| headers.clone(), |e| e.headers.clone()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("it is not a cdn-deploy manifest ({0})")]
    Corrupt(String),
    #[error("it was written by a newer cdn-deploy (manifest version {0}, this build reads up to {VERSION}): upgrade cdn-deploy")]
    Newer(u32),
}

impl Manifest {
    pub fn new(deploy: DeployInfo) -> Manifest {
        Manifest {
            version: VERSION,
            deploy,
            files: BTreeMap::new(),
            pending_invalidation: BTreeSet::new(),
        }
    }

    /// gzip-compressed JSON. The gzip header carries no time or name, so equal manifests encode
    /// to equal bytes.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain maps and strings cannot fail.
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::best());
        // Writes into a Vec cannot fail.
        let _ = gz.write_all(&json);
        gz.finish().unwrap_or_default()
    }

    /// Accepts the gzip encoding and, for manifests fetched through a client that already
    /// decompressed them, plain JSON.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let json = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| ManifestError::Corrupt(format!("bad gzip data: {e}")))?;
            out
        } else {
            bytes.to_vec()
        };
        // Read the version first, so a newer format is reported as such and not as corrupt.
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe = serde_json::from_slice(&json)
            .map_err(|e| ManifestError::Corrupt(format!("bad JSON: {e}")))?;
        if probe.version > VERSION {
            return Err(ManifestError::Newer(probe.version));
        }
        if probe.version == 0 {
            return Err(ManifestError::Corrupt("version 0".into()));
        }
        let manifest: Manifest = serde_json::from_slice(&json)
            .map_err(|e| ManifestError::Corrupt(format!("bad JSON: {e}")))?;
        for (key, entry) in &manifest.files {
            if let Some(h) = &entry.sha256 {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ManifestError::Corrupt(format!("bad sha256 for {key:?}")));
                }
            }
        }
        Ok(manifest)
    }
}

/// The lock object that serializes deploys to one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Who holds it: a CI run id or a random id, never a user or host name.
    pub holder: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339; past this time another deploy may take the lock over.
    pub expires: String,
    pub tool_version: String,
}

impl Lock {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Lock> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::default_headers;

    fn sample() -> Manifest {
        let mut m = Manifest::new(DeployInfo {
            time: "2026-11-24T10:00:00Z".into(),
            tool_version: "0.1.0".into(),
            git_commit: Some("abc123".into()),
            in_progress: false,
        });
        for (key, hash) in [("b.html", Some("a".repeat(64))), ("a.js", None)] {
            m.files.insert(
                key.into(),
                Entry {
                    sha256: hash,
                    size: 12,
                    headers: default_headers(key),
                },
            );
        }
        m
    }

    #[test]
    fn round_trip_is_stable_and_sorted() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
        assert_eq!(Manifest::decode(&bytes), Ok(m.clone()));
        assert_eq!(bytes, m.encode(), "encoding is deterministic");
        let mut json = String::new();
        GzDecoder::new(&bytes[..])
            .read_to_string(&mut json)
            .expect("gzip");
        let a = json.find("\"a.js\"").expect("a.js");
        let b = json.find("\"b.html\"").expect("b.html");
        assert!(a < b, "keys are sorted");
        assert!(json.contains("\"version\": 1"));
    }

    #[test]
    fn plain_json_is_accepted() {
        let m = sample();
        let json = serde_json::to_vec(&m).expect("json");
        assert_eq!(Manifest::decode(&json), Ok(m));
    }

    #[test]
    fn corrupt_and_newer_are_rejected() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "bad JSON"),
            (b"<html>", "bad JSON"),
            (&[0x1f, 0x8b, 0, 1, 2], "bad gzip"),
            (br#"{"version": 1, "files": {"k": {"sha256": "xyz", "size": 1, "headers": {"content-type": "a"}}}}"#, "bad sha256"),
            (br#"{"files": {}}"#, "bad JSON"),
        ];
        for (bytes, want) in cases {
            match Manifest::decode(bytes) {
                Err(ManifestError::Corrupt(why)) => assert!(why.contains(want), "{why}"),
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        assert_eq!(
            Manifest::decode(br#"{"version": 2, "whatever": []}"#),
            Err(ManifestError::Newer(2))
        );
    }
}
