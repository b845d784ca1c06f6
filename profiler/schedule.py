"""Run the nodes of a DAG as their ancestors finish, each on its own DuckDB cursor, N at once.

The build loop (one model at a time: see `BuildOptions.workers`) and the serving copy (two tables
at once) both run here. Why several at once can pay: a table of 100k rows is one DuckDB row group,
which one thread scans and writes, so copying such tables one after another leaves a core idle.
DuckDB runs concurrent transactions on cursors of one database, and each node commits on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from typing import TypeVar

import duckdb

from profiler.sqltext import quote as _quote

T = TypeVar("T")
WORKERS = 2  # the machines we measure on have 2 cores

# Every cursor a schedule has open, nested schedules' too (the model layer builds point-in-time
# copies from inside a model): an interrupt stops them all.
_LIVE: set[duckdb.DuckDBPyConnection] = set()
_LIVE_LOCK = threading.Lock()


class NodeFailed(Exception):
    """`work` raised for one or more nodes; the nodes running beside them finished first.

    `failures` lists every `(node, exception)`; `node` and `cause` are the first of them.
    """

    def __init__(self, failures: list[tuple[str, BaseException]]) -> None:
        super().__init__("; ".join(f"{node}: {err}" for node, err in failures))
        self.failures = failures
        self.node, self.cause = failures[0]


def _open_cursor(con: duckdb.DuckDBPyConnection, use: str, path: str) -> duckdb.DuckDBPyConnection:
    cursor = con.cursor()
    cursor.execute(use)
    if path:
        cursor.execute("SET search_path = ?", [path])
    with _LIVE_LOCK:
        _LIVE.add(cursor)
    return cursor


def _close_cursor(cursor: duckdb.DuckDBPyConnection) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(cursor)
    with suppress(duckdb.Error):
        cursor.close()


def _interrupt_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for cursor in live:
        with suppress(duckdb.Error):
            cursor.interrupt()


def run_in_order(
    con: duckdb.DuckDBPyConnection,
    nodes: list[str],
    ancestors: Callable[[str], Iterable[str]],
    work: Callable[[duckdb.DuckDBPyConnection, str], T],
    *,
    workers: int = WORKERS,
) -> Iterator[tuple[str, T]]:
    """Yield `(node, work(cursor, node))` as nodes finish; a node starts once its ancestors did.

    Ancestors outside `nodes` are taken as done (pass all ancestors, not just parents: a node
    that reads an unselected view must still wait for what the view reads). Nodes start in the
    order given, so with one worker this is the plain sequential loop. When `work` raises, no
    further node starts, the running ones finish (and are yielded, or join the failures), then
    `NodeFailed` is raised. An interrupt (Ctrl-C) interrupts every open cursor until the running
    nodes have stopped, then propagates.

    >>> list(run_in_order(duckdb.connect(), ["a", "b"], lambda n: ["a"] if n == "b" else [], lambda c, n: n * 2))
    [('a', 'aa'), ('b', 'bb')]
    """
    # a cursor starts in the database's default catalog: give it the one `con` is using (the
    # model layer builds point-in-time copies in an attached catalog it has `USE`d)
    catalog, schema, path = con.execute(
        "SELECT current_database(), current_schema(), current_setting('search_path')"
    ).fetchone()
    use = f"USE {_quote(catalog)}.{_quote(schema)}"
    wanted = set(nodes)
    needs = {n: {p for p in ancestors(n) if p in wanted and p != n} for n in nodes}
    position = {n: i for i, n in enumerate(nodes)}
    waiting, finished = list(nodes), set()
    running: dict[Future, str] = {}
    failures: list[tuple[str, BaseException]] = []

    def run(node: str) -> T:
        cursor = _open_cursor(con, use, path)
        try:
            return work(cursor, node)
        finally:
            _close_cursor(cursor)

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        while waiting or running:
            for node in [n for n in waiting if needs[n] <= finished] if not failures else []:
                if len(running) >= workers:
                    break
                waiting.remove(node)
                running[pool.submit(run, node)] = node
            if not running:
                break  # a failure stopped the rest
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: position[running[f]]):
                node = running.pop(future)
                try:
                    result = future.result()
                except Exception as err:
                    failures.append((node, err))
                    continue
                finished.add(node)
                yield node, result
    except BaseException:
        while running:  # Ctrl-C (or the caller gave up): stop the running queries, theirs too
            _interrupt_all()
            done, _ = wait(running, timeout=0.05)
            for future in done:
                running.pop(future)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        raise NodeFailed(failures)
