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
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        # os._exit, not sys.exit: the server runs in the main thread and must not get a chance
        # to keep the process alive.
        os._exit(0)


def main() -> None:
    host, port = sys.argv[1], sys.argv[2]
    threading.Thread(target=_exit_on_stdin_eof, name="stdin-eof-watch", daemon=True).start()

    from moto.server import main as moto_main

    moto_main(["-H", host, "-p", port])


if __name__ == "__main__":
    main()
