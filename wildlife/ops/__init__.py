"""Operating runs: the logic behind ``wildlife start/status/watch/report/deploy-image``.

The commands in ``wildlife/commands/`` only parse arguments and print; everything that talks to
AWS or reads a run's folder is here, one module per concern:

- ``aws``: boto3 clients with retries, and AWS errors turned into one-line ``PipelineError``s.
- ``stack``: the stack's Outputs (state machine, bucket, queue, ECR repository, log groups).
- ``console``: links into the AWS console (execution graph, log streams).
- ``runs``: starting, finding and listing executions, and where a run's folder is.
- ``follow``: following an execution as it runs (states, shards done, failures with their logs).
- ``local_runs``: the runs ``wildlife run --out DIR`` made, and how each ended, from their folders.
- ``report``: a run's summary and cost, with the job durations it came from.
- ``image``: building and pushing the gpu_task image.
"""
