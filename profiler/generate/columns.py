"""Numpy arrays to Arrow columns: labels from indices, ids, timestamps, canonical column order.

Strings are Arrow dictionaries plus indices, so no Python code runs per row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from profiler.sources import SOURCES

if TYPE_CHECKING:
    from datetime import date

    import numpy as np
    import pyarrow as pa


def _hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """Session ids of 16 hex digits, built as one buffer rather than n Python strings."""
    import numpy as np
    import pyarrow as pa

    digits = rng.integers(0, 16, (n, 16), dtype=np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[digits]
    offsets = np.arange(0, 16 * (n + 1), 16, dtype=np.int64)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars))]
    return pa.Array.from_buffers(pa.large_string(), n, buffers)


def _decimal_ids(numbers: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return pa.array(numbers).cast(pa.string())


def _labels(index: np.ndarray, labels: pa.Array, missing: np.ndarray | None = None) -> pa.Array:
    """Strings from indices into `labels`, never one Python string per row.

    Small label sets stay a dictionary, which Parquet writes as it is; beyond Parquet's 1 MiB
    dictionary page the writer would fall back to plain encoding slowly, so those are taken
    out as plain strings. Readers get plain strings either way (no Arrow schema is stored)."""
    import numpy as np
    import pyarrow as pa

    indices = pa.array(index.astype(np.int32, copy=False), mask=missing)
    if labels.nbytes > 1 << 20:
        return labels.take(indices)
    return pa.DictionaryArray.from_arrays(indices, labels)


def _timestamps(start: date, seconds: np.ndarray) -> pa.Array:
    """Naive timestamps that mean UTC, as the warehouse's TIMESTAMP columns do."""
    import numpy as np
    import pyarrow as pa

    return pa.array(np.datetime64(start, "us") + seconds.astype("timedelta64[s]"))


def _canonical(source: str, table: pa.Table) -> pa.Table:
    """Exactly the source's canonical columns in their order, so files ingest without a map."""
    names = [c.name for c in SOURCES[source].columns]
    if sorted(table.column_names) != sorted(names):
        raise AssertionError(f"{source}: columns {table.column_names} are not {names}")
    return table.select(names)
