"""Lambda RecordFailure: explains a failed run for the console and writes final/failure.json.

Called two ways: by the state machine's Catch (the run's error, while the execution still runs),
and by EventBridge when any execution ends FAILED, TIMED_OUT or ABORTED (the safety net for what a
Catch cannot catch; it writes failure.json only when the run did not).
"""

from typing import Any, cast

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from wildlife_common.config import pipeline_root_from_env
from wildlife_common.failures import record_ended_run, record_failure
from wildlife_common.records import ExecutionStatusChange, RecordFailureEvent

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: RecordFailureEvent | ExecutionStatusChange, context: LambdaContext) -> dict[str, Any]:
    """Event: ``{"input": <execution input>, "execution_name": str, "error": {"Error", "Cause"}}`` from
    the state machine, or Step Functions' "Execution Status Change" event from EventBridge."""
    if event.get("source") == "aws.states":
        ended = record_ended_run(cast(ExecutionStatusChange, event), pipeline_root_from_env())
        if ended is not None:
            logger.error("run ended without recording why", extra=ended)
        return ended or {}
    event = cast(RecordFailureEvent, event)
    result = record_failure(
        event.get("input"), event.get("execution_name"), event.get("error") or {}, pipeline_root_from_env()
    )
    logger.error("run failed", extra=result)
    return result
