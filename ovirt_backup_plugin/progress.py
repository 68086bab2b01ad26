"""Progress of long operations (backup, restore, prune, check), shown only in a terminal.

The core logic takes a :class:`Progress` (default :data:`NO_PROGRESS`: nothing is shown,
nothing is asked) and reports through it; the command line decides whether to show a bar
(:func:`for_terminal`: only when stderr is a terminal, so a journal or a pipe stays clean)::

    task = progress.task("restore", total=len(items), unit="VM")
    try:
        for item in items:
            ...
            task.advance()
    finally:
        task.close()

or ``with progress.task(...) as task:``, or ``for item in counted(items, task):`` (one step
after each item's loop body, closed when the loop ends or is left). ``total`` may be None (unknown yet: the bar shows
done and rate) and be set later with :meth:`Task.set_total`. Lines printed while a bar is
shown go through ``progress.wrap(echo)`` so they do not tear it.

The bar is tqdm's (done/total, rate, elapsed and ETA, or done and rate without a total):
one small pure-Python package without dependencies, that redraws at most a few times a
second and writes to stderr, away from the command's output on stdout.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable, Iterator, List, Optional, TextIO, TypeVar

__all__ = ["Progress", "Task", "NO_PROGRESS", "NO_TASK", "TerminalProgress", "for_terminal",
           "counted"]

Echo = Callable[[str], None]
T = TypeVar("T")


class Task:
    """One operation's counter. This one shows nothing."""

    def advance(self, n: int = 1) -> None:
        """``n`` more items done."""

    def set_total(self, total: Optional[int]) -> None:
        """The number of items, once known (None: unknown)."""

    def close(self) -> None:
        """The operation ended (also when it failed)."""

    def __enter__(self) -> "Task":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Progress:
    """Where operations report progress. This one shows nothing (the default)."""

    #: Whether anything is shown: callers skip work done only for the display (counting).
    active = False

    def task(self, what: str, *, total: Optional[int] = None, unit: str = "item") -> Task:
        return NO_TASK

    def wrap(self, echo: Echo) -> Echo:
        """``echo`` made safe to call while a bar is shown."""
        return echo


NO_TASK = Task()
NO_PROGRESS = Progress()


class _Bar(Task):
    def __init__(self, bar: Any, owner: "TerminalProgress"):
        self.bar, self.owner = bar, owner

    def advance(self, n: int = 1) -> None:
        if self.bar.total is not None and self.bar.n + n > self.bar.total:
            self.bar.total = None            # more than announced: show done and rate
        self.bar.update(n)

    def set_total(self, total: Optional[int]) -> None:
        self.bar.total = total
        self.bar.refresh()

    def close(self) -> None:
        if self in self.owner.open:
            if self.bar.total is None or self.bar.n < self.bar.total:
                self.bar.total = self.bar.n      # it ends here: the final line says so
            self.bar.close()
            self.owner.open.remove(self)


class TerminalProgress(Progress):
    """tqdm bars on ``stream`` (a terminal)."""

    active = True

    def __init__(self, stream: TextIO):
        from tqdm import tqdm  # here: only a terminal shows bars (6 ms for the others)

        self.tqdm = tqdm
        self.stream = stream
        self.open: List[_Bar] = []

    def task(self, what: str, *, total: Optional[int] = None, unit: str = "item") -> Task:
        sized = _columns(self.stream) > 0         # a terminal that reports no size: 80
        bar = self.tqdm(total=total, desc=what, unit=f" {unit}", file=self.stream,
                   dynamic_ncols=sized, ncols=None if sized else 80, mininterval=0.2,
                   smoothing=0.1, leave=True)
        task = _Bar(bar, self)
        self.open.append(task)
        return task

    def wrap(self, echo: Echo) -> Echo:
        def wrapped(text: str) -> None:
            if not self.open:
                echo(text)
                return
            with self.tqdm.external_write_mode(file=self.stream):
                echo(text)
        return wrapped


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def for_terminal(stream: Optional[TextIO] = None) -> Progress:
    """Bars on ``stream`` (stderr) when it is a terminal; else :data:`NO_PROGRESS`."""
    stream = stream if stream is not None else sys.stderr
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return TerminalProgress(stream) if interactive else NO_PROGRESS



def counted(items: Iterable[T], task: Task) -> Iterator[T]:
    """``items``, advancing ``task`` once each item's loop body is done (``continue``
    included); the task is closed when the loop ends or is left."""
    try:
        for item in items:
            yield item
            task.advance()
    finally:
        task.close()
