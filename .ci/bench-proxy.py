"""tests/support/fault_proxy.py, with more on each log line, for .ci/bench-deploy.

    python .ci/bench-proxy.py --port 0 --upstream http://127.0.0.1:MOTO --delay-ms 15 --log FILE

Takes exactly fault_proxy.py's options and runs it unchanged, except that every log line of a
request gets these fields appended (the proxy file itself is not modified):

    t0=SECONDS   time.monotonic() when the proxy started handling the request (its request
                 line and headers had arrived; before the --delay-ms wait)
    t1=SECONDS   time.monotonic() when the line is written, i.e. just before the last byte of
                 the response goes out (after the second --delay-ms wait)
    copy=1       the request carried x-amz-copy-source (CopyObject / UploadPartCopy)
    range=1      the request carried a Range header
    cond=IM|INM  the request carried If-Match / If-None-Match

CLOCK_MONOTONIC is shared by every process of the machine, so the harness can compare these
times with its own time.monotonic().
"""

import os
import sys
import threading
import time

# Importing the proxy from tests/support must leave no __pycache__ in the work tree.
sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))

import fault_proxy  # noqa: E402

_current = threading.local()
_forward = fault_proxy.Handler.forward
_line = fault_proxy.Log.line.__func__


def forward(self):
    # One handler thread per connection, one request at a time on it: the thread-local names
    # the request whose line Log.line is about to write.
    _current.handler = self
    try:
        _forward(self)
    finally:
        _current.handler = None


def line(cls, text):
    h = getattr(_current, "handler", None)
    if h is not None and text.startswith(f"fault-proxy {h.command} "):
        now = time.monotonic()
        started = getattr(h, "started", now)
        extra = f" t0={started:.6f} t1={now:.6f}"
        headers = h.headers
        if headers.get("x-amz-copy-source"):
            extra += " copy=1"
        if headers.get("Range"):
            extra += " range=1"
        if headers.get("If-Match"):
            extra += " cond=IM"
        elif headers.get("If-None-Match"):
            extra += " cond=INM"
        text += extra
    _line(cls, text)


fault_proxy.Handler.forward = forward
fault_proxy.Log.line = classmethod(line)

if __name__ == "__main__":
    fault_proxy.main()
