"""Text for a person at a terminal: lines that fit its width, colour where it is a terminal.

Built on ``rich`` (its ``Console`` knows whether it writes to a terminal, honours ``NO_COLOR``, and measures
text in terminal cells, so a CJK name or an emoji counts as the two columns it takes). Every line is cut to the
width with a visible ``…``; nothing wraps. Written to a pipe or a file, lines are not cut unless a width is
given (``--width``): ``grep`` gets whole lines.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import zlib
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Final, TextIO, TypeVar

from rich.console import Console
from rich.text import Text

__all__ = ["ERROR", "FINDING", "SLOW", "Screen", "fit", "progress", "service_style", "status"]

ERROR: Final = "bold red"
FINDING: Final = "yellow"
SLOW: Final = "bold"
_SERVICE_STYLES: Final = ("cyan", "magenta", "green", "blue", "bright_cyan", "bright_magenta", "bright_green")
_UNLIMITED: Final = 1_000_000
_PROGRESS_FROM: Final = 50
"""Items of work from which a bar is worth showing."""

T = TypeVar("T")


def service_style(service: str | None) -> str:
    """One colour per service, the same for the same name in every run."""
    if not service:
        return "dim"
    return _SERVICE_STYLES[zlib.crc32(service.encode("utf-8", "replace")) % len(_SERVICE_STYLES)]


class Screen:
    """Where the commands' text goes.

    Args:
        width: columns to fit; ``None``: the terminal's width on a terminal, no limit elsewhere.
        file: the stream (standard output by default).
    """

    def __init__(self, width: int | None = None, *, file: TextIO | None = None) -> None:
        stream = file if file is not None else sys.stdout
        tty = _isatty(stream)
        if width is None and tty:
            width = shutil.get_terminal_size().columns
        self.width = width
        self._console = _Console(
            file=stream,
            width=width or _UNLIMITED,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=False,
            force_terminal=tty,
        )

    @property
    def colour(self) -> bool:
        """Whether lines are coloured: a terminal, and ``NO_COLOR`` unset."""
        return self._console.is_terminal and not self._console.no_color and self._console.color_system is not None

    def line(self, text: Text | str = "") -> None:
        """Prints one line, cut to the width with ``…``."""
        # Without colour, no style at all: NO_COLOR users and pipes get no escape sequence, bold included.
        shown = Text(text if isinstance(text, str) else text.plain if not self.colour else "")
        if self.colour and not isinstance(text, str):
            shown = text.copy()
        if self.width is not None and shown.cell_len > self.width:
            shown.truncate(self.width, overflow="ellipsis")
        self._console.print(shown, no_wrap=True, overflow="ellipsis", crop=False)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich exits with status 1 here; the command's main ends quietly with 0 (the reader had what it wanted).
        raise BrokenPipeError


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream
        return False


def fit(text: str, cells: int) -> str:
    """``text`` cut to ``cells`` terminal cells, ending in ``…`` when cut."""
    shown = Text(text)
    if shown.cell_len <= cells:
        return text
    shown.truncate(max(cells, 1), overflow="ellipsis")
    return shown.plain


def progress(items: Sequence[T], description: str) -> Iterable[T]:
    """``items``, with a progress bar on standard error while they are worked through, when standard error is a
    terminal and they are many; the bar is gone once done. Elsewhere, just ``items``."""
    if len(items) < _PROGRESS_FROM or not _isatty(sys.stderr):
        return items
    return _tracked(items, description)


def _tracked(items: Sequence[T], description: str) -> Iterator[T]:
    from rich.progress import track

    yield from track(items, description=description, console=_Console(stderr=True), transient=True)


@contextlib.contextmanager
def status(text: str) -> Generator[None, None, None]:
    """A spinner with ``text`` on standard error while the block runs, when standard error is a terminal."""
    if not _isatty(sys.stderr):
        yield
        return
    with _Console(stderr=True).status(text):
        yield
