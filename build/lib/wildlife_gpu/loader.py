"""The input path: many reads and decodes in flight, in order, while the model runs.

A thread pool reads (S3 GETs are I/O bound) and decodes (Pillow and OpenCV release the GIL), so
the next batch is ready when the model finishes the current one. The model's loop measures how
long it waited for input; that share is the ``input_wait_fraction`` metric.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Two threads a core: half of them are usually waiting on S3, the rest decode.

    At least 4 so that reads overlap on a small machine; at most 32 (S3 gives ~85-90 MB/s a
    connection, so 32 connections outrun any single GPU's appetite for camera-trap JPEGs).
    """
    return max(4, min(32, 2 * (os.cpu_count() or 2)))


def prefetch(items: Iterable[T], work: Callable[[T], R], *, workers: int, ahead: int) -> Iterator[R]:
    """``work(item)`` for every item, in input order, keeping up to ``ahead`` items in flight.

    ``work`` must not raise for a bad item: it returns a value that says the item failed. What it
    raises (S3 not serving a read) is raised here, in order, and the items not yet started are
    cancelled, so a failing shard stops reading at once instead of working through ``ahead`` more.
    """
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="input") as pool:
        pending: deque[Future[R]] = deque()
        source = iter(items)
        try:
            for item in source:
                pending.append(pool.submit(work, item))
                if len(pending) >= ahead:
                    break
            while pending:
                result = pending.popleft().result()
                for item in source:
                    pending.append(pool.submit(work, item))
                    break
                yield result
        finally:
            for future in pending:
                future.cancel()


def batched(results: Iterator[R], size: int) -> Iterator[list[R]]:
    """Group an iterator into lists of ``size`` (the last may be shorter)."""
    batch: list[R] = []
    for result in results:
        batch.append(result)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class WaitClock:
    """Total time and time spent waiting for input, for the share-of-time-waited metric."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.waited = 0.0

    def wait_for(self, iterator: Iterator[R]) -> Iterator[R]:
        """Yield from ``iterator``, counting the time each ``next`` blocks as waiting."""
        while True:
            begin = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.waited += time.perf_counter() - begin
                return
            self.waited += time.perf_counter() - begin
            yield item

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def wait_fraction(self) -> float:
        return self.waited / self.elapsed if self.elapsed else 0.0
