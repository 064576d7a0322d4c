"""Lambda PlanDetection: the planning of a run, in three steps of the state machine.

- PlanDetection (the event is the run config): records the run and splits its input into key
  ranges, or, for a resumed run, queues its uncommitted shards.
- ListPart (``"step": "list_part"``): lists one range in a ListInput child and writes its shards.
- AssemblePlan (``"step": "assemble"``): joins the ranges' shards into the run's plan.

One function for the three: they need the same code, memory and permissions (read the input,
write the run folder), and the execution graph names each step.
"""

from typing import cast

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from wildlife_common.config import pipeline_root_from_env
from wildlife_common.listing import list_part
from wildlife_common.planning import assemble_plan, plan_detection
from wildlife_common.records import AssemblePlanEvent, DetectionPlan, ListedRange, ListPartEvent, PlanDetectionEvent

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(
    event: PlanDetectionEvent | ListPartEvent | AssemblePlanEvent, context: LambdaContext
) -> DetectionPlan | ListedRange:
    """Event: ``{"config": <execution input>, "execution_name": str}``, or a step's (see above)."""
    step = event.get("step")
    if step == "list_part":
        part = cast(ListPartEvent, event)
        listed = list_part(part["run_uri"], part["part"], lambda: context.get_remaining_time_in_millis() / 1000)
        found: ListedRange = {
            "part": listed["part"],
            "round": listed["round"],
            "shards": len(listed["shards"]),
            "images": sum(shard["images"] for shard in listed["shards"]),
            "next_after": listed["next_after"],
        }
        logger.info("listed", extra=dict(found))
        return found
    if step == "assemble":
        result = assemble_plan(cast(AssemblePlanEvent, event)["run"])
    else:
        start = cast(PlanDetectionEvent, event)
        result = plan_detection(start["config"], start.get("execution_name"), pipeline_root_from_env())
    logger.info("planned", extra={k: v for k, v in result.items() if k != "shards"})
    return result
