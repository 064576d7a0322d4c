"""Where every file of a run lives: the only module that knows a path (README, Reading the results).

What each file holds is typed in ``records``. Keys are deterministic, so a step that is re-run (a
retried Lambda, a Batch job after a Spot interruption, a resumed run) overwrites the same files
instead of adding new ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from wildlife_common.records import Stage
from wildlife_common.storage import as_folder, join


def shard_id(index: int) -> str:
    """Zero-padded so that shard files list in order; 5 digits hold 100,000 shards (200 M images)."""
    return f"{index:05d}"


def classify_shard_id(index: int) -> str:
    """Stage-2 shard ids carry a ``c`` so that a log line or job name says which stage it is."""
    return f"c{index:05d}"


def runs_folder(output_root: str) -> str:
    """The folder holding one folder per run under an output root (bucket or folder)."""
    return as_folder(join(output_root, "runs"))


@dataclass(frozen=True)
class RunLayout:
    """The files of one run below ``<output>/runs/<run_id>/``."""

    run_uri: str

    @classmethod
    def for_run(cls, output_root: str, run_id: str) -> RunLayout:
        """The layout of run ``run_id`` under an output root (bucket or folder)."""
        return cls(as_folder(join(runs_folder(output_root), run_id)))

    @property
    def run_json(self) -> str:
        return join(self.run_uri, "run.json")

    @property
    def plan_json(self) -> str:
        """Every detection shard of the run (``records.DetectionShard``), written once when it is planned."""
        return join(self.run_uri, Stage.DETECTION, "plan.json")

    @property
    def labels_json(self) -> str:
        """The classifier's labels, in its output order: written by every classification shard, all the same."""
        return join(self.run_uri, Stage.CLASSIFICATION, "labels.json")

    def listing_json(self, round_: int) -> str:
        """The key ranges a listing round lists (``records.ListingPart``; the ListInput Map's ItemReader reads it)."""
        return join(self.run_uri, Stage.DETECTION, "listing", f"round-{round_:02d}.json")

    def part_listed(self, part: int, round_: int) -> str:
        """What one range's lister found in one round (``records.PartListed``)."""
        return join(self.run_uri, Stage.DETECTION, "listing", "parts", f"{part:04d}.r{round_:02d}.json")

    def shards_json(self, stage: Stage) -> str:
        """The list of shards this execution processes (the Map's ItemReader reads it)."""
        return join(self.run_uri, stage, "shards.json")

    def shards_folder(self, stage: Stage) -> str:
        return join(self.run_uri, stage, "shards") + "/"

    def shard_manifest(self, stage: Stage, shard: str) -> str:
        return join(self.run_uri, stage, "shards", f"{shard}.json")

    def results_folder(self, stage: Stage) -> str:
        return join(self.run_uri, stage, "results") + "/"

    def results(self, stage: Stage, shard: str) -> str:
        return join(self.run_uri, stage, "results", f"{shard}.parquet")

    def partial(self, stage: Stage, shard: str, part: int) -> str:
        """Flushed partial results of an attempt still in progress (resume point)."""
        return join(self.run_uri, stage, "partial", shard, f"{part:05d}.parquet")

    def partial_folder(self, stage: Stage, shard: str) -> str:
        return join(self.run_uri, stage, "partial", shard) + "/"

    def done(self, stage: Stage, shard: str) -> str:
        """The commit marker: a shard is done only when this exists."""
        return join(self.run_uri, stage, "results", f"{shard}.done.json")

    def crops_folder(self, shard: str) -> str:
        return join(self.run_uri, "crops", shard) + "/"

    @property
    def final_folder(self) -> str:
        return join(self.run_uri, "final") + "/"

    @property
    def detections_parquet(self) -> str:
        return join(self.run_uri, "final", "detections.parquet")

    @property
    def megadetector_json(self) -> str:
        return join(self.run_uri, "final", "megadetector.json")

    @property
    def speciesnet_json(self) -> str:
        """SpeciesNet's predictions file, for runs whose classifier is a SpeciesNet folder."""
        return join(self.run_uri, "final", "speciesnet.json")

    @property
    def summary_json(self) -> str:
        return join(self.run_uri, "final", "summary.json")

    @property
    def failure_json(self) -> str:
        return join(self.run_uri, "final", "failure.json")


def index_folder(output_root: str, input_id: str) -> str:
    """Images processed by earlier runs on one input, one Parquet file per run (incremental runs)."""
    return as_folder(join(output_root, "index", input_id))
