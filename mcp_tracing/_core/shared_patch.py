"""A patch shared by several users: installed by the first, undone by the last, each use counted."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["SharedPatch"]


class SharedPatch:
    """``install`` runs when the first use is acquired, ``uninstall`` when the last is released.

    Args:
        install: applies the patch (``wrapt.wrap_function_wrapper``, say).
        uninstall: undoes it (``opentelemetry.instrumentation.utils.unwrap``).
    """

    def __init__(self, install: Callable[[], object], uninstall: Callable[[], object]) -> None:
        self._install = install
        self._uninstall = uninstall
        self._lock = threading.Lock()
        self.users = 0

    def acquire(self) -> Callable[[], None]:
        """Counts one use (installing the patch if it is the first); returns the call that releases it, which
        does something only once."""
        with self._lock:
            if self.users == 0:
                self._install()
            self.users += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self.users -= 1
                if self.users == 0:
                    self._uninstall()

        return release
