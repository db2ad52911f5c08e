//! Where settings come from besides the command line: `cdn-deploy.toml`, the `"cdn-deploy"` key
//! of package.json, `[package.metadata.cdn-deploy]` in Cargo.toml and `CDN_DEPLOY_*` variables;
//! finding them, validating their keys and types, named targets, and layering them by precedence
//! with a record of which source set each value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Every key a configuration source may set, with what it holds (for messages).
pub const KEYS: &[(&str, Kind)] = &[
    ("dir", Kind::Path),
    ("bucket", Kind::Text),
    ("prefix", Kind::Text),
    ("distribution", Kind::List),
    ("domain", Kind::Text),
    ("region", Kind::Text),
    ("profile", Kind::Text),
    ("endpoint-url", Kind::Text),
    ("include", Kind::List),
    ("exclude", Kind::List),
    ("manifest-key", Kind::Text),
    ("max-delete", Kind::Count),
    ("delete", Kind::Bool),
    ("concurrency", Kind::Count),
    ("max-paths", Kind::Count),
    ("invalidate", Kind::Bool),
    ("wait", Kind::Bool),
    ("wait-timeout", Kind::Duration),
    ("lock-ttl", Kind::Duration),
    ("lock-wait", Kind::Duration),
    ("timeout", Kind::Duration),
    ("keep-old-assets", Kind::Duration),
    ("keep-deploys", Kind::Count),
    ("allow-mass-delete", Kind::Bool),
    ("allow-project-dir", Kind::Bool),
    ("delete-excluded", Kind::Bool),
    ("immutable", Kind::List),
    ("verify", Kind::Bool),
    ("verify-url", Kind::Text),
    ("strict", Kind::Bool),
    ("default-headers", Kind::Bool),
    ("headers", Kind::Rules),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Path,
    Text,
    /// A string or an array of strings.
    List,
    Count,
    /// A duration: `30s`, `5m`, `12h`, `7d`, or a whole number of seconds.
    Duration,
    Bool,
    /// An array of header rule tables.
    Rules,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Path => "a folder path (string)",
            Kind::Text => "a string",
            Kind::List => "a string or an array of strings",
            Kind::Count => "a whole number",
            Kind::Duration => {
                "a duration such as \"30s\", \"12h\" or \"7d\" (or a number of seconds)"
            }
            Kind::Bool => "true or false",
            Kind::Rules => "an array of tables, each with a `glob`",
        }
    }
}

/// Where a value came from, as `-v` and error messages name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `cdn-deploy.toml`, `package.json "cdn-deploy"`, `--bucket`, `CDN_DEPLOY_BUCKET`…
    pub label: String,
    /// Relative paths set here resolve against this folder (the file's own).
    pub base: Option<PathBuf>,
}

/// One source's values, already validated.
#[derive(Clone, Debug)]
pub struct Layer {
    pub origin: Origin,
    pub values: Map<String, Value>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("{origin}: unknown key `{key}`{}", suggestion(.nearest))]
    UnknownKey {
        origin: String,
        key: String,
        nearest: Option<String>,
    },
    #[error("{origin}: `{key}` must be {expected}, not {found}")]
    WrongType {
        origin: String,
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("{origin}: `{key}` must be between {min} and {max}")]
    OutOfRange {
        origin: String,
        key: String,
        min: u64,
        max: u64,
    },
    #[error("no target named {name:?}: {}", known_targets(.known))]
    UnknownTarget { name: String, known: Vec<String> },
    #[error("cannot read {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("{path} is not valid {format}: {message}")]
    Syntax {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("cannot read the Cargo package metadata: {0}")]
    Cargo(String),
}

fn suggestion(nearest: &Option<String>) -> String {
    match nearest {
        Some(k) => format!("; did you mean `{k}`?"),
        None => format!(
            "; valid keys are {}",
            KEYS.iter()
                .map(|(k, _)| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn known_targets(known: &[String]) -> String {
    if known.is_empty() {
        "no configuration defines any `targets`".into()
    } else {
        format!("the known targets are {}", known.join(", "))
    }
}

/// The closest valid key, for typos like `buckt` or `max_delete`.
fn nearest(key: &str, candidates: &[&str]) -> Option<String> {
    let normalized = key.replace('_', "-").to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&normalized, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c.to_string())
}

/// Checks the keys and the type of every value of one table (a file's base table or one of its
/// targets).
pub fn validate(origin: &str, table: &Map<String, Value>) -> Result<(), SourceError> {
    for (key, value) in table {
        let Some((_, kind)) = KEYS.iter().find(|(k, _)| k == key) else {
            let names: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
            return Err(SourceError::UnknownKey {
                origin: origin.to_string(),
                key: key.clone(),
                nearest: nearest(key, &names),
            });
        };
        check_type(origin, key, *kind, value)?;
    }
    Ok(())
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a table".into(),
    }
}

fn check_type(origin: &str, key: &str, kind: Kind, value: &Value) -> Result<(), SourceError> {
    let ok = match kind {
        Kind::Path | Kind::Text => value.is_string(),
        Kind::List => {
            value.is_string()
                || value
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string))
        }
        Kind::Count => value.is_u64(),
        Kind::Duration => {
            value.is_u64() || value.as_str().is_some_and(|s| parse_duration(s).is_some())
        }
        Kind::Bool => value.is_boolean(),
        Kind::Rules => value.as_array().is_some_and(|a| {
            a.iter()
                .all(|r| r.get("glob").is_some_and(Value::is_string))
        }),
    };
    if ok {
        Ok(())
    } else {
        Err(SourceError::WrongType {
            origin: origin.to_string(),
            key: key.to_string(),
            expected: kind.describe(),
            found: type_name(value),
        })
    }
}

/// A configuration file's table: its base keys and its named targets.
#[derive(Clone, Debug, Default)]
pub struct FileTable {
    pub label: String,
    pub base_dir: PathBuf,
    pub table: Map<String, Value>,
}

impl FileTable {
    /// The layers this file contributes: its base keys, then the target's (which override).
    pub fn layers(&self, target: Option<&str>) -> Result<Vec<Layer>, SourceError> {
        let mut base = self.table.clone();
        let targets = base.remove("targets");
        validate(&self.label, &base)?;
        let mut out = vec![Layer {
            origin: Origin {
                label: self.label.clone(),
                base: Some(self.base_dir.clone()),
            },
            values: base,
        }];
        let targets = match targets {
            None => Map::new(),
            Some(Value::Object(t)) => t,
            Some(other) => {
                return Err(SourceError::WrongType {
                    origin: self.label.clone(),
                    key: "targets".into(),
                    expected: "a table of named targets",
                    found: type_name(&other),
                })
            }
        };
        for (name, table) in &targets {
            let label = format!("{} target {name:?}", self.label);
            let Value::Object(table) = table else {
                return Err(SourceError::WrongType {
                    origin: label,
                    key: name.clone(),
                    expected: "a table",
                    found: type_name(table),
                });
            };
            validate(&label, table)?;
            if Some(name.as_str()) == target {
                out.push(Layer {
                    origin: Origin {
                        label,
                        base: Some(self.base_dir.clone()),
                    },
                    values: table.clone(),
                });
            }
        }
        Ok(out)
    }

    pub fn target_names(&self) -> Vec<String> {
        match self.table.get("targets") {
            Some(Value::Object(t)) => t.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// Reads `cdn-deploy.toml` (the whole file is the table).
pub fn read_toml(path: &Path) -> Result<FileTable, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let table: Map<String, Value> = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        SourceError::Syntax {
            path: path.to_path_buf(),
            format: "TOML",
            message: format!("{at}{}", e.message()),
        }
    })?;
    Ok(FileTable {
        label: display(path),
        base_dir: parent(path),
        table,
    })
}

/// Reads the `"cdn-deploy"` key of a package.json; `None` when it has none.
pub fn read_package_json(path: &Path) -> Result<Option<FileTable>, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|e| SourceError::Syntax {
        path: path.to_path_buf(),
        format: "JSON",
        message: e.to_string(),
    })?;
    let label = format!("{} \"cdn-deploy\"", display(path));
    match json.get("cdn-deploy") {
        None => {
            // A settings block under a misspelt key would be ignored whole: say so instead.
            let squash = |k: &str| k.to_ascii_lowercase().replace(['-', '_', ' '], "");
            let near = json.as_object().and_then(|o| {
                o.keys()
                    .find(|k| squash(k) == "cdndeploy" || strsim::levenshtein(k, "cdn-deploy") <= 2)
            });
            match near {
                Some(k) => Err(SourceError::UnknownKey {
                    origin: display(path),
                    key: k.clone(),
                    nearest: Some("cdn-deploy".into()),
                }),
                None => Ok(None),
            }
        }
        Some(Value::Object(table)) => Ok(Some(FileTable {
            label,
            base_dir: parent(path),
            table: table.clone(),
        })),
        Some(other) => Err(SourceError::WrongType {
            origin: display(path),
            key: "cdn-deploy".into(),
            expected: "an object",
            found: type_name(other),
        }),
    }
}

/// Reads `[package.metadata.cdn-deploy]` through `cargo metadata`, which knows workspaces:
/// the package named by `-p`, else the one whose folder holds `cwd`, else the root package.
pub fn read_cargo(
    manifest_path: Option<&Path>,
    package: Option<&str>,
    cwd: &Path,
) -> Result<Option<FileTable>, SourceError> {
    let mut cmd = cargo_metadata::MetadataCommand::new();
    cmd.no_deps();
    if let Some(p) = manifest_path {
        cmd.manifest_path(p);
    } else {
        cmd.current_dir(cwd);
    }
    let meta = match cmd.exec() {
        Ok(meta) => meta,
        // No cargo on this machine (a web project's CI image in a mixed repository): there is
        // then no Cargo source, and the other sources decide.
        Err(cargo_metadata::Error::Io(_)) => return Ok(None),
        Err(e) => return Err(SourceError::Cargo(cargo_message(&e.to_string()))),
    };
    let chosen = match package {
        Some(name) => meta
            .packages
            .iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| {
                SourceError::Cargo(format!(
                    "no package named {name:?} in the workspace (it has {})",
                    meta.packages
                        .iter()
                        .map(|p| p.name.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
        None => {
            // The package of an explicit --manifest-path, else the one whose folder holds the
            // current folder, else the workspace's root package.
            let named = manifest_path.and_then(|m| {
                let m = m.canonicalize().ok()?;
                meta.packages.iter().find(|p| {
                    p.manifest_path.as_std_path().canonicalize().ok().as_ref() == Some(&m)
                })
            });
            let containing = meta
                .packages
                .iter()
                .filter(|p| {
                    p.manifest_path
                        .parent()
                        .is_some_and(|d| cwd.starts_with(d.as_std_path()))
                })
                .max_by_key(|p| p.manifest_path.as_str().len());
            match named.or(containing).or_else(|| meta.root_package()) {
                Some(p) => p,
                None => return Ok(None),
            }
        }
    };
    let path = chosen.manifest_path.as_std_path().to_path_buf();
    match chosen.metadata.get("cdn-deploy") {
        None => Ok(None),
        Some(Value::Object(table)) => Ok(Some(FileTable {
            label: format!("{} [package.metadata.cdn-deploy]", display(&path)),
            base_dir: parent(&path),
            table: table.clone(),
        })),
        Some(other) => Err(SourceError::WrongType {
            origin: display(&path),
            key: "package.metadata.cdn-deploy".into(),
            expected: "a table",
            found: type_name(other),
        }),
    }
}

/// Cargo's error as one line: its `error:` line when there is one, never a backtrace.
fn cargo_message(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let chosen = lines
        .iter()
        .find(|l| l.starts_with("error:"))
        .or_else(|| lines.first())
        .copied()
        .unwrap_or("cargo metadata failed");
    chosen.trim_start_matches("error:").trim().to_string()
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The nearest file called `name` in `start` or a folder above it, not looking past the root
/// of a git repository (a stray file in a home folder must not configure every project).
pub fn find_up(start: &Path, name: &str) -> Option<PathBuf> {
    for dir in start.ancestors() {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
        if dir.join(".git").exists() {
            return None;
        }
    }
    None
}

/// `CDN_DEPLOY_*` variables as a layer: `CDN_DEPLOY_MAX_DELETE=10` sets `max-delete`. Lists are
/// comma-separated; numbers and booleans are parsed, so type errors name the variable.
pub fn env_layer(vars: &[(String, String)]) -> Result<Vec<Layer>, SourceError> {
    let mut layers = Vec::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("CDN_DEPLOY_") else {
            continue;
        };
        // Variables the tool reads for other purposes.
        if matches!(
            rest,
            "LAUNCHER" | "LOCK_HOLDER" | "BINARY_PATH" | "TARGET" | "CONFIG"
        ) || raw.is_empty()
        {
            continue;
        }
        let key = rest.to_ascii_lowercase().replace('_', "-");
        let Some((_, kind)) = KEYS.iter().find(|(k, _)| *k == key) else {
            // A near miss is a typo worth stopping for; anything else may be the project's own
            // variable that merely shares the prefix.
            let names: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
            match nearest(&key, &names) {
                Some(k) => {
                    return Err(SourceError::UnknownKey {
                        origin: "the environment".into(),
                        key: name.clone(),
                        nearest: Some(format!(
                            "CDN_DEPLOY_{}",
                            k.to_ascii_uppercase().replace('-', "_")
                        )),
                    })
                }
                None => continue,
            }
        };
        let value = match kind {
            Kind::Count | Kind::Duration => raw
                .trim()
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(raw.trim().to_string())),
            Kind::Bool => match raw.trim() {
                "1" | "true" | "yes" => Value::Bool(true),
                "0" | "false" | "no" => Value::Bool(false),
                _ => Value::String(raw.clone()),
            },
            Kind::List => Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ),
            Kind::Rules => {
                return Err(SourceError::WrongType {
                    origin: name.clone(),
                    key,
                    expected: "set in a configuration file",
                    found: "an environment variable".into(),
                })
            }
            Kind::Path | Kind::Text => Value::String(raw.clone()),
        };
        let mut values = Map::new();
        values.insert(key.clone(), value);
        validate(name, &values)?;
        layers.push(Layer {
            origin: Origin {
                label: name.clone(),
                base: None,
            },
            values,
        });
    }
    Ok(layers)
}

/// The effective value of every key set anywhere, with the source that set it: later layers
/// win, and lists replace (never merge with) the lists of earlier layers.
pub fn merge(layers: &[Layer]) -> BTreeMap<String, (Value, Origin)> {
    let mut out = BTreeMap::new();
    for layer in layers {
        for (k, v) in &layer.values {
            out.insert(k.clone(), (v.clone(), layer.origin.clone()));
        }
    }
    out
}

/// `30s`, `12h`, `7d`, `1h30m`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(s).ok()
}

/// Checks a number against its allowed range, naming the key and its source.
pub fn in_range(
    key: &str,
    value: u64,
    origin: &Origin,
    min: u64,
    max: u64,
) -> Result<u64, SourceError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(SourceError::OutOfRange {
            origin: origin.label.clone(),
            key: key.to_string(),
            min,
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not a table"),
        }
    }

    #[test]
    fn validation_messages() {
        let cases = [
            (
                json!({"buckt": "x"}),
                "Cargo.toml [package.metadata.cdn-deploy]: unknown key `buckt`; did you mean `bucket`?",
            ),
            (
                json!({"max_delete": 3}),
                "Cargo.toml [package.metadata.cdn-deploy]: unknown key `max_delete`; did you mean `max-delete`?",
            ),
            (
                json!({"distributions": ["E1"]}),
                "Cargo.toml [package.metadata.cdn-deploy]: unknown key `distributions`; did you mean `distribution`?",
            ),
            (
                json!({"max-delete": "ten"}),
                "Cargo.toml [package.metadata.cdn-deploy]: `max-delete` must be a whole number, not the string \"ten\"",
            ),
            (
                json!({"distribution": [1]}),
                "Cargo.toml [package.metadata.cdn-deploy]: `distribution` must be a string or an array of strings, not an array",
            ),
            (
                json!({"headers": [{"cache-control": "x"}]}),
                "Cargo.toml [package.metadata.cdn-deploy]: `headers` must be an array of tables, each with a `glob`, not an array",
            ),
            (
                json!({"wait": "yes"}),
                "Cargo.toml [package.metadata.cdn-deploy]: `wait` must be true or false, not the string \"yes\"",
            ),
        ];
        for (value, want) in cases {
            let err = validate("Cargo.toml [package.metadata.cdn-deploy]", &table(value))
                .expect_err("invalid");
            assert_eq!(err.to_string(), want);
        }
        let err = validate("x", &table(json!({"zzzzzz": 1}))).expect_err("unknown");
        assert!(
            err.to_string().contains("valid keys are `dir`, `bucket`"),
            "{err}"
        );
    }

    #[test]
    fn targets_override_base_and_unknown_keys_inside_targets_fail() {
        let file = FileTable {
            label: "cdn-deploy.toml".into(),
            base_dir: PathBuf::from("/site"),
            table: table(json!({
                "bucket": "prod",
                "dir": "dist",
                "targets": {"staging": {"bucket": "staging"}, "qa": {"domain": "qa.example.com"}}
            })),
        };
        let layers = file.layers(Some("staging")).expect("layers");
        let merged = merge(&layers);
        assert_eq!(merged["bucket"].0, json!("staging"));
        assert_eq!(
            merged["bucket"].1.label,
            "cdn-deploy.toml target \"staging\""
        );
        assert_eq!(merged["dir"].1.label, "cdn-deploy.toml");
        assert_eq!(file.target_names(), ["qa", "staging"]);
        assert_eq!(
            merge(&file.layers(None).expect("base"))["bucket"].0,
            json!("prod")
        );

        let bad = FileTable {
            table: table(json!({"targets": {"staging": {"bukket": "x"}}})),
            ..file.clone()
        };
        let err = bad.layers(None).expect_err("bad key in a target");
        assert_eq!(
            err.to_string(),
            "cdn-deploy.toml target \"staging\": unknown key `bukket`; did you mean `bucket`?"
        );
    }

    #[test]
    fn precedence_is_layer_order_and_lists_replace() {
        let layer = |label: &str, v: Value| Layer {
            origin: Origin {
                label: label.into(),
                base: None,
            },
            values: table(v),
        };
        let merged = merge(&[
            layer(
                "Cargo.toml",
                json!({"bucket": "a", "exclude": ["*.map", "*.txt"], "dir": "target/dist"}),
            ),
            layer("package.json", json!({"bucket": "b"})),
            layer("cdn-deploy.toml", json!({"exclude": ["*.md"]})),
            layer("CDN_DEPLOY_BUCKET", json!({"bucket": "c"})),
            layer("--bucket", json!({"bucket": "d"})),
        ]);
        assert_eq!(
            merged["bucket"],
            (
                json!("d"),
                Origin {
                    label: "--bucket".into(),
                    base: None
                }
            )
        );
        assert_eq!(merged["exclude"].0, json!(["*.md"]));
        assert_eq!(merged["dir"].1.label, "Cargo.toml");
    }

    #[test]
    fn environment_variables() {
        let vars = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let layers = env_layer(&vars(&[
            ("CDN_DEPLOY_BUCKET", "site"),
            ("CDN_DEPLOY_DISTRIBUTION", "E1, E2"),
            ("CDN_DEPLOY_MAX_DELETE", "10"),
            ("CDN_DEPLOY_WAIT", "true"),
            ("CDN_DEPLOY_LAUNCHER", "npx"),
            ("OTHER", "x"),
        ]))
        .expect("env");
        let merged = merge(&layers);
        assert_eq!(merged["distribution"].0, json!(["E1", "E2"]));
        assert_eq!(merged["max-delete"].0, json!(10));
        assert_eq!(merged["wait"].0, json!(true));
        assert_eq!(merged["bucket"].1.label, "CDN_DEPLOY_BUCKET");
        assert_eq!(merged.len(), 4);
        let err = env_layer(&vars(&[("CDN_DEPLOY_MAX_DELETE", "many")])).expect_err("type");
        assert_eq!(
            err.to_string(),
            "CDN_DEPLOY_MAX_DELETE: `max-delete` must be a whole number, not the string \"many\""
        );
        let err = env_layer(&vars(&[("CDN_DEPLOY_BUCKIT", "x")])).expect_err("typo");
        assert!(
            err.to_string().contains("did you mean `CDN_DEPLOY_BUCKET`"),
            "{err}"
        );
    }

    #[test]
    fn files_are_found_up_to_the_repository_root() {
        let tmp = tempfile::tempdir().expect("tmp");
        let repo = tmp.path().join("repo");
        let deep = repo.join("site/src");
        std::fs::create_dir_all(&deep).expect("mkdir");
        std::fs::create_dir_all(repo.join(".git")).expect("git");
        std::fs::write(tmp.path().join("cdn-deploy.toml"), "bucket = 'outside'").expect("w");
        assert_eq!(
            find_up(&deep, "cdn-deploy.toml"),
            None,
            "stops at the repository root"
        );
        std::fs::write(repo.join("cdn-deploy.toml"), "bucket = 'inside'").expect("w");
        assert_eq!(
            find_up(&deep, "cdn-deploy.toml"),
            Some(repo.join("cdn-deploy.toml"))
        );
    }

    #[test]
    fn package_json_and_toml_syntax_errors_name_the_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let pj = tmp.path().join("package.json");
        std::fs::write(
            &pj,
            r#"{"name": "x", "cdn-deploy": {"bucket": "b", "dir": "out"}}"#,
        )
        .expect("w");
        let t = read_package_json(&pj).expect("read").expect("has key");
        assert_eq!(t.base_dir, tmp.path());
        assert!(t.label.ends_with("package.json \"cdn-deploy\""));
        std::fs::write(&pj, r#"{"name": "x"}"#).expect("w");
        assert!(read_package_json(&pj).expect("read").is_none());
        std::fs::write(&pj, r#"{"name": "#).expect("w");
        assert!(matches!(
            read_package_json(&pj),
            Err(SourceError::Syntax { format: "JSON", .. })
        ));
        let toml_path = tmp.path().join("cdn-deploy.toml");
        std::fs::write(&toml_path, "dir = \"dist\"\nbucket = ").expect("w");
        match read_toml(&toml_path) {
            Err(SourceError::Syntax {
                format: "TOML",
                message,
                ..
            }) => {
                assert!(message.starts_with("line 2, column 10: "), "{message}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&pj, r#"{"name": "x", "cdnDeploy": {"bucket": "b"}}"#).expect("w");
        let err = read_package_json(&pj).expect_err("misspelt key");
        assert!(
            err.to_string()
                .contains("unknown key `cdnDeploy`; did you mean `cdn-deploy`?"),
            "{err}"
        );
        assert_eq!(
            cargo_message("warning: x\nerror: rustup could not choose a version of cargo\nstack backtrace:\n 0: x"),
            "rustup could not choose a version of cargo"
        );
    }
}
