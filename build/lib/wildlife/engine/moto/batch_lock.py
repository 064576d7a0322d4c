"""Patch 5: moto's Batch job dict, used from several threads, behind one lock.

What moto does: its Batch backend keeps jobs in a plain dict that ``submit_job`` adds to and
``describe_jobs`` / ``list_jobs`` iterate. With several Map iterations submitting and polling at
once (``batch_concurrency`` > 1), an iteration failed 1 run in 6 (120 jobs, 40 at once) with
``States.Runtime 'dictionary changed size during iteration'``, which AWS never raises.

What we do: serialize those three methods with one lock (each is quick: jobs run on the runner's
threads, not under the lock). ``BatchSimpleBackend`` runs only ``submit_job`` itself and forwards
every other call to the plain ``BatchBackend`` (its ``__getattribute__``), so the lock goes on
``BatchSimpleBackend.submit_job`` and on ``BatchBackend.describe_jobs`` / ``list_jobs``.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

from moto.batch.models import BatchBackend
from moto.batch_simple.models import BatchSimpleBackend

from wildlife.engine.moto.patching import Patch, where

_LOCK = threading.RLock()
# (class, method): submit_job is BatchSimpleBackend's own; the readers are forwarded to BatchBackend.
_SERIALIZED: tuple[tuple[type, str], ...] = (
    (BatchSimpleBackend, "submit_job"),
    (BatchBackend, "describe_jobs"),
    (BatchBackend, "list_jobs"),
)


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(self, *args, **kwargs)

    return locked


def patches() -> list[Patch]:
    return [Patch(owner, name, _serialized(owner.__dict__[name])) for owner, name in _SERIALIZED]


def check() -> list[str]:
    problems = [f"{where(owner, name)} is missing" for owner, name in _SERIALIZED if name not in owner.__dict__]
    forwarded = inspect.getsource(BatchSimpleBackend.__getattribute__)
    if any(f'"{name}"' in forwarded for owner, name in _SERIALIZED if owner is BatchBackend):
        problems.append("BatchSimpleBackend now runs describe_jobs or list_jobs itself: re-check where patch 5 locks")
    if "self._jobs.items()" not in inspect.getsource(BatchBackend.describe_jobs):
        problems.append("BatchBackend.describe_jobs no longer iterates self._jobs: re-check whether patch 5 is needed")
    return problems
