"""Short Retry waits and Wait states, for tests: moto sleeps for real.

Not a patch: a rewrite of an ASL definition. Use it on what tests run, never on the deployed definition.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, overload


@overload
def shorten_waits(definition: str, *, max_retry_delay_s: int = ..., max_wait_s: int = ...) -> str: ...
@overload
def shorten_waits(
    definition: Mapping[str, Any], *, max_retry_delay_s: int = ..., max_wait_s: int = ...
) -> dict[str, Any]: ...
def shorten_waits(
    definition: str | Mapping[str, Any], *, max_retry_delay_s: int = 1, max_wait_s: int = 0
) -> str | dict[str, Any]:
    """Return a copy of an ASL definition whose retries and Wait states are short, for tests.

    moto sleeps for real: a Retry with IntervalSeconds 5 and BackoffRate 2 waits 5, 10, 20 s. This
    caps every Retry rule's ``IntervalSeconds`` and ``MaxDelaySeconds`` (moto applies MaxDelaySeconds
    after the backoff, so each retry waits at most ``max_retry_delay_s``), and every Wait state at
    ``max_wait_s`` seconds (``SecondsPath``, ``Timestamp`` and ``TimestampPath`` become ``Seconds``).
    The number of attempts, the error names and everything else are unchanged. Nested states (Map
    ``ItemProcessor`` / ``Iterator``, Parallel ``Branches``) are rewritten too.

    Args:
        definition: the ASL, as a JSON string or a dict (not modified).
        max_retry_delay_s: the longest wait before a retry; at least 1, the smallest value the ASL allows.
        max_wait_s: the longest wait of a Wait state; 0 makes Wait states pass at once.

    Returns:
        The rewritten definition, of the type given (a JSON string or a dict).
    """
    if max_retry_delay_s < 1:
        raise ValueError("max_retry_delay_s must be at least 1: the ASL's IntervalSeconds and MaxDelaySeconds are >= 1")
    document = json.loads(definition) if isinstance(definition, str) else copy.deepcopy(dict(definition))
    _shorten_states(document.get("States", {}), max_retry_delay_s, max_wait_s)
    return json.dumps(document) if isinstance(definition, str) else document


def _shorten_states(states: dict[str, Any], max_retry_delay_s: int, max_wait_s: int) -> None:
    for state in states.values():
        for rule in state.get("Retry", []):
            rule["IntervalSeconds"] = min(rule.get("IntervalSeconds", 1), max_retry_delay_s)
            rule["MaxDelaySeconds"] = min(rule.get("MaxDelaySeconds", max_retry_delay_s), max_retry_delay_s)
        if state.get("Type") == "Wait":
            seconds = state.get("Seconds", max_wait_s)
            for key in ("SecondsPath", "Timestamp", "TimestampPath"):
                state.pop(key, None)
            state["Seconds"] = min(seconds, max_wait_s)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                _shorten_states(state[key].get("States", {}), max_retry_delay_s, max_wait_s)
        for branch in state.get("Branches", []):
            _shorten_states(branch.get("States", {}), max_retry_delay_s, max_wait_s)
