"""Text a peer chose, made safe to print on a terminal.

Span names, attribute values and service names come from MCP peers; printed raw, one tool name such as
``x\\x1b]0;PWNED\\x07\\x1b[2J`` retitles the terminal and clears the screen, and bidi overrides reorder what is shown.
``terminal_safe`` shows every C0 and C1 control character, DEL and the bidi controls as a visible escape
(``\\x1b``, ``\\u202e``); everything else is left as it is. JSON output is never changed (it escapes controls).
"""

from __future__ import annotations

from typing import Final

__all__ = ["counted", "terminal_safe"]

_BIDI: Final = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_ESCAPES: Final[dict[int, str]] = {
    **{code: f"\\x{code:02x}" for code in (*range(0x00, 0x20), *range(0x7F, 0xA0))},
    **{code: f"\\u{code:04x}" for code in _BIDI},
}


def terminal_safe(text: str) -> str:
    """``text`` with control and bidi characters shown as escapes (``\\x1b``, ``\\u202e``)."""
    return text.translate(_ESCAPES)


def counted(count: int, word: str) -> str:
    """``1 trace``, ``2 traces``, ``1 process``, ``3 processes``: a count with its noun in the right number."""
    return f"{count:,} {word if count == 1 else word + ('es' if word.endswith('s') else 's')}"
