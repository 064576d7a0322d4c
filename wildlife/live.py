"""What ``wildlife run`` shows while a local run goes on: its states, shards, images per second and time left."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from wildlife.text import duration


class LiveView:
    """States as they are entered and left, then shards, images per second and time left.

    On a terminal a rich progress bar follows the detection shards; otherwise (a pipe, CI, a log
    file) plain lines, one per change, so the output reads well in a log.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = 0
        self.entered: dict[str, datetime] = {}
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

    def update(self, snapshot: Any) -> None:
        # A Map's counts are shown before the line that says it was left, so its last count comes first.
        lines = {state: self._map_line(snapshot, state, counts) for state, counts in snapshot.maps.items()}
        for event in snapshot.events[self.shown :]:
            if event.kind == "entered":
                self.entered[event.name] = event.at
                self.print(f"→ {event.name}")
            else:
                if event.name in lines:
                    self._show(event.name, *lines.pop(event.name))
                began = self.entered.get(event.name)
                took = f" ({duration((event.at - began).total_seconds())})" if began else ""
                self.print(f"✓ {event.name}{took}")
        self.shown = len(snapshot.events)
        for state, line in lines.items():
            self._show(state, *line)

    def _map_line(self, snapshot: Any, state: str, counts: Any) -> tuple[str, str, tuple[int, ...], Any]:
        rate = ""
        if state == "DetectShards" and snapshot.images_per_second:
            rate = f"{snapshot.images_per_second:.1f} images/s"
            if snapshot.eta_s is not None and snapshot.images_done < (snapshot.images_total or 0):
                rate += f", about {duration(snapshot.eta_s)} left"
        failed = f", {counts.failed} failed" if counts.failed else ""
        line = f"{state}: {counts.done}/{counts.total} shards{failed}"
        if state == "DetectShards" and snapshot.images_total is not None:
            line += f", {snapshot.images_done}/{snapshot.images_total} images"
        # One plain line per change of the counts (not of the rate, which changes every poll).
        return line, rate, (counts.done, counts.total, counts.failed, snapshot.images_done), counts

    def _show(self, state: str, line: str, rate: str, key: tuple[int, ...], counts: Any) -> None:
        if self.progress is not None:
            if state not in self.tasks:
                self.tasks[state] = self.progress.add_task(f"{state} shards", total=counts.total, rate="")
            images = line.split(" shards", 1)[1].lstrip(", ")
            detail = " · ".join(part for part in (images, rate) if part)
            self.progress.update(self.tasks[state], completed=counts.done, total=counts.total, rate=detail)
        elif self.last_counts.get(state) != key:
            self.last_counts[state] = key
            self.print(f"  {line}{' · ' + rate if rate else ''}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
