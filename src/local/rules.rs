//! Header rules: ordered globs from the configuration that override the built-in headers of the
//! files they match, and opt them into gzip pre-compression. Pure: no I/O.
//!
//! Semantics:
//!
//! - Rules are tried in order and the **first** rule whose glob matches a file's path (relative
//!   to the build folder, with `/`) applies; later rules are not consulted, so put specific
//!   rules before general ones.
//! - Globs work as everywhere in the tool: `*` stays within one folder, `**` crosses folders,
//!   and a glob without `/` (`*.js`) matches the file name in every folder.
//! - The matched rule overrides the built-in headers field by field; a field it does not set
//!   keeps the built-in value. Content-Type is always derived from the extension unless the rule
//!   sets it. Cache-Control comes from the built-in policy (content-hashed names immutable,
//!   everything else revalidated) unless the rule sets it; with the built-in policy turned off
//!   a file has no Cache-Control unless its rule sets one. A rule's metadata is the object's
//!   metadata (the built-in headers have none).
//! - `gzip = true` compresses the body before upload and sets `Content-Encoding: gzip`, but
//!   only for text types (`text/*`, JSON, JavaScript, XML, SVG, web manifests) and never for
//!   files whose extension says they are compressed already (`.gz`, `.br`, `.png`, `.woff2`…);
//!   other files the rule matches get its other headers and are uploaded as they are. The
//!   decision depends on the path and the Content-Type only, never on the size or the bytes,
//!   so a plan is the same on every machine.
//! - Header values must be non-empty printable ASCII, metadata keys lowercase letters, digits
//!   and `-`: S3 rejects or silently rewrites anything else, which would make the recorded
//!   headers differ from the stored ones.

use std::collections::BTreeMap;

use globset::{GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::local::headers::{
    default_headers, extension, file_name, is_html, is_text, Headers, IMMUTABLE,
};
use crate::local::scan::site_globs;

/// One `[[headers]]` rule of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HeaderRule {
    pub glob: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `x-amz-meta-*` metadata, without the prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gzip: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("header rule \"{glob}\": invalid glob: {}", .source.kind())]
    BadGlob {
        glob: String,
        source: globset::Error,
    },
    #[error(
        "header rule \"{glob}\": metadata key \"{key}\" must be lowercase letters, digits and '-'"
    )]
    BadMetadataKey { glob: String, key: String },
    #[error("header rule \"{glob}\": {field} {value:?} is not a valid header value: it must be non-empty printable ASCII (S3 rejects control and non-ASCII characters)")]
    BadHeaderValue {
        glob: String,
        field: String,
        value: String,
    },
    #[error("header rule \"{glob}\": gzip = true sets Content-Encoding to gzip; remove content-encoding or gzip")]
    GzipWithEncoding { glob: String },
    #[error("immutable glob \"{glob}\": {}", .source.kind())]
    BadImmutable {
        glob: String,
        source: globset::Error,
    },
}

/// Validated, compiled header rules.
#[derive(Clone, Debug)]
pub struct Rules {
    rules: Vec<HeaderRule>,
    /// Every rule's patterns in one set; `owner[i]` is the rule of pattern `i`.
    set: GlobSet,
    owner: Vec<usize>,
    builtin: bool,
    /// `immutable` globs: files the built-in policy caches for a year whatever their name.
    immutable: GlobSet,
}

/// Extensions of formats that are compressed already: gzip would only cost CPU and bytes.
/// Most are not text types anyway; the list guards against a rule that sets a text
/// Content-Type on them (`*.js.gz` served as JavaScript, `.svgz`).
const COMPRESSED: &[&str] = &[
    "gz", "tgz", "br", "zst", "zip", "bz2", "xz", "7z", "svgz", "png", "jpg", "jpeg", "gif",
    "webp", "avif", "woff", "woff2", "mp4", "webm", "mp3", "pdf",
];

impl Rules {
    /// `builtin`: whether the built-in Cache-Control policy applies (`default-headers = false`
    /// in the configuration turns it off).
    pub fn new(
        rules: &[HeaderRule],
        builtin: bool,
        immutable: &[String],
    ) -> Result<Rules, RuleError> {
        let mut marked = GlobSetBuilder::new();
        for glob in immutable {
            for g in site_globs(glob).map_err(|source| RuleError::BadImmutable {
                glob: glob.clone(),
                source,
            })? {
                marked.add(g);
            }
        }
        let immutable = marked.build().map_err(|source| RuleError::BadImmutable {
            glob: immutable.join(" "),
            source,
        })?;
        let mut set = GlobSetBuilder::new();
        let mut owner = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            validate(rule)?;
            let globs = site_globs(&rule.glob).map_err(|source| RuleError::BadGlob {
                glob: rule.glob.clone(),
                source,
            })?;
            for glob in globs {
                set.add(glob);
                owner.push(i);
            }
        }
        let set = set.build().map_err(|source| RuleError::BadGlob {
            glob: rules
                .iter()
                .map(|r| r.glob.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            source,
        })?;
        Ok(Rules {
            rules: rules.to_vec(),
            set,
            owner,
            builtin,
            immutable,
        })
    }

    /// The rule that decides the headers of `rel`: the first whose glob matches.
    pub fn rule_for(&self, rel: &str) -> Option<&HeaderRule> {
        self.set
            .matches(rel)
            .into_iter()
            .filter_map(|pattern| self.owner.get(pattern).copied())
            .min()
            .and_then(|i| self.rules.get(i))
    }

    /// The headers a file at `rel` (path relative to the build folder, '/') is uploaded with.
    pub fn headers_for(&self, rel: &str) -> Headers {
        let mut h = default_headers(rel);
        if !self.builtin {
            h.cache_control = None;
        } else if !is_html(rel) && self.immutable.is_match(rel) {
            h.cache_control = Some(IMMUTABLE.to_string());
        }
        let Some(rule) = self.rule_for(rel) else {
            return h;
        };
        if let Some(v) = &rule.content_type {
            h.content_type.clone_from(v);
        }
        let overrides = [
            (&mut h.cache_control, &rule.cache_control),
            (&mut h.content_encoding, &rule.content_encoding),
            (&mut h.content_disposition, &rule.content_disposition),
            (&mut h.content_language, &rule.content_language),
        ];
        for (field, value) in overrides {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        if !rule.metadata.is_empty() {
            h.metadata.clone_from(&rule.metadata);
        }
        if rule.gzip {
            // With gzip the rule's content-encoding can only be "gzip" (see `validate`), and it
            // describes the compressed body: a file left uncompressed must not claim it.
            h.content_encoding = None;
            if compressible(rel, &h.content_type) {
                h.gzip = true;
                h.content_encoding = Some("gzip".to_string());
            }
        }
        h
    }
}

impl Default for Rules {
    /// No rules, built-in policy on: the headers of `headers::default_headers`.
    fn default() -> Rules {
        Rules {
            rules: Vec::new(),
            set: GlobSet::empty(),
            owner: Vec::new(),
            builtin: true,
            immutable: GlobSet::empty(),
        }
    }
}

fn validate(rule: &HeaderRule) -> Result<(), RuleError> {
    let glob = || rule.glob.clone();
    let fields = [
        ("cache-control", &rule.cache_control),
        ("content-type", &rule.content_type),
        ("content-encoding", &rule.content_encoding),
        ("content-disposition", &rule.content_disposition),
        ("content-language", &rule.content_language),
    ];
    for (field, value) in fields {
        if let Some(value) = value {
            if value.is_empty() || !is_header_text(value) {
                return Err(RuleError::BadHeaderValue {
                    glob: glob(),
                    field: field.to_string(),
                    value: value.clone(),
                });
            }
        }
    }
    for (key, value) in &rule.metadata {
        let key_ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !key_ok {
            return Err(RuleError::BadMetadataKey {
                glob: glob(),
                key: key.clone(),
            });
        }
        // An empty metadata value is a valid header; only its characters matter.
        if !is_header_text(value) {
            return Err(RuleError::BadHeaderValue {
                glob: glob(),
                field: format!("metadata \"{key}\""),
                value: value.clone(),
            });
        }
    }
    if rule.gzip
        && rule
            .content_encoding
            .as_deref()
            .is_some_and(|e| !e.eq_ignore_ascii_case("gzip"))
    {
        return Err(RuleError::GzipWithEncoding { glob: glob() });
    }
    Ok(())
}

/// Printable ASCII: S3 refuses control characters, and non-ASCII would need an encoding that
/// S3 does not apply consistently, so the stored header would differ from the recorded one.
fn is_header_text(value: &str) -> bool {
    value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Worth gzipping: a text type whose extension does not say it is compressed already.
fn compressible(rel: &str, content_type: &str) -> bool {
    let ext = extension(file_name(rel));
    is_text(content_type) && !COMPRESSED.iter().any(|c| ext.eq_ignore_ascii_case(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::{IMMUTABLE, REVALIDATE};

    fn rule(glob: &str) -> HeaderRule {
        HeaderRule {
            glob: glob.into(),
            ..HeaderRule::default()
        }
    }

    fn rules(list: Vec<HeaderRule>) -> Rules {
        Rules::new(&list, true, &[]).unwrap()
    }

    #[test]
    fn no_rule_means_builtin_headers() {
        let r = rules(vec![]);
        for rel in ["index.html", "assets/app.3f2a9c1b.js", "img/a.png"] {
            assert_eq!(r.headers_for(rel), default_headers(rel));
        }
        assert_eq!(
            Rules::default().headers_for("a/b.css"),
            default_headers("a/b.css")
        );
    }

    #[test]
    fn first_match_wins() {
        let r = rules(vec![
            HeaderRule {
                cache_control: Some("no-store".into()),
                ..rule("admin/**")
            },
            HeaderRule {
                cache_control: Some("public, max-age=60".into()),
                content_language: Some("en".into()),
                ..rule("*.html")
            },
        ]);
        let admin = r.headers_for("admin/index.html");
        assert_eq!(admin.cache_control.as_deref(), Some("no-store"));
        // The later rule also matches, but is not consulted: nothing of it leaks in.
        assert_eq!(admin.content_language, None);
        let page = r.headers_for("blog/index.html");
        assert_eq!(page.cache_control.as_deref(), Some("public, max-age=60"));
        assert_eq!(page.content_language.as_deref(), Some("en"));
        assert_eq!(
            r.rule_for("admin/x.html").map(|r| r.glob.as_str()),
            Some("admin/**")
        );
        assert_eq!(r.rule_for("x.css"), None);
    }

    #[test]
    fn fields_override_one_by_one() {
        let r = rules(vec![HeaderRule {
            content_disposition: Some("attachment".into()),
            metadata: BTreeMap::from([("owner".to_string(), "web-team".to_string())]),
            ..rule("downloads/*")
        }]);
        let h = r.headers_for("downloads/app.3f2a9c1b.js");
        // Unset fields keep the built-in values.
        assert_eq!(h.content_type, "text/javascript; charset=utf-8");
        assert_eq!(h.cache_control.as_deref(), Some(IMMUTABLE));
        assert_eq!(h.content_encoding, None);
        assert_eq!(h.content_disposition.as_deref(), Some("attachment"));
        assert_eq!(
            h.metadata.get("owner").map(String::as_str),
            Some("web-team")
        );
        assert!(!h.gzip);

        let r = rules(vec![HeaderRule {
            content_type: Some("text/plain; charset=utf-8".into()),
            cache_control: Some("no-cache".into()),
            ..rule("LICENSE")
        }]);
        let h = r.headers_for("LICENSE");
        assert_eq!(h.content_type, "text/plain; charset=utf-8");
        assert_eq!(h.cache_control.as_deref(), Some("no-cache"));
    }

    #[test]
    fn builtin_policy_off() {
        let list = vec![HeaderRule {
            cache_control: Some("public, max-age=300".into()),
            ..rule("*.css")
        }];
        let r = Rules::new(&list, false, &[]).unwrap();
        let h = r.headers_for("assets/app.3f2a9c1b.js");
        assert_eq!(h.cache_control, None);
        // Content-Type does not depend on the policy.
        assert_eq!(h.content_type, "text/javascript; charset=utf-8");
        assert_eq!(
            r.headers_for("a/site.css").cache_control.as_deref(),
            Some("public, max-age=300")
        );
        let on = Rules::new(&list, true, &[]).unwrap();
        assert_eq!(
            on.headers_for("index.html").cache_control.as_deref(),
            Some(REVALIDATE)
        );
    }

    #[test]
    fn immutable_globs_cache_for_a_year_but_never_pages() {
        let r = Rules::new(&[], true, &["fonts/**".to_string(), "*.bin".to_string()]).unwrap();
        let font = r.headers_for("fonts/Inter-SemiBold.woff2");
        assert_eq!(font.cache_control.as_deref(), Some(IMMUTABLE));
        assert_eq!(
            r.headers_for("a/b.bin").cache_control.as_deref(),
            Some(IMMUTABLE)
        );
        assert_eq!(
            r.headers_for("fonts/index.html").cache_control.as_deref(),
            Some(REVALIDATE)
        );
        assert_eq!(
            r.headers_for("img/logo.png").cache_control.as_deref(),
            Some(REVALIDATE)
        );
        // A rule's own Cache-Control still wins.
        let rule = HeaderRule {
            cache_control: Some("no-cache".into()),
            ..rule("fonts/x.woff2")
        };
        let r = Rules::new(&[rule], true, &["fonts/**".to_string()]).unwrap();
        assert_eq!(
            r.headers_for("fonts/x.woff2").cache_control.as_deref(),
            Some("no-cache")
        );
        assert!(Rules::new(&[], true, &["a[".to_string()]).is_err());
    }

    #[test]
    fn glob_without_slash_matches_in_subfolders() {
        let r = rules(vec![
            HeaderRule {
                content_language: Some("fr".into()),
                ..rule("*.txt")
            },
            HeaderRule {
                content_language: Some("de".into()),
                ..rule("docs/*.md")
            },
        ]);
        for rel in ["a.txt", "x/a.txt", "x/y/z/a.txt"] {
            assert_eq!(
                r.headers_for(rel).content_language.as_deref(),
                Some("fr"),
                "{rel}"
            );
        }
        // With a '/', the glob is anchored at the build folder and `*` stays in one folder.
        assert_eq!(
            r.headers_for("docs/a.md").content_language.as_deref(),
            Some("de")
        );
        assert_eq!(r.headers_for("docs/x/a.md").content_language, None);
        assert_eq!(r.headers_for("x/docs/a.md").content_language, None);
    }

    #[test]
    fn gzip_only_text_and_never_compressed_formats() {
        let r = rules(vec![
            HeaderRule {
                content_type: Some("text/javascript; charset=utf-8".into()),
                content_encoding: Some("gzip".into()),
                gzip: true,
                ..rule("*.js.gz")
            },
            HeaderRule {
                gzip: true,
                ..rule("**")
            },
        ]);
        for rel in [
            "index.html",
            "assets/app.3f2a9c1b.js",
            "a/style.css",
            "data.json",
            "feed.xml",
            "icon.svg",
            "site.webmanifest",
            "robots.txt",
        ] {
            let h = r.headers_for(rel);
            assert!(h.gzip, "{rel} should be gzipped");
            assert_eq!(h.content_encoding.as_deref(), Some("gzip"), "{rel}");
        }
        for rel in [
            "img/logo.png",
            "photo.jpg",
            "font.woff2",
            "app_bg.wasm",
            "archive.zip",
            "doc.pdf",
            "LICENSE",
            "app.js.gz",
            "icon.svgz",
        ] {
            let h = r.headers_for(rel);
            assert!(!h.gzip, "{rel} should not be gzipped");
            assert_eq!(h.content_encoding, None, "{rel}");
        }
        // The rule's other headers still apply to the file it does not compress.
        assert_eq!(
            r.headers_for("app.js.gz").content_type,
            "text/javascript; charset=utf-8"
        );
        // A text Content-Type set by the rule counts.
        let r = rules(vec![HeaderRule {
            content_type: Some("application/ld+json".into()),
            gzip: true,
            ..rule("*.jsonld")
        }]);
        assert!(r.headers_for("a.jsonld").gzip);
    }

    #[test]
    fn content_encoding_without_gzip_is_kept() {
        // Files the build compressed itself: the tool only labels them.
        let r = rules(vec![HeaderRule {
            content_type: Some("text/javascript; charset=utf-8".into()),
            content_encoding: Some("br".into()),
            ..rule("*.js.br")
        }]);
        let h = r.headers_for("a/app.js.br");
        assert!(!h.gzip);
        assert_eq!(h.content_encoding.as_deref(), Some("br"));
    }

    #[test]
    fn validation_errors() {
        let bad = |r: HeaderRule| Rules::new(&[rule("ok/*"), r], true, &[]).unwrap_err();
        assert!(matches!(bad(rule("a[")), RuleError::BadGlob { glob, .. } if glob == "a["));
        let e = bad(HeaderRule {
            metadata: BTreeMap::from([("Owner".to_string(), "x".to_string())]),
            ..rule("*.js")
        });
        assert!(
            matches!(&e, RuleError::BadMetadataKey { key, .. } if key == "Owner"),
            "{e}"
        );
        for key in ["", "a_b", "a b", "é"] {
            let e = bad(HeaderRule {
                metadata: BTreeMap::from([(key.to_string(), "x".to_string())]),
                ..rule("*.js")
            });
            assert!(matches!(e, RuleError::BadMetadataKey { .. }), "{key:?}");
        }
        for value in ["a\nb", "caf\u{e9}", "tab\there", ""] {
            let e = bad(HeaderRule {
                cache_control: Some(value.into()),
                ..rule("*.js")
            });
            assert!(
                matches!(&e, RuleError::BadHeaderValue { field, value: v, glob }
                    if field == "cache-control" && v == value && glob == "*.js"),
                "{value:?}: {e}"
            );
        }
        let e = bad(HeaderRule {
            content_disposition: Some("attachment; filename=\"r\u{e9}sum\u{e9}.pdf\"".into()),
            ..rule("*.pdf")
        });
        assert!(
            matches!(&e, RuleError::BadHeaderValue { field, .. } if field == "content-disposition")
        );
        let e = bad(HeaderRule {
            metadata: BTreeMap::from([("k".to_string(), "line\r\n".to_string())]),
            ..rule("*.js")
        });
        assert!(matches!(e, RuleError::BadHeaderValue { .. }));
        let e = bad(HeaderRule {
            content_encoding: Some("br".into()),
            gzip: true,
            ..rule("*.js")
        });
        assert!(matches!(&e, RuleError::GzipWithEncoding { glob } if glob == "*.js"));
        assert!(e.to_string().contains("*.js"), "{e}");
        // Empty metadata values and an explicit `content-encoding = "gzip"` with gzip are fine.
        let ok = [HeaderRule {
            content_encoding: Some("gzip".into()),
            metadata: BTreeMap::from([("flag".to_string(), String::new())]),
            gzip: true,
            ..rule("*.js")
        }];
        assert!(Rules::new(&ok, true, &[]).is_ok());
    }

    #[test]
    fn rules_decode_strictly() {
        let json = r#"{"glob":"*.js","cache-control":"no-cache","metadata":{"a":"b"},"gzip":true}"#;
        let r: HeaderRule = serde_json::from_str(json).unwrap();
        assert_eq!(r.glob, "*.js");
        assert!(r.gzip);
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        // A misspelt field is an error, not a silently ignored header.
        assert!(serde_json::from_str::<HeaderRule>(r#"{"glob":"*","cache_control":"x"}"#).is_err());
    }
}
