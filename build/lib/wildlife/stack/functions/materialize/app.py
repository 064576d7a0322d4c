"""Lambda Materialize: merges the committed shards into the final table, JSON and summary."""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from wildlife_common.materialize import materialize
from wildlife_common.records import MaterializeResult, RunEvent

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "WildlifePipeline"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: RunEvent, context: LambdaContext) -> MaterializeResult:
    """Event: ``{"run": <PlanDetection's result>}``. Emits Images, FailedImages and ImageFailureRate (EMF)."""
    result = materialize(event["run"]["run_uri"])
    images = result["images"]
    metrics.add_metric(name="Images", unit=MetricUnit.Count, value=images)
    metrics.add_metric(name="FailedImages", unit=MetricUnit.Count, value=result["failed_images"])
    metrics.add_metric(name="FailedShards", unit=MetricUnit.Count, value=result["failed_shard_count"])
    if images:
        # The alarm on this metric fires when a run loses more than a few percent of its images.
        metrics.add_metric(
            name="ImageFailureRate", unit=MetricUnit.Percent, value=100.0 * result["failed_images"] / images
        )
    logger.info("materialized", extra=result)
    return result
