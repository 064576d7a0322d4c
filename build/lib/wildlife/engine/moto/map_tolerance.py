"""Patch 4: a Distributed Map Run fails when its failures exceed the tolerance.

What moto does: 5.2.5 parses ``ToleratedFailurePercentage`` and ``ToleratedFailureCount`` but
ignores them ("currently have no effect", its parser logs): a failed item becomes a ``null`` result
and the Map succeeds whatever fails.

What we do: AWS fails the Map Run with ``States.ExceedToleratedFailureThreshold`` once failures
exceed the tolerance (0 by default). We wrap ``DistributedIterationComponent._map_run`` to apply
the tolerance, from moto's own item counters, when the items are done (AWS stops a Map Run as soon
as it is exceeded; here the remaining items still run). A threshold of 0 next to a positive other
one counts as not declared (moto does not tell the two apart); with both at 0, any failure fails
the Map Run. The parser's "no effect" warning is filtered while the patch is on: it is untrue then.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, cast

from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record import (
    MapRunRecord,
    ProgressCounter,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from wildlife.engine.moto.patching import Patch, attribute_problems, signature_problems

_ORIGINAL_MAP_RUN = DistributedIterationComponent.__dict__["_map_run"]

# moto's ASL parser logs "currently have no effect" for every Map with a tolerance.
PARSER_LOG = logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor")


def drop_tolerance_warning(record: logging.LogRecord) -> bool:
    """A logging filter that drops the parser's warning this patch makes untrue."""
    return "currently have no effect" not in record.getMessage()


def exceeds_tolerance(failed: int, total: int, tolerated_count: int, tolerated_percentage: float) -> bool:
    """Whether a Map Run with ``failed`` of ``total`` items failed exceeds its tolerated failures.

    A threshold of 0 beside a positive other threshold counts as not declared; both 0 (the default)
    tolerate no failure.
    """
    if failed == 0:
        return False
    if tolerated_count == 0 and tolerated_percentage == 0:
        return True
    over_count = tolerated_count > 0 and failed > tolerated_count
    over_percentage = tolerated_percentage > 0 and failed * 100 > tolerated_percentage * total
    return over_count or over_percentage


def _map_run_with_tolerance(self: DistributedIterationComponent, env: Any, eval_input: Any) -> None:
    """moto's ``_map_run``, then the tolerance check."""
    _ORIGINAL_MAP_RUN(self, env=env, eval_input=eval_input)
    record: MapRunRecord = eval_input.map_run_record
    failed = record.item_counter.failed.get() + record.item_counter.timed_out.get()
    total = record.item_counter.total.get()
    count, percentage = record.tolerated_failure_count, record.tolerated_failure_percentage
    if not exceeds_tolerance(failed, total, count, percentage):
        return
    env.stack.pop()  # the item results moto's _map_run pushed
    error = StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name()
    cause = (
        f"The specified tolerated failure threshold was exceeded: {failed} of {total} items failed "
        f"(ToleratedFailureCount {count}, ToleratedFailurePercentage {percentage})"
    )
    raise FailureEventException(
        FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
            event_type=HistoryEventType.MapRunFailed,
            # moto's EventDetails is a TypedDict of every kind of details; an event has one of them.
            event_details=cast(
                EventDetails, {"mapRunFailedEventDetails": MapRunFailedEventDetails(error=error, cause=cause)}
            ),
        )
    )


def patches() -> list[Patch]:
    return [Patch(DistributedIterationComponent, "_map_run", _map_run_with_tolerance)]


def check() -> list[str]:
    problems = [
        *signature_problems(DistributedIterationComponent, "_map_run", ["self", "env", "eval_input"]),
        *attribute_problems(MapRunRecord, ["item_counter", "tolerated_failure_count", "tolerated_failure_percentage"]),
        *attribute_problems(ProgressCounter, ["failed", "timed_out", "total"]),
    ]
    if "tolerated" in inspect.getsource(_ORIGINAL_MAP_RUN):
        problems.append("DistributedIterationComponent._map_run now reads the tolerance: re-check patch 4")
    if not hasattr(StatesErrorNameType, "StatesExceedToleratedFailureThreshold"):
        problems.append("StatesErrorNameType.StatesExceedToleratedFailureThreshold is missing")
    return problems
