"""``wildlife run INPUT --out DIR``: the whole pipeline on this machine, with the local engine.

The same state machine, Lambdas and GPU task as in AWS (``wildlife.engine.local``), on a local
folder (or ``s3://`` input). Settings come from, in increasing priority: the demo models (when no
model is named anywhere), a profile (``--profile``), the command line. ``--resume RUN_ID`` runs a run
again: committed shards are skipped, the rest are done, and the final outputs are written anew.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from wildlife_common import inventory, speciesnet, storage
from wildlife_common.config import changed_results, parse_config
from wildlife_common.errors import ConfigError, PipelineError
from wildlife_common.images import IMAGE_EXTENSIONS, is_image
from wildlife_common.layout import RunLayout
from wildlife_common.records import Stage
from wildlife_common.run_folder import committed_shards

from wildlife import interrupt, version
from wildlife.errors import UsageError
from wildlife.live import LiveView
from wildlife.ops.local_runs import DEFAULT_OUT, resume_command
from wildlife.options import add_setting_options, setting_values
from wildlife.paths import checkout_root, stack_root
from wildlife.profiles import load_profile
from wildlife.summary import summary_lines
from wildlife.text import duration, help_text

# The demo pack, found without importing the engine (its imports, moto and the SAM translator, would
# load into every command, since the CLI imports every command to list them).
DEMO_MODELS = stack_root() / "demo" / "models"
DEMO_IMAGE_SIZE = 320
"""The demo detector was trained at 320 px (demo/build.py) and is run at that size."""
LOCAL_SHARD_SIZE = 200
"""Images per shard of a local run, unless the profile or --shard-size says otherwise. The cloud's 2,000
amortize a container start per job; here the models stay loaded, a shard costs a fraction of a second
more, and it is the unit of progress a Ctrl-C keeps: 200 images take seconds on a GPU and a minute or
two on a CPU (5-25 images/s at 320 px), so an interrupted run loses at most that (profiles/local.yaml)."""

IMAGE_TYPES = ", ".join(sorted(IMAGE_EXTENSIONS))


class RunFailed(PipelineError):
    """The execution ended FAILED (or was stopped); the message is its cause."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the pipeline on this machine (local engine, no AWS account needed)",
        description=help_text(__doc__),
    )
    parser.add_argument(
        "input",
        nargs="?",
        help="a folder of images, one image, s3://bucket/prefix/, or an S3 Inventory report's manifest.json "
        "(not needed with --resume)",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"where run folders go: DIR/runs/<run_id>/ (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--profile", type=Path, help="settings file, e.g. profiles/local.yaml (options override it)")
    add_setting_options(
        parser, "run", models_title="models (default: the demo models; a timm checkpoint's classifier.json is read)"
    )
    settings = parser.add_argument_group("run")
    settings.add_argument("--run-id", help="name of a new run (default: date, time and a random suffix)")
    settings.add_argument(
        "--resume", metavar="RUN_ID", help="run an existing run again: only unfinished shards are done"
    )
    settings.add_argument("--jobs", type=int, default=1, help="GPU jobs at once (default 1: one GPU runs one job best)")
    parser.set_defaults(func=run)


# ------------------------------------------------------------------------------------------------
# The run config from demo defaults, profile and options
# ------------------------------------------------------------------------------------------------


def _sidecar(classifier: str) -> dict[str, Any]:
    """``classifier.json`` beside a local checkpoint: its architecture and labels file (demo/build.py)."""
    if storage.is_s3(classifier):
        return {}
    path = Path(classifier).with_suffix(".json")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    if data.get("arch"):
        found["classifier_arch"] = data["arch"]
    if data.get("labels"):
        found["classifier_labels"] = str((path.parent / data["labels"]).resolve())
    return found


def _demo_models(config: dict[str, Any]) -> None:
    """Fill in the demo pack when neither the profile nor the options name a detector."""
    if not (DEMO_MODELS / "detector.pt").is_file():
        raise UsageError(f"no --detector given and the demo models are missing ({DEMO_MODELS}); see make demo-models")
    config["detector"] = str(DEMO_MODELS / "detector.pt")
    config.setdefault("image_size", DEMO_IMAGE_SIZE)
    if not config.get("detection_only") and not config.get("classifier"):
        config["classifier"] = str(DEMO_MODELS / "classifier.pth")


def _absolute(value: str) -> str:
    return value if storage.is_s3(value) else str(Path(value).expanduser().resolve())


@functools.cache
def _report(uri: str) -> inventory.Inventory:
    """The report an input names, found (its newest, for ``*``) and read once: the input check and the
    real-S3 buckets both need it, and two lookups could even find two reports."""
    return inventory.read(inventory.resolve(uri))


def _check_input(uri: str) -> None:
    """A missing folder, one without images or a file that is no image is the user's mistake: say so
    before starting anything. One image file is an input of one photo (the planner lists just it);
    an S3 Inventory report's manifest.json is checked as the planner reads it."""
    if inventory.is_inventory(uri):
        try:
            _report(uri)
        except PipelineError as error:
            raise UsageError(str(error)) from error
        return
    if storage.is_s3(uri):
        return
    folder = Path(uri)
    if folder.is_file():
        if not is_image(uri):
            raise UsageError(f"{uri} is a file, not an image or a folder of images ({IMAGE_TYPES})")
        return
    if not folder.exists():
        raise UsageError(f"no such folder or image: {uri}")
    if not folder.is_dir():
        raise UsageError(f"{uri} is neither a folder nor an image file")
    if not any(is_image(info.uri) for info in storage.list_files(uri)):
        raise UsageError(f"no images in {uri} (looked for {IMAGE_TYPES})")


def _check_model(key: str, uri: str | None) -> None:
    if uri is None or storage.is_s3(uri):
        return
    path = Path(uri)
    if not path.is_file():
        raise UsageError(f"{key} not found: {uri}")
    if path.stat().st_size == 0:
        raise UsageError(f"{key} is an empty file: {uri}")


def _load_models(config: dict[str, Any]) -> None:
    """Load the run's models as its GPU jobs will, so weights that cannot run are one line before the
    run starts, not a failure of every shard. The jobs run in this process and reuse the loaded models."""
    from wildlife_gpu.classify import load_classifier
    from wildlife_gpu.detect import load_detector
    from wildlife_gpu.models import ModelError

    settings = parse_config(config)
    try:
        load_detector(settings)
        if settings.classify:
            load_classifier(settings)
    except ModelError as error:
        raise UsageError(str(error)) from error


def _prepare_models(config: dict[str, Any], stream: Any) -> None:
    """Load local models before the engine starts (``_load_models``). s3:// models are read inside the
    engine (from moto or the real S3), but their library is imported now all the same: ultralytics
    logs through a handler it makes at import, and the engine points such handlers at the run's logs
    when it starts; made later, inside a job, it would write the image readers' warnings on the screen."""
    if storage.is_s3(config["detector"]):
        from wildlife_gpu.detector import import_ultralytics

        print("loading torch and ultralytics...", file=stream, flush=True)
        import_ultralytics()
        return
    models = [Path(config["detector"]).name]
    if config.get("classifier") and not config.get("detection_only"):
        models.append(Path(config["classifier"]).name)
    print(f"loading the models ({', '.join(models)}) with torch...", file=stream, flush=True)
    _load_models(config)


def _check_out(out: Path) -> None:
    """--out must be a folder this user can write: said in the first second, before any model loads."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    missing = [folder for folder in (out, *out.parents) if not folder.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".wildlife-write-check-"):
            pass
    except OSError as error:
        raise UsageError(f"cannot write to --out {out}: {error.strerror or error}") from error
    finally:
        for folder in missing:  # innermost first: a check leaves nothing behind; the run makes them
            with contextlib.suppress(OSError):
                folder.rmdir()


def _check_existing_run(config: dict[str, Any], resuming: bool) -> None:
    """A run id that exists already is that run: another input or other result settings are refused
    here, before the engine starts, so the earlier run is left as it was."""
    run_json = Path(RunLayout.for_run(config["output"], config["run_id"]).run_json)
    if not run_json.is_file():
        return
    try:
        stored = json.loads(run_json.read_text())["config"]
    except (OSError, ValueError, KeyError):
        return  # not ours to judge: the planner says what is wrong with it
    wanted = parse_config(config)
    changed = changed_results(stored, wanted)
    if not changed:
        return
    how = "--resume it as it was" if resuming else "give another --run-id, or --resume it as it was"
    if changed[0] == "input":
        raise UsageError(f"run {wanted.run_id} exists already, for input {stored['input']}; {how}")
    key = changed[0]
    raise UsageError(f"run {wanted.run_id} was made with {key}={stored[key]!r}; {how}")


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run config (execution input) from demo defaults, the profile, the stored run and the options."""
    out = Path(args.out).expanduser().resolve()
    _check_out(out)
    config: dict[str, Any] = {}
    if args.resume:
        run_json = out / "runs" / args.resume / "run.json"
        if not run_json.is_file():
            raise UsageError(f"no run {args.resume!r} in {out / 'runs'} to resume")
        config = dict(json.loads(run_json.read_text())["config"])
    if args.profile is not None:
        try:
            config.update(load_profile(args.profile))
        except ConfigError as error:
            raise UsageError(str(error)) from error
    options = setting_values(args, "run")
    if options.get("detector") and not options.get("classifier"):
        # A detector named on the command line is a new model: the profile's classifier was paired with another.
        for key in ("classifier", "classifier_arch", "classifier_labels"):
            if not args.resume:
                config.pop(key, None)
    config.update(options)
    config.setdefault("shard_size", LOCAL_SHARD_SIZE)
    if args.input is not None:
        config["input"] = _absolute(args.input)
    if not config.get("input"):
        raise UsageError("give INPUT (a folder or s3:// URI), or --resume RUN_ID")
    if not config.get("detector") and config.get("classifier"):
        try:  # a SpeciesNet folder alone brings its detector (MegaDetector v5a), as SpeciesNet runs it
            config.update(speciesnet.with_folder_detector({**config, "classifier": _absolute(config["classifier"])}))
        except ConfigError as error:
            raise UsageError(str(error)) from error
    if not config.get("detector"):
        _demo_models(config)
    for key in ("detector", "classifier", "classifier_labels"):
        if config.get(key):
            config[key] = _absolute(config[key])
    speciesnet_folder = bool(config.get("classifier")) and speciesnet.is_speciesnet_folder(config["classifier"])
    if config.get("classifier") and not config.get("classifier_arch") and not speciesnet_folder:
        for key, value in _sidecar(config["classifier"]).items():
            config.setdefault(key, value)
        if not config.get("classifier_arch"):
            raise UsageError("--classifier needs --classifier-arch (there is no classifier.json beside it)")
    config["output"] = str(out)
    config["run_id"] = args.resume or args.run_id or f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    try:
        parse_config(config)
        _check_existing_run(config, resuming=bool(args.resume))
    except ConfigError as error:
        raise UsageError(str(error)) from error
    _check_input(config["input"])
    _check_model("detector weights", config["detector"])
    if config.get("classifier") and not config.get("detection_only") and not speciesnet_folder:
        _check_model("classifier checkpoint", config["classifier"])
        _check_model("classifier labels", config.get("classifier_labels"))
    return config


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------


def _s3_buckets(config: dict[str, Any]) -> set[str]:
    """Buckets of the input and models: read from the real S3, while the engine's own calls stay in moto."""
    uris = [config.get(key) for key in ("input", "detector", "classifier", "classifier_labels")]
    if isinstance(config.get("input"), str) and inventory.is_inventory(config["input"]):
        # Its photos' bucket, and the one its data files are in.
        report = _report(config["input"])
        uris += [report.root, *report.files]
    return {storage.split_s3(uri)[0] for uri in uris if isinstance(uri, str) and storage.is_s3(uri)}


def _interrupted(layout: RunLayout, run_id: str, out: str) -> str:
    """What an interrupt says: how far the run got and how to go on (called when Ctrl-C comes)."""
    if not Path(layout.run_json).is_file():
        return f"interrupted before run {run_id} was planned: nothing to resume, start it again"
    # run.json's shard count and the markers' names: a signal handler reads no plan and no marker.
    shards = json.loads(Path(layout.run_json).read_text()).get("shards")
    planned = f" of {shards}" if isinstance(shards, int) else ""
    done = len(committed_shards(layout, Stage.DETECTION))
    return (
        f"interrupted: {done}{planned} detection shards are committed and kept. "
        f"Resume with: {resume_command(out, run_id)}"
    )


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    config = build_config(args)
    run_id = config["run_id"]
    layout = RunLayout.for_run(config["output"], run_id)
    run_folder = Path(layout.run_uri)
    interrupt.say(lambda: _interrupted(layout, run_id, args.out))
    stream = sys.stderr
    # Loading torch, the model libraries and the engine takes seconds to tens of seconds before the
    # first shard: each step says what it is doing, so a quiet terminal never looks like a hang.
    print(f"run {run_id}: {config['input']} → {run_folder}/", file=stream, flush=True)
    # Results name the commit they came from, as an image built by deploy-image does.
    checkout = checkout_root()
    if not os.environ.get(version.ENV) and checkout and (commit := version.checkout_commit(checkout)):
        os.environ[version.ENV] = commit
    _prepare_models(config, stream)
    print("starting the local engine (state machine, Lambdas, Batch queue)...", file=stream, flush=True)
    from wildlife.engine.local import LocalEngine

    view = LiveView(stream)
    started = time.monotonic()
    try:
        with LocalEngine(
            log_dir=run_folder / "logs", batch_concurrency=args.jobs, real_s3_buckets=_s3_buckets(config)
        ) as engine:
            result = engine.run(config, on_update=view.update)
    finally:
        view.close()
    seconds = time.monotonic() - started
    if not result.succeeded:
        cause = (result.cause or result.error or result.status).strip().replace("\n", " ")
        failed_jobs = result.failed_jobs()
        if failed_jobs:
            first = failed_jobs[0]
            cause += f" First failed job: {first.job_name}: {first.error} (log: {first.log})"
        raise RunFailed(f"run {run_id} {result.status.lower()}: {cause}")
    summary = json.loads(Path(layout.summary_json).read_text())
    print(f"run {run_id}: {summary.get('status')} in {duration(seconds)}")
    for line in summary_lines(summary):
        print(line)
    print("outputs")
    for name in ("detections.parquet", "megadetector.json", "speciesnet.json", "summary.json"):
        if name != "speciesnet.json" or "speciesnet" in summary.get("outputs", {}):
            print(f"  {Path(layout.final_folder) / name}")
    return 0
