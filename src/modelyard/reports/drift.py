"""How far a run's data has moved from the reference: the population stability index (PSI).

    PSI = sum over bins of (run share - reference share) * ln(run share / reference share)

A share of 0 (an empty bin) would make it infinite, so each share is floored at EMPTY_SHARE (1e-4)
on either side, the usual practice: a bin empty on both sides adds nothing, one empty on one side
adds a large but finite amount. The usual reading: under 0.1 stable, 0.1 to 0.25 a moderate shift
worth a look, over 0.25 a major one.
"""

import math
from collections.abc import Sequence

import numpy as np

EMPTY_SHARE = 1e-4
MODERATE = 0.1
MAJOR = 0.25


def psi(reference: Sequence[int], run: Sequence[int]) -> float | None:
    """None when the run has no rows to compare."""
    expected, actual = np.asarray(reference, dtype=np.float64), np.asarray(run, dtype=np.float64)
    if not actual.sum() or not expected.sum():
        return None
    e = np.maximum(expected / expected.sum(), EMPTY_SHARE)
    a = np.maximum(actual / actual.sum(), EMPTY_SHARE)
    value = float(np.sum((a - e) * np.log(a / e)))
    return round(value, 6) if math.isfinite(value) else None


def status(value: float | None) -> str:
    if value is None:
        return "no rows"
    return "major" if value > MAJOR else "moderate" if value > MODERATE else "stable"
