#!/usr/bin/env python3
"""Concurrency benchmark: how the first deploy of cargo-cdn-deploy scales with -j/--concurrency
when every S3 request costs one realistic round trip and the server is never the limit. Run it
through .ci/bench-concurrency (same options, same environment).

Why a sink and not moto
  moto answers about 200 requests/s from one Python process, so behind it more concurrency only
  queues at the server. Here S3 is replaced by a small sink server (standard-library asyncio,
  HTTP/1.1 keep-alive) that holds each request for a fixed round trip (--rtt-ms, default 30 ms,
  about S3 as seen from a CI runner) with asyncio.sleep, so any number of requests can wait at
  once at almost no cost, and then answers. What is measured is the client: how many requests it
  keeps in flight, what it spends in CPU and memory to do so, and the resulting wall time.

The sink (`bench-concurrency.py sink --port P --rtt-ms 30`)
  * Path-style (`/BUCKET/KEY`) and virtual-host (`Host: BUCKET.127.0.0.1`) addressing; any
    bucket name exists. Request bodies framed by Content-Length or `Transfer-Encoding: chunked`,
    and `aws-chunked` payloads (signed or unsigned, with trailers) are decoded; `Expect:
    100-continue` is answered with `100 Continue` at once. The round trip is waited after the
    body has been read, before the answer.
  * PUT object: 200 with `ETag: "<md5 of the body>"`. Only key, size, MD5 and the headers S3
    would return are kept; full bodies only for keys containing `.cdn-deploy/` (the tool's own
    state, which it reads back). `If-None-Match: *` on an existing key and `If-Match` with
    another ETag answer 412 PreconditionFailed; `If-Match` on a missing key answers 404
    NoSuchKey, as S3 does.
  * GET object: the stored body for `.cdn-deploy/` keys (`Range: bytes=a-b` answers 206,
    `If-None-Match` with the current ETag answers 304); any other key answers 404 NoSuchKey
    (its body was not kept). HEAD object: 200 with size and ETag for any stored key, else 404.
  * Also, minimally: HEAD/PUT bucket (200), GET ?location, ListObjectsV2 of the stored keys,
    ListMultipartUploads (always empty), DeleteObject, DeleteObjects, and multipart uploads
    (create, parts counted by size and MD5 only, complete, abort), so a large file can be part
    of a client-bound measurement. Anything else (copies, ...) answers 501 NotImplemented and is
    counted as unsupported.
  * It counts requests (by operation and status), new connections, body bytes, the peak number
    of requests in flight (headers read, answer not yet written), and which framings the
    clients used. `GET /__bench/stats` returns those counters as JSON and `POST /__bench/reset`
    zeroes them and forgets every stored object (neither is counted). Totals are printed on
    stderr when it exits (SIGTERM or SIGINT).

The sink check (`bench-concurrency.py sink-check`, also the first step of the sweep)
  A fresh sink on its own, driven by an asyncio client in this process (a separate process
  from the sink, so each has a core): (a) 10,000 PUTs of 8 KiB with 256 in flight and no round
  trip: the sink's raw rate, and its CPU per request (from /proc), which gives the most one
  core can serve (without a round trip every request is answered before the next is read, so
  its peak in flight is 1); (b) 6,000 PUTs with 128 in flight and the 30 ms round trip: the achieved
  rate against the ideal 128 / 30 ms = 4,267 requests/s. The sweep needs at most
  128 / RTT requests/s (64 in flight: ~2,100/s), and far less in practice.

The sweep (default)
  * Sites of N small files (default N = 1,000 and 5,000), 1-20 KiB each, a quarter each of
    .html, .css, .js and .png-like files (the first three compressible text, the last random
    bytes) in 40 folders; generated once, deterministically, kept in target/bench-concurrency/.
  * For each N and each repetition (default 3), every client below runs once, the order of the
    clients changing from one repetition to the next (forward, reversed, rotated) so slow drift
    of the machine does not favour one point. Each run goes to a fresh bucket, so every
    cargo-cdn-deploy run is a first deploy (every file uploaded, manifest written):
      cdn-deploy -j J   BIN --bucket B --config <empty toml> -j J --json SITE, for each J in
                        BENCH_JOBS (8,16,32,64,128). The empty config file keeps the tool from
                        looking for a Cargo project.
      s5cmd             s5cmd --endpoint-url SINK cp 'SITE/*' s3://B/ (default workers, 256)
      s5cmd -w32        the same with --numworkers 32
      aws s3 cp         aws s3 cp --recursive SITE s3://B/ --endpoint-url SINK --only-show-errors
                        (the CLI's default 10 concurrent requests)
    The peers upload the files as they are; cargo-cdn-deploy also gzips text files and writes
    its manifest (three state requests), so compare the peers on wall time, not bytes.
  * Every run goes through `/usr/bin/time -v` with a clean environment (test credentials,
    AWS_REGION=us-east-1, AWS_ENDPOINT_URL=SINK, no AWS config files, no CI variables).
  * Per run: wall time (measured here, process start to exit), user+sys CPU and peak RSS (from
    /usr/bin/time), the 1-minute load average just before the run (/proc/loadavg), and from
    the sink: requests, their statuses, new connections, the peak number in flight, and the
    sink's own CPU time during the run. A run that exits non-zero, or draws a non-2xx answer
    other than the expected 404 of the first manifest read, is reported under "Anomalies";
    repeated PUTs of the same site key within one run (retries) are counted there too.
  * After every run the sink's record of the bucket is compared with the site: the same keys,
    and for every object stored as it is (no Content-Encoding) the file's size and MD5, which
    also checks that the sink decoded each client's body framing correctly. Objects that
    cdn-deploy gzipped are only counted.
  * Per point the report gives wall mean/min/max, CPU and RSS means (RSS max too), requests,
    the peak in flight, connections, the sink's CPU, and the load averages seen.

Usage
  .ci/bench-concurrency                           # the sink check, then the full sweep
  .ci/bench-concurrency sink-check                # only the sink check
  .ci/bench-concurrency sink --port 9000          # only the sink, until Ctrl-C
  .ci/bench-concurrency report                    # report.md again from results.json
Environment
  BIN            cargo-cdn-deploy binary [target/bench-build/release/cargo-cdn-deploy if
                 present, else ${CARGO_TARGET_DIR:-target}/release/cargo-cdn-deploy]
  S5CMD, AWS     peer tools [s5cmd and aws on PATH, then target/bench-venv/bin/]
  BENCH_RTT_MS   round trip held by the sink per request [30]
  BENCH_FILES    comma-separated site sizes [1000,5000]
  BENCH_JOBS     comma-separated -j values [8,16,32,64,128]
  BENCH_REPEAT   repetitions of each point [3]
  BENCH_PEERS    comma-separated peers of s5cmd,s5cmd-w32,aws, or `none` [all three]
  BENCH_CONNECT_MS  extra wait on each new connection before its first request is read,
                 standing for the TCP and TLS handshakes a real endpoint costs (loopback
                 connections are free, which favours clients that open many) [0]
  BENCH_OUT      folder of the results [target/bench-concurrency]; the sites stay there
Output: target/bench-concurrency/report.md (also printed), results.json, runs/ (each run's
stdout, stderr and /usr/bin/time output), sink.log. Exit 0 when every run succeeded and every
bucket matched its site, 1 otherwise (the report is written all the same), 2 when something
needed is missing. Not part of CI.
"""

import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from email.utils import formatdate
from pathlib import Path

import benchlib
from benchlib import die, find_tool, load1, proc_cpu, s5cmd_binary, say
from xml.sax.saxutils import escape


REPO = Path(__file__).resolve().parent.parent
SITES = REPO / "target" / "bench-concurrency"
OUT = Path(os.environ.get("BENCH_OUT") or SITES).resolve()
benchlib.NAME = "bench-concurrency"
benchlib.OUT = OUT
RUNS = OUT / "runs"
TIME = "/usr/bin/time"
STATE_MARK = ".cdn-deploy/"
CONTROL = "/__bench/"


REASONS = {100: "Continue", 200: "OK", 204: "No Content", 206: "Partial Content",
           304: "Not Modified", 400: "Bad Request", 404: "Not Found",
           412: "Precondition Failed", 416: "Range Not Satisfiable",
           501: "Not Implemented"}
# Request headers an S3 GET/HEAD gives back (plus x-amz-meta-*).
KEPT_HEADERS = ("content-type", "cache-control", "content-encoding", "content-disposition",
                "content-language", "expires", "x-amz-website-redirect-location")


class BadRequest(Exception):
    pass


class Obj:
    __slots__ = ("size", "etag", "headers", "body", "mtime")

    def __init__(self, size, etag, headers, body, mtime):
        self.size, self.etag, self.headers, self.body, self.mtime = size, etag, headers, body, mtime


class Sink:
    def __init__(self, rtt_ms, host_names, connect_ms=0.0):
        self.rtt = rtt_ms / 1000.0
        self.connect = connect_ms / 1000.0
        self.hosts = host_names  # host names that mean path-style (no bucket in the Host)
        self.buckets = {}  # bucket -> {key: Obj}
        self.uploads = {}  # upload id -> (bucket, key, headers, {part number: (size, md5)})
        self.reset()
        self.total_requests = 0
        self.total_peak = 0
        self.seq = 0

    def reset(self):
        self.buckets = {}
        self.stats = Counter()
        self.ops = Counter()
        self.status = Counter()
        self.peak = 0
        self.inflight = 0
        self.site_puts = Counter()  # key -> PUTs of it since the reset
        self.unsupported = Counter()

    def snapshot(self):
        dup = sum(n - 1 for n in self.site_puts.values() if n > 1)
        return {
            "requests": self.stats["requests"],
            "connections": self.stats["connections"],
            "bytes_in": self.stats["bytes_in"],
            "peak_inflight": self.peak,
            "inflight_now": self.inflight,
            "ops": dict(self.ops),
            "status": {str(k): v for k, v in self.status.items()},
            "framing": {k[2:]: v for k, v in self.stats.items() if k.startswith("f:")},
            "repeated_site_puts": dup,
            "unsupported": dict(self.unsupported),
        }

    # ---- connection loop --------------------------------------------------------------------

    async def handle(self, reader, writer):
        self.stats["connections"] += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        try:
            if self.connect > 0:
                # A new connection's handshakes (TCP, TLS) before its first request is read.
                await asyncio.sleep(self.connect)
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                keep = await self.one(head, reader, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                BadRequest):
            return
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - closing a broken socket
                pass

    async def one(self, head, reader, writer):
        lines = head[:-4].decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise BadRequest(lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        path, _, query = target.partition("?")
        control = path.startswith(CONTROL)
        if not control:
            self.stats["requests"] += 1
            self.total_requests += 1
            self.inflight += 1
            if self.inflight > self.peak:
                self.peak = self.inflight
                if self.peak > self.total_peak:
                    self.total_peak = self.peak
        try:
            if headers.get("expect", "").lower() == "100-continue":
                self.stats["f:expect-100-continue"] += 1
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await self.read_body(headers, reader)
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            if control:
                status, rh, rbody = self.control(method, path)
            else:
                self.stats["bytes_in"] += len(body)
                status, rh, rbody = self.route(method, path, query, headers, body)
                if self.rtt > 0:
                    await asyncio.sleep(self.rtt)
                self.status[status] += 1
            self.seq += 1
            out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
                   f"x-amz-request-id: {self.seq:016X}",
                   "Server: bench-sink"]
            if not keep:
                out.append("Connection: close")
            clen = rh.pop("content-length", None)
            out.extend(f"{k}: {v}" for k, v in rh.items())
            if method == "HEAD":
                out.append(f"Content-Length: {clen if clen is not None else len(rbody)}")
                rbody = b""
            elif status not in (204, 304):
                out.append(f"Content-Length: {len(rbody)}")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + rbody)
            await writer.drain()
            return keep
        finally:
            if not control:
                self.inflight -= 1

    async def read_body(self, headers, reader):
        te = headers.get("transfer-encoding", "").lower()
        if "chunked" in te:
            self.stats["f:transfer-encoding-chunked"] += 1
            body = await read_chunked(reader)
        else:
            n = int(headers.get("content-length") or 0)
            body = await reader.readexactly(n) if n else b""
        enc = headers.get("content-encoding", "").lower()
        sha = headers.get("x-amz-content-sha256", "")
        if "aws-chunked" in enc or sha.startswith("STREAMING-"):
            self.stats["f:aws-chunked"] += 1
            body = decode_aws_chunked(body)
        if sha == "UNSIGNED-PAYLOAD":
            self.stats["f:unsigned-payload"] += 1
        return body

    # ---- operations ------------------------------------------------------------------------

    def control(self, method, path):
        if path == CONTROL + "stats":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.snapshot()).encode()
        if path == CONTROL + "objects":
            listing = {b: {k: [o.size, o.etag.strip('"'), o.headers.get("content-encoding", "")]
                           for k, o in objs.items()} for b, objs in self.buckets.items()}
            return 200, {"Content-Type": "application/json"}, json.dumps(listing).encode()
        if path == CONTROL + "reset" and method == "POST":
            snap = self.snapshot()
            self.reset()
            return 200, {"Content-Type": "application/json"}, json.dumps(snap).encode()
        return 404, {}, b""

    def address(self, path, headers):
        host = headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        parts = urllib.parse.unquote(path).lstrip("/")
        if name and name not in self.hosts and "." in name:
            bucket = name.split(".", 1)[0]
            self.stats["f:virtual-host"] += 1
            return bucket, parts
        self.stats["f:path-style"] += 1
        bucket, _, key = parts.partition("/")
        return bucket, key

    def route(self, method, path, query, headers, body):
        bucket, key = self.address(path, headers)
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        q.pop("x-id", None)  # the operation's name, added by the Rust SDK
        objs = self.buckets.setdefault(bucket, {}) if bucket else None
        if not bucket:
            return self.unsupported_op("ListBuckets")
        if key:
            if method == "PUT":
                if "uploadId" in q and "partNumber" in q and "x-amz-copy-source" not in headers:
                    return self.upload_part(q, body)
                if "uploadId" in q or "partNumber" in q:
                    return self.unsupported_op("UploadPartCopy")
                if "x-amz-copy-source" in headers:
                    return self.unsupported_op("CopyObject")
                if q:
                    return self.unsupported_op("PutObject?" + ",".join(sorted(q)))
                return self.put(objs, key, headers, body)
            if method in ("GET", "HEAD"):
                if q and not set(q) <= {"partNumber"}:
                    return self.unsupported_op(f"{method}Object?" + ",".join(sorted(q)))
                return self.get(method, objs, key, headers)
            if method == "DELETE" and not q:
                self.ops["DeleteObject"] += 1
                objs.pop(key, None)
                return 204, {}, b""
            if method == "DELETE" and "uploadId" in q:
                self.ops["AbortMultipartUpload"] += 1
                self.uploads.pop(q["uploadId"][0], None)
                return 204, {}, b""
            if method == "POST" and "uploads" in q:
                return self.create_upload(bucket, key, headers)
            if method == "POST" and "uploadId" in q:
                return self.complete_upload(objs, q)
            return self.unsupported_op(f"{method}Object")
        # Bucket operations.
        if method == "HEAD":
            self.ops["HeadBucket"] += 1
            return 200, {"x-amz-bucket-region": "us-east-1"}, b""
        if method == "PUT" and not q:
            self.ops["CreateBucket"] += 1
            return 200, {"Location": f"/{bucket}"}, b""
        if method == "GET" and "location" in q:
            self.ops["GetBucketLocation"] += 1
            return xml(200, '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>')
        if method == "GET" and "uploads" in q:
            self.ops["ListMultipartUploads"] += 1
            return xml(200, f"<ListMultipartUploadsResult><Bucket>{escape(bucket)}</Bucket>"
                            "<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
                            "<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>"
                            "</ListMultipartUploadsResult>")
        if method == "GET" and q.get("list-type") == ["2"]:
            return self.list_v2(bucket, objs, q)
        if method == "POST" and "delete" in q:
            self.ops["DeleteObjects"] += 1
            try:
                root = ET.fromstring(body)
            except ET.ParseError:
                return error(400, "MalformedXML", "bad XML")
            for el in root.iter():
                if el.tag.endswith("Key"):
                    objs.pop(el.text or "", None)
            return xml(200, "<DeleteResult></DeleteResult>")
        return self.unsupported_op(f"{method}Bucket?" + ",".join(sorted(q)))

    def unsupported_op(self, name):
        self.ops["unsupported"] += 1
        self.unsupported[name] += 1
        return error(501, "NotImplemented", f"the benchmark sink does not implement {name}")

    def put(self, objs, key, headers, body):
        self.ops["PutObject"] += 1
        cur = objs.get(key)
        inm = headers.get("if-none-match")
        im = headers.get("if-match")
        if inm is not None and inm.strip() == "*" and cur is not None:
            return error(412, "PreconditionFailed", "At least one of the pre-conditions you "
                                                    "specified did not hold", key)
        if im is not None:
            if cur is None:
                return error(404, "NoSuchKey", "The specified key does not exist.", key)
            if im.strip() != "*" and im.strip().strip('"') != cur.etag.strip('"'):
                return error(412, "PreconditionFailed", "At least one of the pre-conditions "
                                                        "you specified did not hold", key)
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        kept = {k: v for k, v in headers.items() if k in KEPT_HEADERS or k.startswith("x-amz-meta-")}
        kept.setdefault("content-type", "binary/octet-stream")
        state = STATE_MARK in key
        objs[key] = Obj(len(body), etag, kept, body if state else None, time.time())
        if not state:
            self.site_puts[key] += 1
        return 200, {"ETag": etag}, b""

    def create_upload(self, bucket, key, headers):
        self.ops["CreateMultipartUpload"] += 1
        self.seq += 1
        upload = f"upload-{self.seq}"
        kept = {k: v for k, v in headers.items() if k in KEPT_HEADERS or k.startswith("x-amz-meta-")}
        kept.setdefault("content-type", "binary/octet-stream")
        self.uploads[upload] = (bucket, key, kept, {})
        return xml(200, f"<InitiateMultipartUploadResult><Bucket>{escape(bucket)}</Bucket>"
                        f"<Key>{escape(key)}</Key><UploadId>{upload}</UploadId>"
                        "</InitiateMultipartUploadResult>")

    def upload_part(self, q, body):
        self.ops["UploadPart"] += 1
        up = self.uploads.get(q["uploadId"][0])
        if up is None:
            return error(404, "NoSuchUpload", "The specified upload does not exist.")
        md5 = hashlib.md5(body).hexdigest()
        up[3][int(q["partNumber"][0])] = (len(body), md5)
        return 200, {"ETag": f'"{md5}"'}, b""

    def complete_upload(self, objs, q):
        self.ops["CompleteMultipartUpload"] += 1
        up = self.uploads.pop(q["uploadId"][0], None)
        if up is None:
            return error(404, "NoSuchUpload", "The specified upload does not exist.")
        bucket, key, kept, parts = up
        digest = hashlib.md5(b"".join(bytes.fromhex(m) for _, m in
                                      (parts[n] for n in sorted(parts)))).hexdigest()
        etag = f'"{digest}-{len(parts)}"'
        objs[key] = Obj(sum(s for s, _ in parts.values()), etag, kept, None, time.time())
        self.site_puts[key] += 1
        return xml(200, f"<CompleteMultipartUploadResult><Bucket>{escape(bucket)}</Bucket>"
                        f"<Key>{escape(key)}</Key><ETag>{escape(etag)}</ETag>"
                        "</CompleteMultipartUploadResult>")

    def get(self, method, objs, key, headers):
        self.ops["HeadObject" if method == "HEAD" else "GetObject"] += 1
        cur = objs.get(key)
        if cur is None or (method == "GET" and cur.body is None):
            return error(404, "NoSuchKey", "The specified key does not exist.", key)
        rh = {"ETag": cur.etag, "Last-Modified": formatdate(cur.mtime, usegmt=True),
              "Accept-Ranges": "bytes"}
        rh.update(cur.headers)
        inm = headers.get("if-none-match")
        if inm is not None and inm.strip().strip('"') == cur.etag.strip('"'):
            return 304, {"ETag": cur.etag}, b""
        im = headers.get("if-match")
        if im is not None and im.strip().strip('"') != cur.etag.strip('"'):
            return error(412, "PreconditionFailed", "At least one of the pre-conditions you "
                                                    "specified did not hold", key)
        if method == "HEAD":
            rh["content-length"] = str(cur.size)
            return 200, rh, b""
        rng = headers.get("range", "")
        if rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            size = cur.size
            if a == "":
                start, end = max(0, size - int(b)), size - 1
            else:
                start = int(a)
                end = min(int(b), size - 1) if b else size - 1
            if start >= size or start > end:
                rh = {"Content-Range": f"bytes */{size}"}
                return error(416, "InvalidRange", "The requested range is not satisfiable",
                             key, extra=rh)
            rh["Content-Range"] = f"bytes {start}-{end}/{size}"
            return 206, rh, cur.body[start:end + 1]
        return 200, rh, cur.body

    def list_v2(self, bucket, objs, q):
        self.ops["ListObjectsV2"] += 1
        prefix = q.get("prefix", [""])[0]
        start = q.get("continuation-token", q.get("start-after", [""]))[0]
        max_keys = int(q.get("max-keys", ["1000"])[0])
        keys = sorted(k for k in objs if k.startswith(prefix) and k > start)
        page, more = keys[:max_keys], len(keys) > max_keys
        items = "".join(
            f"<Contents><Key>{escape(k)}</Key><Size>{objs[k].size}</Size>"
            f"<ETag>{escape(objs[k].etag)}</ETag><StorageClass>STANDARD</StorageClass>"
            f"<LastModified>{time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(objs[k].mtime))}"
            "</LastModified></Contents>" for k in page)
        token = f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>" if more else ""
        return xml(200, f"<ListBucketResult><Name>{escape(bucket)}</Name>"
                        f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount>"
                        f"<MaxKeys>{max_keys}</MaxKeys>"
                        f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>"
                        f"{token}{items}</ListBucketResult>")


def xml(status, inner, extra=None):
    h = {"Content-Type": "application/xml"}
    if extra:
        h.update(extra)
    return status, h, ('<?xml version="1.0" encoding="UTF-8"?>\n' + inner).encode()


def error(status, code, message, key="", extra=None):
    k = f"<Key>{escape(key)}</Key>" if key else ""
    return xml(status, f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{k}"
                       "<RequestId>0</RequestId></Error>", extra)


async def read_chunked(reader):
    parts = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest("chunk not followed by CRLF")


def decode_aws_chunked(data):
    """`hex[;chunk-signature=..]\\r\\n DATA \\r\\n ... 0[;..]\\r\\n [trailers\\r\\n] \\r\\n`."""
    out, i = [], 0
    while i < len(data):
        eol = data.index(b"\r\n", i)
        size = int(data[i:eol].split(b";", 1)[0].strip(), 16)
        i = eol + 2
        if size == 0:
            break
        out.append(data[i:i + size])
        i += size + 2
    return b"".join(out)


def run_sink(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="bench-concurrency.py sink")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rtt-ms", type=float, default=30.0)
    ap.add_argument("--connect-ms", type=float, default=0.0,
                    help="extra wait before the first request of each new connection is read")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    args = ap.parse_args(argv)
    sink = Sink(args.rtt_ms, {"127.0.0.1", "localhost", "[::1]", args.host}, args.connect_ms)

    async def main():
        server = await asyncio.start_server(sink.handle, args.host, args.port, backlog=4096,
                                            limit=1 << 20)
        port = server.sockets[0].getsockname()[1]
        if args.port_file:
            tmp = args.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(port))
            os.replace(tmp, args.port_file)
        print(f"sink: listening on http://{args.host}:{port} (rtt {args.rtt_ms:g} ms, "
              f"connect {args.connect_ms:g} ms)",
              file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(main())
    print(f"sink: {sink.total_requests} requests in total, peak {sink.total_peak} in flight",
          file=sys.stderr, flush=True)


class SinkProcess:
    """A sink started as a child process; its counters through the control paths."""

    def __init__(self, rtt_ms, log_path, connect_ms=0.0):
        port_file = OUT / f"sink-{os.getpid()}.port"
        port_file.unlink(missing_ok=True)
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "sink", "--rtt-ms", str(rtt_ms),
             "--connect-ms", str(connect_ms), "--port-file", str(port_file)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 15
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                die(f"the sink did not start; see {log_path}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        port_file.unlink()
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, method, what):
        req = urllib.request.Request(self.url + CONTROL + what, method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def reset(self):
        return self.call("POST", "reset")

    def stats(self):
        return self.call("GET", "stats")

    def objects(self):
        return self.call("GET", "objects")

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

async def load_client(port, total, inflight, size):
    """`inflight` keep-alive connections, each sending PUTs one after the other, `total` in
    all. Returns (seconds, statuses)."""
    body = os.urandom(size)
    counter = iter(range(total))
    statuses = Counter()

    async def worker(w):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                writer.write((f"PUT /check/k{w}-{i}.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                              f"Content-Length: {size}\r\nContent-Type: application/octet-stream"
                              "\r\n\r\n").encode() + body)
                head = await reader.readuntil(b"\r\n\r\n")
                statuses[int(head.split(b" ", 2)[1])] += 1
                clen = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        clen = int(line.split(b":", 1)[1])
                if clen:
                    await reader.readexactly(clen)
        finally:
            writer.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(inflight)))
    return time.monotonic() - t0, statuses


def sink_check(rtt_ms):
    OUT.mkdir(parents=True, exist_ok=True)
    results = []
    for label, rtt, total, inflight in (("no round trip", 0, 10000, 256),
                                        (f"{rtt_ms:g} ms round trip", rtt_ms, 6000, 128)):
        sink = SinkProcess(rtt, OUT / "sink.log")
        try:
            # Warm up (imports, first connections), then measure.
            asyncio.run(load_client(sink.port, 200, 32, 8192))
            sink.reset()
            c0, l0 = sink.cpu(), load1()
            secs, statuses = asyncio.run(load_client(sink.port, total, inflight, 8192))
            cpu = sink.cpu() - c0
            st = sink.stats()
        finally:
            sink.stop()
        ideal = inflight / (rtt / 1000) if rtt else None
        r = {"label": label, "rtt_ms": rtt, "requests": total, "inflight": inflight,
             "seconds": secs, "rate": total / secs, "sink_cpu_s": cpu,
             "sink_capacity": total / cpu if cpu > 0 else None, "ideal_rate": ideal,
             "peak_inflight": st["peak_inflight"], "statuses": dict(statuses),
             "load1": l0, "connections": st["connections"]}
        results.append(r)
        cap = f"{r['sink_capacity']:,.0f}" if r["sink_capacity"] else "?"
        extra = f", ideal {ideal:,.0f}/s ({r['rate'] / ideal:.0%})" if ideal else ""
        say(f"sink check, {label}: {total:,} PUTs of 8 KiB, {inflight} in flight: "
            f"{secs:.2f} s, {r['rate']:,.0f} requests/s{extra}; sink CPU {cpu:.2f} s "
            f"(= {cap} requests per CPU-second); peak in flight {st['peak_inflight']}; "
            f"statuses {dict(statuses)}; load {l0:.2f}")
    return results


# =============================================================================================
# The sweep
# =============================================================================================


KINDS = (("html", "pages"), ("css", "styles"), ("js", "scripts"), ("png", "images"))
WORDS = ("static site deploy bucket cloudfront cache header manifest upload concurrency "
         "request object content hash page style script image index about blog post").split()


def make_site(n):
    SITES.mkdir(parents=True, exist_ok=True)
    site = SITES / f"site-{n}"
    stamp = SITES / f"site-{n}.complete"
    if stamp.exists():
        return site
    if site.exists():
        shutil.rmtree(site)
    rnd = random.Random(n)
    for i in range(n):
        ext, top = KINDS[i % 4]
        folder = site / top / f"d{i % 10:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rnd.randint(1024, 20 * 1024)
        if ext == "png":
            data = b"\x89PNG\r\n\x1a\n" + rnd.randbytes(size - 8)
        else:
            text = []
            length = 0
            while length < size:
                w = rnd.choice(WORDS) + (f"{rnd.randint(0, 9999)}" if rnd.random() < .3 else "")
                text.append(w)
                length += len(w) + 1
            data = " ".join(text).encode()[:size]
        name = f"f{i:05d}.{ext}" if ext != "js" else f"f{i:05d}.{rnd.getrandbits(32):08x}.js"
        (folder / name).write_bytes(data)
    (site / "index.html").write_text("<!doctype html><title>bench</title><p>bench site</p>\n")
    stamp.write_text("")
    return site


def clean_env(endpoint):
    foreign = ("AWS_", "CDN_DEPLOY_", "GITHUB_", "CI_", "BUILDKITE", "RUNNER_")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(foreign) and k not in ("CI", "BUILD_ID", "BUILD_NUMBER")}
    nowhere = str(OUT / "no-aws-config")
    env.update({
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": nowhere, "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "NO_COLOR": "1",
    })
    return env


def parse_time(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("User time (seconds):"):
            out["user"] = float(line.rsplit(":", 1)[1])
        elif line.startswith("System time (seconds):"):
            out["sys"] = float(line.rsplit(":", 1)[1])
        elif line.startswith("Maximum resident set size (kbytes):"):
            out["rss_mib"] = int(line.rsplit(":", 1)[1]) / 1024
        elif line.startswith("Percent of CPU this job got:"):
            out["cpu_pct"] = line.rsplit(":", 1)[1].strip()
        elif line.startswith("Involuntary context switches:"):
            out["invol_cs"] = int(line.rsplit(":", 1)[1])
        elif line.startswith("Voluntary context switches:"):
            out["vol_cs"] = int(line.rsplit(":", 1)[1])
    return out


def env_list(name, default):
    v = os.environ.get(name, "").strip()
    if not v:
        return default
    try:
        return [int(x) for x in v.split(",") if x.strip()]
    except ValueError:
        die(f"{name}={v!r} is not a comma-separated list of whole numbers")


def fmt_list(xs, f="{:.2f}"):
    return ", ".join(f.format(x) for x in xs)


class Sweep:
    def __init__(self):
        self.rtt = float(os.environ.get("BENCH_RTT_MS") or 30)
        self.connect = float(os.environ.get("BENCH_CONNECT_MS") or 0)
        self.sizes = env_list("BENCH_FILES", [1000, 5000])
        self.jobs = env_list("BENCH_JOBS", [8, 16, 32, 64, 128])
        self.repeat = env_list("BENCH_REPEAT", [3])[0]
        default_bin = Path("target/bench-build/release/cargo-cdn-deploy")
        if not default_bin.exists():
            td = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
            default_bin = (td if td.is_absolute() else REPO / td) / "release/cargo-cdn-deploy"
        self.bin = os.environ.get("BIN") or str(default_bin)
        if not os.access(self.bin, os.X_OK):
            die(f"no cargo-cdn-deploy binary at {self.bin}: build it with\n"
                "    CARGO_TARGET_DIR=target/bench-build cargo build --release --locked\n"
                "or set BIN")
        peers = os.environ.get("BENCH_PEERS", "s5cmd,s5cmd-w32,aws").strip()
        self.peers = [] if peers == "none" else [p.strip() for p in peers.split(",") if p.strip()]
        unknown = set(self.peers) - {"s5cmd", "s5cmd-w32", "aws"}
        if unknown:
            die(f"BENCH_PEERS: unknown peer(s) {', '.join(sorted(unknown))}")
        self.s5cmd = self.aws = None
        if any(p.startswith("s5cmd") for p in self.peers):
            self.s5cmd = s5cmd_binary(find_tool("s5cmd", "S5CMD"))
            if not self.s5cmd:
                die("s5cmd not found: set S5CMD, or BENCH_PEERS without it")
        if "aws" in self.peers:
            self.aws = find_tool("aws", "AWS")
            if not self.aws:
                die("aws not found: set AWS, or BENCH_PEERS without it")
        self.results = []
        self.failed = False
        self.digests = {}

    def clients(self):
        out = [(f"cdn-deploy -j {j}", "ours", j) for j in self.jobs]
        names = {"s5cmd": ("s5cmd cp", 256), "s5cmd-w32": ("s5cmd cp -w32", 32),
                 "aws": ("aws s3 cp", 10)}
        out += [(names[p][0], p, names[p][1]) for p in self.peers]
        return out

    def command(self, kind, j, bucket, site, endpoint):
        if kind == "ours":
            return [self.bin, "--bucket", bucket, "--config", str(OUT / "empty.toml"),
                    "-j", str(j), "--json", str(site)]
        if kind == "s5cmd":
            return [self.s5cmd, "--endpoint-url", endpoint, "cp", f"{site}/*", f"s3://{bucket}/"]
        if kind == "s5cmd-w32":
            return [self.s5cmd, "--numworkers", "32", "--endpoint-url", endpoint, "cp",
                    f"{site}/*", f"s3://{bucket}/"]
        return [self.aws, "s3", "cp", "--recursive", str(site), f"s3://{bucket}/",
                "--endpoint-url", endpoint, "--only-show-errors"]

    def run(self, sink, n, rep, name, kind, j, site):
        slug = name.replace(" ", "_").replace("-", "")
        bucket = f"bc-n{n}-{slug.replace('_', '-').lower()}-r{rep}-{os.getpid()}"
        bucket = "".join(c if c.isalnum() or c == "-" else "-" for c in bucket)[:63]
        base = RUNS / f"n{n}-{slug}-r{rep}"
        cmd = [TIME, "-v", "-o", f"{base}.time"] + self.command(kind, j, bucket, site, sink.url)
        env = clean_env(sink.url)
        if kind == "aws":
            env["HOME"] = str(OUT / "aws-home")  # no ~/.aws, no CLI cache
        sink.reset()
        load = load1()
        c0 = sink.cpu()
        t0 = time.monotonic()
        with open(f"{base}.out", "wb") as so, open(f"{base}.err", "wb") as se:
            rc = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=so, stderr=se, env=env,
                                 cwd=str(OUT))
        wall = time.monotonic() - t0
        sink_cpu = sink.cpu() - c0
        st = sink.stats()
        check = self.verify(sink.objects().get(bucket, {}), site)
        tm = parse_time(Path(f"{base}.time").read_text())
        r = {"n": n, "rep": rep, "client": name, "kind": kind, "j": j, "bucket": bucket,
             "rc": rc, "wall": wall, "user": tm.get("user"), "sys": tm.get("sys"),
             "rss_mib": tm.get("rss_mib"), "cpu_pct": tm.get("cpu_pct"),
             "vol_cs": tm.get("vol_cs"), "invol_cs": tm.get("invol_cs"),
             "load1": load, "sink_cpu": sink_cpu, "check": check,
             **{f"sink_{k}": v for k, v in st.items()}}
        if kind == "ours" and rc == 0:
            try:
                doc = json.loads(Path(f"{base}.out").read_text())
                r["json_keys"] = sorted(doc)[:20]
                r["json"] = {k: doc[k] for k in doc if not isinstance(doc[k], (list, dict))}
            except (ValueError, OSError):
                r["json"] = None
        self.results.append(r)
        bad = {s: c for s, c in st["status"].items() if not s.startswith("2")}
        note = f" non-2xx {bad}" if bad else ""
        if st["unsupported"]:
            note += f" unsupported {st['unsupported']}"
        if st["repeated_site_puts"]:
            note += f" repeated site PUTs {st['repeated_site_puts']}"
        if check["problems"]:
            self.failed = True
            note += f" BUCKET MISMATCH {check['problems'][:3]}"
        if rc != 0:
            self.failed = True
            note += f" EXIT {rc} (see {base}.err)"
        say(f"  n={n} rep={rep} {name:<17} {wall:6.2f} s  cpu "
            f"{(r['user'] or 0) + (r['sys'] or 0):5.2f} s  rss {r['rss_mib'] or 0:6.1f} MiB  "
            f"req {st['requests']:5d}  peak {st['peak_inflight']:3d}  conns "
            f"{st['connections']:3d}  sink cpu {sink_cpu:4.2f} s  load {load:.2f}{note}")
        return r

    def verify(self, stored, site):
        """The sink's record of the bucket against the site: same keys; for objects stored
        as they are (no Content-Encoding), the same size and MD5 (which checks the sink's
        body decoding, too); gzipped ones (cdn-deploy compresses text files) are only counted."""
        want = self.digests[site]
        site_keys = {k for k in stored if STATE_MARK not in k}
        problems = []
        missing = sorted(set(want) - site_keys)
        extra = sorted(site_keys - set(want))
        if missing:
            problems.append(f"{len(missing)} missing, e.g. {missing[0]}")
        if extra:
            problems.append(f"{len(extra)} unexpected, e.g. {extra[0]}")
        checked = gzipped = 0
        for k in sorted(site_keys & set(want)):
            size, md5, enc = stored[k]
            if enc:
                gzipped += 1
                continue
            checked += 1
            if [size, md5] != list(want[k]):
                problems.append(f"{k}: stored {size} B md5 {md5}, file {want[k][0]} B "
                                f"md5 {want[k][1]}")
        return {"keys": len(site_keys), "md5_checked": checked, "gzipped": gzipped,
                "problems": problems}

    def main(self):
        OUT.mkdir(parents=True, exist_ok=True)
        RUNS.mkdir(parents=True, exist_ok=True)
        (OUT / "empty.toml").write_text("")
        (OUT / "aws-home").mkdir(exist_ok=True)
        started = time.time()
        say(f"binary: {self.bin}")
        say(f"machine: {os.cpu_count()} CPUs, load {open('/proc/loadavg').read().strip()}")
        say("== sink check")
        check = sink_check(self.rtt)
        clients = self.clients()
        say(f"\n== sweep: sizes {self.sizes}, {len(clients)} clients, {self.repeat} repetitions, "
            f"rtt {self.rtt:g} ms, connect {self.connect:g} ms")
        sink = SinkProcess(self.rtt, OUT / "sink.log", self.connect)
        try:
            for n in self.sizes:
                site = make_site(n)
                self.digests[site] = {
                    p.relative_to(site).as_posix(): (p.stat().st_size,
                                                     hashlib.md5(p.read_bytes()).hexdigest())
                    for p in sorted(site.rglob("*")) if p.is_file()}
                say(f"site {site}: {n} files + index.html")
                for rep in range(self.repeat):
                    order = list(clients)
                    if rep % 3 == 1:
                        order.reverse()
                    elif rep % 3 == 2:
                        k = len(order) // 2
                        order = order[k:] + order[:k]
                    for name, kind, j in order:
                        self.run(sink, n, rep, name, kind, j, site)
        finally:
            sink.stop()
        elapsed = time.time() - started
        doc = {"rtt_ms": self.rtt, "connect_ms": self.connect, "bin": self.bin, "sink_check": check,
               "runs": self.results, "elapsed_s": elapsed,
               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started))}
        (OUT / "results.json").write_text(json.dumps(doc, indent=1))
        report = render(doc, clients)
        (OUT / "report.md").write_text(report)
        say("\n" + report)
        return 1 if self.failed else 0


def render(doc, clients):
    rtt = doc["rtt_ms"]
    conn = doc.get("connect_ms") or 0
    conn_txt = f", {conn:g} ms more for each new connection" if conn else ""
    lines = [f"## cargo-cdn-deploy first deploy vs -j, sink server with {rtt:g} ms per request"
             f"{conn_txt}",
             "",
             f"Started {doc['started']}, {doc['elapsed_s'] / 60:.1f} min in all; binary "
             f"`{doc['bin']}`; {os.cpu_count()} CPUs shared by the client, the sink and "
             "anything else running (see the load column).", "",
             "Sink check (the sink alone, driven by an asyncio client in another process):", ""]
    for c in doc["sink_check"]:
        ideal = (f", {c['rate'] / c['ideal_rate']:.0%} of the ideal {c['ideal_rate']:,.0f}/s"
                 if c["ideal_rate"] else "")
        cap = f"{c['sink_capacity']:,.0f}" if c["sink_capacity"] else "?"
        lines.append(f"- {c['label']}: {c['requests']:,} PUTs (8 KiB) at {c['inflight']} in "
                     f"flight: **{c['rate']:,.0f} requests/s**{ideal}; sink CPU {c['sink_cpu_s']:.2f}"
                     f" s = {cap} requests per sink CPU-second; peak in flight "
                     f"{c['peak_inflight']}; load {c['load1']:.2f}")
    lines += ["", "Each point: first deploy into a fresh bucket, repeated; wall = process "
              "start to exit; CPU = user+sys of the client (mean); RSS = peak resident set "
              "(mean / max); requests and peak in flight as counted by the sink; conns = new "
              "TCP connections; sink CPU = the sink's own CPU during the run (mean); "
              "vs j32 = mean wall / mean wall of cdn-deploy -j 32 at the same N; "
              "mean in flight = requests x round trip / wall, the concurrency actually "
              "achieved over the whole run (start-up and scan included).", ""]
    hdr = ("| N | client | runs | wall mean s | min | max | vs j32 | CPU s | RSS MiB | "
           "requests | peak in flight | mean in flight | conns | sink CPU s | load1 at start |")
    lines += [hdr, "|---:|---|" + "---:|" * 12 + "---|"]
    runs = doc["runs"]
    for n in sorted({r["n"] for r in runs}):
        ref = [r["wall"] for r in runs if r["n"] == n and r["client"] == "cdn-deploy -j 32"
               and r["rc"] == 0]
        ref_mean = statistics.mean(ref) if ref else None
        for name, _, _ in clients:
            rs = [r for r in runs if r["n"] == n and r["client"] == name]
            if not rs:
                continue
            ok = [r for r in rs if r["rc"] == 0]
            walls = [r["wall"] for r in ok]
            if not walls:
                lines.append(f"| {n:,} | {name} | {len(rs)} (all failed) |" + " |" * 12)
                continue
            mean = statistics.mean(walls)
            cpu = statistics.mean((r["user"] or 0) + (r["sys"] or 0) for r in ok)
            rss = [r["rss_mib"] or 0 for r in ok]
            reqs = sorted({r["sink_requests"] for r in ok})
            peak = max(r["sink_peak_inflight"] for r in ok)
            conns = sorted({r["sink_connections"] for r in ok})
            scpu = statistics.mean(r["sink_cpu"] for r in ok)
            vs = f"{mean / ref_mean:.2f}x" if ref_mean else "-"
            achieved = statistics.mean(r["sink_requests"] * rtt / 1000 / r["wall"] for r in ok)
            runs_txt = f"{len(ok)}" + (f" (+{len(rs) - len(ok)} failed)" if len(rs) > len(ok)
                                       else "")
            reqs_txt = "/".join(f"{x:,}" for x in reqs)
            conns_txt = "/".join(str(x) for x in conns)
            lines.append(
                f"| {n:,} | {name} | {runs_txt} | {mean:.2f} | {min(walls):.2f} | "
                f"{max(walls):.2f} | {vs} | {cpu:.2f} | {statistics.mean(rss):.1f} / "
                f"{max(rss):.1f} | {reqs_txt} | {peak} | {achieved:.1f} | {conns_txt} | "
                f"{scpu:.2f} | "
                f"{fmt_list([r['load1'] for r in rs])} |")
    lines += ["", "Requests and conns show every distinct value seen across the runs "
              "(a/b when they differ).", "", "### Anomalies", ""]
    anomalies = []
    for r in runs:
        st = r["sink_status"]
        bad = {s: c for s, c in st.items() if not s.startswith("2")}
        # A first deploy reads its (absent) manifest once: that 404 is expected.
        if r["kind"] == "ours" and bad.get("404") == 1:
            bad.pop("404")
        what = []
        if r["rc"] != 0:
            what.append(f"exit {r['rc']}")
        if bad:
            what.append(f"non-2xx answers {bad}")
        if r["sink_unsupported"]:
            what.append(f"unsupported operations {r['sink_unsupported']}")
        if r["check"]["problems"]:
            what.append("bucket differs from the site: " + "; ".join(r["check"]["problems"][:3]))
        if r["sink_repeated_site_puts"]:
            what.append(f"{r['sink_repeated_site_puts']} repeated PUTs of a site key (retries)")
        if what:
            anomalies.append(f"- N={r['n']:,} {r['client']} rep {r['rep']}: " + "; ".join(what))
    lines += anomalies or ["- none: every run exited 0; no non-2xx answer but the first "
                           "manifest read's 404; no unsupported operation; no repeated PUT; "
                           "every bucket matched its site"]
    ch = [r["check"] for r in runs]
    lines += ["", f"Bucket check after every run (the sink's record against the site): "
              f"{sum(not c['problems'] for c in ch)} of {len(ch)} runs had exactly the site's "
              f"keys; {sum(c['md5_checked'] for c in ch):,} objects stored as they are had the "
              f"file's size and MD5; {sum(c['gzipped'] for c in ch):,} gzipped by cdn-deploy "
              "were only counted."]
    framings = Counter()
    for r in runs:
        for k, v in r["sink_framing"].items():
            framings[(r["kind"], k)] += v
    lines += ["", "### What the clients sent (sink counters, all runs)", ""]
    for kind in dict.fromkeys(r["kind"] for r in runs):
        fs = {k: v for (kd, k), v in framings.items() if kd == kind}
        ops = Counter()
        for r in runs:
            if r["kind"] == kind:
                ops.update(r["sink_ops"])
        lines.append(f"- {kind}: framing {dict(sorted(fs.items()))}; operations "
                     f"{dict(sorted(ops.items()))}")
    return "\n".join(lines) + "\n"


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "sink":
        run_sink(argv[1:])
        return 0
    if argv and argv[0] == "sink-check":
        sink_check(float(os.environ.get("BENCH_RTT_MS") or 30))
        return 0
    if argv and argv[0] == "report":
        doc = json.loads((OUT / "results.json").read_text())
        names = dict.fromkeys((r["client"], r["kind"], r["j"]) for r in doc["runs"])
        order = sorted(names, key=lambda c: (c[1] != "ours", c[2] if c[1] == "ours" else 0))
        report = render(doc, order)
        (OUT / "report.md").write_text(report)
        say(report)
        return 0
    if argv and argv[0] in ("-h", "--help"):
        say(__doc__)
        return 0
    if argv:
        die(f"unknown argument {argv[0]!r}; see --help")
    return Sweep().main()


if __name__ == "__main__":
    sys.exit(main())
