//! Reading a version-1 manifest (one object holding every record, with headers per record) as a
//! version-2 root whose records all sit in the delta: the next deploy that writes migrates it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::local::headers::Headers;
use crate::state::format::{DeployInfo, EntryDoc, HeaderTable, ManifestError, RootDoc, VERSION};

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    deploy: Deploy,
    #[serde(default)]
    files: BTreeMap<String, Entry>,
    #[serde(default)]
    pending_invalidation: BTreeSet<String>,
}

#[derive(Default, Deserialize)]
struct Deploy {
    #[serde(default)]
    time: String,
    #[serde(default)]
    tool_version: String,
    #[serde(default)]
    git_commit: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    sha256: Option<String>,
    size: u64,
    headers: Headers,
}

/// `json` is the decompressed document, whose version was read as 1.
pub fn decode(json: &[u8]) -> Result<RootDoc, ManifestError> {
    let m: Manifest = serde_json::from_slice(json)
        .map_err(|e| ManifestError::Corrupt(format!("bad JSON: {e}")))?;
    let mut table = HeaderTable::default();
    let mut root = RootDoc::new("");
    root.legacy = true;
    root.deploy = DeployInfo {
        time: m.deploy.time,
        tool_version: m.deploy.tool_version,
        git_commit: m.deploy.git_commit,
        ..DeployInfo::default()
    };
    for (key, e) in m.files {
        if let Some(h) = &e.sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ManifestError::Corrupt(format!("bad sha256 for {key:?}")));
            }
        }
        let doc = EntryDoc {
            sha256: e.sha256.map(|s| s.to_ascii_lowercase()),
            size: e.size,
            headers: table.slot(&e.headers),
            version: None,
            retired: None,
            left: false,
            kept: None,
        };
        root.delta.insert(key, Some(doc));
    }
    root.headers = table.list;
    root.pending_invalidation = m.pending_invalidation;
    debug_assert_eq!(root.version, VERSION);
    Ok(root)
}

#[cfg(test)]
mod tests {
    use crate::state::format::decode_root;

    #[test]
    fn version_one_reads_as_a_delta() {
        let v1 = br#"{"version": 1, "deploy": {"time": "2026-11-24T10:00:00Z", "tool_version": "0.1.0", "in_progress": true},
            "files": {"a.css": {"sha256": null, "size": 1, "headers": {"content-type": "text/css"}},
                      "b.html": {"sha256": "AB00000000000000000000000000000000000000000000000000000000000000", "size": 2, "headers": {"content-type": "text/html"}}},
            "pending_invalidation": ["b.html"]}"#;
        let root = decode_root(v1).expect("decodes");
        assert!(root.legacy);
        assert_eq!(root.delta.len(), 2);
        assert_eq!(root.headers.len(), 2);
        let b = root.delta["b.html"].as_ref().expect("b");
        assert_eq!(b.sha256.as_deref(), Some(&*format!("ab{}", "0".repeat(62))));
        assert!(root.delta["a.css"].as_ref().expect("a").sha256.is_none());
        assert!(root.pending_invalidation.contains("b.html"));
        assert!(root.base.is_none() && root.lock.is_none());
    }
}
