//! Telling a project folder from a build folder: a deploy of `.` instead of `dist/` would upload
//! `node_modules/` and delete every live page. What marks a project, and which build folder the
//! framework most likely meant.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::Error;

/// Names whose presence at the top of a folder says "project", not "built site".
const MARKERS: &[&str] = &[
    "package.json",
    "node_modules",
    "Cargo.toml",
    "Cargo.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    "bun.lock",
    "deno.lock",
    ".git",
];

/// Build folders by framework, from the project's package.json dependencies or Cargo.toml, in
/// the order they are checked.
const JS_FRAMEWORKS: &[(&str, &str, &str)] = &[
    ("next", "out", "Next.js static export"),
    ("nuxt", ".output/public", "Nuxt generate"),
    ("gatsby", "public", "Gatsby"),
    ("@sveltejs/kit", "build", "SvelteKit adapter-static"),
    ("astro", "dist", "Astro"),
    ("@docusaurus/core", "build", "Docusaurus"),
    ("vitepress", ".vitepress/dist", "VitePress"),
    ("@11ty/eleventy", "_site", "Eleventy"),
    ("hexo", "public", "Hexo"),
    ("react-scripts", "build", "Create React App"),
    ("vite", "dist", "Vite"),
    ("parcel", "dist", "Parcel"),
    ("webpack", "dist", "webpack"),
];

/// Folders that commonly hold a build, checked when no framework says which.
const COMMON: &[&str] = &[
    "dist",
    "build",
    "out",
    "public",
    "_site",
    "site",
    "book",
    "target/site",
];

/// What was found in a folder that looks like a project.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub found: Vec<String>,
    /// The folder most likely meant, and why.
    pub likely: Option<(String, String)>,
}

/// Judges a folder from what it holds; `exists` says whether a path under it exists,
/// `package_json` and `cargo_toml` are its manifests if any.
pub fn judge(
    names: &[String],
    package_json: Option<&Value>,
    cargo_toml: Option<&str>,
    exists: &dyn Fn(&str) -> bool,
) -> Option<Finding> {
    let found: Vec<String> = MARKERS
        .iter()
        .filter(|m| names.iter().any(|n| n == *m))
        .map(|m| {
            if matches!(*m, "node_modules" | ".git") {
                format!("{m}/")
            } else {
                (*m).to_string()
            }
        })
        .collect();
    if found.is_empty() {
        return None;
    }
    let has_dep = |name: &str| {
        package_json.is_some_and(|p| {
            ["dependencies", "devDependencies"]
                .iter()
                .any(|d| p.get(d).and_then(|m| m.get(name)).is_some())
        })
    };
    let mut likely = None;
    for (dep, folder, label) in JS_FRAMEWORKS {
        if has_dep(dep) {
            likely = Some(((*folder).to_string(), (*label).to_string()));
            break;
        }
    }
    if likely.is_none() {
        if let Some(cargo) = cargo_toml {
            let guess = if cargo.contains("leptos") {
                Some(("target/site", "Leptos"))
            } else if names.iter().any(|n| n == "Trunk.toml") || cargo.contains("yew") {
                Some(("dist", "Trunk"))
            } else {
                None
            };
            likely = guess.map(|(f, l)| (f.to_string(), l.to_string()));
        }
    }
    // A folder that exists beats a framework's default that does not.
    let present = likely.as_ref().is_some_and(|(f, _)| exists(f));
    if !present {
        if let Some(f) = COMMON.iter().find(|f| exists(&format!("{f}/index.html"))) {
            likely = Some(((*f).to_string(), "it holds an index.html".to_string()));
        } else if likely.is_none() {
            likely = COMMON
                .iter()
                .find(|f| exists(f))
                .map(|f| ((*f).to_string(), "it exists".to_string()));
        }
    }
    Some(Finding { found, likely })
}

/// Refuses (exit 5) a build folder that looks like a project root.
pub fn refuse_project_dir(dir: &Path) -> Result<(), Error> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let package_json: Option<Value> = std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).ok();
    let exists = |rel: &str| dir.join(rel).exists();
    let Some(finding) = judge(
        &names,
        package_json.as_ref(),
        cargo_toml.as_deref(),
        &exists,
    ) else {
        return Ok(());
    };
    let shown = |p: PathBuf| p.display().to_string();
    let likely = match &finding.likely {
        Some((folder, why)) => format!(
            "; the build is most likely in \"{}\" ({why}): pass that folder",
            shown(dir.join(folder))
        ),
        None => "; run your build and pass its output folder".to_string(),
    };
    Err(Error::Refused(format!(
        "refusing to deploy \"{}\": it looks like a project folder, not a build (it holds {}){likely}, or pass --allow-project-dir if this folder really is the site",
        dir.display(),
        finding.found.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn project_folders_and_their_build() {
        let pj = json!({"devDependencies": {"vite": "8.0.0"}});
        let f = judge(
            &names(&["package.json", "node_modules", "src", "dist", ".git"]),
            Some(&pj),
            None,
            &|p| p == "dist",
        )
        .expect("a project");
        assert_eq!(f.found, ["package.json", "node_modules/", ".git/"]);
        assert_eq!(f.likely, Some(("dist".into(), "Vite".into())));

        let next = json!({"dependencies": {"next": "15", "react": "19"}});
        let f = judge(&names(&["package.json"]), Some(&next), None, &|p| {
            p == "out"
        })
        .expect("p");
        assert_eq!(
            f.likely,
            Some(("out".into(), "Next.js static export".into()))
        );

        // The framework's folder is not there, but another one holds a site.
        let f = judge(&names(&["package.json"]), Some(&next), None, &|p| {
            p == "public/index.html"
        })
        .expect("p");
        assert_eq!(
            f.likely,
            Some(("public".into(), "it holds an index.html".into()))
        );

        let f = judge(
            &names(&["Cargo.toml", "Trunk.toml", "src"]),
            None,
            Some("[dependencies]\nyew = \"0.21\"\n"),
            &|_| false,
        )
        .expect("p");
        assert_eq!(f.likely, Some(("dist".into(), "Trunk".into())));
    }

    #[test]
    fn build_folders_pass() {
        assert_eq!(
            judge(
                &names(&["index.html", "assets", "favicon.ico"]),
                None,
                None,
                &|_| false
            ),
            None
        );
    }

    #[test]
    fn the_message_names_what_was_found_and_the_way_out() {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::write(
            tmp.path().join("package.json"),
            r#"{"devDependencies": {"astro": "5"}}"#,
        )
        .expect("w");
        std::fs::create_dir_all(tmp.path().join("dist")).expect("mkdir");
        let err = refuse_project_dir(tmp.path()).expect_err("refused");
        assert_eq!(err.exit_code(), 5);
        let text = err.to_string();
        assert!(text.contains("it holds package.json"), "{text}");
        assert!(text.contains("dist\" (Astro)"), "{text}");
        assert!(text.contains("--allow-project-dir"), "{text}");
        let site = tempfile::tempdir().expect("tmp");
        std::fs::write(site.path().join("index.html"), "<p>").expect("w");
        assert!(refuse_project_dir(site.path()).is_ok());
    }
}
