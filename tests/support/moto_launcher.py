"""Run moto's server in this process and exit as soon as stdin reaches EOF.

The test process holds the write end of our stdin pipe and never writes to it. When the test
process exits for any reason (normal end, panic, abort, SIGKILL) the kernel closes that end, we
read EOF, and the server dies with it, so `cargo test` never leaves a moto server behind.

Usage: python moto_launcher.py HOST PORT
"""

import os
import sys
import threading


def _exit_on_stdin_eof() -> None:
    try:
        # os.read, not sys.stdin: a thread blocked inside the buffered reader would make
        # interpreter shutdown abort when the main thread fails first.
        while os.read(0, 65536):
            pass
    finally:
        # os._exit, not sys.exit: the server runs in the main thread and must not get a chance
        # to keep the process alive.
        os._exit(0)


def main() -> None:
    host, port = sys.argv[1], sys.argv[2]
    threading.Thread(target=_exit_on_stdin_eof, name="stdin-eof-watch", daemon=True).start()

    import moto
    from moto.server import main as moto_main

    # The test ground is pinned: other versions differ in ways the tests would trip over
    # (5.2.1 breaks the Rust SDK's CompleteMultipartUpload, for one).
    if moto.__version__ != "5.2.5":
        print(f"moto {moto.__version__} found, the tests need 5.2.5", file=sys.stderr)
        sys.exit(3)

    moto_main(["-H", host, "-p", port])


if __name__ == "__main__":
    main()
