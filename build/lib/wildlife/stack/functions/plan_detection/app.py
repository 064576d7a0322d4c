"""Lambda PlanDetection: the first state of a run. Lists the input and writes the shard plan."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from wildlife_common.config import pipeline_root_from_env
from wildlife_common.planning import plan_detection
from wildlife_common.records import DetectionPlan, PlanDetectionEvent

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: PlanDetectionEvent, context: LambdaContext) -> DetectionPlan:
    """Event: ``{"config": <execution input>, "execution_name": str}``."""
    result = plan_detection(event["config"], event.get("execution_name"), pipeline_root_from_env())
    logger.info("planned", extra={k: v for k, v in result.items() if k != "shards"})
    return result
