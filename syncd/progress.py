"""A run's progress on a terminal: the estimate up front, then a bar of writes done / planned.

The ETA is the writes left at the pacer's rate (Identity Center's quota sets the pace, not how
fast the first requests happened to go), so it is right from the first second and slows down
when 429s make the pacer slow down. Per-change lines stay in the JSON logs, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from syncd.changes import Change
from syncd.plan import Plan
from syncd.plan_view import estimate


def _clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class PacedEta(ProgressColumn):
    """``ETA 2:36``: the writes left divided by the pacer's current rate."""

    def __init__(self, rate: Callable[[], float]) -> None:
        super().__init__()
        self._rate = rate

    def render(self, task: Task) -> Text:
        """The time left for ``task`` at the pacer's rate."""
        left = (task.total or 0) - task.completed
        rate = self._rate()
        return Text(f"ETA {_clock(left / rate) if rate > 0 else '?'}", style="cyan")


class TerminalProgress:
    """The engine's :class:`~syncd.engine.Progress` for a terminal, as a context manager.

    ``rate`` gives the pacer's current requests per second.
    """

    def __init__(self, console: Console, rate: Callable[[], float]) -> None:
        self.console = console
        self.rate = rate
        self.failed = 0
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("writes"),
            PacedEta(rate),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._total = 0

    def planned(self, plan: Plan) -> None:
        """Say the estimate and start the bar (nothing to show for a run without writes).

        Called again (writes sent during the read, then the rest), it adds to the bar's total.
        """
        writes = len(plan.writes)
        if not writes:
            return
        self._total += writes
        if self._task is not None:
            self._bar.update(self._task, total=self._total)
            return
        self.console.print(estimate(writes, self.rate()), highlight=False)
        self._task = self._bar.add_task("applying", total=writes)
        self._bar.start()

    def advance(self, change: Change, *, ok: bool) -> None:
        """One write more done (failed ones too: they are not pending any more)."""
        if not ok:
            self.failed += 1
        if self._task is not None:
            self._bar.advance(self._task)

    def __enter__(self) -> TerminalProgress:
        """Return the progress itself; the bar starts when the plan is known."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the bar, leaving its last state on the screen."""
        self._bar.stop()
