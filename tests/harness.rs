//! The test ground itself: moto, its request log, the fault proxy and the fixture copies work,
//! without involving the CLI.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use support::{copy_fixture, moto, rt, unique_bucket, FaultProxy, Request};

fn request(method: &str, path: String, status: u16) -> Request {
    Request {
        method: method.to_string(),
        path,
        status,
    }
}

#[test]
fn request_log_counts_only_the_given_bucket() {
    let m = moto();
    let bucket = unique_bucket("harness");
    // Its name starts with `bucket`'s: a prefix match would count its requests too.
    let longer = format!("{bucket}0");
    let key = "blog/café-au-lait/index.html";
    let encoded = "blog/caf%C3%A9-au-lait/index.html";

    rt().block_on(async {
        m.create_bucket(&bucket).await;
        m.create_bucket(&longer).await;
    });
    let mark = m.mark();
    rt().block_on(async {
        m.put(&bucket, key, "<p>café</p>").await;
        let (body, head) = m.get(&bucket, key).await;
        assert_eq!(body, "<p>café</p>".as_bytes());
        assert!(head.etag.is_some(), "GetObject returns an ETag: {head:?}");
        assert!(m.try_get(&bucket, "missing.html").await.is_none());
        m.put(&longer, "other.txt", "other").await;
        m.get(&longer, "other.txt").await;
    });

    let since = m.requests_since(mark, &bucket);
    assert_eq!(
        since,
        vec![
            request("PUT", format!("/{bucket}/{encoded}?x-id=PutObject"), 200),
            request("GET", format!("/{bucket}/{encoded}?x-id=GetObject"), 200),
            request("GET", format!("/{bucket}/missing.html?x-id=GetObject"), 404),
        ]
    );
    assert_eq!(since[0].key().as_deref(), Some(key));
    assert_eq!(since[0].query(), "x-id=PutObject");

    let all = m.requests(&bucket);
    assert_eq!(all.len(), 4, "CreateBucket plus the three above: {all:#?}");
    // The SDK sends CreateBucket as `PUT /bucket/`.
    assert_eq!(all[0], request("PUT", format!("/{bucket}/"), 200));
    assert_eq!(all[0].key(), None);
    assert_eq!(&all[1..], &since[..]);

    let other = m.requests_since(mark, &longer);
    assert_eq!(
        other,
        vec![
            request("PUT", format!("/{longer}/other.txt?x-id=PutObject"), 200),
            request("GET", format!("/{longer}/other.txt?x-id=GetObject"), 200),
        ]
    );
}

#[test]
fn helpers_list_every_page_and_delete() {
    let m = moto();
    let bucket = unique_bucket("list");
    rt().block_on(async {
        m.create_bucket(&bucket).await;
        // More than one ListObjectsV2 page (1,000 keys).
        let client = m.s3().await;
        let mut puts = tokio::task::JoinSet::new();
        for i in 0..1005 {
            let (client, bucket) = (client.clone(), bucket.clone());
            puts.spawn(async move {
                client
                    .put_object()
                    .bucket(&bucket)
                    .key(format!("k/{i:04}"))
                    .body(ByteStream::from_static(b"x"))
                    .send()
                    .await
                    .expect("put a small object");
            });
        }
        while let Some(done) = puts.join_next().await {
            done.expect("put task");
        }
        let keys = m.list_keys(&bucket).await;
        assert_eq!(keys.len(), 1005);
        assert_eq!(keys.first().map(String::as_str), Some("k/0000"));
        assert_eq!(keys.last().map(String::as_str), Some("k/1004"));

        m.delete(&bucket, "k/0000").await;
        assert!(m.try_get(&bucket, "k/0000").await.is_none());
        assert_eq!(m.list_keys(&bucket).await.len(), 1004);
    });
}

#[test]
fn get_returns_the_stored_headers() {
    let m = moto();
    let bucket = unique_bucket("headers");
    rt().block_on(async {
        m.create_bucket(&bucket).await;
        m.s3()
            .await
            .put_object()
            .bucket(&bucket)
            .key("app.js")
            .body(ByteStream::from_static(b"\x1f\x8b gzip bytes"))
            .content_type("text/javascript; charset=utf-8")
            .cache_control("public, max-age=31536000, immutable")
            .content_encoding("gzip")
            .metadata("sha256", "abc")
            .send()
            .await
            .expect("put with headers");
        let (body, head) = m.get(&bucket, "app.js").await;
        assert_eq!(
            body, b"\x1f\x8b gzip bytes",
            "the body is returned as stored"
        );
        assert_eq!(
            head.content_type.as_deref(),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(
            head.cache_control.as_deref(),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(head.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(
            head.metadata,
            BTreeMap::from([("sha256".to_string(), "abc".to_string())])
        );
    });
}

#[test]
fn fault_proxy_denies_matching_puts_and_forwards_the_rest() {
    let m = moto();
    let bucket = unique_bucket("proxy");
    rt().block_on(m.create_bucket(&bucket));
    let proxy = FaultProxy::start(&["/secret/"]);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();

    rt().block_on(async {
        let client = proxy.s3().await;
        let err = client
            .put_object()
            .bucket(&bucket)
            .key("secret/a.txt")
            .body(ByteStream::from_static(b"nope"))
            .send()
            .await
            .expect_err("a PUT under secret/ is denied");
        assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");
        assert_eq!(err.message(), Some("Access Denied"));
        let status = err.raw_response().map(|r| r.status().as_u16());
        assert_eq!(status, Some(403));

        client
            .put_object()
            .bucket(&bucket)
            .key("public/data.bin")
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .expect("a PUT outside secret/ passes");
        let got = client
            .get_object()
            .bucket(&bucket)
            .key("public/data.bin")
            .send()
            .await
            .expect("GET through the proxy");
        let body = got.body.collect().await.expect("read body").into_bytes();
        assert!(body.as_ref() == data.as_slice(), "bytes differ");
        let head = client
            .head_object()
            .bucket(&bucket)
            .key("public/data.bin")
            .send()
            .await
            .expect("HEAD through the proxy");
        assert_eq!(head.content_length(), Some(data.len() as i64));

        assert_eq!(m.list_keys(&bucket).await, vec!["public/data.bin"]);
    });
    let reached_moto = m.requests(&bucket);
    assert!(
        reached_moto.iter().all(|r| !r.path.contains("secret")),
        "the denied PUT never reaches moto: {reached_moto:#?}"
    );
}

/// Raw HTTP/1.1 on one connection: chunked request bodies are forwarded whole, and every
/// response is delimited so that the next request on the same connection works.
#[test]
fn fault_proxy_keeps_connections_alive_and_reads_chunked_bodies() {
    let m = moto();
    let bucket = unique_bucket("chunked");
    rt().block_on(m.create_bucket(&bucket));
    let proxy = FaultProxy::start(&["deny-me"]);
    let addr = proxy.endpoint().trim_start_matches("http://").to_string();
    let stream = TcpStream::connect(&addr).expect("connect to the proxy");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("set read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    let mut send = |method: &str, path: &str, chunks: Option<&[&str]>| {
        // moto does not check signatures, but treats a request without one as anonymous, and
        // anonymous GETs of private objects are denied.
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential=test/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, \
             Signature=00\r\n"
        );
        if let Some(chunks) = chunks {
            req.push_str("Transfer-Encoding: chunked\r\n\r\n");
            for c in chunks {
                req.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
            }
            req.push_str("0\r\n\r\n");
        } else {
            req.push_str("\r\n");
        }
        writer.write_all(req.as_bytes()).expect("send request");
        read_response(&mut reader, method == "HEAD")
    };

    let path = format!("/{bucket}/chunked.txt");
    let (status, _) = send("PUT", &path, Some(&["hello, ", "chunked ", "world"]));
    assert_eq!(status, 200);
    let (status, body) = send("GET", &path, None);
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"hello, chunked world"[..])
    );
    let (status, body) = send("PUT", &format!("/{bucket}/deny-me.txt"), Some(&["x"]));
    assert_eq!(status, 403);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(body.contains("<Key>deny-me.txt</Key>"), "{body}");
    let (status, body) = send("HEAD", &path, None);
    assert_eq!((status, body.len()), (200, 0));
    let (status, body) = send("GET", &path, None);
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"hello, chunked world"[..])
    );
}

/// Reads one response; relies on the proxy always sending Content-Length.
fn read_response(reader: &mut BufReader<TcpStream>, head: bool) -> (u16, Vec<u8>) {
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .expect("read status line");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let length = length.unwrap_or_else(|| panic!("response {status} has no Content-Length"));
    let mut body = vec![0; if head { 0 } else { length }];
    reader.read_exact(&mut body).expect("read body");
    (status, body)
}

#[test]
fn copy_fixture_preserves_names_and_bytes() {
    let site = copy_fixture("site");
    let root = site.path();
    assert!(
        !root
            .file_name()
            .and_then(OsStr::to_str)
            .is_some_and(|n| n.starts_with('.')),
        "the copy's root is not a dotfile: {}",
        root.display()
    );
    // NFC: U+00E9, not `e` + U+0301.
    assert!(root.join("blog/caf\u{e9}-au-lait/index.html").is_file());
    assert!(root.join("docs/getting started.html").is_file());
    assert!(root.join(".well-known/security.txt").is_file());

    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/site");
    let files = |dir: &Path| {
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    };
    let copied = files(root);
    assert_eq!(copied, files(&source));
    assert_eq!(copied.len(), 18);
    for rel in &copied {
        let a = std::fs::read(source.join(rel)).expect("read fixture file");
        let b = std::fs::read(root.join(rel)).expect("read copied file");
        assert!(a == b, "{} differs", rel.display());
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            out.push(rel.to_path_buf());
        }
    }
}

#[test]
fn unique_buckets_are_valid_and_distinct() {
    let names: Vec<String> = ["a", "Mixed_Case.tag", &"long".repeat(30)]
        .iter()
        .map(|t| unique_bucket(t))
        .chain([unique_bucket("a")])
        .collect();
    for name in &names {
        assert!((3..=63).contains(&name.len()), "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{name}"
        );
        assert!(name.as_bytes()[0].is_ascii_alphanumeric(), "{name}");
        assert!(
            name.as_bytes()[name.len() - 1].is_ascii_alphanumeric(),
            "{name}"
        );
    }
    let distinct: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(distinct.len(), names.len());
}

#[test]
fn cli_environment_points_at_moto_only() {
    let cmd = support::cli();
    let envs: BTreeMap<String, Option<String>> = cmd
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.map(|v| v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    for (k, v) in moto().env() {
        assert_eq!(envs.get(&k), Some(&Some(v)), "{k}");
    }
    for (k, _) in std::env::vars() {
        let wanted = moto().env().iter().any(|(m, _)| *m == k)
            || k == "AWS_CONFIG_FILE"
            || k == "AWS_SHARED_CREDENTIALS_FILE";
        if (k.starts_with("AWS_") && !wanted) || k == "CI" || k == "GITHUB_ACTIONS" {
            assert_eq!(envs.get(&k), Some(&None), "{k} is removed");
        }
    }
}
