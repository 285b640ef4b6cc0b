"""Freed memory handed back to the system once a burst of big requests is over (see heap.py): a
second after the last big request, when the connections' buffers are gone too.
"""

import asyncio

from anyio import to_thread

from modelyard import heap

QUIET_S = 1.0


async def release() -> None:
    await to_thread.run_sync(heap.trim)


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
