"""Output folders of `export` and `docs`: made when missing, never anything else's files lost.

`export` writes its own files into a folder and leaves the rest alone. `docs` replaces its folder
as a whole (a site of removed models must not keep their pages), so it takes only a folder that is
missing, empty or a site it wrote itself (marked by `SITE_MARKER`): `--out docs` in a project, or
`--out .`, would otherwise delete what is there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.faults import fault_kind

SITE_MARKER = ".profiler-docs"  # in every site `docs` writes
_OLD_SITE = ("index.html", "models.html", "assets/profiles")  # a site written before the marker


def make_folder(out: Path) -> Path:
    """`out`, created with its parents when missing; a clear error when it cannot be."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ProfilerError(f"--out {out} is a file; name a folder") from None
    except OSError as err:
        raise ProfilerError(f"cannot create --out {out}: {err.strerror}") from None
    return out


@contextlib.contextmanager
def writing_to(out: Path, kept: str, command: str) -> Iterator[None]:
    """Writes into `out` by `profiler <command>`: a disk that refuses them (full, read-only) is
    one line saying what stays (`kept`) and what to do, not a traceback (helper-62)."""
    try:
        yield
    except (OSError, duckdb.Error) as err:
        kind = fault_kind(err)
        if kind not in ("disk full", "not writable"):
            raise
        if isinstance(err, OSError):
            detail = f"{err.strerror}: {err.filename or out}"
        else:
            detail = str(err).strip().splitlines()[0]
        fix = "free space" if kind == "disk full" else "make it writable"
        raise ProfilerError(
            f"cannot write --out {out} ({kind}: {detail}); {kept}. {fix.capitalize()} or name "
            f"another folder, and run `profiler {command}` again"
        ) from None


def site_folder(out: Path) -> Path:
    """`out` resolved, when `docs` may replace it as a whole; else a clear error."""
    out = out.resolve()
    if out.exists():
        if not out.is_dir():
            raise ProfilerError(f"--out {out} is a file; name a folder for the site")
        ours = (out / SITE_MARKER).exists() or all((out / p).exists() for p in _OLD_SITE)
        if not ours and any(out.iterdir()):
            raise ProfilerError(
                f"--out {out} holds files that are not a profiler docs site, and the site "
                "replaces its folder as a whole; name a new or empty folder"
            )
    make_folder(out.parent)
    return out
