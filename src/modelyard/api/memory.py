"""Freed memory handed back to the system after big requests.

glibc's malloc keeps what a request freed in its arenas (one per thread that allocated), where the
next big request can reuse it but nothing else can: after a burst of large bodies, a process keeps
its peak size. `malloc_trim(0)` returns the free pages of every arena. It runs once a burst is over,
a second after the last big request, when the connections' buffers are gone too. Elsewhere than
glibc (musl, macOS) this does nothing.
"""

import asyncio
import ctypes
import ctypes.util
from functools import cache

from anyio import to_thread

QUIET_S = 1.0


@cache
def _malloc_trim() -> "ctypes._NamedFuncPointer | None":
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


async def release() -> None:
    trim = _malloc_trim()
    if trim is not None:
        await to_thread.run_sync(trim, 0)  # milliseconds on a big heap; ctypes lets go of the GIL


class AfterBursts:
    """Calls `release` once no big request has ended for QUIET_S seconds."""

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()  # referenced until done, as asyncio asks

    def big_request_ended(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(QUIET_S, self._release)

    def _release(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(release())
        self._running.add(task)
        task.add_done_callback(self._running.discard)
