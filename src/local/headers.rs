//! The response headers each object is stored with: Content-Type by extension and the default
//! Cache-Control policy (content-hashed names immutable, everything else revalidated).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Cache-Control for file names that carry a content hash: their content can never change
/// under the same name, so browsers and the edge may keep them for a year.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache-Control for everything else: a deploy must be visible at once, so clients revalidate
/// (a cheap 304 when nothing changed).
pub const REVALIDATE: &str = "public, max-age=0, must-revalidate";

/// The headers an object is uploaded with, and recorded with in the manifest. A change in any of
/// them re-uploads the object, because S3 cannot change headers without rewriting the object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Headers {
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `x-amz-meta-*` metadata, without the prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The tool compresses the body with gzip before upload; `content_encoding` is then `gzip`.
    /// Recorded so that turning compression on or off re-uploads the files it affects.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gzip: bool,
}

impl Headers {
    /// Headers with only a Content-Type: every other header absent, no metadata, no gzip.
    pub fn new(content_type: impl Into<String>) -> Headers {
        Headers {
            content_type: content_type.into(),
            cache_control: None,
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            metadata: BTreeMap::new(),
            gzip: false,
        }
    }

    /// Whether the Cache-Control says the bytes never change under this name.
    pub fn is_immutable(&self) -> bool {
        self.cache_control.as_deref().is_some_and(|c| {
            c.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("immutable"))
        })
    }
}

/// The built-in headers for a file at `rel` (its path relative to the build folder, with `/`).
pub fn default_headers(rel: &str) -> Headers {
    let cache_control = if is_content_hashed(rel) && !is_html(rel) {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    Headers {
        cache_control: Some(cache_control.to_string()),
        ..Headers::new(content_type(rel))
    }
}

/// HTML pages are uploaded last so that no page ever references an asset not yet in the bucket.
pub fn is_html(rel: &str) -> bool {
    let ext = extension(file_name(rel));
    ext.eq_ignore_ascii_case("html") || ext.eq_ignore_ascii_case("htm")
}

pub fn is_css(rel: &str) -> bool {
    extension(file_name(rel)).eq_ignore_ascii_case("css")
}

/// Content-Type by extension; text types carry `charset=utf-8` because browsers otherwise guess.
pub fn content_type(rel: &str) -> String {
    let ext = extension(file_name(rel)).to_ascii_lowercase();
    // mime_guess follows the old registry for a few types that browsers now expect otherwise.
    let essence = match ext.as_str() {
        "js" | "mjs" | "cjs" => "text/javascript".to_string(),
        "map" => "application/json".to_string(),
        "webmanifest" => "application/manifest+json".to_string(),
        "wasm" => "application/wasm".to_string(),
        "avif" => "image/avif".to_string(),
        "md" => "text/markdown".to_string(),
        "" => "application/octet-stream".to_string(),
        _ => mime_guess::from_ext(&ext)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string(),
    };
    if is_text(&essence) {
        format!("{essence}; charset=utf-8")
    } else {
        essence
    }
}

/// Text that browsers decode with a charset, and that compresses well. Takes a full
/// Content-Type (`text/css; charset=utf-8`) or just its essence.
pub(crate) fn is_text(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/xml"
        )
}

pub(crate) fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

pub(crate) fn extension(name: &str) -> &str {
    match name.rfind('.') {
        Some(0) | None => "",
        Some(i) => &name[i + 1..],
    }
}

/// Does the file name carry a content hash, as bundlers write them? See [`crate::local::hashed`].
pub fn is_content_hashed(rel: &str) -> bool {
    crate::local::hashed::is_content_hashed(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hashed_names() {
        let hashed = [
            "assets/app.3f2a9c1b.js",
            "assets/chunk-BX7a9_kq.js",
            "assets/index-D4nq1Xk_.css",
            "css/main.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.css",
            "app-1f2e3d4c5b6a7980_bg.wasm",
            "static/js/main.8c1f2e0a.chunk.js",
            "assets/app.3f2a9c1b.js.map",
        ];
        for name in hashed {
            assert!(is_content_hashed(name), "{name} should count as hashed");
        }
        let plain = [
            "index.html",
            "favicon.ico",
            "jquery-3.7.1.min.js",
            "fonts/roboto-v30-latin-regular.woff2",
            "img/logo-2x.png",
            "my-Document.pdf",
            "archive-20241124.zip",
            "deadbeefcafe.txt",
            "robots.txt",
            ".well-known/security.txt",
            "Makefile",
            "app.js.map",
        ];
        for name in plain {
            assert!(
                !is_content_hashed(name),
                "{name} should not count as hashed"
            );
        }
    }

    #[test]
    fn content_types() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("a/b/style.CSS", "text/css; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            ("icon.svg", "image/svg+xml; charset=utf-8"),
            ("photo.jpg", "image/jpeg"),
            ("img.png", "image/png"),
            ("pic.webp", "image/webp"),
            ("pic.avif", "image/avif"),
            ("app_bg.wasm", "application/wasm"),
            (
                "site.webmanifest",
                "application/manifest+json; charset=utf-8",
            ),
            ("font.woff2", "font/woff2"),
            ("LICENSE", "application/octet-stream"),
            (".well-known/security.txt", "text/plain; charset=utf-8"),
            ("file.unknownext", "application/octet-stream"),
        ];
        for (name, want) in cases {
            assert_eq!(content_type(name), want, "{name}");
        }
    }

    #[test]
    fn default_cache_control() {
        let h = default_headers("assets/app.3f2a9c1b.js");
        assert_eq!(h.cache_control.as_deref(), Some(IMMUTABLE));
        let h = default_headers("blog/index.html");
        assert_eq!(h.cache_control.as_deref(), Some(REVALIDATE));
        assert_eq!(h.content_type, "text/html; charset=utf-8");
        // An HTML page is never immutable, whatever its name looks like.
        let h = default_headers("page-3f2a9c1b.html");
        assert_eq!(h.cache_control.as_deref(), Some(REVALIDATE));
        let h = default_headers("img/logo.png");
        assert_eq!(h.cache_control.as_deref(), Some(REVALIDATE));
    }

    #[test]
    fn new_fields_keep_old_encodings() {
        // A manifest written before these fields existed decodes to the same headers, and
        // encodes back byte for byte, so upgrading the tool re-uploads nothing.
        let old = r#"{"content-type":"text/css; charset=utf-8","cache-control":"public, max-age=0, must-revalidate"}"#;
        let h: Headers = serde_json::from_str(old).unwrap();
        assert_eq!(h, default_headers("a.css"));
        assert_eq!(serde_json::to_string(&h).unwrap(), old);
    }

    #[test]
    fn new_fields_round_trip() {
        let h = Headers {
            content_encoding: Some("gzip".into()),
            content_disposition: Some("attachment".into()),
            content_language: Some("de-CH".into()),
            gzip: true,
            ..Headers::new("text/plain")
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(
            json,
            r#"{"content-type":"text/plain","content-encoding":"gzip","content-disposition":"attachment","content-language":"de-CH","gzip":true}"#
        );
        assert_eq!(serde_json::from_str::<Headers>(&json).unwrap(), h);
        let plain = Headers::new("text/plain");
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"content-type":"text/plain"}"#
        );
        assert_ne!(plain, h);
    }

    #[test]
    fn html_detection() {
        assert!(is_html("index.html"));
        assert!(is_html("a/B.HTM"));
        assert!(!is_html("a.html.gz"));
        assert!(!is_html("html"));
    }
}
