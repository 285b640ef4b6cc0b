"""Freed memory handed back to the system.

glibc's malloc keeps what a process freed in its arenas (one per thread that allocated), where the
next allocation can reuse it but no other process can: after loading a model (its artifact's bytes,
read whole to check them) or a burst of large request bodies, a process keeps its peak size.
`malloc_trim(0)` returns the free pages of every arena, in milliseconds on a big heap. Elsewhere than
glibc (musl, macOS) `trim` does nothing.
"""

import ctypes
import ctypes.util
from functools import cache


@cache
def _malloc_trim() -> "ctypes._NamedFuncPointer | None":
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def trim() -> None:
    malloc_trim = _malloc_trim()
    if malloc_trim is not None:
        malloc_trim(0)  # ctypes lets go of the GIL meanwhile
