"""CloudFront edge emulator: a caching HTTP server in front of a moto bucket (stdlib + boto3).

    python edge.py --port P --moto http://127.0.0.1:MOTO --distribution DIST_ID

Plays one CloudFront distribution so tests can check what a visitor is actually served. `--port
0` picks a free port; `READY <port>` is printed on stdout once the distribution is read and the
server listens. The process exits when stdin reaches EOF, so it never outlives the test that
started it. Diagnostics (one line per request, invalidations applied) go to stderr.

The distribution. At start (and again on `POST /__edge/reset`) the distribution's config is read
from moto's CloudFront API with boto3 (endpoint = --moto, region us-east-1, credentials
test/test; AWS_PROFILE and ~/.aws are ignored). The origin is the one the default cache
behavior targets; its DomainName names the bucket (`BUCKET.s3.amazonaws.com`,
`BUCKET.s3.REGION.amazonaws.com`, `BUCKET.s3-REGION.amazonaws.com`; anything else is refused at
start) and its OriginPath (`/live`) is the key prefix (`live/`).

Viewer requests. GET and HEAD are served; the query string is ignored, both for the cache key
and for the origin. Other methods get 403, like a distribution that allows GET and HEAD only.
Range and conditional requests are not emulated: the full cached response is always returned.

Cache keys. A response is cached under the request's URL path as the client percent-encoded it,
normalised in two ways only: hex digits of %XX escapes are upper-cased (`%c3%a9` -> `%C3%A9`),
and raw non-ASCII bytes are percent-encoded as their UTF-8 (`/café` -> `/caf%C3%A9`). Nothing else
is decoded or encoded: `/d`, `/d/` and `/d/index.html` are three keys, keys are case-sensitive,
and `/a%7Eb` is not `/a~b`.

Invalidations. Before serving any GET/HEAD (and `/__edge/stats`), the emulator lists the
distribution's invalidations (ListInvalidations, every page) and fetches the ones it has not
processed yet (GetInvalidation), then applies each exactly once, in creation order (CreateTime,
ties in list order), whatever its status. Each path is normalised like a cache key; a path
ending in `*` evicts every key starting with the part before the `*` (`/*` evicts all, `/blog*`
evicts `/blog`, `/blog/` and `/blog-x`); any other path evicts exactly that key. A path not
starting with `/` evicts nothing (CloudFront rejects it; moto accepts it). An encoded `%2A` is a
literal, not a wildcard. Invalidations that exist when the emulator starts are marked applied
without effect (the cache is empty). A sync started after the request arrived is always
complete before it is looked up; concurrent requests share one sync. A response fetched from
the origin while an invalidation matching its key was applied is served but not stored.

Cache. Every origin response (200, 403, 404 alike) is stored under its key for 24 h (so, in a
test, until invalidated or reset). A hit is served as stored with `X-Cache: Hit from
cloudfront` and `Age: <seconds since stored>`; a miss fetches from the origin and says
`X-Cache: Miss from cloudfront`. Concurrent misses on one key are collapsed into one origin
fetch: the first request is the miss, the others wait for it and are counted (and labelled) as
hits once it is stored. An origin that cannot be reached gives 502, not cached.

Origin mapping, as a viewer-request function would rewrite the URI: `/` -> `index.html`, a
path ending in `/` -> that path + `index.html`, a path whose last segment has no `.` ->
that path + `/index.html`, anything else -> the path itself; the result is percent-decoded as
UTF-8 and prefixed with the OriginPath. The object is fetched from moto path-style (`GET
/BUCKET/KEY`, signed with SigV4 by botocore: moto treats unsigned requests as anonymous and
denies them) and returned as stored: the body is not decompressed (a gzip object keeps its
`Content-Encoding: gzip`), with the origin's status and its Content-Type, Content-Encoding,
Cache-Control, ETag, Last-Modified, Content-Language, Content-Disposition, Expires and
x-amz-meta-* headers. A missing key passes moto's status through (404 NoSuchKey, or 403).

Control endpoints (never cached, never invalidated):
  GET  /__edge/stats   JSON: {"distribution", "bucket", "origin_path", "hits", "misses",
                       "evictions", "invalidations_applied": [ids, in applied order],
                       "cache_keys": [sorted keys]}; it syncs invalidations first.
  POST /__edge/reset   empties the cache and zeroes hits, misses and evictions, then re-reads
                       the distribution's config. Invalidations already applied stay applied.
"""

import argparse
import email.utils
import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORIGIN_HEADERS = {
    "content-type",
    "content-encoding",
    "cache-control",
    "etag",
    "last-modified",
    "content-language",
    "content-disposition",
    "expires",
}
S3_DOMAIN = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.s3(?:\.dualstack)?(?:[.-](?P<region>[a-z0-9-]+))?"
    r"\.amazonaws\.com(?:\.cn)?\.?$",
    re.IGNORECASE,
)
PERCENT = re.compile(rb"%[0-9a-fA-F]{1,2}")
ORIGIN_TIMEOUT = 60


def log(text: str) -> None:
    sys.stderr.write(f"edge {text}\n")
    sys.stderr.flush()


def normalise(raw: bytes) -> str:
    """A cache key: raw non-ASCII bytes percent-encoded, %xx escapes upper-cased."""
    encoded = b"".join(b"%%%02X" % b if b >= 0x80 else bytes((b,)) for b in raw)
    return PERCENT.sub(lambda m: m.group().upper(), encoded).decode("ascii")


def origin_key(path: bytes, origin_prefix: str) -> str:
    """The S3 key a viewer path maps to (path without query, as received)."""
    decoded = urllib.parse.unquote_to_bytes(path).decode("utf-8", "replace")
    if decoded.endswith("/"):
        key = decoded[1:] + "index.html"
    elif "." in decoded.rsplit("/", 1)[-1]:
        key = decoded[1:]
    else:
        key = decoded[1:] + "/index.html"
    return origin_prefix + key


class Entry:
    __slots__ = ("status", "reason", "headers", "body", "stored")

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.stored = time.time()


class Fetch:
    """One origin fetch in flight; concurrent misses on its key wait for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.entry = None
        self.cached = False


class Edge:
    def __init__(self, moto: str, distribution: str) -> None:
        import boto3
        from botocore.config import Config
        from botocore.credentials import Credentials

        self.moto = urllib.parse.urlsplit(moto)
        self.distribution = distribution
        self.credentials = Credentials("test", "test")
        self.cf = boto3.session.Session().client(
            "cloudfront",
            endpoint_url=moto,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10),
        )
        self.lock = threading.Lock()  # cache, counters, applied invalidations
        self.cache = {}
        self.fetching = {}
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.generation = 0  # bumped by reset: fetches begun before it are not stored
        self.applied_ids = []
        self.processed = set()
        # (sequence number, exact key or None, prefix or None) of every applied path.
        self.applied_paths = []
        # Invalidation syncs: requests share one that started after they arrived.
        self.sync_cond = threading.Condition()
        self.sync_requested = 0
        self.sync_done_upto = 0
        self.sync_running = False
        self.load_config()

    # ---- distribution ------------------------------------------------------------------------

    def load_config(self) -> None:
        config = self.cf.get_distribution_config(Id=self.distribution)["DistributionConfig"]
        origins = config["Origins"].get("Items") or []
        target = config["DefaultCacheBehavior"]["TargetOriginId"]
        origin = next((o for o in origins if o["Id"] == target), None)
        if origin is None:
            raise ValueError(f"distribution {self.distribution} has no origin {target!r}")
        match = S3_DOMAIN.match(origin["DomainName"])
        if not match:
            raise ValueError(
                f"origin {origin['DomainName']!r} of {self.distribution} is not an S3 bucket"
            )
        self.bucket = match.group("bucket")
        self.origin_path = origin.get("OriginPath") or ""
        prefix = self.origin_path.strip("/")
        self.origin_prefix = prefix + "/" if prefix else ""

    # ---- invalidations -----------------------------------------------------------------------

    def sync(self) -> None:
        """Apply every invalidation that exists now (a sync that began after this call)."""
        with self.sync_cond:
            self.sync_requested += 1
            mine = self.sync_requested
            while self.sync_done_upto < mine:
                if self.sync_running:
                    self.sync_cond.wait()
                    continue
                self.sync_running = True
                upto = self.sync_requested
                self.sync_cond.release()
                try:
                    self.sync_once()
                finally:
                    self.sync_cond.acquire()
                    self.sync_running = False
                    self.sync_cond.notify_all()
                self.sync_done_upto = upto

    def sync_once(self) -> None:
        summaries = []
        for page in self.cf.get_paginator("list_invalidations").paginate(
            DistributionId=self.distribution
        ):
            summaries.extend(page["InvalidationList"].get("Items") or [])
        new = [(i, s) for i, s in enumerate(summaries) if s["Id"] not in self.processed]
        if not new:
            return
        found = []
        for index, summary in new:
            inv = self.cf.get_invalidation(DistributionId=self.distribution, Id=summary["Id"])
            inv = inv["Invalidation"]
            found.append((inv["CreateTime"], index, inv))
        found.sort(key=lambda t: (t[0], t[1]))
        for _, _, inv in found:
            self.apply(inv)

    def apply(self, inv: dict) -> None:
        paths = inv["InvalidationBatch"]["Paths"].get("Items") or []
        with self.lock:
            evicted = 0
            for path in paths:
                seq = len(self.applied_paths) + 1
                if not path.startswith("/"):
                    log(f"invalidation {inv['Id']}: path {path!r} does not start with / (ignored)")
                    continue
                if path.endswith("*"):
                    prefix = normalise(path[:-1].encode("utf-8"))
                    self.applied_paths.append((seq, None, prefix))
                    doomed = [k for k in self.cache if k.startswith(prefix)]
                else:
                    exact = normalise(path.encode("utf-8"))
                    self.applied_paths.append((seq, exact, None))
                    doomed = [exact] if exact in self.cache else []
                for k in doomed:
                    del self.cache[k]
                evicted += len(doomed)
            self.evictions += evicted
            self.processed.add(inv["Id"])
            self.applied_ids.append(inv["Id"])
        log(f"invalidation {inv['Id']} ({inv.get('Status')}) applied: {paths} evicted {evicted}")

    def invalidated_since(self, mark: int, key: str) -> bool:
        for _, exact, prefix in self.applied_paths[mark:]:
            if key == exact or (prefix is not None and key.startswith(prefix)):
                return True
        return False

    # ---- cache -------------------------------------------------------------------------------

    def lookup(self, key: str, path: bytes):
        """(entry, hit) for a viewer path; fetches from the origin on a miss."""
        with self.lock:
            entry = self.cache.get(key)
            if entry is not None:
                self.hits += 1
                return entry, True
            fetch = self.fetching.get(key)
            leader = fetch is None
            if leader:
                fetch = self.fetching[key] = Fetch()
                mark = len(self.applied_paths)
                generation = self.generation
                origin_prefix = self.origin_prefix
                bucket = self.bucket
        if not leader:
            fetch.done.wait()
            with self.lock:
                if fetch.cached:
                    self.hits += 1
                else:
                    self.misses += 1
            return fetch.entry, fetch.cached

        try:
            entry, cacheable = self.fetch_origin(bucket, origin_key(path, origin_prefix)), True
        except Exception as e:  # moto unreachable, or a bug here: waiters must not hang
            body = f"origin {self.moto.geturl()} failed: {e!r}\n".encode()
            entry = Entry(502, "Bad Gateway", [("Content-Type", "text/plain")], body)
            cacheable = False
        with self.lock:
            cacheable = (
                cacheable
                and generation == self.generation
                and not self.invalidated_since(mark, key)
            )
            if cacheable:
                entry.stored = time.time()
                self.cache[key] = entry
            self.misses += 1
            del self.fetching[key]
            fetch.entry, fetch.cached = entry, cacheable
        fetch.done.set()
        return entry, False

    def fetch_origin(self, bucket: str, key: str) -> Entry:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        path = f"/{bucket}/" + urllib.parse.quote(key, safe="/")
        host = f"{self.moto.hostname}:{self.moto.port}"
        request = AWSRequest(method="GET", url=f"http://{host}{path}", headers={"Host": host})
        S3SigV4Auth(self.credentials, "s3", "us-east-1").add_auth(request)
        conn = http.client.HTTPConnection(
            self.moto.hostname, self.moto.port, timeout=ORIGIN_TIMEOUT
        )
        try:
            conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
            for k, v in request.headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        headers = [
            (k, v)
            for k, v in resp.getheaders()
            if k.lower() in ORIGIN_HEADERS or k.lower().startswith("x-amz-meta-")
        ]
        return Entry(resp.status, resp.reason, headers, body)

    def reset(self) -> None:
        with self.lock:
            self.cache.clear()
            self.hits = self.misses = self.evictions = 0
            self.generation += 1
        self.load_config()

    def stats(self) -> dict:
        with self.lock:
            return {
                "distribution": self.distribution,
                "bucket": self.bucket,
                "origin_path": self.origin_path,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "invalidations_applied": list(self.applied_ids),
                "cache_keys": sorted(self.cache),
            }


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CloudFront-emulator"
    disable_nagle_algorithm = True
    edge: Edge

    def do_GET(self) -> None:
        self.serve(head=False)

    def do_HEAD(self) -> None:
        self.serve(head=True)

    def do_POST(self) -> None:
        self.discard_body()
        if self.path.split("?", 1)[0] == "/__edge/reset":
            try:
                self.edge.reset()
            except Exception as e:  # the config could not be re-read
                self.send_plain(500, "Internal Server Error", f"reset failed: {e}\n", "text/plain")
                return
            self.send_plain(200, "OK", json.dumps({"reset": True}) + "\n", "application/json")
            return
        self.method_not_allowed()

    def do_PUT(self) -> None:
        self.discard_body()
        self.method_not_allowed()

    do_DELETE = do_OPTIONS = do_PATCH = do_PUT

    def serve(self, head: bool) -> None:
        raw = self.path.encode("latin-1").split(b"?", 1)[0]
        if raw == b"/__edge/stats":
            if self.sync_or_fail():
                stats = json.dumps(self.edge.stats(), indent=1) + "\n"
                self.send_plain(200, "OK", stats, "application/json", head)
            return
        if not raw.startswith(b"/"):
            self.send_plain(400, "Bad Request", "bad request target\n", "text/plain", head)
            return
        if not self.sync_or_fail():
            return
        key = normalise(raw)
        entry, hit = self.edge.lookup(key, raw)
        self.send_response_only(entry.status, entry.reason)
        for k, v in entry.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(entry.body)))
        self.send_header("Date", email.utils.formatdate(usegmt=True))
        if hit:
            self.send_header("Age", str(max(0, int(time.time() - entry.stored))))
        self.send_header("X-Cache", "Hit from cloudfront" if hit else "Miss from cloudfront")
        self.send_header("Via", "1.1 emulator.cloudfront.net (CloudFront)")
        self.send_header("X-Amz-Cf-Pop", "EMU50-C1")
        self.end_headers_with(b"" if head else entry.body)
        self.log_line(entry.status, "Hit" if hit else "Miss", key)

    def sync_or_fail(self) -> bool:
        try:
            self.edge.sync()
            return True
        except Exception as e:  # moto unreachable or an API error: say so, serve nothing
            text = f"reading invalidations failed: {e}\n"
            self.send_plain(502, "Bad Gateway", text, "text/plain")
            return False

    def method_not_allowed(self) -> None:
        self.send_plain(
            403,
            "Forbidden",
            "This distribution is not configured to allow the HTTP request method that was "
            "used for this request.\n",
            "text/plain",
        )

    def discard_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            piece = self.rfile.read(min(length, 65536))
            if not piece:
                break
            length -= len(piece)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # not worth de-chunking: the body is ignored

    def send_plain(self, status, reason, text, content_type, head=False) -> None:
        body = text.encode()
        self.send_response_only(status, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Date", email.utils.formatdate(usegmt=True))
        self.end_headers_with(b"" if head else body)
        self.log_line(status, "-", "")

    def end_headers_with(self, body: bytes) -> None:
        self._headers_buffer.append(b"\r\n")
        if body:
            self._headers_buffer.append(body)
        self.flush_headers()

    def log_line(self, status, cache, key) -> None:
        path = self.path.encode("latin-1").decode("utf-8", "backslashreplace")
        log(f"{self.command} {path} {status} {cache} {key}".rstrip())

    def log_message(self, format: str, *args) -> None:
        log(f"{self.address_string()} {format % args}")

    def log_request(self, code="-", size="-") -> None:
        pass


def exit_on_stdin_eof() -> None:
    try:
        # os.read, not sys.stdin: a thread blocked inside the buffered reader would make
        # interpreter shutdown abort when the main thread fails first.
        while os.read(0, 65536):
            pass
    finally:
        os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--moto", required=True, help="http://127.0.0.1:PORT of moto server")
    parser.add_argument("--distribution", required=True, help="the distribution id")
    args = parser.parse_args()

    # Nothing of the developer's AWS setup may change what the emulator reads.
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_CLOUDFRONT",
        "AWS_CA_BUNDLE",
    ):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

    threading.Thread(target=exit_on_stdin_eof, name="stdin-eof-watch", daemon=True).start()
    try:
        edge = Edge(args.moto, args.distribution)
        edge.sync()  # invalidations that exist already: applied to an empty cache
    except Exception as e:
        log(f"cannot read distribution {args.distribution} from {args.moto}: {e}")
        sys.exit(2)
    log(
        f"distribution {edge.distribution}: s3://{edge.bucket}/{edge.origin_prefix} "
        f"(OriginPath {edge.origin_path!r}), {len(edge.applied_ids)} invalidations already there"
    )
    Handler.edge = edge
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
