"""Fault-injecting HTTP proxy in front of moto (stdlib only).

    python fault_proxy.py --port P --upstream http://127.0.0.1:MOTO --deny-put SUBSTRING ...
        [--deny-post SUBSTRING ...]

Every request is forwarded to the upstream and its response relayed back, except a PUT whose
percent-decoded path (query excluded) contains one of the --deny-put substrings: that one is
answered with S3's 403 AccessDenied without reaching the upstream. This covers PutObject,
UploadPart and CopyObject of a matching key; POSTs (multipart create/complete) pass through
unless they match a --deny-post substring (CloudFront's CreateInvalidation is a POST to
`/2020-05-31/distribution/ID/invalidation`).

`--port 0` picks a free port. `READY <port>` is printed on stdout once listening. The process
exits when stdin reaches EOF, so it never outlives the test that started it.
"""

import argparse
import http.client
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

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
    # The body is forwarded whole, so there is nothing to continue.
    "expect",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"
    upstream: urllib.parse.SplitResult
    deny_put: list
    deny_post: list

    def do_GET(self) -> None:
        self.forward()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_GET

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                if not size_line:
                    raise ConnectionError("client closed inside a chunked body")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # Skip trailer fields up to the blank line that ends the message.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after the chunk data
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def forward(self) -> None:
        body = self.read_body()
        path_only = urllib.parse.urlsplit(self.path).path
        decoded = urllib.parse.unquote(path_only)
        denied = {"PUT": self.deny_put, "POST": self.deny_post}.get(self.command, [])
        if any(s in decoded for s in denied):
            self.deny(decoded)
            return

        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if body or self.command in ("PUT", "POST", "PATCH"):
            headers.append(("Content-Length", str(len(body))))

        # A fresh upstream connection per request: no stale keep-alive connection can ever turn
        # a forwarded PUT into a retry question.
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        try:
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
            except OSError as e:
                self.bad_gateway(e)
                return
            self.send_response_only(resp.status, resp.reason)
            upstream_length = None
            for k, v in resp.getheaders():
                lk = k.lower()
                if lk == "content-length":
                    upstream_length = v
                elif lk not in HOP_BY_HOP:
                    self.send_header(k, v)
            if self.command == "HEAD" or resp.status in (204, 304):
                # No body follows; the upstream's Content-Length still describes the object.
                if upstream_length is not None:
                    self.send_header("Content-Length", upstream_length)
                self.end_headers()
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            self.log_request(resp.status, len(data))
        finally:
            conn.close()

    def bad_gateway(self, error: OSError) -> None:
        body = f"upstream {self.upstream.geturl()} failed: {error}\n".encode()
        self.send_response_only(502, "Bad Gateway")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.log_request(502, len(body))

    def deny(self, decoded_path: str) -> None:
        # Path-style addressing: /bucket/key...
        key = decoded_path.lstrip("/").partition("/")[2]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
            f"<Key>{escape(key)}</Key><RequestId>FAULTPROXY</RequestId></Error>"
        ).encode()
        self.send_response_only(403, "Forbidden")
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-amz-request-id", "FAULTPROXY")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.log_request(403, len(body))


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
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--deny-put", action="append", default=[])
    parser.add_argument("--deny-post", action="append", default=[])
    args = parser.parse_args()

    Handler.upstream = urllib.parse.urlsplit(args.upstream)
    Handler.deny_put = args.deny_put
    Handler.deny_post = args.deny_post
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=exit_on_stdin_eof, name="stdin-eof-watch", daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
