"""The uncertainty of quality figures: pure functions, no I/O.

- ``bootstrap_ci``: percentile bootstrap of the mean; ``paired_bootstrap_ci`` resamples
  the same tasks for both systems, so a difference's interval reflects the pairing;
- ``percentile``: the usage log's own (:func:`covey_usage.queries.percentile`), so the eval's
  latency percentiles and ``covey usage``'s are one computation.

The text metrics (exact match, edit similarity, ROUGE-L, BLEU) belong to the task modules'
scores: :mod:`covey_specialists.tasks.similarity`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from covey_usage.queries import percentile

__all__ = ["bootstrap_ci", "paired_bootstrap_ci", "percentile"]


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float] | None:
    """(mean, low, high): the percentile-bootstrap interval of the mean."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(resamples, data.size))
    means = data[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return (float(data.mean()), float(np.percentile(means, tail)),
            float(np.percentile(means, 100 - tail)))


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], *, resamples: int = 2000,
                        seed: int = 0, level: float = 0.95
                        ) -> tuple[float, float, float] | None:
    """Interval of mean(b) − mean(a) over the same tasks, resampled together."""
    if len(a) != len(b):
        raise ValueError("paired samples need the same tasks on both sides")
    return bootstrap_ci(np.asarray(b, dtype=float) - np.asarray(a, dtype=float),
                        resamples=resamples, seed=seed, level=level)
