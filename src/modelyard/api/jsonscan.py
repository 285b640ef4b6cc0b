"""A JSON text's shape read without decoding it: how deep it nests, how many records it holds, and
how many values at most.

Decoders materialise a body before any limit can be checked, and the standard library's and
msgspec's recurse once per level (200,000 nested arrays end in RecursionError). This reads the bytes
as numpy arrays, a block at a time, so it costs a few milliseconds per megabyte and a bounded
amount of memory, whatever the text holds. It does not validate: a text that is not JSON gets
numbers that mean little, and the decoder that follows refuses it.
"""

from dataclasses import dataclass

import numpy as np

BLOCK = 1 << 20
OPENERS, CLOSERS, COMMA = b"[{", b"]}", ord(",")
_KIND = np.zeros(256, np.int8)
"""What each byte does to the depth outside strings: +1 opens, -1 closes, 2 marks a quote,
3 a backslash, 4 a comma; 0 is anything else."""
for byte in OPENERS:
    _KIND[byte] = 1
for byte in CLOSERS:
    _KIND[byte] = -1
_KIND[ord('"')], _KIND[ord("\\")], _KIND[COMMA] = 2, 3, 4


@dataclass
class Shape:
    depth: int
    """The deepest nesting: 0 for a number, 1 for [1, 2], 2 for [[1]]."""
    records: int
    """Arrays and objects two levels in: the records of {"instances": [{...}, [...]]}."""
    values: int
    """An upper bound of the values it holds, at every depth: commas, plus one per array or object,
    plus one."""


def shape(text: bytes | memoryview, block_size: int = BLOCK) -> Shape:
    data = np.frombuffer(text, np.uint8)
    depth = deepest = records = commas = openers = 0
    in_string, escaped = False, False
    for start in range(0, len(data), block_size):
        block = data[start : start + block_size]
        kinds = _KIND[block]
        if escaped:  # the block's first byte is escaped by a backslash at the end of the last one
            kinds[0] = 0
        where = np.flatnonzero(kinds)
        kind = kinds[where]
        quotes = kind == 2
        if np.any(kind == 3):
            quotes &= ~_escaped_quotes(kinds == 3, where, quotes)
        # a byte is outside strings when an even number of real quotes (this one excluded) precede it
        before = np.cumsum(quotes) - quotes + in_string
        outside = (before % 2 == 0) & ~quotes
        steps = np.where(outside & (np.abs(kind) == 1), kind, 0)
        depths = depth + np.cumsum(steps, dtype=np.int64)
        if len(depths):
            deepest = max(deepest, int(depths.max()))
            opened = steps == 1
            openers += int(np.count_nonzero(opened))
            records += int(np.count_nonzero(opened & (depths == 3)))
            commas += int(np.count_nonzero(outside & (kind == 4)))
            depth = int(depths[-1])
        in_string = bool((in_string + int(np.count_nonzero(quotes))) % 2)
        escaped = _ends_escaping(kinds == 3)
    return Shape(deepest, records, commas + openers + 1)


def _escaped_quotes(backslashes: np.ndarray, where: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Which of the quotes follow an odd run of backslashes (those not escaped themselves)."""
    at = where[quotes]
    starts = backslashes & ~np.concatenate(([False], backslashes[:-1]))
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(backslashes)), 0))
    before = at - 1
    preceded = (before >= 0) & backslashes[np.maximum(before, 0)]
    run = np.where(preceded, before - run_start[np.maximum(before, 0)] + 1, 0)
    escaped = np.zeros(len(where), bool)
    escaped[np.flatnonzero(quotes)] = run % 2 == 1
    return escaped


def _ends_escaping(backslashes: np.ndarray) -> bool:
    """Whether the block ends in an odd run of backslashes, which escapes the next block's first byte."""
    if len(backslashes) == 0 or not backslashes[-1]:
        return False
    others = np.flatnonzero(~backslashes)
    run = len(backslashes) - (int(others[-1]) + 1 if len(others) else 0)
    return run % 2 == 1
