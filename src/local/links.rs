//! The reference check: every same-site file a page (or a stylesheet) about to be deployed
//! makes the browser fetch must be in the build or still kept in the bucket. Reads the pages
//! from the build folder, all cores at once; a missing target is reported with the page, the
//! line and the reference as written.

use std::collections::HashSet;
use std::path::Path;

use rayon::prelude::*;

use crate::local::refs::{css_references, html_references, line_number, resolve, Site};

/// A page or stylesheet to check (borrowed: a first deploy may check 100,000 pages).
pub struct Source<'a> {
    /// The build folder.
    pub root: &'a Path,
    /// Path relative to the build folder, with `/`.
    pub rel: &'a str,
    pub css: bool,
}

/// A reference whose target is neither in the build nor kept in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The page or stylesheet, relative to the build folder, and the line of the reference.
    pub rel: String,
    pub line: usize,
    pub kind: &'static str,
    pub reference: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} {:?} is neither in the build nor kept in the bucket",
            self.rel, self.line, self.kind, self.reference
        )
    }
}

/// Checks `sources`; `exists` holds every build-relative path the site will serve (the build's
/// files, and those the bucket keeps: retired assets, files left in place). A file that cannot be
/// read or parsed is skipped: the upload reports read errors, and a page that does not parse as
/// HTML names nothing to check.
pub fn check(sources: &[Source], exists: &HashSet<&str>, site: &Site) -> Vec<Broken> {
    let mut broken: Vec<Broken> = sources
        .par_iter()
        .flat_map_iter(|s| check_one(s, exists, site))
        .collect();
    broken.sort_by(|a, b| (&a.rel, a.line, &a.reference).cmp(&(&b.rel, b.line, &b.reference)));
    broken.dedup();
    broken
}

fn check_one(source: &Source, exists: &HashSet<&str>, site: &Site) -> Vec<Broken> {
    let Ok(bytes) = std::fs::read(source.root.join(source.rel)) else {
        return Vec::new();
    };
    let (refs, base) = if source.css {
        (css_references(&String::from_utf8_lossy(&bytes)), None)
    } else {
        match html_references(&bytes) {
            Ok(page) => (page.refs, page.base_href),
            Err(_) => return Vec::new(),
        }
    };
    refs.into_iter()
        .filter_map(|r| {
            let target = resolve(site, source.rel, base.as_deref(), &r.raw)?;
            let found = target
                .candidates()
                .iter()
                .any(|c| exists.contains(c.as_str()));
            (!found).then(|| Broken {
                rel: source.rel.to_string(),
                line: line_number(&bytes, r.offset),
                kind: r.kind.as_str(),
                reference: r.raw,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_references_name_the_page_line_and_reference() {
        let tmp = tempfile::tempdir().expect("tmp");
        let page = tmp.path().join("index.html");
        std::fs::write(
            &page,
            "<!doctype html>\n<link rel=stylesheet href=/app.css>\n<script src=/gone.js></script>\n<img src=https://elsewhere.net/x.png>",
        )
        .expect("w");
        let css = tmp.path().join("app.css");
        std::fs::write(&css, "body{background:url(img/bg.png)}").expect("w");
        let sources = vec![
            Source {
                root: tmp.path(),
                rel: "index.html",
                css: false,
            },
            Source {
                root: tmp.path(),
                rel: "app.css",
                css: true,
            },
        ];
        let exists: HashSet<&str> = ["index.html", "app.css"].into_iter().collect();
        let broken = check(&sources, &exists, &Site::new(["www.example.com"]));
        let shown: Vec<String> = broken.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "app.css:1: css url \"img/bg.png\" is neither in the build nor kept in the bucket",
                "index.html:3: script \"/gone.js\" is neither in the build nor kept in the bucket",
            ]
        );
    }
}
