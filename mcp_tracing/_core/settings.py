"""Reading mcp_tracing's settings from the environment, one way everywhere.

Every ``MCP_TRACING_*`` variable is read through these, so each kind of value accepts the same spellings and a
bad value is handled the same way: it is ignored with one warning (per variable and value) and the default
holds. Nothing here raises: a setting must never stop the traced
program. Function arguments, where an API takes one, win over the environment and are checked strictly by the
caller (a ``ValueError`` there).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Final, TypeVar

__all__ = ["FALSE", "TRUE", "choice", "flag", "number", "warn_once"]

_logger = logging.getLogger(__name__)

TRUE: Final = frozenset({"1", "true", "yes", "on"})
FALSE: Final = frozenset({"0", "false", "no", "off"})

N = TypeVar("N", int, float)

_warned: set[str] = set()


def warn_once(logger: logging.Logger, key: str, message: str, *args: object) -> None:
    """Logs ``message`` as a warning on ``logger`` the first time ``key`` is seen in this process."""
    if key in _warned:
        return
    _warned.add(key)
    logger.warning(message, *args)


def flag(name: str, *, default: bool = False) -> bool:
    """``$name`` as a switch: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off`` (any case);
    unset or empty is ``default``, anything else is warned about once and is ``default``."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    warn_once(_logger, f"{name}={raw}", "ignoring %s=%r: not one of 1/true/yes/on or 0/false/no/off", name, raw)
    return default


def number(
    name: str,
    default: N,
    *,
    parse: Callable[[str], N],
    valid: Callable[[N], bool] = lambda value: value > 0,
    expected: str = "a positive number",
) -> N:
    """``$name`` read by ``parse``; unset or empty is ``default``, a value ``parse`` refuses (``ValueError``), that
    is not finite or that ``valid`` rejects is warned about once (saying it should be ``expected``) and is
    ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
        if math.isfinite(value) and valid(value):
            return value
    except (ValueError, OverflowError):
        pass
    warn_once(_logger, f"{name}={raw}", "ignoring %s=%r: not %s; using %s", name, raw, expected, default)
    return default


def choice(name: str, choices: tuple[str, ...]) -> str:
    """``$name`` as one of ``choices`` (any case); unset or empty is the first choice, the default, and
    anything else is warned about once and is the default."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw or raw in choices:
        return raw or choices[0]
    warn_once(_logger, f"{name}={raw}", "ignoring %s=%r: not one of %s", name, raw, "/".join(choices))
    return choices[0]
