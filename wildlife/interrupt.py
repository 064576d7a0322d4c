"""Ctrl-C (SIGINT) and SIGTERM: one line on stderr and an exit within a moment, whatever is running.

``wildlife run`` runs its jobs on worker threads (moto's state machine interpreter, the Batch
runner, torch's own thread pools). Python cannot stop a thread, so letting KeyboardInterrupt unwind
the main thread left the jobs running on for seconds, committing shards after the user had said
stop, and the interpreter's shutdown under them aborted the process (``terminate called without an
active exception``) or printed a traceback. Instead the handler writes its line and ends the process
at once with ``os._exit``: every job thread stops where it is.

That loses nothing: everything a job commits is written whole (a temporary file renamed into place,
the shard's commit marker last), so the process ending at any instant leaves each shard either
committed or not started, exactly as a killed process (SIGKILL) does, and ``--resume`` does the rest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""128 + the signal's number, as a shell reports a process ended by it."""

_SHOW_CURSOR = "\x1b[?25h"
"""A live progress bar hides the terminal's cursor; an exit that skips its cleanup must show it again."""

_message: Callable[[], str] = lambda: "wildlife: interrupted"  # noqa: E731


def say(message: Callable[[], str]) -> None:
    """What the next interrupt prints (called when it comes, so it can tell how far a run got)."""
    global _message
    _message = message


def _handle(signum: int, frame: FrameType | None) -> None:
    try:
        line = _message()
    except Exception as error:
        line = f"wildlife: interrupted ({error})"
    prefix = "\r" + _SHOW_CURSOR + "\n" if sys.__stderr__ is not None and sys.__stderr__.isatty() else ""
    # os.write: the line must not wait behind, or be lost in, a Python stream's buffer or lock.
    with contextlib.suppress(OSError):
        os.write(2, (prefix + line + "\n").encode())
    os._exit(EXIT_CODES.get(signal.Signals(signum), 128 + signum))


@contextlib.contextmanager
def exit_at_once() -> Iterator[None]:
    """SIGINT and SIGTERM end the process at once with the current message (``say``) while inside.

    Only the main thread may set signal handlers; elsewhere (a command called by a test's thread)
    the default handling stays.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _handle) for number in EXIT_CODES}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
