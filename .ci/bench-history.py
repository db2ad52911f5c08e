#!/usr/bin/env python3
"""History benchmark: rollback, verify through the edge emulator, and the reference check.
Run it through .ci/bench-history (same options, same environment).

Set-up
  * One moto server (S3 + CloudFront, target/moto from .ci/setup) on loopback. Buckets are
    created and distributions made (boto3, one S3 origin: the bucket, no OriginPath) straight
    on moto; each timed point gets its own bucket and distribution per repetition, so every
    repetition starts from the same state.
  * In front of it, the fault proxy of tests/support/fault_proxy.py, run through
    .ci/bench-proxy.py (timestamps and a copy marker on every log line) with
    --delay-ms RTT/2 (default 15: 30 ms per round trip) and --log. Timed rollbacks and
    verifies talk to the proxy (AWS_ENDPOINT_URL); the deploys that set up their state, and the
    dry runs of part 4, talk to moto directly (not timed through the proxy, not counted).
  * The binary gets an empty --config file on every run, the credentials test/test, region
    us-east-1, and no other AWS_*, CDN_DEPLOY_*, GITHUB_* or CI variable.

What is measured per run
  wall s        process start to exit (time.monotonic()), the binary started directly.
  user/sys s    the binary's CPU time (os.wait4's rusage), peak RSS likewise.
  load          1-minute load average (/proc/loadavg) just before the run; 2 CPUs: above 2,
                other work competed for the CPU and walls are inflated.
  requests      from the proxy's log lines written during the run, by type:
                  GET    GetObject (ranged reads included)     LIST  GET on the bucket
                  HEAD   HeadObject/HeadBucket                  PUT   PutObject/UploadPart
                  COPY   a PUT with x-amz-copy-source (CopyObject: restores, kept copies)
                  DELETE DeleteObject                           DELOBJ POST ?delete
                  POST   other POSTs (multipart)                CF    CloudFront API
                and, per request, whether its key is the tool's own (.cdn-deploy/...).
  bytes sent    request body bytes (the proxy's in=), all requests; bytes received: out=.
  serial RTs    the longest chain of requests each of which started after the previous one
                ended (requests in flight together count once): the round trips the run
                waited for one after the other; wall is roughly serial RTs x RTT plus CPU.
  reported      from the tool's --json document: restored/uploaded files and how (copy or
                upload), deletes, retired, revived, invalidation paths and wildcards, or the
                URLs `verify` checked.

Checks
  After each deploy that sets up a state, every object of the bucket outside .cdn-deploy/ is
  read back with boto3 straight from moto (sha256 of the body, Content-Type, Cache-Control,
  Content-Encoding, Content-Disposition, Content-Language, metadata) and kept as a snapshot.
  After each rollback the bucket is read again and compared with the build folder it rolled
  back to: every file of the folder must be there with the same bytes, and with the headers the
  deploy of that build had given it; keys the folder does not have are listed (content-hashed
  files retired by a deploy stay in the bucket by design).

Parts
  fixture  deploy fixtures/site, then fixtures/site-v2 (--distribution ID), then timed:
           `rollback --yes` (back to site), then `rollback --yes` again (back to site-v2).
  site     the same on a generated site of BENCH_SITE_FILES files (default 2,000: about half
           pages d/index.html linking a few shared content-hashed css/js and some images, the
           rest css/js with hashed names and image-like binaries; deterministic) and the same
           site with 10 pages edited; plus the objects under .cdn-deploy/ after the second
           deploy (count and bytes, by kind).
  verify   the generated site and its 10-page edit deployed into a new bucket, the edge
           emulator (tests/support/edge.py --port 0 --moto MOTO --distribution ID, stdin a
           pipe, as tests/support/mod.rs starts it) in front of it; timed
           `verify --all --verify-url EDGE --distribution ID` and plain `verify`, each with the
           edge cache cold (POST /__edge/reset before the run: every URL a miss fetched from
           moto) and warm (the same run right after a cold one: every URL a hit). The CPU time
           of the edge, moto and proxy processes over each run comes from /proc/PID/stat.
  refs     a generated folder of BENCH_REFS_FILES files (default 20,000, about 290 MB: 90 %
           pages of 10-19 KB with 2 stylesheets, an icon, a font preload, 2 module preloads,
           2 scripts, 6 images with srcset, a <picture>, 20 links, text; 3 % stylesheets with
           about 12 url() each; scripts, images, fonts, svg icons; every reference resolves
           except one deliberate broken <img> on one page, whose warning proves that the check
           ran), and the same bytes (hard links) with every .html/.htm/.css renamed to .txt.
           After one untimed warm-up run of each, timed alternately: `--dry-run --json` into
           an empty bucket (a first deploy: every page is checked). Then, when
           BENCH_REFS_CHANGE allows it, both folders are deployed for real (straight to moto),
           10 pages are edited in each (the same pages, new files: the hard links are broken,
           never written through), and the dry run of that 10-page change is timed alternately.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import benchlib
from benchlib import (MOTO_PY, depth, die, env_int, hash_token, http, human, load1, proc_cpu,
                      proxy_rtt, read_log, say, start_edge, start_moto, start_proxy,
                      source, stop_children, stop_children_on_signals)


REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "target" / "bench-history"
benchlib.NAME = "bench-history"
benchlib.OUT = OUT
RUNS = OUT / "runs"
KINDS = ["GET", "LIST", "HEAD", "PUT", "COPY", "DELETE", "DELOBJ", "POST", "CF", "OTHER"]
PARTS = ["fixture", "site", "verify", "refs"]
HELPER = r'''
import boto3, hashlib, json, os, sys
from concurrent.futures import ThreadPoolExecutor
mode, url = sys.argv[1], sys.argv[2]
kw = dict(region_name="us-east-1", endpoint_url=url, aws_access_key_id="test",
          aws_secret_access_key="test")
if mode == "dist":
    bucket = sys.argv[3]
    cf = boto3.client("cloudfront", **kw)
    config = {"CallerReference": "bench-history-" + bucket, "Aliases": {"Quantity": 0},
              "Origins": {"Quantity": 1, "Items": [{"Id": "site",
                  "DomainName": bucket + ".s3.us-east-1.amazonaws.com", "OriginPath": "",
                  "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
              "DefaultCacheBehavior": {"TargetOriginId": "site",
                  "ViewerProtocolPolicy": "redirect-to-https",
                  "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
              "Comment": "bench-history", "Enabled": True}
    print(cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"])
    sys.exit(0)
s3 = boto3.client("s3", config=boto3.session.Config(max_pool_connections=16), **kw)
bucket = sys.argv[3]
objs = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    objs.extend(page.get("Contents", []))
if mode == "storage":
    out = {}
    for o in objs:
        k = o["Key"]
        if not k.startswith(".cdn-deploy/"):
            kind = "site"
        elif k.startswith(".cdn-deploy/manifest/objects/"):
            kind = "kept copies (.cdn-deploy/manifest/objects/)"
        elif k.startswith(".cdn-deploy/manifest/base/"):
            kind = "manifest bases (.cdn-deploy/manifest/base/)"
        elif k == ".cdn-deploy/manifest.json":
            kind = "manifest root (.cdn-deploy/manifest.json)"
        else:
            kind = "other " + "/".join(k.split("/")[:3]) + "/"
        c = out.setdefault(kind, [0, 0])
        c[0] += 1
        c[1] += o["Size"]
    print(json.dumps(out))
    sys.exit(0)
# mode "check": BUILD SNAPSHOT_IN SNAPSHOT_OUT ("-" for none)
build, snap_in, snap_out = sys.argv[4], sys.argv[5], sys.argv[6]
FIELDS = ["ContentType", "CacheControl", "ContentEncoding", "ContentDisposition",
          "ContentLanguage", "Metadata"]
site = [o["Key"] for o in objs if not o["Key"].startswith(".cdn-deploy/")]
def read(key):
    r = s3.get_object(Bucket=bucket, Key=key)
    body = r["Body"].read()
    return key, {"sha": hashlib.sha256(body).hexdigest(), "size": len(body),
                 "headers": {f: r.get(f) for f in FIELDS if r.get(f) not in (None, {}, "")}}
with ThreadPoolExecutor(8) as ex:
    remote = dict(ex.map(read, site))
local = {}
for d, _, names in os.walk(build):
    for n in names:
        p = os.path.join(d, n)
        rel = os.path.relpath(p, build).replace(os.sep, "/")
        if any(part.startswith(".") and part != ".well-known" for part in rel.split("/")):
            continue  # dotfiles are not deployed (.well-known/ is)
        local[rel] = hashlib.sha256(open(p, "rb").read()).hexdigest()
snap = json.load(open(snap_in)) if snap_in != "-" else None
missing = sorted(set(local) - set(remote))
extra = sorted(set(remote) - set(local))
differ = sorted(k for k in set(local) & set(remote) if local[k] != remote[k]["sha"])
headers = []
if snap is not None:
    for k in sorted(set(local) & set(remote)):
        want = (snap.get(k) or {}).get("headers")
        if want is None:
            headers.append(f"{k}: not in the snapshot")
        elif want != remote[k]["headers"]:
            headers.append(f"{k}: {remote[k]['headers']} != {want}")
if snap_out != "-":
    json.dump(remote, open(snap_out, "w"))
print(json.dumps({"objects": len(remote), "files": len(local), "missing": missing,
                  "extra": extra, "differ": differ, "headers": headers,
                  "header_checked": snap is not None}))
'''


def helper(*args):
    p = subprocess.run([str(MOTO_PY), "-c", HELPER, *[str(a) for a in args]],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"helper {args[0]} failed: {p.stderr.strip()[-500:]}")
    return p.stdout.strip()


# ---- sites ---------------------------------------------------------------------------------


WORDS = ("the of and to in is for on that with as by this from at are be or an it not have can "
         "site page build deploy cache edge asset file bucket origin rollback history verify "
         "static content server request version release change invalidate path manifest copy "
         "guide about blog post docs start team news product price contact support search "
         "image style script module preload font icon link section article header footer nav "
         "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor").split()


def paragraphs(rng, n):
    out = []
    for _ in range(n):
        words = rng.choices(WORDS, k=rng.randint(40, 110))
        words[0] = words[0].capitalize()
        out.append("<p>" + " ".join(words) + ".</p>\n")
    return out


def text_blob(rng, size):
    words = []
    n = 0
    while n < size:
        w = rng.choice(WORDS)
        words.append(w)
        n += len(w) + 1
    return (" ".join(words))[:size].encode()


def write(path, data, made):
    if path.parent not in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        made.add(path.parent)
    path.write_bytes(data)


def generate_site(root, n, seed):
    """About half pages (index.html and sNN/pNNNN/index.html) linking 2 shared stylesheets,
    2 shared scripts and 2 images (one with srcset); the rest content-hashed css/js (some of it
    shared by every page, the CSS with url() to images) and image-like binaries. Every
    reference resolves. Returns the page paths (relative)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = random.Random(seed)
    made = set()
    n_pages = n // 2
    n_code = n * 15 // 100
    n_img = n - n_pages - n_code
    images = []
    for i in range(n_img):
        ext = rng.choice(["png", "jpg", "webp", "svg", "ico" if i % 50 == 0 else "png"])
        rel = f"img/g{i // 100:02d}/i{i:05d}.{ext}"
        size = int(300 * (60_000 / 300) ** rng.random())
        data = (f'<svg xmlns="http://www.w3.org/2000/svg"><!-- {i} --></svg>\n'.encode()
                + text_blob(rng, size) if ext == "svg" else rng.randbytes(size))
        write(root / rel, data, made)
        images.append(rel)
    code = []
    for i in range(n_code):
        ext = "css" if i % 3 == 0 else "js"
        rel = f"assets/{'c' if ext == 'css' else 'm'}{i:05d}-{hash_token(rng)}.{ext}"
        size = int(500 * (40_000 / 500) ** rng.random())
        if ext == "css":
            refs = "".join(f".r{j}{{background:url(/{rng.choice(images)})}}\n" for j in range(4))
            data = refs.encode() + text_blob(rng, size)
        else:
            data = b"export const x=1;\n" + text_blob(rng, size)
        write(root / rel, data, made)
        code.append(rel)
    css = [c for c in code if c.endswith(".css")][:2]
    js = [c for c in code if c.endswith(".js")][:2]
    pool = paragraphs(rng, 300)
    pages = []
    sections = max(1, n_pages // 40)
    for i in range(n_pages):
        rel = "index.html" if i == 0 else f"s{i % sections:02d}/p{i:05d}/index.html"
        img, img2, img3 = rng.sample(images, 3)
        head = (
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Page {i}</title>\n"
            + "".join(f'<link rel=stylesheet href="/{c}">\n' for c in css)
            + "".join(f'<script type=module src="/{j}"></script>\n' for j in js)
            + "</head><body>\n"
            + f'<img src="/{img}" alt=""> <img src="/{img2}" srcset="/{img2} 1x, /{img3} 2x" '
              f'alt="">\n'
        )
        body = "".join(rng.sample(pool, rng.randint(2, 12)))
        data = (head + f"<h1>Page {i}</h1>\n" + body + "</body></html>\n").encode()
        write(root / rel, data, made)
        pages.append(rel)
    return pages


def link_tree(src, dst, rename=None):
    """A copy of src made of hard links (same bytes, no space); `rename(rel) -> rel` renames."""
    shutil.rmtree(dst, ignore_errors=True)
    made = set()
    for dirpath, _, names in os.walk(src):
        for name in names:
            s = Path(dirpath) / name
            rel = s.relative_to(src).as_posix()
            d = dst / (rename(rel) if rename else rel)
            if d.parent not in made:
                d.parent.mkdir(parents=True, exist_ok=True)
                made.add(d.parent)
            os.link(s, d)


def edit_pages(root, rels, tag):
    """Edits these pages as new files (unlink, then write): a hard-linked original is never
    written through. The edit is a paragraph before </body> (the size changes)."""
    for j, rel in enumerate(rels):
        path = root / rel
        data = path.read_bytes()
        extra = f"<p>edited {tag} {j}</p>\n".encode()
        data = data.replace(b"</body>", extra + b"</body>", 1) if b"</body>" in data \
            else data + extra
        path.unlink()
        path.write_bytes(data)


def spread(items, k, offset=7):
    return [items[(offset + i * len(items) // k) % len(items)] for i in range(k)]


def generate_refs_site(root, n, seed):
    """The reference-check folder (see the module docstring). Returns the page paths."""
    rng = random.Random(seed)
    made = set()
    n_pages = n * 90 // 100
    n_css = n * 3 // 100
    n_js = n * 2 // 100
    n_fonts = n // 200
    n_icons = n // 200
    n_img = n - n_pages - n_css - n_js - n_fonts - n_icons
    images = []
    for i in range(n_img):
        rel = f"img/{i // 200:02d}/photo-{i:05d}.{('png', 'jpg', 'webp', 'avif')[i % 4]}"
        write(root / rel, rng.randbytes(int(2000 * 15 ** rng.random())), made)
        images.append(rel)
    fonts = []
    for i in range(n_fonts):
        rel = f"fonts/family-{i:03d}.woff2"
        write(root / rel, rng.randbytes(rng.randint(12_000, 30_000)), made)
        fonts.append(rel)
    icons = []
    for i in range(n_icons):
        rel = f"icons/icon-{i:03d}.svg"
        write(root / rel, (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
                           f'<path d="M{i % 24} 0L24 {i % 24}Z"/></svg>\n').encode(), made)
        icons.append(rel)
    css = []
    for i in range(n_css):
        rel = f"assets/css/style-{i:04d}-{hash_token(rng)}.css"
        rules = []
        for j in range(12):
            target = rng.choice(images)
            rules.append(f".c{i}-{j}{{background-image:url(../../{target});margin:{j}px}}\n")
        rules.append(f"@font-face{{font-family:f{i};src:url('/{rng.choice(fonts)}') "
                     f"format('woff2')}}\n")
        body = "".join(rules).encode()
        filler = b"".join(f".x{i}-{k}{{color:#{rng.getrandbits(24):06x};padding:{k}px}}\n".encode()
                          for k in range(rng.randint(60, 260)))
        write(root / rel, body + filler, made)
        css.append(rel)
    js = []
    for i in range(n_js):
        rel = f"assets/js/chunk-{i:04d}-{hash_token(rng)}.js"
        write(root / rel, b"export function f(){return 1}\n" + text_blob(rng, rng.randint(3000, 25000)),
              made)
        js.append(rel)
    pool = paragraphs(rng, 3000)
    pages = []
    sections = 100
    for i in range(n_pages):
        rel = "index.html" if i == 0 else f"docs/s{i % sections:03d}/page-{i:05d}/index.html"
        up = "" if i == 0 else "../../../"
        target_size = rng.randint(10_000, 19_000)
        c1, c2 = rng.sample(css, 2)
        j1, j2, j3, j4 = rng.sample(js, 4)
        imgs = rng.sample(images, 14)
        parts = [
            "<!doctype html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n",
            f"<title>Documentation page {i}</title>\n",
            '<meta name=viewport content="width=device-width, initial-scale=1">\n',
            f'<link rel=stylesheet href="/{c1}">\n<link rel="stylesheet" href="{up}{c2}">\n',
            f'<link rel=icon type="image/svg+xml" href="/{rng.choice(icons)}">\n',
            f'<link rel=preload as=font crossorigin href="/{rng.choice(fonts)}">\n',
            f'<link rel=modulepreload href="/{j1}">\n<link rel=modulepreload href="/{j2}">\n',
            f'<script type=module src="/{j3}"></script>\n<script defer src="{up}{j4}"></script>\n',
            "</head>\n<body>\n<header><nav>\n",
        ]
        for k in range(20):
            other = rng.randrange(1, n_pages)
            parts.append(f'<a href="/docs/s{other % sections:03d}/page-{other:05d}/">Page {other}'
                         f"</a>\n")
        parts.append("</nav></header>\n<main>\n")
        parts.append(f"<h1>Documentation page {i}</h1>\n")
        for k in range(6):
            a, b = imgs[2 * k], imgs[2 * k + 1]
            parts.append(f'<img src="/{a}" srcset="/{a} 1x, {up}{b} 2x" alt="figure {k}" '
                         f'loading=lazy width=640 height=360>\n')
            parts.append(pool[rng.randrange(len(pool))])
        parts.append(f'<picture><source srcset="/{imgs[12]}" type="image/webp">'
                     f'<img src="/{imgs[13]}" alt=""></picture>\n')
        if rel == broken_page(n_pages):
            parts.append('<img src="/img/does-not-exist.png" alt="the one broken reference">\n')
        size = sum(len(p) for p in parts)
        while size < target_size - 40:
            p = pool[rng.randrange(len(pool))]
            parts.append(p)
            size += len(p)
        parts.append("</main>\n<footer>generated</footer>\n</body>\n</html>\n")
        write(root / rel, "".join(parts).encode(), made)
        pages.append(rel)
    return pages


def broken_page(n_pages):
    """The page that holds the one broken reference of the reference-check folder."""
    i = n_pages // 2
    return f"docs/s{i % 100:03d}/page-{i:05d}/index.html"


def to_txt(rel):
    stem, dot, ext = rel.rpartition(".")
    return f"{stem}.txt" if dot and ext.lower() in ("html", "htm", "css") else rel


# ---- the proxy's log -----------------------------------------------------------------------


def analyse(reqs):
    live = [r for r in reqs if not r.abort]
    counts = Counter(r.kind for r in live)
    labels = Counter(r.label() for r in live)
    return {
        "requests": len(live),
        "by_kind": {k: counts.get(k, 0) for k in KINDS},
        "labels": dict(sorted(labels.items())),
        "bytes_in": sum(r.inb for r in reqs),
        "bytes_out": sum(r.outb for r in reqs),
        "serial": depth(live) if live else 0,
        "state_read": sum(r.outb for r in live if r.own and r.kind == "GET"),
        "state_written": sum(r.inb for r in live if r.own and r.kind == "PUT"),
        "site_puts": sum(1 for r in live if r.kind in ("PUT", "POST") and r.key and not r.own),
        "non_2xx": [f"{r.method} {r.path} {r.status}" for r in live
                    if not r.status.startswith(("2", "3"))],
        "aborted": sum(1 for r in reqs if r.abort),
        "list": [f"{r.method} {r.path if r.bucket is None else r.key or '(bucket)'} {r.status} "
                 f"in={r.inb} out={r.outb}{' copy' if r.copy else ''}"
                 f"{' range' if r.range else ''}" for r in
                 sorted(live, key=lambda r: r.t0)],
    }


# ---- the benchmark -------------------------------------------------------------------------


def find_bin():
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target_dir.is_absolute():
        target_dir = REPO / target_dir
    b = os.environ.get("BIN") or str(target_dir / "release" / "cargo-cdn-deploy")
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        die(f"no cargo-cdn-deploy release binary at {b}: build it with\n"
            "    CARGO_TARGET_DIR=target/bench-build cargo build --release --locked\n"
            "and run with BIN=target/bench-build/release/cargo-cdn-deploy")
    return os.path.abspath(b)


def summary(doc):
    """What the tool reported, from its --json document."""
    if not isinstance(doc, dict):
        return {}
    if "checked" in doc:
        return {"checked": doc.get("checked"), "stale": len(doc.get("stale") or []),
                "skipped": doc.get("skipped"), "exit_code": doc.get("exit_code", 0)}
    ups = doc.get("uploads") or []
    inv = doc.get("invalidations") or []
    return {
        "copied": sum(1 for u in ups if u.get("method") == "copy"),
        "uploaded": sum(1 for u in ups if u.get("method") != "copy"),
        "reasons": dict(Counter(u.get("reason") for u in ups)),
        "deleted": len(doc.get("deletes") or []),
        "retired": len(doc.get("retired") or []),
        "revived": len(doc.get("revived") or []),
        "expired": len(doc.get("expired") or []),
        "unchanged": doc.get("unchanged"),
        "failures": len(doc.get("failures") or []),
        "inval_paths": sum(len(i.get("paths") or []) for i in inv),
        "wildcards": sum(i.get("wildcards") or 0 for i in inv),
        "bytes_uploaded": doc.get("bytes_uploaded"),
        "files_scanned": doc.get("files_scanned"),
        "duration_ms": doc.get("duration_ms"),
        "exit_code": doc.get("exit_code"),
        "error": doc.get("error"),
    }


def reported_text(s):
    if not s:
        return "-"
    if "checked" in s:
        return f"{s['checked']} URLs checked, {s['stale']} stale"
    t = (f"{s['copied']} restored by server-side copy, {s['uploaded']} uploaded, "
         f"{s['deleted']} deleted, {s['retired']} retired, {s['revived']} revived; "
         f"{s['inval_paths']} paths invalidated ({s['wildcards']} wildcards); "
         f"{s['bytes_uploaded']} B uploaded")
    if s.get("error"):
        t += f"; error: {s['error']}"
    return t


class Bench:
    def __init__(self):
        self.runs = []       # timed runs
        self.setups = []     # untimed set-up runs (deploys straight to moto)
        self.checks = []     # rollback checks
        self.storage = []
        self.notes = []
        self.failed = False
        self.repeat = env_int("BENCH_REPEAT", 3)
        self.rtt_ms = float(os.environ.get("BENCH_RTT_MS", "30"))
        self.t2k_first = None

    def setup(self):
        self.bin = find_bin()
        p = subprocess.run([self.bin, "--version"], capture_output=True, text=True)
        self.version = (p.stdout + p.stderr).strip().splitlines()[0] if p.returncode == 0 \
            else "?"
        self.built = time.strftime("%Y-%m-%d %H:%M:%S",
                                   time.localtime(os.path.getmtime(self.bin)))
        self.source = source()
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(RUNS, ignore_errors=True)
        RUNS.mkdir(parents=True)
        self.moto, self.moto_port = start_moto()
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.log = OUT / "proxy.log"
        self.log.write_bytes(b"")
        self.proxy, self.proxy_port = start_proxy(self.moto_port, self.rtt_ms / 2, self.log)
        self.proxy_url = f"http://127.0.0.1:{self.proxy_port}"
        self.edge_log = OUT / "edge.log"
        self.edge_log.write_bytes(b"")
        self.config = OUT / "empty.toml"
        self.config.write_text("")
        awsdir = OUT / "aws-home"
        awsdir.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "CDN_DEPLOY_", "GITHUB_"))
               and k not in ("CI", "npm_package_json")}
        env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   AWS_CONFIG_FILE=str(awsdir / "config"),
                   AWS_SHARED_CREDENTIALS_FILE=str(awsdir / "credentials"))
        self.env = env
        self.measured_rtt = proxy_rtt(self.proxy_port)
        moto_version = subprocess.run([str(MOTO_PY), "-c", "import moto; print(moto.__version__)"],
                                      capture_output=True, text=True).stdout.strip()
        self.moto_version = moto_version
        say(f"moto {moto_version} on :{self.moto_port}, proxy on :{self.proxy_port} "
            f"(--delay-ms {self.rtt_ms / 2:g}: {self.measured_rtt * 1000:.0f} ms per request "
            f"measured)")
        say(f"binary: {self.bin} ({self.version}, built {self.built}); source: {self.source}")

    def bucket(self, name):
        http("PUT", f"{self.moto_url}/{name}")
        return name

    def distribution(self, bucket):
        return helper("dist", self.moto_url, bucket)

    # -- running the binary --
    def exec(self, slug, argv, endpoint):
        env = dict(self.env, AWS_ENDPOINT_URL=endpoint)
        out_path, err_path = RUNS / f"{slug}.out", RUNS / f"{slug}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t = time.monotonic()
            p = subprocess.Popen([self.bin, *[str(a) for a in argv]], stdout=out, stderr=err,
                                 env=env, cwd=REPO)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.monotonic() - t
        p.returncode = code = os.waitstatus_to_exitcode(status)
        try:
            doc = json.loads(out_path.read_text(errors="replace") or "null")
        except ValueError:
            doc = None
        err_text = err_path.read_text(errors="replace")
        return {"wall_s": wall, "exit": code, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
                "rss_mib": ru.ru_maxrss / 1024, "doc": doc,
                "warnings": sum(1 for line in err_text.splitlines()
                                if line.startswith("warning:")),
                "err_tail": " | ".join(err_text.strip().splitlines()[-3:])}

    def setup_run(self, slug, argv):
        """An untimed run straight to moto that sets up a state; fails the benchmark if it
        fails."""
        r = self.exec(f"setup--{slug}", argv, self.moto_url)
        self.setups.append({"slug": slug, "wall_s": r["wall_s"], "exit": r["exit"],
                            "reported": summary(r["doc"])})
        if r["exit"] != 0:
            self.failed = True
            say(f"   SET-UP FAILED {slug}: exit {r['exit']}: {r['err_tail']}")
        return r

    def timed(self, part, point, rep, argv, endpoint=None, procs=None, note=""):
        """A timed run; through the proxy unless `endpoint` says otherwise. `procs`: name -> pid
        whose CPU time over the run is recorded."""
        endpoint = endpoint or self.proxy_url
        slug = f"{part}--{point}--r{rep}".replace(" ", "_").replace("/", "_")
        start = self.log.stat().st_size
        load = load1()
        cpu0 = {n: proc_cpu(pid) for n, pid in (procs or {}).items()}
        r = self.exec(slug, argv, endpoint)
        cpu = {n: proc_cpu(pid) - cpu0[n] for n, pid in (procs or {}).items()}
        time.sleep(0.2)  # a proxy line is written just before its response's last byte
        end = self.log.stat().st_size
        rec = {"part": part, "point": point, "rep": rep, "load": load, "note": note,
               "argv": [str(a) for a in argv], "endpoint": endpoint,
               "reported": summary(r["doc"]), "cpu": cpu, "log_span": [start, end]}
        rec.update({k: v for k, v in r.items() if k != "doc"})
        if endpoint == self.proxy_url:
            rec.update(analyse(read_log(self.log, start, end)))
        if rec["exit"] != 0:
            self.failed = True
        self.runs.append(rec)
        kinds = ""
        if "by_kind" in rec:
            kinds = " ".join(f"{k}={rec['by_kind'][k]}" for k in KINDS if rec["by_kind"][k])
            kinds = f"  {rec['requests']} req ({kinds}) sent {human(rec['bytes_in'])}"
        say(f"  {part:7} {point:28} r{rep} {rec['wall_s']:6.2f} s  user {rec['user_s']:.2f} "
            f"sys {rec['sys_s']:.2f}{kinds}  load {load:.2f}"
            + (f"  EXIT {rec['exit']}: {rec['err_tail']}" if rec["exit"] else ""))
        return rec

    def check(self, label, bucket, build, snap_in=None, snap_out=None):
        try:
            res = json.loads(helper("check", self.moto_url, bucket, build, snap_in or "-",
                                    snap_out or "-"))
        except (RuntimeError, ValueError) as e:
            self.failed = True
            self.checks.append({"label": label, "ok": False, "text": f"check failed: {e}"})
            say(f"   check {label}: FAILED to run: {e}")
            return None
        ok = not (res["missing"] or res["differ"] or res["headers"])
        text = (f"{res['files']} files of the build: "
                + ("all present with the same bytes"
                   + (" and headers" if res["header_checked"] else "") if ok else
                   f"{len(res['missing'])} missing {res['missing'][:5]}, "
                   f"{len(res['differ'])} with other bytes {res['differ'][:5]}, "
                   f"{len(res['headers'])} with other headers {res['headers'][:3]}")
                + f"; {res['objects']} site objects in the bucket"
                + (f", {len(res['extra'])} not in the build: {', '.join(res['extra'][:6])}"
                   + (" …" if len(res["extra"]) > 6 else "") if res["extra"] else ""))
        self.checks.append({"label": label, "ok": ok, "text": text, "extra": res["extra"]})
        if not ok:
            self.failed = True
        if snap_out is None or not ok:
            say(f"   check {label}: {'OK' if ok else 'MISMATCH'}: {text}")
        return res

    def storage_of(self, label, bucket):
        found = json.loads(helper("storage", self.moto_url, bucket))
        self.storage.append({"label": label, "bucket": bucket, "by_kind": found})
        return found

    # -- part 1 and 2: rollbacks --
    def rollbacks(self, part, build_a, build_b, reps, storage=False):
        for rep in range(1, reps + 1):
            bucket = self.bucket(f"bh-{part}-r{rep}")
            dist = self.distribution(bucket)
            snaps = OUT / "snapshots"
            snaps.mkdir(exist_ok=True)
            sa, sb = snaps / f"{part}-r{rep}-a.json", snaps / f"{part}-r{rep}-b.json"
            common = ["--bucket", bucket, "--config", self.config, "--distribution", dist,
                      "--json"]
            r = self.setup_run(f"{part}-r{rep}-deploy-a", [*common, build_a])
            if part == "site" and rep == 1:
                self.t2k_first = r["wall_s"]
            self.check(f"{part} r{rep} after deploy A", bucket, build_a, snap_out=sa)
            self.setup_run(f"{part}-r{rep}-deploy-b", [*common, build_b])
            self.check(f"{part} r{rep} after deploy B", bucket, build_b, snap_out=sb)
            if storage:
                found = self.storage_of(f"{part} r{rep}: after the second deploy", bucket)
                if rep == 1:
                    say("   .cdn-deploy/ after the second deploy: " + "; ".join(
                        f"{k}: {c} objects, {human(b)}" for k, (c, b) in found.items()))
            rb = ["rollback", "--bucket", bucket, "--config", self.config, "--distribution",
                  dist, "--yes", "--json"]
            self.timed(part, "rollback (B -> A)", rep, rb)
            self.check(f"{part} r{rep} after rollback to A", bucket, build_a, snap_in=sa)
            self.timed(part, "rollback again (A -> B)", rep, rb)
            self.check(f"{part} r{rep} after rollback again to B", bucket, build_b, snap_in=sb)
            if storage:
                self.storage_of(f"{part} r{rep}: after both rollbacks", bucket)

    def part_fixture(self):
        say("\n== 1. rollback on the fixture site (fixtures/site -> fixtures/site-v2)")
        self.rollbacks("fixture", REPO / "fixtures" / "site", REPO / "fixtures" / "site-v2",
                       self.repeat)

    def make_site(self):
        if getattr(self, "site_a", None):
            return
        n = env_int("BENCH_SITE_FILES", 2000)
        self.site_a, self.site_b = OUT / "site-a", OUT / "site-b"
        t = time.monotonic()
        pages = generate_site(self.site_a, n, seed=2000)
        link_tree(self.site_a, self.site_b)
        # 10 pages spread over the key space (sorted keys), as scattered edits are.
        self.edited = spread(sorted(pages[1:]), 10)
        edit_pages(self.site_b, self.edited, "b")
        files = [f for f in self.site_a.rglob("*") if f.is_file()]
        self.site_desc = (f"{len(files)} files, {human(sum(f.stat().st_size for f in files))}: "
                          f"{len(pages)} pages, "
                          f"{sum(1 for f in files if f.suffix in ('.css', '.js'))} css/js, "
                          f"{len(files) - len(pages) - sum(1 for f in files if f.suffix in ('.css', '.js'))}"
                          f" image-like; B = A with 10 pages edited")
        say(f"   site A: {self.site_desc} (generated in {time.monotonic() - t:.1f} s)")

    def part_site(self):
        say("\n== 2. rollback on a generated site with 10 pages edited")
        self.make_site()
        self.rollbacks("site", self.site_a, self.site_b, self.repeat, storage=True)

    # -- part 3: verify --
    def part_verify(self):
        say("\n== 3. verify through the edge emulator")
        self.make_site()
        bucket = self.bucket("bh-verify")
        dist = self.distribution(bucket)
        common = ["--bucket", bucket, "--config", self.config, "--distribution", dist, "--json"]
        self.setup_run("verify-deploy-a", [*common, self.site_a])
        self.setup_run("verify-deploy-b", [*common, self.site_b])
        edge, port = start_edge(self.moto_url, dist, self.edge_log)
        edge_url = f"http://127.0.0.1:{port}"
        procs = {"edge": edge.pid, "moto": self.moto.pid, "proxy": self.proxy.pid}
        say(f"   edge emulator on :{port} (pid {edge.pid}) for {dist}")
        base = ["verify", "--bucket", bucket, "--config", self.config, "--distribution", dist,
                "--verify-url", edge_url, "--json"]
        points = [("verify --all", [*base[:1], "--all", *base[1:]]), ("verify", base)]
        for rep in range(1, self.repeat + 1):
            for name, argv in points:
                for state in ("cold", "warm"):
                    if state == "cold":
                        http("POST", f"{edge_url}/__edge/reset", b"")
                    s0 = json.loads(http("GET", f"{edge_url}/__edge/stats"))
                    lines0 = self.edge_log.stat().st_size
                    rec = self.timed("verify", f"{name} ({state})", rep, argv, procs=procs)
                    s1 = json.loads(http("GET", f"{edge_url}/__edge/stats"))
                    with open(self.edge_log, "rb") as f:
                        f.seek(lines0)
                        served = sum(1 for line in f.read().decode("utf-8", "replace")
                                     .splitlines() if line.startswith(("edge GET ",
                                                                       "edge HEAD "))
                                     and " /__edge/" not in line)
                    rec["edge"] = {"hits": s1["hits"] - s0["hits"],
                                   "misses": s1["misses"] - s0["misses"], "served": served}
        edge.stdin.close()
        try:
            edge.wait(timeout=5)
        except subprocess.TimeoutExpired:
            edge.kill()

    # -- part 4: the reference check --
    def part_refs(self):
        say("\n== 4. cost of the reference check")
        n = env_int("BENCH_REFS_FILES", 20000)
        base = OUT / "refs-base"
        marker = OUT / "refs-base.spec"
        spec = f"files={n} seed=20000 layout=1"
        t = time.monotonic()
        if base.is_dir() and marker.is_file() and marker.read_text().strip() == spec:
            say(f"   reusing {base.relative_to(REPO)} ({spec})")
            pages = sorted(p.relative_to(base).as_posix() for p in base.rglob("*.html"))
            pages.sort(key=lambda r: (r != "index.html", r))
        else:
            say(f"   generating {n} files in {base.relative_to(REPO)} ...")
            shutil.rmtree(base, ignore_errors=True)
            marker.unlink(missing_ok=True)
            pages = generate_refs_site(base, n, seed=20000)
            marker.write_text(spec + "\n")
            pages.sort(key=lambda r: (r != "index.html", r))
        html, txt = OUT / "refs-html", OUT / "refs-txt"
        link_tree(base, html)
        link_tree(base, txt, rename=to_txt)
        files = [f for f in html.rglob("*") if f.is_file()]
        size = sum(f.stat().st_size for f in files)
        exts = Counter(f.suffix for f in files)
        txt_files = [f for f in txt.rglob("*") if f.is_file()]
        txt_size = sum(f.stat().st_size for f in txt_files)
        self.refs_desc = (f"{len(files)} files, {size / 1e6:.0f} MB ({human(size)}): "
                          + ", ".join(f"{c} {e}" for e, c in exts.most_common())
                          + f"; the .txt copy: {len(txt_files)} files, {txt_size:,} bytes "
                          f"({'identical' if txt_size == size and len(txt_files) == len(files) else 'DIFFERENT'}"
                          f" totals), {sum(1 for f in txt_files if f.suffix in ('.html', '.htm', '.css'))}"
                          f" html/htm/css left")
        say(f"   {self.refs_desc} (ready in {time.monotonic() - t:.0f} s)")
        b_html, b_txt = self.bucket("bh-refs-html"), self.bucket("bh-refs-txt")
        variants = {"html": (html, b_html), "txt": (txt, b_txt)}

        def dry(variant):
            folder, bucket = variants[variant]
            return ["--bucket", bucket, "--config", self.config, "--dry-run", "--json", folder]

        # Warm-up (untimed): the page cache holds both trees (hard links: the same inodes).
        for v in variants:
            self.exec(f"refs-warmup-{v}", dry(v), self.moto_url)
        for rep in range(1, self.repeat + 1):
            order = ["html", "txt"] if rep % 2 else ["txt", "html"]
            for v in order:
                self.timed("refs", f"first deploy dry run, {v}", rep, dry(v),
                           endpoint=self.moto_url)

        # The 10-page change needs both folders deployed for real.
        mode = os.environ.get("BENCH_REFS_CHANGE", "auto")
        if mode == "0":
            self.refs_change_note = "skipped: BENCH_REFS_CHANGE=0"
            say(f"   10-page change {self.refs_change_note}")
            return
        if mode == "auto":
            if self.t2k_first is None:
                self.make_site()
                bucket = self.bucket("bh-calibrate")
                r = self.setup_run("refs-calibrate", ["--bucket", bucket, "--config",
                                                      self.config, "--json", self.site_a])
                self.t2k_first = r["wall_s"]
            files_2k = sum(1 for f in self.site_a.rglob("*") if f.is_file())
            predicted = 2 * self.t2k_first * len(files) / files_2k
            if predicted > 300:
                self.refs_change_note = (
                    f"skipped: the two real first deploys (straight to moto) were predicted to "
                    f"take {predicted:.0f} s from the {files_2k}-file first deploy "
                    f"({self.t2k_first:.1f} s), over the 5-minute budget (BENCH_REFS_CHANGE=1 "
                    f"forces them)")
                say(f"   10-page change {self.refs_change_note}")
                return
            say(f"   real deploys predicted at {predicted:.0f} s in all")
        for v in ("html", "txt"):
            folder, bucket = variants[v]
            r = self.setup_run(f"refs-deploy-{v}", ["--bucket", bucket, "--config", self.config,
                                                    "--json", folder])
            say(f"   real first deploy of the {v} folder straight to moto: {r['wall_s']:.0f} s, "
                f"exit {r['exit']}")
            if r["exit"] != 0:
                self.refs_change_note = f"not measured: the real deploy of {v} failed"
                return
        # 10 pages spread over the key space, not the one with the broken reference.
        edited = spread([p for p in pages[1:] if p != broken_page(n * 90 // 100)],
                        10, offset=13)
        edit_pages(html, edited, "change")
        edit_pages(txt, [to_txt(p) for p in edited], "change")
        self.refs_change_note = ("both folders deployed for real first (straight to moto: "
                                 + ", ".join(f"{s['slug'].split('-')[-1]} {s['wall_s']:.0f} s"
                                             for s in self.setups
                                             if s["slug"].startswith("refs-deploy-"))
                                 + "), then the same 10 pages edited in each")
        for v in variants:
            self.exec(f"refs-warmup-change-{v}", dry(v), self.moto_url)
        for rep in range(1, self.repeat + 1):
            order = ["html", "txt"] if rep % 2 else ["txt", "html"]
            for v in order:
                self.timed("refs", f"10-page change dry run, {v}", rep, dry(v),
                           endpoint=self.moto_url)


# ---- report --------------------------------------------------------------------------------


def stats(values):
    values = list(values)
    if not values:
        return "-"
    mean = sum(values) / len(values)
    return f"{mean:.2f} ({min(values):.2f}–{max(values):.2f})"


def loads(rs):
    return ", ".join(f"{r['load']:.1f}" for r in rs)


def same_or_range(values, fmt="{}"):
    values = list(values)
    if not values:
        return "-"
    if all(v == values[0] for v in values):
        return fmt.format(values[0])
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def report(bench, started):
    lines = []
    w = lines.append
    w("# cargo-cdn-deploy: rollback, verify and reference-check benchmark")
    w("")
    w(f"- Binary: `{bench.bin}` ({bench.version}, built {bench.built}); source: {bench.source}")
    w(f"- moto {getattr(bench, 'moto_version', '?')}; proxy `.ci/bench-proxy.py --delay-ms "
      f"{bench.rtt_ms / 2:g}` ({getattr(bench, 'measured_rtt', 0) * 1000:.0f} ms per request "
      f"measured); every run of the binary with an empty `--config` file")
    w(f"- Machine: {os.cpu_count()} CPUs; load average (1 min) at the end "
      f"{load1():.2f}; total time {time.monotonic() - started:.0f} s; each timed point "
      f"{bench.repeat} times: mean (min–max)")
    w("- `load`: the 1-minute load average before each repetition; above 2 (2 CPUs), other "
      "work competed for the CPU and walls are inflated.")
    w("")
    by_point = {}
    for r in bench.runs:
        by_point.setdefault((r["part"], r["point"]), []).append(r)

    def request_table(part):
        pts = [(k, v) for k, v in by_point.items() if k[0] == part]
        if not pts:
            return
        present = [k for k in KINDS if any(r["by_kind"][k] for _, v in pts for r in v)]
        w("| run | wall s | load | " + " | ".join(present)
          + " | requests | serial RTs | bytes sent | bytes received | manifest read / written"
          " | exit |")
        w("|---|---:|---|" + "---:|" * len(present) + "---:|---:|---:|---:|---:|---|")
        for (_, point), rs in pts:
            w(f"| {point} | {stats(r['wall_s'] for r in rs)} | "
              f"{loads(rs)} | "
              + " | ".join(same_or_range(r["by_kind"][k] for r in rs) for k in present)
              + f" | {same_or_range(r['requests'] for r in rs)} | "
              f"{same_or_range(r['serial'] for r in rs)} | "
              f"{same_or_range((r['bytes_in'] for r in rs), '{:,}')} | "
              f"{same_or_range((r['bytes_out'] for r in rs), '{:,}')} | "
              f"{same_or_range((r['state_read'] for r in rs), '{:,}')} / "
              f"{same_or_range((r['state_written'] for r in rs), '{:,}')} | "
              f"{same_or_range(r['exit'] for r in rs)} |")
        w("")
        w("What the tool reported (`--json`), and the requests by what they touched:")
        w("")
        for (_, point), rs in pts:
            texts = Counter(reported_text(r["reported"]) for r in rs)
            w(f"- **{point}**: " + "; ".join(f"{t}" + (f" ({n} of {len(rs)} runs)"
                                                      if len(texts) > 1 else "")
                                            for t, n in texts.items())
              + f"; tool CPU user {stats(r['user_s'] for r in rs)} s, sys "
              f"{stats(r['sys_s'] for r in rs)} s")
            labels = Counter()
            for r in rs:
                labels.update(r["labels"])
            w("  - requests (per run, averaged): " + ", ".join(
                f"{k} ×{v / len(rs):g}" for k, v in sorted(labels.items())))
        w("")

    def check_lines(prefix):
        cs = [c for c in bench.checks if c["label"].startswith(prefix) and "rollback" in c["label"]]
        if cs:
            ok = sum(1 for c in cs if c["ok"])
            w(f"Bucket checks after the rollbacks (every object read back from moto with boto3, "
              f"compared with the build folder and with the headers its deploy gave): "
              f"**{ok} of {len(cs)} exact**.")
            w("")
            for c in cs:
                w(f"- {c['label']}: {'OK' if c['ok'] else 'MISMATCH'}: {c['text']}")
            w("")

    if any(r["part"] == "fixture" for r in bench.runs):
        w("## 1. Rollback on the fixture site")
        w("")
        w("fixtures/site (A) deployed, then fixtures/site-v2 (B), both with `--distribution` "
          "(set-up straight to moto); then, through the proxy, `rollback --yes --distribution "
          "ID` (B → A) and `rollback` again (A → B). A new bucket and distribution per "
          "repetition.")
        w("")
        request_table("fixture")
        first = next((r for r in bench.runs if r["part"] == "fixture"), None)
        if first:
            w("<details><summary>Every request of the first rollback (repetition 1)</summary>")
            w("")
            w("```")
            lines.extend(first["list"])
            w("```")
            w("</details>")
            w("")
        check_lines("fixture")

    if any(r["part"] == "site" for r in bench.runs):
        w("## 2. Rollback on a generated site with 10 pages edited")
        w("")
        w(f"Site A: {getattr(bench, 'site_desc', '?')} (`target/bench-history/site-a`, "
          f"`site-b`; deterministic, seed 2000). A deployed, B deployed (set-up straight to "
          f"moto, `--distribution`), then through the proxy `rollback --yes` (B → A) and "
          f"`rollback` again (A → B).")
        w("")
        request_table("site")
        check_lines("site")
        st = [s for s in bench.storage if s["label"].startswith("site")]
        if st:
            w("Storage the rollback history keeps (objects under `.cdn-deploy/`, listed "
              "straight from moto; the site's own objects for comparison):")
            w("")
            w("| when | kind | objects | bytes |")
            w("|---|---|---:|---:|")
            for s in st:
                if not s["label"].startswith("site r1"):
                    continue
                own = [(k, c, b) for k, (c, b) in s["by_kind"].items() if k != "site"]
                for k, c, b in sorted(own):
                    w(f"| {s['label'].split(': ', 1)[1]} | {k} | {c} | {b:,} |")
                tc, tb = sum(c for _, c, _ in own), sum(b for _, _, b in own)
                w(f"| {s['label'].split(': ', 1)[1]} | **all of .cdn-deploy/** | **{tc}** | "
                  f"**{tb:,}** |")
                sc, sb = s["by_kind"].get("site", [0, 0])
                w(f"| {s['label'].split(': ', 1)[1]} | the site's objects | {sc} | {sb:,} |")
            others = {json.dumps(s["by_kind"], sort_keys=True) for s in st
                      if "second deploy" in s["label"]}
            w("")
            w(f"(repetition 1 shown; the {sum(1 for s in st if 'second deploy' in s['label'])} "
              f"repetitions after the second deploy were "
              f"{'identical' if len(others) == 1 else 'not identical: see results.json'})")
            w("")

    vr = [r for r in bench.runs if r["part"] == "verify"]
    if vr:
        w("## 3. verify through the edge emulator")
        w("")
        w("The generated site (A, then B with 10 pages edited) deployed into a new bucket; the "
          "edge emulator (`tests/support/edge.py`, Python) in front of moto serving its "
          "distribution. `verify --all --verify-url EDGE --distribution ID` checks every URL "
          "form of every file, plain `verify` the last deploy's changes. The tool reads the "
          "manifest through the proxy; the URLs go to the edge directly, and the edge fetches "
          "misses from moto directly. Cold: the edge cache reset right before the run (every "
          "URL a miss, fetched from moto); warm: the same run again right after (every URL a "
          "hit).")
        w("")
        w("| run | URLs checked | stale | wall s | load | exit | edge served (hits/misses) | "
          "tool CPU s (user+sys) | edge CPU s | moto CPU s | proxy CPU s | S3/CF requests "
          "via proxy |")
        w("|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|")
        pts = [(k, v) for k, v in by_point.items() if k[0] == "verify"]
        for (_, point), rs in pts:
            w(f"| {point} | {same_or_range(r['reported'].get('checked') for r in rs)} | "
              f"{same_or_range(r['reported'].get('stale') for r in rs)} | "
              f"{stats(r['wall_s'] for r in rs)} | {loads(rs)} | "
              f"{same_or_range(r['exit'] for r in rs)} | "
              f"{same_or_range(r['edge']['served'] for r in rs)} "
              f"({same_or_range(r['edge']['hits'] for r in rs)}/"
              f"{same_or_range(r['edge']['misses'] for r in rs)}) | "
              f"{stats(r['user_s'] + r['sys_s'] for r in rs)} | "
              f"{stats(r['cpu']['edge'] for r in rs)} | {stats(r['cpu']['moto'] for r in rs)} | "
              f"{stats(r['cpu']['proxy'] for r in rs)} | "
              f"{same_or_range(r['requests'] for r in rs)} |")
        w("")
        for (_, point), rs in pts:
            wall = sum(r["wall_s"] for r in rs) / len(rs)
            edge = sum(r["cpu"]["edge"] for r in rs) / len(rs)
            moto = sum(r["cpu"]["moto"] for r in rs) / len(rs)
            tool = sum(r["user_s"] + r["sys_s"] for r in rs) / len(rs)
            w(f"- {point}: in {wall:.2f} s of wall, the edge emulator used {edge:.2f} s of CPU "
              f"({100 * edge / wall:.0f} % of one core), moto {moto:.2f} s "
              f"({100 * moto / wall:.0f} %), the tool {tool:.2f} s ({100 * tool / wall:.0f} %): "
              f"the emulators took {edge + moto:.2f} of the {2 * wall:.2f} core-seconds the "
              f"2 CPUs had ({100 * (edge + moto) / (2 * wall):.0f} %), the tool "
              f"{100 * tool / (2 * wall):.0f} %")
        w("")
        w("The edge and moto are Python processes (one core at most each for their Python "
          "code, by the GIL). A miss costs the edge an origin GET on moto, and every request "
          "(hit or miss) first waits for a ListInvalidations sync on moto that it may share "
          "with requests in flight; on real CloudFront neither costs the tool anything. "
          "The rest of the machine's load (the `load` column) competes for the same 2 CPUs.")
        w("")

    rr = [r for r in bench.runs if r["part"] == "refs"]
    if rr:
        w("## 4. Cost of the reference check")
        w("")
        w(f"Folder: {getattr(bench, 'refs_desc', '?')}. Generated by `.ci/bench-history.py` "
          f"(`generate_refs_site`, seed 20000, kept in `target/bench-history/refs-base`), not "
          f"by `.ci/bench-hash`, whose files are random bytes with no references. "
          f"`target/bench-history/refs-html` and `refs-txt` are hard links to it; the .txt copy "
          f"renames every .html/.htm/.css to .txt, so nothing is parsed. `--dry-run --json`, "
          f"straight to moto (the proxy's 30 ms would only add a constant), runs alternated "
          f"html/txt after one untimed warm-up run of each.")
        w("")
        w("| run | wall s | user s | sys s | user+sys s | peak RSS MiB | warnings | load | exit |")
        w("|---|---:|---:|---:|---:|---:|---:|---|---|")
        pts = [(k, v) for k, v in by_point.items() if k[0] == "refs"]
        for (_, point), rs in pts:
            w(f"| {point} | {stats(r['wall_s'] for r in rs)} | {stats(r['user_s'] for r in rs)} | "
              f"{stats(r['sys_s'] for r in rs)} | {stats(r['user_s'] + r['sys_s'] for r in rs)} | "
              f"{stats(r['rss_mib'] for r in rs)} | {same_or_range(r['warnings'] for r in rs)} | "
              f"{loads(rs)} | {same_or_range(r['exit'] for r in rs)} |")
        w("")
        for what in ("first deploy dry run", "10-page change dry run"):
            h = by_point.get(("refs", f"{what}, html"))
            t = by_point.get(("refs", f"{what}, txt"))
            if not (h and t):
                continue
            mw = lambda rs, f: sum(f(r) for r in rs) / len(rs)  # noqa: E731
            dw = mw(h, lambda r: r["wall_s"]) - mw(t, lambda r: r["wall_s"])
            dc = mw(h, lambda r: r["user_s"] + r["sys_s"]) - mw(t, lambda r: r["user_s"] + r["sys_s"])
            w(f"- {what}: html − txt = **{dw:+.2f} s wall** "
              f"({100 * dw / mw(t, lambda r: r['wall_s']):+.1f} % of the txt wall), "
              f"**{dc:+.2f} s CPU** (user+sys, "
              f"{100 * dc / mw(t, lambda r: r['user_s'] + r['sys_s']):+.1f} %); files "
              f"in the plan: {same_or_range(r['reported'].get('files_scanned') for r in h)}, "
              f"uploads planned html {same_or_range(r['reported'].get('uploaded') for r in h)} / "
              f"txt {same_or_range(r['reported'].get('uploaded') for r in t)}")
        w(f"- 10-page change: {getattr(bench, 'refs_change_note', 'not run')}")
        w("- `warnings`: the reference warnings printed; the html folder holds exactly one "
          "broken reference on purpose, so 1 proves that the pages were parsed, and 0 on the "
          "10-page change that the unchanged page holding it was not.")
        w("")

    if bench.setups:
        w("## Set-up runs (untimed, straight to moto)")
        w("")
        w("| run | wall s | exit | reported |")
        w("|---|---:|---|---|")
        for s in bench.setups:
            w(f"| {s['slug']} | {s['wall_s']:.2f} | {s['exit']} | "
              f"{reported_text(s['reported'])} |")
        w("")
        bad = [c for c in bench.checks if not c["ok"]]
        if bench.checks:
            w(f"Bucket checks after the set-up deploys: "
              f"{sum(1 for c in bench.checks if 'deploy' in c['label'] and c['ok'])} of "
              f"{sum(1 for c in bench.checks if 'deploy' in c['label'])} exact"
              + (f"; failing: {'; '.join(c['label'] + ': ' + c['text'] for c in bad)}"
                 if bad else "") + ".")
            w("")

    w("## Anything odd")
    w("")
    odd = []
    for r in bench.runs:
        tag = f"{r['part']} / {r['point']} r{r['rep']}"
        if r["exit"]:
            odd.append(f"{tag}: exit {r['exit']}: {r['err_tail']}")
        for e in r.get("non_2xx", []):
            odd.append(f"{tag}: non-2xx answer {e}")
        if r.get("site_puts"):
            odd.append(f"{tag}: {r['site_puts']} uploads (PUT/POST) of site keys in a run that "
                       f"should only copy")
        for k in ("LIST", "HEAD", "OTHER"):
            if r.get("by_kind", {}).get(k):
                odd.append(f"{tag}: {r['by_kind'][k]} {k} requests")
        if r.get("aborted"):
            odd.append(f"{tag}: {r['aborted']} requests the client abandoned")
        if r["part"] == "verify" and r["reported"].get("stale"):
            odd.append(f"{tag}: {r['reported']['stale']} stale URLs")
    for s in bench.setups:
        if s["exit"]:
            odd.append(f"set-up {s['slug']}: exit {s['exit']}")
    for c in bench.checks:
        if not c["ok"]:
            odd.append(f"check {c['label']}: {c['text']}")
    odd.extend(bench.notes)
    for o in odd or ["nothing: every run exited 0, no non-2xx answer, no upload in a rollback, "
                     "every check exact"]:
        w(f"- {o}")
    w("")
    w("Rerun: `BIN=target/bench-build/release/cargo-cdn-deploy .ci/bench-history` "
      "(results.json, runs/, proxy.log and edge.log under target/bench-history/).")
    return "\n".join(lines)


def main():
    stop_children_on_signals()
    chosen = PARTS
    if os.environ.get("BENCH_PARTS"):
        chosen = [p.strip() for p in os.environ["BENCH_PARTS"].split(",") if p.strip()]
        unknown = set(chosen) - set(PARTS)
        if unknown:
            die(f"BENCH_PARTS: unknown {sorted(unknown)}; parts: {PARTS}")
    bench = Bench()
    started = time.monotonic()
    bench.setup()
    try:
        for part in PARTS:
            if part in chosen:
                getattr(bench, f"part_{part}")()
    finally:
        stop_children()
        text = report(bench, started)
        (OUT / "results.json").write_text(json.dumps(
            {"rtt_ms": bench.rtt_ms, "binary": getattr(bench, "bin", None),
             "source": getattr(bench, "source", None), "runs": bench.runs,
             "setups": bench.setups, "checks": bench.checks, "storage": bench.storage},
            indent=1, default=str))
        (OUT / "report.md").write_text(text + "\n")
        say("")
        say(text)
        say(f"\n(total {time.monotonic() - started:.0f} s; report in "
            f"{(OUT / 'report.md').relative_to(REPO)}, results in "
            f"{(OUT / 'results.json').relative_to(REPO)}, each run's output in "
            f"{RUNS.relative_to(REPO)}/)")
    sys.exit(1 if bench.failed else 0)


if __name__ == "__main__":
    main()
