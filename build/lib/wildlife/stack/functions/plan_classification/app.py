"""Lambda PlanClassification: between the stages. Groups animal crops into classification shards."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from wildlife_common.planning import plan_classification
from wildlife_common.records import ClassificationPlan, RunEvent

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: RunEvent, context: LambdaContext) -> ClassificationPlan:
    """Event: ``{"run": <PlanDetection's result>}``."""
    result = plan_classification(event["run"])
    logger.info("planned classification", extra={"shard_count": result["shard_count"], "crops": result["crops"]})
    return result
