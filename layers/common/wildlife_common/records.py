"""What passes between the steps: every JSON record a step writes and another reads, typed.

The Lambdas, the GPU task and the CLI are three deployment units that share nothing at run time but
these files and the state machine's payloads; mypy checks each unit's reads and writes against the
types below. Where each file lives is ``layout.RunLayout``'s business; what is in it is this module's.

Records are TypedDicts, not classes: they are written with ``json.dumps`` and read with
``json.loads`` as they are, and a reader of an older run folder sees plain dicts. Fields added
later are ``NotRequired`` so that runs written before them still read.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict


class Stage(StrEnum):
    """A stage of a run. The value is the stage's folder in the run folder (``stage1/``, ``stage2/``)."""

    DETECTION = "stage1"
    CLASSIFICATION = "stage2"

    @property
    def command(self) -> str:
        """The GPU task's subcommand for a shard of this stage (``detect``, ``classify``)."""
        return "detect" if self is Stage.DETECTION else "classify"

    @property
    def label(self) -> str:
        """The stage as a person reads it (``detection``, ``classification``)."""
        return "detection" if self is Stage.DETECTION else "classification"


# -------------------------------------------------------------------------------- planning


class ImageEntry(TypedDict):
    """One image of a detection shard's manifest."""

    uri: str
    image: str
    """The path relative to the input folder: MegaDetector's ``file``."""
    size: int
    etag: str | None


class DetectionManifest(TypedDict):
    """``stage1/shards/<shard>.json``: the images of one detection shard."""

    run_id: str
    stage: str
    shard: str
    input: str
    images: list[ImageEntry]


class ClassificationManifest(TypedDict):
    """``stage2/shards/<shard>.json``: the detection shards whose crops one classification shard classifies."""

    run_id: str
    stage: str
    shard: str
    stage1_shards: list[str]
    crops: int


class DetectionShard(TypedDict):
    """An entry of ``stage1/plan.json`` (every shard of the run) and ``stage1/shards.json`` (this execution's)."""

    shard: str
    images: int


class ClassificationShard(TypedDict):
    """An entry of ``stage2/shards.json``."""

    shard: str
    crops: int


class ShardList(TypedDict):
    """Where a Distributed Map's ItemReader reads its shard list; the bucket is "" for a local run folder."""

    bucket: str
    key: str


class PlanCounts(TypedDict):
    """What listing the input found."""

    listed: int
    not_images: int
    skipped: int
    """Images processed by earlier runs on the same input (incremental runs)."""
    hidden: NotRequired[int]
    """Files in hidden or system folders, or in the run's own output folder inside the input: not read."""
    not_files: NotRequired[int]
    """Rows of an S3 Inventory report that are no file of the bucket now: older versions and delete
    markers (a report of all versions), and the console's folder placeholders (keys ending in "/")."""
    images: NotRequired[int]
    """Images planned; set once the listing is done."""


class ListingRecord(TypedDict):
    """How the input was listed: key ranges, and rounds (a range that outlasted a lister goes on in the next)."""

    parts: int
    rounds: int
    listers: int
    """Lister invocations, all rounds: the ListInput Map's child executions."""


class ListingPart(TypedDict):
    """An entry of ``stage1/listing/round-NN.json``: one key range of the input, for one lister.

    Keys relative to the input, greater than ``after`` and not greater than ``upto`` (None: to the
    end); see ``listing``."""

    part: int
    round: int
    after: str
    upto: str | None
    first_shard: int
    """The index of the range's first shard in this round: 0, or where an earlier round stopped."""
    shard_prefix: str
    """Before each shard index: "" when the input is one range, else the range's number ("0003-")."""
    file: NotRequired[str]
    """An S3 Inventory input's part instead of a key range: one data file of the report (``inventory``)."""
    after_row: NotRequired[int]
    """With ``file``: the rows of the file listed before this round (0, or where an earlier round stopped)."""


class PartListed(TypedDict):
    """What one lister found in its range in one round: ``stage1/listing/parts/PPPP.rNN.json``."""

    part: int
    round: int
    shards: list[DetectionShard]
    counts: PlanCounts
    next_after: str | None
    """The last key listed when the lister ran out of time (the range goes on after it); None when done."""
    next_shard: int
    next_row: NotRequired[int]
    """A data file of an S3 Inventory input: the rows read so far, where the next round goes on."""


class ListedRange(TypedDict):
    """ListPart's result, what the ListInput child keeps: counts only (a range's shard list can pass 256 KB)."""

    part: int
    round: int
    shards: int
    images: int
    next_after: str | None


class Listing(TypedDict):
    """In a plan whose input is still being listed: the ranges of this round (the ListInput Map's items)."""

    parts: ShardList
    part_count: int
    round: int


class RunRecord(TypedDict):
    """``run.json``: the run's settings and how its planning went."""

    run_id: str
    config: dict[str, Any]
    """``RunConfig.to_dict()``: the settings, as ``config.parse_config`` reads them back."""
    created: str
    code_version: str
    planned: bool
    counts: NotRequired[PlanCounts]
    shards: NotRequired[int]
    resumed: NotRequired[list[str]]
    """When the run was started again, one time per resume."""
    listing: NotRequired[ListingRecord]
    report: NotRequired[str]
    """The S3 Inventory report a run reads: the manifest.json its input names, or the newest one when
    the input names ``*`` for the report's folder (``inventory.resolve``), found once when the run is
    planned, so that its listers and a resume read the same report however many come after it."""
    input_root: NotRequired[str]
    """The folder image paths are relative to, which names the index of processed images: the input
    folder (a photo's folder, for one photo), or an S3 Inventory report's bucket. Recorded when the run
    is planned, so that no later step reads the report (Materialize may not)."""


class DetectionPlan(TypedDict):
    """PlanDetection's result: ``$.run`` in the state machine, the references and counts it routes on."""

    run_id: str
    run_uri: str
    shards: ShardList
    shard_count: int
    """Shards this execution processes (a resumed run skips committed ones)."""
    images: int
    pending_images: int
    skipped: int
    detection_only: bool
    max_concurrency: int
    tolerated_failure_percentage: float
    materialize_on_batch: bool
    overlapping_run: NotRequired[str]
    """Set when the run was started with skip_if_running while another such run was running (its
    execution name): nothing was planned, and the state machine ends at SkippedOverlappingRun."""
    listing: NotRequired[Listing]
    """Set while the input is being listed (a new run): the ranges to list next. The plan is
    complete, its shards known, once AssemblePlan returns it without this."""


class ClassificationPlan(TypedDict):
    """PlanClassification's result: ``$.classification`` in the state machine."""

    shards: ShardList
    shard_count: int
    crops: int


class PlanDetectionEvent(TypedDict):
    """What the state machine sends PlanDetection."""

    config: dict[str, Any]
    """The execution's input: the run settings, checked by ``config.parse_config``."""
    execution_name: NotRequired[str]
    """The run id when the input names none."""


class ListPartEvent(TypedDict):
    """What the ListInput Map's child sends PlanDetection: one range to list."""

    step: Literal["list_part"]
    run_uri: str
    part: ListingPart


class AssemblePlanEvent(TypedDict):
    """What AssemblePlan sends PlanDetection: the plan whose listing round has ended."""

    step: Literal["assemble"]
    run: DetectionPlan


class RunEvent(TypedDict):
    """What the state machine sends PlanClassification and Materialize: PlanDetection's result."""

    run: DetectionPlan


class RecordFailureEvent(TypedDict):
    """What the state machine's Catch sends RecordFailure."""

    input: Any
    """The execution's input, as it came: it may be what failed to parse."""
    execution_name: NotRequired[str]
    error: NotRequired[dict[str, str]]
    """The caught error: ``{"Error": ..., "Cause": ...}``."""


class ExecutionStatusChangeDetail(TypedDict):
    """The ``detail`` of Step Functions' "Execution Status Change" event (EventBridge)."""

    executionArn: str
    stateMachineArn: str
    name: str
    status: str
    startDate: NotRequired[int]
    """Milliseconds since the epoch."""
    input: NotRequired[str | None]
    """The execution's input as JSON text."""
    error: NotRequired[str | None]
    cause: NotRequired[str | None]


class ExecutionStatusChange(TypedDict):
    """What EventBridge sends RecordFailure when a run ends FAILED, TIMED_OUT or ABORTED."""

    source: str
    detail: ExecutionStatusChangeDetail


# -------------------------------------------------------------------------------- commit markers


class ShardDone(TypedDict):
    """``<stage>/results/<shard>.done.json``: written last, so a shard is done exactly when it exists."""

    shard: str
    stage: str
    rows: int
    attempt: int
    """The Batch attempt that committed the shard (1 outside Batch)."""
    started: str
    finished: str
    seconds: float
    instance_type: str | None
    lifecycle: str | None
    """``spot`` or ``on-demand`` from EC2 metadata; None outside EC2 (costs then assume the queue's)."""


class DetectionStats(TypedDict):
    """What a detection job adds to its commit marker."""

    images: int
    failed_images: int
    detections: int
    crops: int
    """What stage 2 will classify: crops cut, or for SpeciesNet every detection at or above its threshold."""
    images_per_second: float
    input_wait_fraction: float
    gpu_utilization: float | None
    device: str
    batch_size: int
    image_size: int
    detector_format: str
    letterbox_stride: int
    exact_decode: bool
    resumed_from: int
    detector: str


class DetectionDone(ShardDone, DetectionStats):
    pass


class ClassificationStats(TypedDict):
    """What a classification job adds to its commit marker."""

    stage1_shards: list[str]
    crops: int
    failed_crops: int
    crops_per_second: float
    input_wait_fraction: float
    device: str
    classifier: str
    speciesnet_version: NotRequired[str]
    """Set by SpeciesNet folders: the version their speciesnet.json names."""
    speciesnet_type: NotRequired[str]
    """``always_crop`` or ``full_image``."""


class ClassificationDone(ShardDone, ClassificationStats):
    pass


# -------------------------------------------------------------------------------- the run's end


class MaterializeResult(TypedDict):
    """Materialize's result: the execution's output."""

    run_id: str
    run_uri: str
    summary: str
    status: str
    images: int
    failed_images: int
    detections: int
    failed_shard_count: int
    failed_shards: list[str]
    """The first failed shards (``<stage folder>/<shard>``, e.g. ``stage1/00003``), at most
    ``materialize.RESULT_SHARDS``: the result is the execution's output, which Step Functions caps at
    256 KiB. Every failed shard is in summary.json (``shards.failed``)."""


class FailedShard(TypedDict):
    stage: str
    shard: str


class ShardCounts(TypedDict):
    stage1: dict[str, int]
    stage2: dict[str, int]
    failed: list[FailedShard]
    mismatched: list[str]


class StageTiming(TypedDict):
    shards: int
    job_seconds: float
    """What is paid: the sum of the stage's job durations."""
    wall_seconds: float
    """From the first job's start to the last one's end."""
    items_per_job_second: float | None


class Summary(TypedDict):
    """``final/summary.json``: what a person reads first. Every image is in exactly one of
    ``images_above_threshold``, ``images_below_threshold``, ``empty_images`` and ``failed_images``."""

    run_id: str
    input: str
    status: str
    """``succeeded``, ``partial`` (some shards failed) or ``inconsistent`` (the counts do not add up)."""
    message: str
    images: int
    images_with_detections: int
    images_above_threshold: int
    images_below_threshold: int
    empty_images: int
    failed_images: int
    image_failure_rate: float
    failure_reasons: dict[str, int]
    balanced: bool
    planned_images: int
    skipped_images: int
    not_image_files: int
    hidden_files: NotRequired[int]
    """Files not read: in hidden or system folders, or in the run's own output folder inside the input."""
    rows: int
    detections: int
    typical_detection_threshold: float
    detections_above_threshold: dict[str, int]
    species: dict[str, int]
    shards: ShardCounts
    timings: dict[str, StageTiming]
    cost: dict[str, Any]
    """``costs.run_cost``'s estimate with the inputs it was computed from (``wildlife report`` recomputes it)."""
    detector: str
    classifier: str | None
    outputs: dict[str, str]
    finished: str
    code_version: str


class Failure(TypedDict):
    """``final/failure.json``: why a run failed, written by RecordFailure."""

    error: str
    """The Fail state's error name (``ShardsFailed``, ``TaskFailed``, …)."""
    step_functions_error: str
    cause: str
    raw_cause: str | None
    failed: str
