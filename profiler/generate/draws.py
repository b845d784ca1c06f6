"""Fast random draws: weighted choices, coin flips and quantiles through 2**16 lookup tables.

Each helper takes the batch's generator, so the order of calls decides the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np

_DRAW_BITS = 16  # weighted draws index a 2**16 lookup table: ~10x faster than a CDF search


def _draw(rng: np.random.Generator, weights: Sequence[float], n: int) -> np.ndarray:
    """n indices drawn with probability proportional to `weights` (to 1/65536)."""
    import numpy as np

    edges = np.rint(np.cumsum(weights) / np.sum(weights) * (1 << _DRAW_BITS)).astype(np.int64)
    table = np.repeat(np.arange(len(edges), dtype=np.int32), np.diff(edges, prepend=0))
    return table[_bits(rng, n)]


def _chance(rng: np.random.Generator, p: float, n: int) -> np.ndarray:
    """n coin flips that come up True with probability p (to 1/65536)."""
    return _bits(rng, n) < round(p * (1 << _DRAW_BITS))


def _quantiles(rng: np.random.Generator, of_normal: Callable, n: int) -> np.ndarray:
    """n integer draws of a transformed normal, through a table of its 65536 quantiles."""
    import numpy as np

    z = np.sort(np.random.default_rng(0).standard_normal(1 << _DRAW_BITS))
    return of_normal(z).astype(np.int64)[_bits(rng, n)]


def _bits(rng: np.random.Generator, n: int) -> np.ndarray:
    import numpy as np

    return rng.integers(0, 1 << _DRAW_BITS, n, dtype=np.uint16)


def _skewed(rng: np.random.Generator, size: np.ndarray, power: float) -> np.ndarray:
    """A rank in [0, size) per element, low ranks likelier: floor(size * u**power)."""
    import numpy as np

    powers = (((np.arange(1 << _DRAW_BITS) + 0.5) / (1 << _DRAW_BITS)) ** power).astype(np.float32)
    return (size.astype(np.float32) * powers[_bits(rng, len(size))]).astype(np.int32)
