//! Where a deploy target keeps its state in the bucket, which keys are reserved for it, and what
//! a valid site key is. A manifest is input like any other: every key it names is checked here
//! before anything acts on it.

/// The folder, under the deploy prefix, that holds the manifest and every state object.
pub const STATE_DIR: &str = ".cdn-deploy/";
/// The manifest's name in [`STATE_DIR`].
pub const MANIFEST_NAME: &str = ".cdn-deploy/manifest.json";
/// The lock object of manifest version 1, consulted only while migrating from it.
pub const LEGACY_LOCK_NAME: &str = ".cdn-deploy/lock.json";
/// S3's limit on key length, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// The keys of one deploy target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// "" or ends with '/'.
    pub prefix: String,
    /// The manifest's root object.
    pub manifest_key: String,
    /// Ends with '/': bases, history parts and kept copies live under it.
    pub state_dir: String,
}

impl Layout {
    /// The default layout under `prefix`, or the one of a manifest moved with `--manifest-key`:
    /// its state objects go beside it, in a folder named after it without its extension
    /// (`state/site.json` keeps them under `state/site/`).
    pub fn new(prefix: &str, manifest_key: Option<&str>) -> Layout {
        let default = format!("{prefix}{MANIFEST_NAME}");
        match manifest_key {
            Some(k) if k != default => {
                let stem = match k.rsplit_once('.') {
                    Some((stem, ext)) if !stem.is_empty() && !ext.contains('/') => stem,
                    _ => k,
                };
                Layout {
                    prefix: prefix.to_string(),
                    manifest_key: k.to_string(),
                    state_dir: format!("{stem}/"),
                }
            }
            _ => Layout {
                prefix: prefix.to_string(),
                manifest_key: default,
                state_dir: format!("{prefix}{STATE_DIR}manifest/"),
            },
        }
    }

    /// The version-1 lock beside a default-placed manifest, or beside a moved one.
    pub fn legacy_lock_key(&self) -> String {
        if self.manifest_key == format!("{}{MANIFEST_NAME}", self.prefix) {
            format!("{}{LEGACY_LOCK_NAME}", self.prefix)
        } else {
            format!("{}.lock", self.manifest_key)
        }
    }

    /// Keys that belong to the tool: the manifest, anything in the prefix's `.cdn-deploy/`
    /// folder, anything in the state folder. Never uploaded over, never deleted as site files.
    pub fn is_reserved(&self, key: &str) -> bool {
        key == self.manifest_key
            || key.starts_with(&self.state_dir)
            || key
                .strip_prefix(&self.prefix)
                .is_some_and(|rest| rest.starts_with(STATE_DIR))
    }

    /// Where the bytes with this sha256 are kept for rollbacks (`.gz`: stored compressed).
    pub fn kept_key(&self, sha256: &[u8; 32], gzip: bool) -> String {
        let ext = if gzip { ".gz" } else { "" };
        format!("{}objects/{}{ext}", self.state_dir, hex::encode(sha256))
    }

    /// A base object, named by the sha256 of its bytes.
    pub fn base_key(&self, sha256: &[u8; 32]) -> String {
        format!("{}base/{}.gz", self.state_dir, hex::encode(sha256))
    }

    /// A history part, named by the sha256 of its bytes.
    pub fn history_key(&self, sha256: &[u8; 32]) -> String {
        format!("{}history/{}.gz", self.state_dir, hex::encode(sha256))
    }

    /// Whether `key` is a state object this layout names (a kept copy, a base or a history
    /// part): the only reserved keys the tool ever deletes, and only when nothing refers to
    /// them any more.
    pub fn is_state_object(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix(&self.state_dir) else {
            return false;
        };
        let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        match rest.split_once('/') {
            Some(("objects", name)) => hex64(name.strip_suffix(".gz").unwrap_or(name)),
            Some(("base" | "history", name)) => name.strip_suffix(".gz").is_some_and(hex64),
            _ => false,
        }
    }

    /// The kept copy's key, if `key` is one: the sha256 and whether it is stored compressed.
    pub fn parse_kept_key(&self, key: &str) -> Option<([u8; 32], bool)> {
        let name = key
            .strip_prefix(&self.state_dir)?
            .strip_prefix("objects/")?;
        let (hexpart, gzip) = match name.strip_suffix(".gz") {
            Some(h) => (h, true),
            None => (name, false),
        };
        let mut sha = [0u8; 32];
        hex::decode_to_slice(hexpart, &mut sha).ok()?;
        Some((sha, gzip))
    }

    /// Why `key` may not be a site key of this target, if it may not.
    pub fn check_site_key(&self, key: &str) -> Result<(), &'static str> {
        if key.is_empty() {
            return Err("an empty key");
        }
        if key.len() > MAX_KEY_LEN {
            return Err("longer than S3's 1,024 bytes");
        }
        if key.chars().any(char::is_control) {
            return Err("holds a control character");
        }
        let Some(rel) = key.strip_prefix(&self.prefix) else {
            return Err("outside the deploy prefix");
        };
        if rel.is_empty() {
            return Err("the prefix itself, not a file under it");
        }
        if key.starts_with('/') {
            return Err("starts with '/'");
        }
        if rel
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err("has an empty, '.' or '..' segment");
        }
        if self.is_reserved(key) {
            return Err("reserved for the deploy's own state");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_moved_layouts() {
        let l = Layout::new("docs/", None);
        assert_eq!(l.manifest_key, "docs/.cdn-deploy/manifest.json");
        assert_eq!(l.state_dir, "docs/.cdn-deploy/manifest/");
        assert_eq!(l.legacy_lock_key(), "docs/.cdn-deploy/lock.json");
        let l = Layout::new("docs/", Some("docs/.cdn-deploy/manifest.json"));
        assert_eq!(l.state_dir, "docs/.cdn-deploy/manifest/");
        let l = Layout::new("live/", Some("state/site.json"));
        assert_eq!(l.state_dir, "state/site/");
        assert_eq!(l.legacy_lock_key(), "state/site.json.lock");
        let l = Layout::new("", Some("deploy/state"));
        assert_eq!(l.state_dir, "deploy/state/");
        let l = Layout::new("", Some("a.b/state"));
        assert_eq!(
            l.state_dir, "a.b/state/",
            "a dot in a folder is no extension"
        );
    }

    #[test]
    fn reserved_and_state_objects() {
        let l = Layout::new("docs/", None);
        let sha = [0xab; 32];
        let kept = l.kept_key(&sha, false);
        assert_eq!(
            kept,
            format!("docs/.cdn-deploy/manifest/objects/{}", "ab".repeat(32))
        );
        assert!(l.is_reserved(&kept) && l.is_state_object(&kept));
        assert_eq!(l.parse_kept_key(&kept), Some((sha, false)));
        assert_eq!(l.parse_kept_key(&l.kept_key(&sha, true)), Some((sha, true)));
        assert!(l.is_state_object(&l.base_key(&sha)));
        assert!(l.is_state_object(&l.history_key(&sha)));
        for not_object in [
            "docs/.cdn-deploy/manifest.json",
            "docs/.cdn-deploy/lock.json",
            "docs/.cdn-deploy/manifest/objects/xyz",
            "docs/.cdn-deploy/manifest/base/abc.gz",
            "docs/index.html",
            "other/.cdn-deploy/manifest/objects/00",
        ] {
            assert!(!l.is_state_object(not_object), "{not_object}");
        }
        assert!(l.is_reserved("docs/.cdn-deploy/lock.json"));
        assert!(l.is_reserved("docs/.cdn-deploy/anything"));
        assert!(!l.is_reserved("docs/cdn-deploy/x"));
        assert!(
            !l.is_reserved(".cdn-deploy/manifest.json"),
            "another target's"
        );
    }

    #[test]
    fn site_keys_are_checked() {
        let l = Layout::new("docs/", None);
        assert_eq!(l.check_site_key("docs/index.html"), Ok(()));
        assert_eq!(l.check_site_key("docs/a b/café.html"), Ok(()));
        for (key, why) in [
            ("index.html", "outside the deploy prefix"),
            ("docs/", "the prefix itself, not a file under it"),
            ("docs/../escape.html", "has an empty, '.' or '..' segment"),
            ("docs/a//b", "has an empty, '.' or '..' segment"),
            (
                "docs/.cdn-deploy/manifest.json",
                "reserved for the deploy's own state",
            ),
            ("docs/a\nb", "holds a control character"),
            ("", "an empty key"),
        ] {
            assert_eq!(l.check_site_key(key), Err(why), "{key:?}");
        }
        let root = Layout::new("", None);
        assert_eq!(root.check_site_key("/etc/passwd"), Err("starts with '/'"));
        assert_eq!(
            root.check_site_key(&"a".repeat(1025)),
            Err("longer than S3's 1,024 bytes")
        );
    }
}
