"""Per-job log files for code that runs in this process: what a container's log stream is in AWS.

The local engine runs GPU jobs and Lambda handlers as function calls on worker threads. They
print (the GPU task's JSON log lines, Powertools' JSON logs and EMF metrics) and log; in AWS that
lands in one CloudWatch log stream per job or function, and locally it must not scribble over
the live view of ``wildlife run``. While ``routed_output()`` is active, ``sys.stdout``,
``sys.stderr`` and the root logger route by thread: a thread inside ``log_to(path)`` writes to that
file, every other thread writes where it wrote before (and its log records go to ``engine_log``).
Libraries that log through a handler of their own, holding the ``sys.stdout`` or ``sys.stderr``
they saw when imported (ultralytics, yolov5), write where the root logger's records go.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_local = threading.local()


def _target() -> TextIO | None:
    return getattr(_local, "target", None)


class _RoutedStream(io.TextIOBase):
    """A text stream that writes to the current thread's log file, or else to a fallback stream
    (None: what other threads write is dropped).

    ``STDOUT`` and ``STDERR`` live for the whole process: Powertools keeps the ``sys.stdout`` it saw
    when a handler module was imported, so that object must stay the router across engine runs.
    """

    def __init__(self, name: str, fallback: TextIO | None) -> None:
        self.name = name
        self.fallback = fallback

    def _stream(self) -> TextIO | None:
        return _target() or self.fallback

    def write(self, text: str) -> int:
        stream = self._stream()
        return stream.write(text) if stream is not None else len(text)

    def flush(self) -> None:
        if (stream := self._stream()) is not None:
            stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return _target() is None and self.fallback is not None and self.fallback.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.fallback, "encoding", "utf-8")


STDOUT = _RoutedStream("stdout", sys.__stdout__)
STDERR = _RoutedStream("stderr", sys.__stderr__)


class _RoutedLogHandler(logging.Handler):
    """Log records to the current thread's log file, or to the engine's own log file."""

    def __init__(self, engine_log: TextIO | None) -> None:
        super().__init__(logging.INFO)
        self.engine_log = engine_log
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        stream = _target() or self.engine_log
        if stream is None:
            return
        try:
            stream.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _route_library_handlers(
    engine_log: TextIO | None,
) -> tuple[_RoutedStream, list[tuple[logging.StreamHandler, TextIO]]]:
    """Point library loggers' own handlers that write to the terminal where the root logger's records go.

    ultralytics' logger (and yolov5's) does not propagate to the root logger: it has a StreamHandler
    holding the ``sys.stdout`` (``sys.stderr``) of the moment the library was imported, the terminal
    when ``wildlife run`` loads the models before the engine starts, or a router when a job imported
    it. Either way its records would reach the screen: a router sends the GPU task's reader threads,
    which decode the images and so meet the damaged ones, to the terminal. Handlers of the root
    logger are left alone: ``_RoutedLogHandler`` already puts its records in the logs. Returns the
    stream they now hold, and each changed handler with the stream to give back.
    """
    terminal = {
        id(s) for router in (STDOUT, STDERR) for s in (router, router.fallback, getattr(sys, f"__{router.name}__"))
    }
    to_log = _RoutedStream("engine log", engine_log)
    loggers = [item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    changed = []
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in terminal:
                changed.append((handler, handler.stream))
                handler.setStream(to_log)
    return to_log, changed


@contextlib.contextmanager
def routed_output(engine_log: Path | None = None) -> Iterator[None]:
    """Route stdout, stderr and logging by thread while the block runs (see the module docstring).

    Args:
        engine_log: where log records of threads outside ``log_to`` go (moto's interpreter threads,
            the GPU task's reader threads); None drops them, and the root logger's other handlers
            still see every record.
    """
    engine_file = None
    if engine_log is not None:
        engine_log.parent.mkdir(parents=True, exist_ok=True)
        engine_file = engine_log.open("a", buffering=1)
    saved = sys.stdout, sys.stderr, STDOUT.fallback, STDERR.fallback
    if sys.stdout is not STDOUT:
        STDOUT.fallback = sys.stdout
    if sys.stderr is not STDERR:
        STDERR.fallback = sys.stderr
    sys.stdout, sys.stderr = STDOUT, STDERR
    to_log, library_handlers = _route_library_handlers(engine_file)
    root = logging.getLogger()
    handler = _RoutedLogHandler(engine_file)
    root.addHandler(handler)
    level = root.level
    # The GPU task logs its progress at INFO, and a job's log should have it, as its log stream does.
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for library_handler, stream in library_handlers:
            if library_handler.stream is to_log:  # unless something else replaced it meanwhile
                library_handler.setStream(stream)
        sys.stdout, sys.stderr, STDOUT.fallback, STDERR.fallback = saved
        if engine_file is not None:
            engine_file.close()


def reroute() -> None:
    """Put the routers back in place if something replaced ``sys.stdout`` / ``sys.stderr`` meanwhile.

    pytest's output capture, for one, re-installs its own streams between a fixture's setup and the
    test; the streams it installed become the fallbacks.
    """
    for router in (STDOUT, STDERR):
        current = getattr(sys, router.name)
        if current is not router:
            router.fallback = current
            setattr(sys, router.name, router)


@contextlib.contextmanager
def log_to(path: Path) -> Iterator[TextIO]:
    """Send this thread's output and log records to ``path`` (appended) while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = _target()
    with path.open("a", buffering=1) as stream:
        _local.target = stream
        try:
            yield stream
        finally:
            _local.target = previous


def last_line(path: Path, prefix: str = "error:") -> str | None:
    """The last line of a log file that starts with ``prefix`` (the GPU task's one-line reason)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    return next((line.strip() for line in reversed(lines) if line.startswith(prefix)), None)
