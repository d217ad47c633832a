"""Text for a person at a terminal: lines that fit its width, colour where it is a terminal.

Written here rather than with ``rich``: the MCP SDK switches its own logging to rich's handler whenever rich
is importable, so depending on it would change the stderr of every server this package traces (and rich's
rendering of a 2 MB logged value costs seconds per call). What is needed is small: text measured in terminal
cells (East Asian wide characters count 2, combining marks 0), lines cut with a visible ``…``, a few SGR
colours on a terminal when ``NO_COLOR`` is unset, and a progress line on stderr. Written to a pipe or a file,
lines are not cut unless a width is given (``--width``): ``grep`` gets whole lines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import unicodedata
import zlib
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Final, TextIO, TypeVar

__all__ = [
    "ERROR",
    "FINDING",
    "SLOW",
    "Line",
    "Screen",
    "cell_len",
    "fit",
    "progress",
    "service_style",
    "status",
]

ERROR: Final = "1;31"  # bold red
FINDING: Final = "33"  # yellow
SLOW: Final = "1"  # bold
_SERVICE_STYLES: Final = ("36", "35", "32", "34", "96", "95", "92")
_ELLIPSIS: Final = "…"
_PROGRESS_FROM: Final = 50
"""Items of work from which a progress line is worth showing."""

_T = TypeVar("_T")


def cell_len(text: str) -> int:
    """Terminal cells ``text`` takes: wide and full-width characters 2, combining marks 0, others 1."""
    if text.isascii():
        return len(text)
    cells = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        cells += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return cells


def fit(text: str, cells: int) -> str:
    """``text`` cut to ``cells`` terminal cells, ending in ``…`` when cut."""
    if cell_len(text) <= cells:
        return text
    return _take(text, max(cells, 1) - 1) + _ELLIPSIS


def _take(text: str, cells: int) -> str:
    """The longest start of ``text`` that fits in ``cells`` terminal cells."""
    used = 0
    for index, char in enumerate(text):
        used += cell_len(char)
        if used > cells:
            return text[:index]
    return text


def service_style(service: str | None) -> str:
    """One colour per service, the same for the same name in every run."""
    if not service:
        return "2"  # dim
    return _SERVICE_STYLES[zlib.crc32(service.encode("utf-8", "replace")) % len(_SERVICE_STYLES)]


class Line:
    """A line of text in styled pieces."""

    def __init__(self, text: str = "", style: str = "") -> None:
        self.pieces: list[tuple[str, str]] = [(text, style)] if text else []

    def append(self, text: str, style: str = "") -> Line:
        if text:
            self.pieces.append((text, style))
        return self

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.pieces)

    @property
    def cells(self) -> int:
        return sum(cell_len(text) for text, _ in self.pieces)

    def style_words(self, words: Iterable[tuple[str, str]]) -> Line:
        """The first occurrence of each word in the plain text takes its style (where no other has)."""
        plain = self.plain
        styles = [style for text, style in self.pieces for _ in text]
        for word, style in words:
            at = plain.find(word) if word else -1
            if at >= 0:
                for index in range(at, at + len(word)):
                    styles[index] = styles[index] or style
        self.pieces = []
        for char, style in zip(plain, styles, strict=True):
            if self.pieces and self.pieces[-1][1] == style:
                self.pieces[-1] = (self.pieces[-1][0] + char, style)
            else:
                self.pieces.append((char, style))
        return self

    def cut(self, cells: int) -> Line:
        """This line cut to ``cells`` terminal cells, ending in ``…`` when cut."""
        if self.cells <= cells:
            return self
        out = Line()
        room = max(cells, 1) - 1
        for text, style in self.pieces:
            width = cell_len(text)
            if width <= room:
                out.append(text, style)
                room -= width
                continue
            out.append(_take(text, room), style)
            break
        return out.append(_ELLIPSIS)

    def render(self, colour: bool) -> str:
        if not colour:
            return self.plain
        return "".join(f"\x1b[{style}m{text}\x1b[0m" if style else text for text, style in self.pieces)


class Screen:
    """Where the commands' text goes.

    Args:
        width: columns to fit; ``None``: the terminal's width on a terminal, no limit elsewhere.
        file: the stream (standard output by default).
    """

    def __init__(self, width: int | None = None, *, file: TextIO | None = None) -> None:
        self._file = file if file is not None else sys.stdout
        tty = _isatty(self._file)
        if width is None and tty:
            width = shutil.get_terminal_size().columns
        self.width = width
        self.colour = tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        """Whether lines are coloured: a terminal, ``NO_COLOR`` unset (https://no-color.org), not a dumb one."""

    def line(self, text: Line | str = "") -> None:
        """Prints one line, cut to the width with ``…``."""
        shown = Line(text) if isinstance(text, str) else text
        if self.width is not None:
            shown = shown.cut(self.width)
        self._file.write(shown.render(self.colour) + "\n")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream
        return False


def progress(items: Sequence[_T], description: str) -> Iterable[_T]:
    """``items``, with a progress line on standard error while they are worked through, when standard error is
    a terminal and they are many; the line is cleared once done. Elsewhere, just ``items``."""
    if len(items) < _PROGRESS_FROM or not _isatty(sys.stderr):
        return items
    return _tracked(items, description)


def _tracked(items: Sequence[_T], description: str) -> Iterator[_T]:
    step = max(len(items) // 100, 1)
    try:
        for index, item in enumerate(items):
            if index % step == 0:
                sys.stderr.write(f"\r{description}: {index * 100 // len(items)}%")
                sys.stderr.flush()
            yield item
    finally:
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()


@contextlib.contextmanager
def status(text: str) -> Generator[None, None, None]:
    """``text`` on standard error while the block runs, cleared after, when standard error is a terminal."""
    if not _isatty(sys.stderr):
        yield
        return
    sys.stderr.write(f"{text} ...")
    sys.stderr.flush()
    try:
        yield
    finally:
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()
