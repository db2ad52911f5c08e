"""Fault-injecting HTTP proxy in front of moto (stdlib only).

    python fault_proxy.py --port P --upstream http://127.0.0.1:MOTO
        [--deny-put SUBSTR ...] [--deny-post SUBSTR ...]
        [--drop-response-put SUBSTR ...] [--drop-response-post SUBSTR ...] [--drop-times N]
        [--fail-rate P] [--fail-after-apply-rate Q] [--seed S]
        [--delay-ms N] [--throttle-put-bps N] [--log FILE]

Every request is forwarded to the upstream and its response relayed back, unless one of the
options below says otherwise. All options combine. Paths are matched on the percent-decoded
path (query excluded); requests whose path starts with `/moto-api` are never faulted (deny,
drop, fail), so tests can always reset or inspect moto through the proxy.

Deny (no request reaches the upstream):
  --deny-put SUBSTR     (repeatable) a PUT whose path contains SUBSTR is answered with S3's
                        403 AccessDenied. This covers PutObject, UploadPart and CopyObject.
  --deny-post SUBSTR    (repeatable) the same for POSTs (multipart create/complete, and
                        CloudFront's CreateInvalidation,
                        `/2020-05-31/distribution/ID/invalidation`).

Lost responses (the write happens, its answer never arrives):
  --drop-response-put SUBSTR   (repeatable) a matching PUT is forwarded and applied upstream,
                        the upstream's response is read and discarded, and the client
                        connection is reset (SO_LINGER 0: RST, no FIN, no response byte).
  --drop-response-post SUBSTR  (repeatable) the same for POSTs (e.g. `/invalidation`: the
                        invalidation is created but the client never learns it).
  --drop-times N        each SUBSTR drops the first N requests it matches (default 1); later
                        matches pass through normally. A request matching several SUBSTRs uses
                        up one drop of each of them that still has drops left.

Random transient faults (deterministic for a given --seed and request arrival order):
  --fail-rate P         each request, with probability P (0..1), is not forwarded; the client
                        gets, rotating in this order, 500 InternalError, 503 SlowDown (S3 XML
                        error bodies; CloudFront paths get CloudFront's XML with 500
                        InternalError / 503 ServiceUnavailable), or a connection reset before
                        any response byte. The request body is read in full first.
  --fail-after-apply-rate Q   otherwise, with probability Q, the request is forwarded and
                        applied upstream, but the client gets, rotating, 500 InternalError or
                        a connection reset instead of the real response.
  --seed S              seed of the draws (default 0). Request number n (counted in arrival
                        order, `/moto-api` excluded, 0-based) draws from Random(f"{S}:{n}"), so
                        its fate depends only on the seed and n; the rotation counters advance
                        in arrival order. Deny and drop take precedence over random faults.

Latency and bandwidth:
  --delay-ms N          every request waits N ms before it is forwarded (or answered by a
                        fault), and its response N ms before it is returned: about 2N ms per
                        round trip (`--delay-ms 15` emulates a 30 ms RTT). Each request waits
                        in its own thread: concurrent requests are delayed concurrently.
  --throttle-put-bps N  PUT bodies are read from the client at no more than N bytes/s (paced
                        per request), so a large upload takes long enough to be interrupted.
                        The listening socket's receive buffer is then kept small (64 KiB) so
                        the client really waits.

Logging:
  One line per request on stderr, and with `--log FILE` appended to FILE as well (UTF-8, one
  line per request, flushed at once):
      fault-proxy METHOD PATH STATUS in=BYTES out=BYTES inject=KIND upstream=STATUS ms=MS
  PATH is the request target as received (percent-encoded, query included; raw non-ASCII bytes
  shown as UTF-8); STATUS is what the client got (`-` when it got no response: reset, drop, or
  the client went away); in/out count request and response body bytes between the client and
  the proxy; upstream is the upstream's status (`-` when not forwarded or no answer); KIND is
  one of none, deny, drop, fail-500, fail-503, fail-reset, after-500, after-reset, bad-gateway
  (the upstream could not be reached: 502), client-abort (the client closed the connection
  mid-request). An optional ` note=...` ends the line (`upstream-truncated`, or the error of a
  client-abort). The line is written just before the last byte of the response (or the reset),
  so a client holding its whole response finds its line in the log already; a client that
  vanishes after that gets a second line, with client-abort. On stdin EOF the proxy waits up
  to 2 s for requests in flight to finish before it exits.

Bodies stream in 64 KiB pieces both ways when their length is known: a request with
Content-Length is forwarded as it arrives, and a response with Content-Length is relayed as
it arrives, so a 200 MiB part holds at most a few hundred KiB in memory. A chunked request
body is de-chunked into a spooled temporary file (in memory up to 8 MiB, on disk beyond) and
forwarded with a Content-Length; an upstream response without Content-Length is read whole
and relayed with one. Every response to the client carries Content-Length, and client
connections stay alive between requests (HTTP/1.1). Each forwarded request opens a fresh
upstream connection (moto closes its connections after every response anyway), so no stale
pooled connection can ever turn a forwarded PUT into a retry question.

`--port 0` picks a free port. `READY <port>` is printed on stdout once listening. The process
exits when stdin reaches EOF, so it never outlives the test that started it.
"""

import argparse
import http.client
import os
import random
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

CHUNK = 64 * 1024
# A request body up to this size is read whole and sent with its headers in one write.
SMALL_BODY = 256 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024
UPSTREAM_TIMEOUT = 300

# Headers that describe one connection, not the message; never forwarded either way.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    # The proxy answers 100-continue itself (http.server does), so there is nothing to continue.
    "expect",
}


class ClientGone(Exception):
    """The client closed its connection before its request was complete."""


class Options:
    """The command line, shared by every handler thread (read-only after start)."""

    upstream: urllib.parse.SplitResult
    deny_put: list = []
    deny_post: list = []
    drop_put: list = []
    drop_post: list = []
    drop_times: int = 1
    fail_rate: float = 0.0
    fail_after_rate: float = 0.0
    seed: str = "0"
    delay: float = 0.0
    throttle_bps: int = 0


class Faults:
    """Which fault, if any, each request gets. Thread-safe; decisions in arrival order."""

    FAIL_ROTATION = ("fail-500", "fail-503", "fail-reset")
    AFTER_ROTATION = ("after-500", "after-reset")

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.lock = threading.Lock()
        self.seq = 0
        self.fails = 0
        self.afters = 0
        self.drops_left = {
            "PUT": {s: opts.drop_times for s in opts.drop_put},
            "POST": {s: opts.drop_times for s in opts.drop_post},
        }

    def decide(self, method: str, decoded_path: str) -> str:
        if decoded_path.startswith("/moto-api"):
            return "none"
        opts = self.opts
        with self.lock:
            n = self.seq
            self.seq += 1
            draw_fail = draw_after = 1.0
            if opts.fail_rate > 0 or opts.fail_after_rate > 0:
                rng = random.Random(f"{opts.seed}:{n}")
                draw_fail, draw_after = rng.random(), rng.random()

            denied = {"PUT": opts.deny_put, "POST": opts.deny_post}.get(method, [])
            if any(s in decoded_path for s in denied):
                return "deny"
            drops = self.drops_left.get(method, {})
            matched = [s for s, left in drops.items() if left > 0 and s in decoded_path]
            if matched:
                for s in matched:
                    drops[s] -= 1
                return "drop"
            if draw_fail < opts.fail_rate:
                kind = self.FAIL_ROTATION[self.fails % len(self.FAIL_ROTATION)]
                self.fails += 1
                return kind
            if draw_after < opts.fail_after_rate:
                kind = self.AFTER_ROTATION[self.afters % len(self.AFTER_ROTATION)]
                self.afters += 1
                return kind
            return "none"


class Log:
    lock = threading.Lock()
    file = None

    @classmethod
    def line(cls, text: str) -> None:
        with cls.lock:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
            if cls.file is not None:
                cls.file.write(text + "\n")
                cls.file.flush()


class InFlight:
    """Counts requests being handled, so that exiting on stdin EOF can let them log first."""

    cond = threading.Condition()
    count = 0

    def __enter__(self):
        with InFlight.cond:
            InFlight.count += 1

    def __exit__(self, *exc):
        with InFlight.cond:
            InFlight.count -= 1
            InFlight.cond.notify_all()

    @classmethod
    def wait_idle(cls, timeout: float) -> None:
        with cls.cond:
            cls.cond.wait_for(lambda: cls.count == 0, timeout)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of 64 new connections would see SYNs dropped
    # and retried a second later.
    request_queue_size = 1024
    receive_buffer = 0

    def server_bind(self) -> None:
        if self.receive_buffer:
            # Inherited by accepted sockets: keeps a throttled client from parking megabytes
            # in the kernel's buffers.
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        super().server_bind()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"
    disable_nagle_algorithm = True
    opts: Options
    faults: Faults

    def do_GET(self) -> None:
        self.forward()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_GET

    # ---- one request -------------------------------------------------------------------

    def forward(self) -> None:
        self.started = time.monotonic()
        self.bytes_in = 0
        self.bytes_out = 0
        self.upstream_status = "-"
        self.logged = False
        self.throttle_start = None  # per request: the handler lives as long as the connection
        self.throttled = 0
        path_only = urllib.parse.urlsplit(self.path).path
        decoded = urllib.parse.unquote(path_only)
        kind = self.faults.decide(self.command, decoded)
        with InFlight():
            try:
                self.sleep_delay()
                if kind == "deny":
                    self.drain_body()
                    self.sleep_delay()
                    self.send_error_xml(
                        403, "Forbidden", "AccessDenied", "Access Denied", decoded, kind
                    )
                elif kind in ("fail-500", "fail-503"):
                    self.drain_body()
                    self.sleep_delay()
                    self.send_transient(500 if kind == "fail-500" else 503, decoded, kind)
                elif kind == "fail-reset":
                    self.drain_body()
                    self.sleep_delay()
                    self.reset_connection(kind)
                else:
                    self.relay(kind, decoded)
            except ClientGone:
                self.close_connection = True
                self.log_line("-", "client-abort", force=True)
            except (ConnectionError, TimeoutError) as e:
                # The client went away while we were answering it.
                self.close_connection = True
                self.log_line("-", "client-abort", note=type(e).__name__, force=True)

    def relay(self, kind: str, decoded: str) -> None:
        length, first, rest = self.open_body()
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if length or self.command in ("PUT", "POST", "PATCH"):
            headers.append(("Content-Length", str(length)))

        up = self.opts.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=UPSTREAM_TIMEOUT)
        try:
            resp = None
            try:
                # putrequest only buffers; the connection is made by endheaders.
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.endheaders(first if first else None)
                for piece in rest:
                    conn.send(piece)
            except OSError as e:
                # The upstream may have answered early (and closed): read that answer if any.
                self.drain_rest(rest)
                try:
                    resp = conn.getresponse()
                except (OSError, http.client.HTTPException):
                    self.bad_gateway(e)
                    return
            if resp is None:
                try:
                    resp = conn.getresponse()
                except (OSError, http.client.HTTPException) as e:
                    self.bad_gateway(e)
                    return
            self.upstream_status = str(resp.status)

            if kind in ("drop", "after-500", "after-reset"):
                try:
                    while resp.read(CHUNK):
                        pass
                except (OSError, http.client.HTTPException):
                    pass
                self.sleep_delay()
                if kind == "after-500":
                    self.send_transient(500, decoded, kind)
                else:
                    self.reset_connection(kind)
                return
            self.relay_response(resp)
        finally:
            conn.close()

    def relay_response(self, resp: http.client.HTTPResponse) -> None:
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        streaming = not no_body and not resp.chunked and resp.length is not None
        data = b""
        if not no_body and not streaming:
            try:
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.bad_gateway(e)
                return
        self.sleep_delay()
        self.send_response_only(resp.status, resp.reason)
        upstream_length = None
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk == "content-length":
                upstream_length = v
            elif lk not in HOP_BY_HOP:
                self.send_header(k, v)
        status = str(resp.status)
        if no_body:
            # No body follows; the upstream's Content-Length still describes the object.
            if upstream_length is not None:
                self.send_header("Content-Length", upstream_length)
            self.log_line(status, "none")
            self.end_headers()
        elif not streaming:
            self.send_header("Content-Length", str(len(data)))
            self.log_line(status, "none", out=len(data))
            self.end_headers_with(data)
        else:
            total = remaining = resp.length
            self.send_header("Content-Length", str(total))
            piece = b""
            while True:
                if remaining:
                    try:
                        piece = resp.read(min(CHUNK, remaining))
                    except (OSError, http.client.HTTPException):
                        piece = b""
                    if not piece:
                        # The upstream died mid-body: the client must not take a short body
                        # for a whole one.
                        self.reset_connection("none", note="upstream-truncated")
                        return
                    remaining -= len(piece)
                if not remaining:
                    # Logged before the last write: a client holding its whole response finds
                    # the line already written.
                    self.log_line(status, "none", out=total)
                if self.bytes_out == 0 and not self.headers_sent():
                    self.end_headers_with(piece)
                else:
                    self.wfile.write(piece)
                    self.bytes_out += len(piece)
                if not remaining:
                    return

    # ---- request bodies --------------------------------------------------------------------

    def open_body(self):
        """(length, first piece, iterator over the other pieces) of the request body."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
            for piece in self.chunked_pieces():
                spool.write(piece)
            length = spool.tell()
            spool.seek(0)
            first = spool.read(SMALL_BODY) if length <= SMALL_BODY else b""

            def rest():
                try:
                    while True:
                        piece = spool.read(CHUNK)
                        if not piece:
                            return
                        yield piece
                finally:
                    spool.close()

            return length, first, rest()
        length = int(self.headers.get("Content-Length") or 0)
        if length <= SMALL_BODY:
            return length, self.recv_exact(length), iter(())
        return length, b"", self.length_pieces(length)

    def length_pieces(self, length: int):
        remaining = length
        while remaining > 0:
            piece = self.recv_exact(min(CHUNK, remaining))
            remaining -= len(piece)
            yield piece

    def chunked_pieces(self):
        while True:
            try:
                size_line = self.rfile.readline(65537)
            except OSError as e:
                raise ClientGone() from e
            if not size_line:
                raise ClientGone()
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # Skip trailer fields up to the blank line that ends the message.
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            while size > 0:
                piece = self.recv_exact(min(CHUNK, size))
                size -= len(piece)
                yield piece
            self.rfile.readline(65537)  # CRLF after the chunk data

    def recv_exact(self, n: int) -> bytes:
        """n bytes of the body, paced by --throttle-put-bps for PUTs."""
        if n <= 0:
            return b""
        bps = self.opts.throttle_bps if self.command == "PUT" else 0
        if not bps:
            data = self.read_client(n)
            if len(data) < n:
                raise ClientGone()
            self.bytes_in += n
            return data
        parts = []
        slice_size = max(1, bps // 20)  # about 50 ms of budget per read
        if self.throttle_start is None:
            self.throttle_start = time.monotonic()
        while n > 0:
            piece = self.read_client(min(n, slice_size))
            if not piece:
                raise ClientGone()
            parts.append(piece)
            n -= len(piece)
            self.bytes_in += len(piece)
            self.throttled += len(piece)
            ahead = self.throttle_start + self.throttled / bps - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        return b"".join(parts)

    def read_client(self, n: int) -> bytes:
        # A client error must not pass for an upstream one (OSError) in relay().
        try:
            return self.rfile.read(n)
        except OSError as e:
            raise ClientGone() from e

    def drain_body(self) -> None:
        length, first, rest = self.open_body()
        self.drain_rest(rest)

    @staticmethod
    def drain_rest(rest) -> None:
        for _ in rest:
            pass

    # ---- responses --------------------------------------------------------------------------

    def headers_sent(self) -> bool:
        return not getattr(self, "_headers_buffer", None)

    def end_headers_with(self, body: bytes) -> None:
        """End the headers and send the first body bytes in the same write."""
        self._headers_buffer.append(b"\r\n")
        if body:
            self._headers_buffer.append(body)
            self.bytes_out += len(body)
        self.flush_headers()

    def send_body(self, status, reason, content_type, body, kind, extra=()) -> None:
        self.send_response_only(status, reason)
        self.send_header("Content-Type", content_type)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if self.command == "HEAD":
            body = b""  # the headers say what a GET would get; no body follows a HEAD
        self.log_line(str(status), kind, out=len(body))
        self.end_headers_with(body)

    def send_error_xml(self, status, reason, code, message, decoded_path, kind) -> None:
        # Path-style addressing: /bucket/key...
        key = decoded_path.lstrip("/").partition("/")[2]
        key_xml = f"<Key>{escape(key)}</Key>" if key else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"{key_xml}<RequestId>FAULTPROXY</RequestId></Error>"
        ).encode()
        self.send_body(
            status, reason, "application/xml", body, kind, [("x-amz-request-id", "FAULTPROXY")]
        )

    def send_transient(self, status: int, decoded_path: str, kind: str) -> None:
        if decoded_path.startswith("/2020-05-31/"):
            code, message = {
                500: ("InternalError", "We encountered an internal error. Please try again."),
                503: ("ServiceUnavailable", "Service unavailable. Please try again."),
            }[status]
            body = (
                '<?xml version="1.0"?>\n'
                '<ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
                f"<Error><Type>Receiver</Type><Code>{code}</Code><Message>{message}</Message>"
                "</Error><RequestId>FAULTPROXY</RequestId></ErrorResponse>"
            ).encode()
            reason = "Internal Server Error" if status == 500 else "Service Unavailable"
            self.send_body(
                status, reason, "text/xml", body, kind, [("x-amzn-RequestId", "FAULTPROXY")]
            )
        elif status == 500:
            self.send_error_xml(
                500,
                "Internal Server Error",
                "InternalError",
                "We encountered an internal error. Please try again.",
                decoded_path,
                kind,
            )
        else:
            self.send_error_xml(
                503, "Slow Down", "SlowDown", "Please reduce your request rate.", decoded_path, kind
            )

    def bad_gateway(self, error: Exception) -> None:
        body = f"upstream {self.opts.upstream.geturl()} failed: {error}\n".encode()
        self.send_body(502, "Bad Gateway", "text/plain", body, "bad-gateway")

    def reset_connection(self, kind: str, note: str = "") -> None:
        """Close the client connection with a RST and no (further) response byte."""
        self.log_line("-", kind, note=note)
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The fd is only released once rfile (a makefile() of the socket) is closed too;
        # closing both here, not in finish(), keeps socketserver's shutdown(SHUT_WR) from sending
        # a FIN first. wfile is a plain writer over the socket and stays open (http.server still
        # flushes it, which is a no-op).
        sock.close()
        try:
            self.rfile.close()
        except (OSError, ValueError):
            pass

    def sleep_delay(self) -> None:
        if self.opts.delay > 0:
            time.sleep(self.opts.delay)

    # ---- logging ----------------------------------------------------------------------------

    def log_line(self, status: str, kind: str, note: str = "", out=None, force=False) -> None:
        """The request's log line; once per request unless forced (an abort after it)."""
        if self.logged and not force:
            return
        self.logged = True
        try:
            path = self.path.encode("latin-1").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            path = self.path
        ms = (time.monotonic() - self.started) * 1000
        out = self.bytes_out if out is None else out
        text = (
            f"fault-proxy {self.command} {path} {status} in={self.bytes_in} "
            f"out={out} inject={kind} upstream={self.upstream_status} ms={ms:.1f}"
        )
        if note:
            text += f" note={note}"
        Log.line(text)

    def log_message(self, format: str, *args) -> None:
        # http.server's own messages (malformed requests and the like); request lines are
        # logged by log_line.
        Log.line(f"fault-proxy {self.address_string()} {format % args}")

    def log_request(self, code="-", size="-") -> None:
        pass


def exit_on_stdin_eof() -> None:
    try:
        # os.read, not sys.stdin: a thread blocked inside the buffered reader would make
        # interpreter shutdown abort when the main thread fails first.
        while os.read(0, 65536):
            pass
    finally:
        # Requests still being answered get a moment to finish and write their log lines.
        InFlight.wait_idle(2.0)
        os._exit(0)


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="See the module docstring for the details of each option.",
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--deny-put", action="append", default=[], metavar="SUBSTR")
    parser.add_argument("--deny-post", action="append", default=[], metavar="SUBSTR")
    parser.add_argument("--drop-response-put", action="append", default=[], metavar="SUBSTR")
    parser.add_argument("--drop-response-post", action="append", default=[], metavar="SUBSTR")
    parser.add_argument("--drop-times", type=non_negative_int, default=1, metavar="N")
    parser.add_argument("--fail-rate", type=probability, default=0.0, metavar="P")
    parser.add_argument("--fail-after-apply-rate", type=probability, default=0.0, metavar="Q")
    parser.add_argument("--seed", default="0", metavar="S")
    parser.add_argument("--delay-ms", type=float, default=0.0, metavar="N")
    parser.add_argument("--throttle-put-bps", type=non_negative_int, default=0, metavar="N")
    parser.add_argument("--log", metavar="FILE")
    args = parser.parse_args()
    if args.delay_ms < 0:
        parser.error("--delay-ms must not be negative")

    opts = Options()
    opts.upstream = urllib.parse.urlsplit(args.upstream)
    opts.deny_put = args.deny_put
    opts.deny_post = args.deny_post
    opts.drop_put = args.drop_response_put
    opts.drop_post = args.drop_response_post
    opts.drop_times = args.drop_times
    opts.fail_rate = args.fail_rate
    opts.fail_after_rate = args.fail_after_apply_rate
    opts.seed = args.seed
    opts.delay = args.delay_ms / 1000.0
    opts.throttle_bps = args.throttle_put_bps
    Handler.opts = opts
    Handler.faults = Faults(opts)
    if args.log:
        Log.file = open(args.log, "a", encoding="utf-8")

    Server.receive_buffer = 64 * 1024 if args.throttle_put_bps else 0
    server = Server(("127.0.0.1", args.port), Handler)
    threading.Thread(target=exit_on_stdin_eof, name="stdin-eof-watch", daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
