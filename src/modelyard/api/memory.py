"""Freed memory handed back to the system after big requests.

glibc's malloc keeps what a request freed in its arenas (one per thread that allocated), where the
next big request can reuse it but nothing else can: after a burst of large bodies, a process keeps
its peak size. `malloc_trim(0)` returns the free pages of every arena. Elsewhere than glibc
(musl, macOS) this does nothing.
"""

import ctypes
import ctypes.util
from functools import cache

from anyio import to_thread


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
