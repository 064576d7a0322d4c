"""moto, made to run the pipeline's real state machine: the only code here that touches moto's internals.

moto's Step Functions interpreter (ported from LocalStack) executes an ASL definition when
``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`` is active. Five gaps stand
between it and our state machine; one module closes each, naming what moto does and what it does
instead, with a ``check()`` of what it needs from moto:

1. ``batch_parameters``: ``batch:submitJob.sync`` maps ASL parameter names (moto issue 10076).
2. ``lambda_invoke``: a Lambda invocation calls a registered Python handler (no Docker).
3. ``batch_runner``: a Batch job runs a registered runner on a worker thread, with the job
   definition's RetryStrategy (no Docker).
4. ``map_tolerance``: a Distributed Map Run fails when failures exceed its tolerance.
5. ``batch_lock``: moto's Batch job dict is locked while threads submit and describe jobs.

``LocalAws`` (``local_aws``) applies the five on entry and undoes them on exit, after ``guard``'s
``check_moto_internals`` has checked the pinned version and every patch's needs. ``waits`` shortens
Retry and Wait delays for tests (moto really sleeps). ``patching`` holds what the patches share.

What moto 5.2.5 gets wrong that we do not patch, and how the pipeline lives with it:

- ResultWriter paths are evaluated against the Map's results, not its input, so a ``Bucket.$`` or
  ``Prefix.$`` would resolve to nothing locally. The state machine's Maps therefore write to a fixed
  bucket (``${PipelineBucketName}``, a DefinitionSubstitution) and prefix (``map-results/<stage>``);
  the local engine substitutes its own bucket. Nothing else in the ASL is shaped by moto.
- A Fail state may not raise an error named ``States.*`` (the spec reserves the prefix; moto's
  ``CustomErrorName`` enforces it): RecordFailure renames such errors (``failures.run_error_name``).
- Variables and JSONata fail (moto issue 10105); JSONPath filters with ``&&`` / ``||`` do not parse
  (moto issue 10078): the ASL uses neither.
- An unnamed execution is named ``None``: ``LocalAws.start_execution`` always sends a name.

Example::

    with LocalAws() as aws:
        plan_arn = aws.register_lambda("plan", plan_handler)
        arns = aws.register_batch(job_queues=["JobQueue"], job_definitions={"Detect": detect_arguments})
        aws.set_batch_runner(run_gpu_task)
        machine = aws.create_state_machine("pipeline", definition)
        result = aws.wait_for_execution(aws.start_execution(machine, {}))
"""

from wildlife.engine.moto.batch_runner import BatchJob, BatchResult, BatchRunner, fill_parameters, retry_action
from wildlife.engine.moto.guard import PINNED_MOTO_VERSION, check_moto_internals
from wildlife.engine.moto.lambda_invoke import LambdaHandler, LocalLambdaContext
from wildlife.engine.moto.local_aws import DEFAULT_REGION, LocalAws, s3_passthrough_urls
from wildlife.engine.moto.map_tolerance import exceeds_tolerance
from wildlife.engine.moto.patching import MotoInternalsChanged
from wildlife.engine.moto.waits import shorten_waits

__all__ = [
    "DEFAULT_REGION",
    "PINNED_MOTO_VERSION",
    "BatchJob",
    "BatchResult",
    "BatchRunner",
    "LambdaHandler",
    "LocalAws",
    "LocalLambdaContext",
    "MotoInternalsChanged",
    "check_moto_internals",
    "exceeds_tolerance",
    "fill_parameters",
    "retry_action",
    "s3_passthrough_urls",
    "shorten_waits",
]
