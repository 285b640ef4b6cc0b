"""Everything Redis holds, as text, for tests that look for what must never be stored there."""

import contextlib
import zlib
from typing import Any


def _unpacked(value: Any) -> str:
    """RQ keeps a job's data zlib-compressed: read it as it is stored and unpacked."""
    values = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list | set) else [value]
    )
    unpacked = []
    for item in values:
        with contextlib.suppress(zlib.error, TypeError):
            unpacked.append(zlib.decompress(item).decode(errors="replace"))
    return " ".join(unpacked)


def redis_texts(connection: Any) -> list[str]:
    """Each key of the database with its value, raw and unpacked."""
    texts = []
    for key in connection.scan_iter(count=1000):
        kind = connection.type(key).decode()
        value = {
            "string": lambda k: connection.get(k),
            "hash": lambda k: connection.hgetall(k),
            "list": lambda k: connection.lrange(k, 0, -1),
            "set": lambda k: connection.smembers(k),
            "zset": lambda k: connection.zrange(k, 0, -1),
        }.get(kind, lambda k: b"")(key)
        texts.append(repr(key) + repr(value) + _unpacked(value))
    return texts
