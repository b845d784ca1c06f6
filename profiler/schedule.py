"""Run the nodes of a DAG as their parents finish, a few at once, each on its own DuckDB cursor.

Why: most of a profile's tables hold one row per user, and at 100k users a table is one DuckDB row
group, which one thread scans and writes; built one after another, such models leave a core idle.
Two at once keep both busy (DuckDB runs concurrent transactions on cursors of one database, and
each model publishes in its own transaction, so nothing here changes what a build publishes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from typing import TypeVar

import duckdb

T = TypeVar("T")
WORKERS = 2  # the machines we measure on have 2 cores; DuckDB parallelises inside each model


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class NodeFailed(Exception):
    """`work` raised for `node`; the nodes started before it finished (and were yielded)."""

    def __init__(self, node: str, cause: BaseException) -> None:
        super().__init__(f"{node}: {cause}")
        self.node, self.cause = node, cause


def run_in_order(
    con: duckdb.DuckDBPyConnection,
    nodes: list[str],
    parents: Callable[[str], Iterable[str]],
    work: Callable[[duckdb.DuckDBPyConnection, str], T],
    *,
    workers: int = WORKERS,
) -> Iterator[tuple[str, T]]:
    """Yield `(node, work(cursor, node))` as nodes finish; a node starts once its parents did.

    Parents outside `nodes` are taken as done. Nodes start in the order given, so with one worker
    this is the plain sequential loop. When `work` raises, no further node starts, the running
    ones finish (and are yielded), then `NodeFailed` is raised. An interrupt (Ctrl-C) interrupts
    the running queries.

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
    needs = {n: {p for p in parents(n) if p in wanted and p != n} for n in nodes}
    waiting, finished = list(nodes), set()
    running: dict[Future, tuple[str, duckdb.DuckDBPyConnection]] = {}
    failure: NodeFailed | None = None

    def run(cursor: duckdb.DuckDBPyConnection, node: str) -> T:
        try:
            return work(cursor, node)
        finally:
            cursor.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            while waiting or running:
                for node in [n for n in waiting if needs[n] <= finished] if failure is None else []:
                    if len(running) >= workers:
                        break
                    waiting.remove(node)
                    cursor = con.cursor()
                    cursor.execute(use)
                    if path:
                        cursor.execute("SET search_path = ?", [path])
                    running[pool.submit(run, cursor, node)] = (node, cursor)
                if not running:
                    break  # a failure stopped the rest
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: nodes.index(running[f][0])):
                    node, _ = running.pop(future)
                    try:
                        result = future.result()
                    except Exception as err:
                        failure = failure or NodeFailed(node, err)
                        continue
                    finished.add(node)
                    yield node, result
        except BaseException:
            for _, cursor in running.values():
                with suppress(duckdb.Error):
                    cursor.interrupt()
            raise
    if failure is not None:
        raise failure
