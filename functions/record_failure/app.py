"""Lambda RecordFailure: explains a failed run for the console and writes final/failure.json."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from wildlife_common.config import pipeline_root_from_env
from wildlife_common.failures import record_failure
from wildlife_common.records import RecordFailureEvent

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: RecordFailureEvent, context: LambdaContext) -> dict[str, str]:
    """Event: ``{"input": <execution input>, "execution_name": str, "error": {"Error", "Cause"}}``."""
    result = record_failure(
        event.get("input"), event.get("execution_name"), event.get("error") or {}, pipeline_root_from_env()
    )
    logger.error("run failed", extra=result)
    return result
