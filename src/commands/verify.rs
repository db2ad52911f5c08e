//! Proof through the CDN: every URL form of the changed files (or of every file) fetched through
//! the distribution's public domain with `Accept-Encoding: identity`, and compared with what the
//! manifest says was uploaded; deleted files must no longer be served. After a deploy
//! (`--verify`) and as the `verify` subcommand.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::commands::deploy::Session;
use crate::commands::execute::Executed;
use crate::decide::distribution::Serving;
use crate::decide::invalidation::{url_paths, Distribution};
use crate::decide::plan::{DeleteKind, Outcome};
use crate::error::Error;
use crate::output::progress::Reporter;
use crate::settings::Settings;
use crate::state::entry::{Entry, Sha};

/// What one URL must serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// These bytes (sha256 of the source; a gzip-stored body is decompressed to compare).
    Body { sha256: Sha, gzip: bool },
    /// Nothing: the file was deleted (any 4xx).
    Gone,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub key: String,
    /// Encoded URL path, as the invalidation names it.
    pub path: String,
    pub want: Want,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The base URL fetched through.
    pub base: String,
    pub checked: usize,
    pub stale: Vec<Stale>,
    /// URL forms that cannot be fetched exactly (names with `*`, `~` or `?`).
    pub skipped: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stale {
    pub url: String,
    pub key: String,
    /// `new bytes` or `gone`.
    pub expected: &'static str,
    /// What was served: status, ETag, Age and X-Cache.
    pub served: String,
}

/// The URL forms of each key on a distribution, with what each must serve (`None`: deleted).
pub fn expectations(serving: &Serving, keys: &[(String, Option<Entry>)]) -> (Vec<Expect>, usize) {
    let dist = Distribution {
        id: serving.id.clone(),
        origin_path: serving.origin_path.clone(),
    };
    let mut out = Vec::new();
    let mut skipped = 0;
    for (key, entry) in keys {
        let want = match entry {
            Some(e) if e.is_live() => match e.sha256 {
                Some(sha256) => Want::Body {
                    sha256,
                    gzip: e.headers.gzip,
                },
                // Unverified: nothing to compare against.
                None => continue,
            },
            Some(_) => continue,
            None => Want::Gone,
        };
        for path in url_paths(&dist, key) {
            if path.ends_with('*') {
                skipped += 1;
                continue;
            }
            out.push(Expect {
                key: key.clone(),
                path,
                want: want.clone(),
            });
        }
    }
    (out, skipped)
}

/// Whether a response satisfies the expectation. `sha256` is of the body as served, or of its
/// decompressed bytes for a gzip-stored file.
pub fn fresh(want: &Want, status: u16, sha256: Option<&Sha>) -> bool {
    match want {
        Want::Body { sha256: w, .. } => status == 200 && sha256 == Some(w),
        Want::Gone => (400..500).contains(&status),
    }
}

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

fn client() -> Result<Client<Https, Empty<Bytes>>, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| Error::Usage(format!("cannot load the system's TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

struct Served {
    status: u16,
    sha256: Option<Sha>,
    summary: String,
}

/// One GET, the body hashed as it streams (decompressed when `gzip` and served gzip-encoded).
async fn fetch(
    client: &Client<Https, Empty<Bytes>>,
    url: &str,
    gzip: bool,
    timeout: Duration,
) -> Result<Served, String> {
    let request = hyper::Request::get(url)
        .header("accept-encoding", "identity")
        .header(
            "user-agent",
            concat!("cdn-deploy/", env!("CARGO_PKG_VERSION"), " verify"),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad URL {url}: {e}"))?;
    let work = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| crate::cloud::errors::chain_text(&e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let encoded = header("content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let mut summary = format!("HTTP {status}");
        for name in ["etag", "age", "x-cache"] {
            if let Some(v) = header(name) {
                summary.push_str(&format!(", {name}: {v}"));
            }
        }
        let mut plain = Sha256::new();
        let mut unzip =
            (gzip && encoded).then(|| flate2::write::GzDecoder::new(Hashing(Sha256::new())));
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| crate::cloud::errors::chain_text(&e))?;
            if let Some(data) = frame.data_ref() {
                match unzip.as_mut() {
                    Some(z) => z
                        .write_all(data)
                        .map_err(|e| format!("bad gzip body: {e}"))?,
                    None => plain.update(data),
                }
            }
        }
        let sha256: Sha = match unzip {
            Some(z) => z
                .finish()
                .map_err(|e| format!("bad gzip body: {e}"))?
                .0
                .finalize()
                .into(),
            None => plain.finalize().into(),
        };
        Ok(Served {
            status,
            sha256: Some(sha256),
            summary,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
}

struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Fetches every expectation through `base`, `concurrency` at a time, each retried twice on
/// a connection error or a 5xx.
pub async fn check(
    base: &str,
    expects: Vec<Expect>,
    skipped: usize,
    concurrency: usize,
    timeout: Duration,
) -> Result<Verified, Error> {
    let client = Arc::new(client()?);
    let base = base.trim_end_matches('/').to_string();
    let checked = expects.len();
    let results: Vec<Option<Stale>> = stream::iter(expects)
        .map(|e| {
            let client = Arc::clone(&client);
            let url = format!("{base}{}", e.path);
            async move {
                let gzip = matches!(e.want, Want::Body { gzip: true, .. });
                let mut last = String::new();
                for attempt in 0..3u32 {
                    match fetch(&client, &url, gzip, timeout).await {
                        Ok(s) if s.status >= 500 && attempt < 2 => last = s.summary,
                        Ok(s) => {
                            return (!fresh(&e.want, s.status, s.sha256.as_ref())).then(|| Stale {
                                url,
                                key: e.key,
                                expected: match e.want {
                                    Want::Body { .. } => "new bytes",
                                    Want::Gone => "gone",
                                },
                                served: if s.status == 200 && matches!(e.want, Want::Body { .. }) {
                                    format!("{} (other bytes)", s.summary)
                                } else {
                                    s.summary
                                },
                            });
                        }
                        Err(why) => last = why,
                    }
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
                Some(Stale {
                    url,
                    key: e.key,
                    expected: match e.want {
                        Want::Body { .. } => "new bytes",
                        Want::Gone => "gone",
                    },
                    served: format!("no answer: {last}"),
                })
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut stale: Vec<Stale> = results.into_iter().flatten().collect();
    stale.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(Verified {
        base,
        checked,
        stale,
        skipped,
    })
}

/// The base URL for a distribution: `--verify-url`, else `https://` and its public host.
pub fn base_url(settings: &Settings, serving: &Serving) -> String {
    settings
        .verify_url
        .clone()
        .unwrap_or_else(|| format!("https://{}", serving.host))
}

/// `--verify`: the deploy's changes, through every distribution it invalidated.
pub async fn after_deploy(
    settings: &Settings,
    session: &Session,
    done: &Executed,
    reporter: &Reporter,
) -> Result<Verified, Error> {
    let mut keys: Vec<(String, Option<Entry>)> = Vec::new();
    for (w, o) in done.plan.writes.iter().zip(&done.outcomes.writes) {
        if *o == Outcome::Done {
            let e = Entry::live(w.sha256, w.size, Arc::clone(&w.headers));
            keys.push((w.key.to_string(), Some(e)));
        }
    }
    for (d, o) in done.plan.deletes.iter().zip(&done.outcomes.deletes) {
        if *o == Outcome::Done && d.kind == DeleteKind::Removed {
            keys.push((d.key.clone(), None));
        }
    }
    through_all(settings, session, &keys, reporter).await
}

/// Checks `keys` through each distribution; the stale lists are merged.
pub async fn through_all(
    settings: &Settings,
    session: &Session,
    keys: &[(String, Option<Entry>)],
    reporter: &Reporter,
) -> Result<Verified, Error> {
    if session.servings.is_empty() {
        return Err(Error::Usage(
            "verify needs the distribution that serves the site: pass --domain or --distribution"
                .into(),
        ));
    }
    let mut all = Verified::default();
    for serving in &session.servings {
        let (expects, skipped) = expectations(serving, keys);
        let base = base_url(settings, serving);
        reporter.line(&format!("verifying {} URLs through {base}", expects.len()));
        let v = check(
            &base,
            expects,
            skipped,
            settings.concurrency,
            settings.aws.timeout,
        )
        .await?;
        all.base = if all.base.is_empty() {
            v.base
        } else {
            format!("{}, {}", all.base, v.base)
        };
        all.checked += v.checked;
        all.skipped += v.skipped;
        all.stale.extend(v.stale);
    }
    Ok(all)
}

/// The `verify` subcommand: the last deploy's changes (or, with `--all`, every file) through
/// the distribution, compared with the manifest.
pub async fn command(settings: &Settings, all: bool) -> Result<u8, Error> {
    let reporter = Reporter::new(settings.verbosity, false);
    let session = crate::commands::deploy::connect(settings, &reporter).await?;
    let bucket = &session.bucket;
    let mut view = crate::commands::remote::read_root(bucket, &session.target.layout).await?;
    let last = view.root.history.last().cloned();
    let changed: Option<Vec<String>> = match (&last, all) {
        (Some(h), false) => Some(match &h.reverse {
            crate::state::format::Reverse::Inline(m) => m.keys().cloned().collect(),
            crate::state::format::Reverse::Stored { key, at, len, .. } => {
                crate::commands::remote::read_reverse(bucket, &view.layout, key, *at, *len)
                    .await?
                    .entries
                    .into_keys()
                    .collect()
            }
        }),
        _ => None,
    };
    if changed.is_none() && !all {
        reporter.line("no deploy is recorded in the history: checking every file");
    }
    let unread = view.unread();
    let needed: Vec<usize> = match &changed {
        Some(keys) => {
            let mut set: Vec<usize> = keys.iter().filter_map(|k| view.chunk_of(k)).collect();
            set.sort_unstable();
            set.dedup();
            set.retain(|i| unread.contains(i));
            set
        }
        None => unread,
    };
    crate::commands::remote::read_chunks(bucket, &mut view, &needed).await?;
    let keys: Vec<(String, Option<Entry>)> = match changed {
        Some(keys) => keys
            .into_iter()
            .filter(|k| !view.layout.is_reserved(k))
            .map(|k| {
                let e = view.current(&k).cloned();
                (k, e)
            })
            .collect(),
        None => view
            .known()
            .into_iter()
            .filter(|(k, e)| e.is_live() && !view.layout.is_reserved(k))
            .map(|(k, e)| (k.clone(), Some(e.clone())))
            .collect(),
    };
    let verified = through_all(settings, &session, &keys, &reporter).await?;
    let exit = if verified.stale.is_empty() {
        crate::error::code::OK
    } else {
        crate::error::code::STALE
    };
    if settings.json {
        crate::output::report::print_json(&verified);
    } else {
        print!("{}", crate::output::report::verified(&verified));
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::headers::default_headers;

    fn serving() -> Serving {
        Serving {
            id: "E1".into(),
            bucket: "b".into(),
            origin_path: String::new(),
            host: "www.example.com".into(),
        }
    }

    #[test]
    fn every_url_form_and_deleted_files() {
        let page = Entry::live([1; 32], 3, Arc::new(default_headers("blog/index.html")));
        let keys = vec![
            ("blog/index.html".to_string(), Some(page)),
            ("old.html".to_string(), None),
            ("a~b.html".to_string(), None),
        ];
        let (ex, skipped) = expectations(&serving(), &keys);
        let paths: Vec<&str> = ex.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/blog/index.html", "/blog/", "/blog", "/old.html"]);
        assert_eq!(ex[3].want, Want::Gone);
        assert_eq!(skipped, 1, "a name with ~ cannot be fetched exactly");
    }

    #[test]
    fn fresh_means_the_bytes_or_gone() {
        let want = Want::Body {
            sha256: [1; 32],
            gzip: false,
        };
        assert!(fresh(&want, 200, Some(&[1; 32])));
        assert!(!fresh(&want, 200, Some(&[2; 32])));
        assert!(!fresh(&want, 404, None));
        assert!(fresh(&Want::Gone, 404, None));
        assert!(fresh(&Want::Gone, 403, None));
        assert!(!fresh(&Want::Gone, 200, Some(&[1; 32])));
    }
}
