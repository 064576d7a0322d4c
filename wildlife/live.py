"""What ``wildlife run`` shows while a local run goes on: its states, shards, images per second and time left."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO

from wildlife.progress import DETECTION, MapStage
from wildlife.text import duration

if TYPE_CHECKING:
    from wildlife.engine.watch import Snapshot


class LiveView:
    """States as they are entered and left, then shards, images per second and time left.

    On a terminal a rich progress bar follows the detection shards; otherwise (a pipe, CI, a log
    file) plain lines, one per change, so the output reads well in a log.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = 0
        self.last_counts: dict[str, tuple[int, ...]] = {}
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        if stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            # No stdout/stderr redirection: the engine routes output by thread itself.
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=Console(file=stream),
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.progress.start()

    def print(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def update(self, snapshot: Snapshot) -> None:
        progress = snapshot.progress
        # A Map's counts are shown before the line that says it was left, so its last count comes first.
        lines = {state: self._map_line(snapshot, stage) for state, stage in progress.maps.items()}
        for step in progress.steps[self.shown :]:
            if step.kind == "entered":
                self.print(f"→ {step.state}")
            elif step.kind == "exited":
                if step.state in lines:
                    self._show(step.state, *lines.pop(step.state))
                took = "" if step.seconds is None else f" ({duration(step.seconds)})"
                self.print(f"✓ {step.state}{took}{'' if step.plan is None else f': {step.plan}'}")
            elif step.kind == "failed":
                if step.state in lines:
                    self._show(step.state, *lines.pop(step.state))
                self.print(f"✗ {step.state} failed: {step.error or 'error'}")
        self.shown = len(progress.steps)
        for state, line in lines.items():
            self._show(state, *line)

    def _map_line(self, snapshot: Snapshot, stage: MapStage) -> tuple[str, str, str, tuple[int, ...], MapStage]:
        """The Map's plain line, its counts beyond done/total (the progress bar's text), its rate, and
        what must change for the plain line to be printed again."""
        detection = stage.state == DETECTION.map_state
        rate = ""
        if detection and snapshot.images_per_second:
            rate = f"{snapshot.images_per_second:.1f} images/s"
            if snapshot.eta_s is not None and snapshot.images_done < (snapshot.images_total or 0):
                rate += f", about {duration(snapshot.eta_s)} left"
        images = snapshot.images_done if detection else 0
        counts = [f"{stage.failed} failed" if stage.failed else ""]
        if detection and snapshot.images_total is not None:
            counts.append(f"{images}/{snapshot.images_total} images")
        detail = ", ".join(part for part in counts if part)
        total = "?" if stage.total is None else stage.total
        line = f"{stage.state}: {stage.done}/{total} {stage.parts}{', ' + detail if detail else ''}"
        # One plain line per change of the counts (not of the rate, which changes every poll).
        return line, detail, rate, (stage.done, stage.total or 0, stage.failed, images), stage

    def _show(self, state: str, line: str, detail: str, rate: str, key: tuple[int, ...], stage: MapStage) -> None:
        if self.progress is not None:
            if state not in self.tasks:
                self.tasks[state] = self.progress.add_task(f"{state} {stage.parts}", total=stage.total, rate="")
            text = " · ".join(part for part in (detail, rate) if part)
            self.progress.update(self.tasks[state], completed=stage.done, total=stage.total, rate=text)
        elif self.last_counts.get(state) != key:
            self.last_counts[state] = key
            self.print(f"  {line}{' · ' + rate if rate else ''}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
