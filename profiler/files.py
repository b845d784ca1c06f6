"""Writing a small file whole: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path


def write_whole(path: Path, text: str) -> None:
    """Write `text` to a temporary file of this process's own beside `path`, then rename it over
    `path` in one step. Several processes may write one path (builds of two warehouses of one
    project share its target/): with one shared temporary name a rename failed, or renamed the
    other's half-written file. A failed write leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
