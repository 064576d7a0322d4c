"""The local engine: the deployed design, run in this process on a local folder or S3 input.

``LocalEngine`` builds everything from ``template.yaml``, nothing from a copy of it: the Lambda
functions (their handlers in ``functions/``, called in-process with a Lambda context), the Batch job
queue and job definitions (their real command, parameters and RetryStrategy), and the state machine
(``statemachine/pipeline.asl.json`` with its DefinitionSubstitutions resolved against the local
stand-ins' ARNs). moto's Step Functions interpreter runs it (see ``wildlife.engine.moto`` for what is patched
and why), and each Batch job attempt runs the GPU task's command in this process, so the models
that ``wildlife_gpu`` caches stay loaded from one shard to the next.

Two adaptations, both because the run folder of a local run is on disk, not in S3:

- The Distributed Maps' ItemReader reads the shard list (and the list of key ranges to list) from
  S3. The planners return a reference ``{"bucket": "", "key": <path>}`` for a local run folder; the
  engine copies that one small file into a moto bucket and hands the state machine the S3
  reference instead. Images and results never
  move: the GPU task reads and writes the run folder and the input where they are.
- Each job's and function's output goes to a log file under ``log_dir`` (their CloudWatch log
  streams in AWS), so the terminal shows only the live view.

Example::

    with LocalEngine(log_dir=Path("results/logs")) as engine:
        result = engine.run({"input": "photos/", "detector": "md.pt", "output": "results", "run_id": "r1"})
        print(result.status, result.output)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from wildlife_common import storage
from wildlife_common.layout import RunLayout
from wildlife_common.records import Stage

from wildlife.engine import capture
from wildlife.engine.moto import (
    DEFAULT_REGION,
    BatchJob,
    BatchResult,
    LocalAws,
    LocalLambdaContext,
    shorten_waits,
)
from wildlife.engine.template import (
    PSEUDO,
    FunctionSpec,
    PipelineTemplate,
    job_definition_arguments,
    resolve_properties,
)
from wildlife.paths import stack_root

ROOT = stack_root()
DEFAULT_TEMPLATE = ROOT / "template.yaml"

MIRROR_BUCKET = "wildlife-local-runs"
"""The moto bucket that holds copies of local shard lists for the Maps' ItemReader (and nothing else)."""

# What the template's Globals give every function, minus PIPELINE_BUCKET: a local run always names
# its output folder, so no function needs a default bucket. Tracing is off: there is no X-Ray here.
_FUNCTION_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": PSEUDO["AWS::StackName"],
    "POWERTOOLS_METRICS_NAMESPACE": "WildlifePipeline",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "LOG_LEVEL": "INFO",
}
# (ultralytics' YOLO_OFFLINE is set by wildlife_gpu itself, before anything imports ultralytics.)


@dataclass(frozen=True)
class JobRecord:
    """One finished attempt of a Batch job, as the local runner saw it."""

    job_name: str
    command: str
    shard: str | None
    attempt: int
    exit_code: int | None
    seconds: float
    log: Path
    images: int = 0
    """Images of a committed detection shard (0 for other jobs and failed attempts)."""
    error: str | None = None
    """The job's one-line reason when it failed (the last ``error:`` line of its log)."""
    finished: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class RunResult:
    """How an execution ended."""

    execution_arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    seconds: float
    history: list[dict[str, Any]]
    jobs: list[JobRecord]

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def failed_jobs(self) -> list[JobRecord]:
        return [job for job in self.jobs if job.exit_code != 0]


class LocalEngine:
    """The pipeline's state machine, Lambdas and Batch jobs, all in this process (a context manager).

    Args:
        template: the SAM template to run (the repository's by default).
        batch_concurrency: Batch job attempts run at once. 1 by default: one GPU runs one job well
            and two badly, and on a CPU the jobs' own threads already use every core.
        short_waits: cap every Retry wait at 1 s (``wildlife.engine.moto.shorten_waits``); for tests only.
        log_dir: where job and function logs go; a temporary folder when None.
        region: the region of the local account.
        real_s3_buckets: buckets read from the real S3 (the input or models of a local run), with
            the credentials this process has; every other S3 call goes to moto. Tests leave it
            empty and put their S3 input in moto.
        capacity_wait_s: how long a job may wait for a free slot (``batch_concurrency``) before the
            queue cancels it, as the template's job queue does for GPU capacity in AWS (4 hours); for
            tests of that path. None: the template's value.
    """

    def __init__(
        self,
        *,
        template: Path = DEFAULT_TEMPLATE,
        batch_concurrency: int = 1,
        short_waits: bool = False,
        log_dir: Path | None = None,
        region: str = DEFAULT_REGION,
        real_s3_buckets: Iterable[str] = (),
        capacity_wait_s: float | None = None,
    ) -> None:
        self.template = PipelineTemplate.load(template)
        self.capacity_wait_s = capacity_wait_s
        self.real_s3_buckets = sorted(set(real_s3_buckets))
        self.batch_concurrency = batch_concurrency
        self.short_waits = short_waits
        self.region = region
        self._log_dir = log_dir
        self._stack = contextlib.ExitStack()
        self._jobs: list[JobRecord] = []
        self._jobs_lock = threading.Lock()
        self._names: set[str] = set()
        self.aws: LocalAws
        self.state_machine_arn = ""
        self.log_dir = Path()

    # ------------------------------------------------------------------ setup

    def __enter__(self) -> LocalEngine:
        try:
            self._setup()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _setup(self) -> None:
        if self._log_dir is None:
            self.log_dir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="wildlife-logs-")))
        else:
            self.log_dir = self._log_dir
        self._stack.enter_context(_environment({**_FUNCTION_ENVIRONMENT, "AWS_DEFAULT_REGION": self.region}))
        self._stack.enter_context(capture.routed_output(self.log_dir / "engine.log"))
        storage.s3_client.cache_clear()
        self._stack.callback(storage.s3_client.cache_clear)
        if self.real_s3_buckets:
            # Made before the mock, the shared client keeps this process's real credentials (moto puts
            # fake ones in the environment); moto passes its calls to these buckets through to S3.
            storage.s3_client()
        self.aws = self._stack.enter_context(
            LocalAws(region=self.region, batch_concurrency=self.batch_concurrency, real_s3_buckets=self.real_s3_buckets)
        )
        if not self.real_s3_buckets:
            # Made inside the mock, with moto's fake credentials: nothing can reach a real account.
            storage.s3_client.cache_clear()
        self._s3 = self.aws.client("s3")
        self._s3.create_bucket(Bucket=MIRROR_BUCKET)

        arns = {
            name: self.aws.register_lambda(name, self._handler(spec)) for name, spec in self.template.functions.items()
        }
        job_definitions = {
            name: job_definition_arguments(name, resolve_properties(props, self._stand_ins()))
            for name, props in self.template.job_definitions.items()
        }
        capacity_waits = self.template.capacity_waits()
        if self.capacity_wait_s is not None:
            capacity_waits = dict.fromkeys(self.template.job_queues, self.capacity_wait_s)
        arns.update(
            self.aws.register_batch(
                job_queues=self.template.job_queues, job_definitions=job_definitions, capacity_waits=capacity_waits
            )
        )
        # The Maps' ResultWriter writes to the fixed pipeline bucket (why it is fixed: wildlife.engine.moto);
        # locally that is the mirror bucket.
        definition = self.template.render({**arns, "PipelineBucket": MIRROR_BUCKET})
        if self.short_waits:
            definition = shorten_waits(definition)
        self.state_machine_arn = self.aws.create_state_machine(f"{PSEUDO['AWS::StackName']}-pipeline", definition)
        self.aws.set_batch_runner(self.run_job)

    def _stand_ins(self) -> dict[str, Any]:
        """Values for what job definitions Ref or GetAtt: parameter defaults, one role for every role, placeholders."""
        resources = self.template.functions.keys() | self.template.job_definitions.keys()
        names: dict[str, Any] = {name: f"local-{name}" for name in resources}
        names.update(
            {
                "PipelineBucket": MIRROR_BUCKET,
                "EcrRepository": "local/wildlife-gpu",
                "BatchLogGroup": f"/aws/batch/{PSEUDO['AWS::StackName']}",
            }
        )
        names.update(dict.fromkeys(self.template.roles, self.aws.role_arn()))
        names.update({k: v for k, v in self.template.parameters.items() if v is not None})
        return names

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, LocalLambdaContext], Any]:
        module = _load_function(spec)
        handler = getattr(module, spec.handler.rsplit(".", 1)[-1])
        log = self.log_dir / "functions" / f"{spec.logical_id}.log"

        def invoke(event: Any, context: LocalLambdaContext) -> Any:
            with capture.log_to(log):
                result = handler(event, context)
            return self._mirror_shard_list(result)

        return invoke

    def _mirror_shard_list(self, result: Any) -> Any:
        """Give the ItemReaders S3 copies of the lists a planner wrote to a local run folder: the shard
        list (``shards``) and, while a new run's input is listed, its key ranges (``listing.parts``)."""
        if not isinstance(result, dict):
            return result
        mirrored = dict(result)
        if isinstance(result.get("shards"), dict):
            mirrored["shards"] = self._mirror(result["shards"])
        if isinstance(result.get("listing"), dict):
            mirrored["listing"] = {**result["listing"], "parts": self._mirror(result["listing"]["parts"])}
        return mirrored

    def _mirror(self, reference: dict[str, str]) -> dict[str, str]:
        if reference.get("bucket") != "" or not reference.get("key"):
            return reference  # in S3 already, or no list (a plan still being listed has no shards)
        path = Path(reference["key"])
        key = "local" + path.resolve().as_posix()
        self._s3.put_object(Bucket=MIRROR_BUCKET, Key=key, Body=path.read_bytes())
        return {"bucket": MIRROR_BUCKET, "key": key}

    # ------------------------------------------------------------------ Batch jobs

    def run_job(self, job: BatchJob) -> BatchResult:
        """The Batch runner: the job's command, run by the GPU task's entrypoint in this process.

        Tests wrap it (``engine.aws.set_batch_runner(wrapper)``) to lose a host the way Spot does.
        """
        from wildlife_gpu import cli as gpu_cli

        log = self.log_dir / "jobs" / f"{job.job_name}.attempt{job.attempt}.log"
        started = time.monotonic()
        with capture.log_to(log):
            try:
                code = gpu_cli.main(job.command)
            except SystemExit as exit_:  # argparse's exit on a bad command line
                code = exit_.code if isinstance(exit_.code, int) else 1
        seconds = time.monotonic() - started
        shard = job.parameters.get("shard") or None
        images = 0
        error = None
        if code == 0 and job.command[:1] == [Stage.DETECTION.command] and shard:
            marker = storage.read_json(
                RunLayout(storage.as_folder(job.parameters["run_uri"])).done(Stage.DETECTION, shard)
            )
            images = int(marker.get("images", 0))
        elif code != 0:
            error = capture.last_line(log) or f"exit code {code}"
        record = JobRecord(job.job_name, job.command[0], shard, job.attempt, code, seconds, log, images, error)
        with self._jobs_lock:
            self._jobs.append(record)
        if code == 0:
            return BatchResult(exit_code=0)
        # What a container's log says is in its log stream in AWS; here the reason carries it.
        return BatchResult(exit_code=code, reason=f"{error} (log: {log})"[:1024])

    def jobs(self, since: int = 0) -> list[JobRecord]:
        """Finished job attempts, in order, from index ``since``."""
        with self._jobs_lock:
            return self._jobs[since:]

    # ------------------------------------------------------------------ executions

    def start(self, config: dict[str, Any]) -> str:
        """Start an execution with a run config; the execution is named after its run id when it can be."""
        base = str(config.get("run_id") or uuid.uuid4())
        name = base
        while name in self._names:  # a resumed run in the same engine needs a fresh execution name
            name = f"{base}-{uuid.uuid4().hex[:6]}"
        self._names.add(name)
        return self.aws.start_execution(self.state_machine_arn, config, name=name)

    def run(
        self,
        config: dict[str, Any],
        *,
        on_update: Callable[[Any], None] | None = None,
        poll_s: float = 0.25,
        timeout_s: float | None = None,
    ) -> RunResult:
        """Run one execution to its end.

        Args:
            config: the run config (the execution input); give it ``output`` and ``run_id``.
            on_update: called with a ``watch.Snapshot`` after every poll (the live view).
            poll_s: seconds between polls of the execution.
            timeout_s: give up (and stop the execution) after this long; None waits for ever.
        """
        from wildlife.engine.watch import Watcher

        capture.reroute()
        jobs_before = len(self.jobs())
        started = time.monotonic()
        arn = self.start(config)
        watcher = Watcher(self, arn, jobs_before)
        while True:
            snapshot = watcher.poll()
            if on_update is not None:
                on_update(snapshot)
            if snapshot.status != "RUNNING":
                break
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                self.aws.client("stepfunctions").stop_execution(executionArn=arn, cause="timed out locally")
                raise TimeoutError(f"execution {arn} still running after {timeout_s} s")
            time.sleep(poll_s)
        described = self.aws.client("stepfunctions").describe_execution(executionArn=arn)
        output = json.loads(described["output"]) if described.get("output") else None
        return RunResult(
            execution_arn=arn,
            status=described["status"],
            output=output,
            error=described.get("error"),
            cause=described.get("cause"),
            seconds=time.monotonic() - started,
            history=watcher.history,
            jobs=self.jobs(jobs_before),
        )


_load_lock = threading.Lock()


def _load_function(spec: FunctionSpec) -> ModuleType:
    """Import a function's module once per process under a name of its own (every handler is ``app``)."""
    module_file = spec.code_uri / (spec.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")
    name = f"wildlife_local_{spec.logical_id}"
    with _load_lock:
        if name in sys.modules:
            return sys.modules[name]
        loader = importlib.util.spec_from_file_location(name, module_file)
        if loader is None or loader.loader is None:
            raise FileNotFoundError(f"no handler module at {module_file}")
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        try:
            loader.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module


@contextlib.contextmanager
def _environment(defaults: dict[str, str]) -> Iterator[None]:
    """Set variables that are not set yet, and remove them again afterwards."""
    added = [key for key in defaults if key not in os.environ]
    for key in added:
        os.environ[key] = defaults[key]
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
