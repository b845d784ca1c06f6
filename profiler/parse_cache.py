"""Partial parsing, as dbt does it: remember what each model's SQL text parsed to, on disk.

Lineage and normalised SQL are pure functions of a model's text, and parsing is most of what a
build with nothing to do (or `profiler ls`) costs: importing sqlglot and parsing the project takes
about a second on a 2-core machine. The results are kept in `target/partial_parse.json`, keyed by
a hash of the text, the sqlglot version and the lineage and macro code, so an edited model (or a
new sqlglot or profiler) is parsed again and nothing stale is ever read. Writes are atomic (temporary
file, then rename); two processes writing at once cost a re-parse, never a wrong answer.
"""

from __future__ import annotations

import atexit
import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from profiler.files import write_whole

FORMAT = 1

_path: Path | None = None
_entries: dict[str, Any] = {}
_dirty = False


CODE = ("lineage.py", "macros.py")  # the modules whose answers are cached


def _salt() -> str:
    """What else the cached answers depend on: sqlglot's version and the code that computed them
    (a new rule in macros.py was read from an older profiler's cache: helper-111)."""
    code = hashlib.sha256()
    for name in CODE:
        code.update((Path(__file__).parent / name).read_bytes())
    return f"{FORMAT}:{version('sqlglot')}:{code.hexdigest()[:12]}"


def use(path: Path) -> None:
    """Read (once per process and path) the cache at `path`; later lookups and saves use it."""
    global _path, _entries
    if _path == path:
        return
    _path, _entries = path, {}
    try:
        data = json.loads(path.read_text())
        if data.get("salt") == _salt():
            _entries = dict(data.get("entries", {}))
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # no cache, or an unreadable one (JSON of another shape too): parse everything again


def key(kind: str, *parts: object) -> str:
    """The entry for `kind` (e.g. "lineage") of these inputs."""
    return hashlib.sha256("\x1f".join([kind, *map(str, parts)]).encode()).hexdigest()[:32]


def get(entry: str) -> Any:
    return _entries.get(entry) if _path is not None else None


def put(entry: str, value: Any) -> None:
    global _dirty
    if _path is not None and _entries.get(entry) != value:
        _entries[entry] = value
        _dirty = True


@atexit.register
def save() -> None:
    """Write the cache when something new was parsed; a failure to write only costs speed."""
    global _dirty
    if not _dirty or _path is None:
        return
    try:
        _path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(_path, json.dumps({"salt": _salt(), "entries": _entries}))
        _dirty = False
    except OSError:
        pass
