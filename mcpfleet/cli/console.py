"""What the commands print: verdicts and errors in colour on a terminal, the same words as plain text
when piped or with NO_COLOR (tests and CI logs stay clean), and progress on stderr only on a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from mcpfleet.errors import InputProblem

ERROR = "bold red"
BAD = "red"
GOOD = "green"
WARN = "yellow"
WHERE = "cyan"
FIELD = "bold"

Part = str | tuple[str, str]
"""Plain text, or (text, style) coloured on a terminal."""


def console(stderr: bool = False) -> Console:
    """A console on the current stdout or stderr (made per use: tests swap the streams).

    rich leaves colour out when the stream is not a terminal or TERM is dumb; with NO_COLOR (no-color.org)
    no styling at all is drawn (rich would keep bold). No markup or emoji codes are read from our text,
    and lines are never wrapped (a message keeps its words)."""
    plain = os.environ.get("NO_COLOR", "") != ""
    return Console(
        stderr=stderr,
        color_system=None if plain else "auto",
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )


def styled(*parts: Part) -> Text:
    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(part[0], style=part[1])
        else:
            text.append(part)
    return text


def echo(*parts: Part, err: bool = False) -> None:
    """Print one line made of parts."""
    console(err).print(styled(*parts))


def echo_text(text: Text, err: bool = False) -> None:
    """Print text as it is: its own newlines, no more."""
    console(err).print(text, end="")


def error(message: str) -> None:
    """`error: <message>` on stderr."""
    echo(("error:", ERROR), " ", message, err=True)


def print_problems(problems: Sequence[InputProblem]) -> None:
    """Every input problem on stderr, one a line, as `file:line: field: message`."""
    count = len(problems)
    echo(("error:", ERROR), f" {count} problem{'s' if count != 1 else ''} in the input:", err=True)
    for problem in problems:
        where = problem.file if problem.line is None else f"{problem.file}:{problem.line}"
        parts: list[Part] = ["  ", (f"{where}:", WHERE), " "]
        if problem.field:
            parts += [(f"{problem.field}:", FIELD), " "]
        parts.append(problem.message)
        echo(*parts, err=True)


def interactive() -> bool:
    """Whether stderr is a terminal a person watches: progress is drawn there only."""
    return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"


Update = Callable[..., None]


def _ignore(description: str | None = None, completed: int | None = None) -> None:
    return None


@contextmanager
def progress(description: str, total: int | None = None, *, animate: bool = True) -> Iterator[Update]:
    """A progress line on stderr while a long step runs, erased when it ends; nothing off a terminal.

    Yields update(description=None, completed=None). animate=False draws only on update, with no
    thread of its own: the plan forks helper processes, which is safe only from a single thread."""
    if not interactive():
        yield _ignore
        return
    columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(
        *columns,
        console=console(True),
        transient=True,
        auto_refresh=animate,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        def update(description: str | None = None, completed: int | None = None) -> None:
            bar.update(task, description=description, completed=completed)
            if not animate:
                bar.refresh()

        yield update
