"""The build's scheduler: parents first, two models at once, a failure stops what has not started."""

from __future__ import annotations

import signal
import threading
import time

import duckdb
import pytest

from profiler.schedule import NodeFailed, run_in_order

# a diamond and a loner: b and c read a, d reads b and c; e reads nothing
PARENTS = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}


def test_a_node_starts_only_after_its_parents_and_siblings_run_at_once() -> None:
    con = duckdb.connect()
    finished: set[str] = set()
    both = threading.Barrier(2, timeout=10)  # b and c must be running at the same time

    def work(cursor: duckdb.DuckDBPyConnection, node: str) -> int:
        assert set(PARENTS[node]) <= finished, f"{node} started before its parents"
        if node in ("b", "c"):
            both.wait()
        value = cursor.execute("SELECT ?::INT * 2", [ord(node)]).fetchone()[0]
        finished.add(node)
        return value

    out = dict(run_in_order(con, list(PARENTS), PARENTS.__getitem__, work))
    assert out == {n: ord(n) * 2 for n in PARENTS}


def test_one_worker_is_the_plain_loop_in_the_given_order() -> None:
    seen: list[str] = []
    run = run_in_order(
        duckdb.connect(), list(PARENTS), PARENTS.__getitem__, lambda c, n: seen.append(n), workers=1
    )
    assert [n for n, _ in run] == list(PARENTS) == seen


def test_a_failure_lets_the_running_sibling_finish_and_starts_nothing_else() -> None:
    started: list[str] = []
    c_running, b_failing = threading.Event(), threading.Event()

    def work(cursor: duckdb.DuckDBPyConnection, node: str) -> str:
        started.append(node)
        if node == "c":  # still running when b fails
            c_running.set()
            b_failing.wait(10)
            time.sleep(0.2)
        if node == "b":
            c_running.wait(10)
            b_failing.set()
            cursor.execute("SELECT * FROM no_such_table")
        return node

    parents = {**PARENTS, "e": ["a"]}  # e is ready with b and c, but there are two workers
    done: list[str] = []
    with pytest.raises(NodeFailed) as stopped:
        for node, _ in run_in_order(duckdb.connect(), list(parents), parents.__getitem__, work):
            done.append(node)
    assert stopped.value.node == "b" and isinstance(stopped.value.cause, duckdb.CatalogException)
    assert [node for node, _ in stopped.value.failures] == ["b"]
    assert done == ["a", "c"]  # c was running when b failed: it finishes and is reported
    assert "d" not in started and "e" not in started


def test_cursors_read_the_catalog_the_connection_uses(tmp_path) -> None:
    con = duckdb.connect()
    con.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS other")
    con.execute("CREATE TABLE other.main.t AS SELECT 42 AS x")
    con.execute("USE other")
    read = lambda c, n: c.execute("SELECT x FROM t").fetchone()[0]  # noqa: E731
    assert dict(run_in_order(con, ["a"], lambda n: [], read)) == {"a": 42}
    # and its search path: a table found in a schema after the one it uses
    con.execute("CREATE TABLE memory.main.u AS SELECT 7 AS y")
    con.execute("SET search_path = 'other.main,memory.main'")
    read = lambda c, n: c.execute("SELECT x + y FROM t, u").fetchone()[0]  # noqa: E731
    assert dict(run_in_order(con, ["a"], lambda n: [], read)) == {"a": 49}


def test_an_unselected_ancestor_still_orders_the_nodes() -> None:
    # c reads an unselected view v that reads a: c must wait for a, not start beside it
    ancestors = {"a": [], "c": ["v", "a"], "e": []}
    finished: set[str] = set()

    def work(cursor: duckdb.DuckDBPyConnection, node: str) -> str:
        assert node != "c" or "a" in finished, "c started before a finished"
        time.sleep(0.1)
        finished.add(node)
        return node

    out = [
        n for n, _ in run_in_order(duckdb.connect(), ["a", "c", "e"], ancestors.__getitem__, work)
    ]
    assert sorted(out) == ["a", "c", "e"]


def test_two_nodes_failing_at_once_are_both_reported() -> None:
    both = threading.Barrier(2, timeout=10)

    def work(cursor: duckdb.DuckDBPyConnection, node: str) -> str:
        both.wait()
        raise RuntimeError(f"{node} broke")

    with pytest.raises(NodeFailed) as stopped:
        list(run_in_order(duckdb.connect(), ["x", "y", "z"], lambda n: [], work))
    assert sorted(node for node, _ in stopped.value.failures) == ["x", "y"]  # z never started
    assert (stopped.value.node, stopped.value.cause) == stopped.value.failures[0]  # the first


def test_an_interrupt_stops_the_running_queries_and_propagates() -> None:
    started = threading.Event()

    def work(cursor: duckdb.DuckDBPyConnection, node: str) -> int:
        started.set()  # a query that would run for minutes
        return cursor.execute("SELECT count(*) FROM range(1000000000000) AS a").fetchone()[0]

    def press_ctrl_c() -> None:
        started.wait(10)
        time.sleep(0.2)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    # Ctrl-C raises KeyboardInterrupt, as in a terminal, even when pytest itself was started in
    # the background (`cmd &` in a script), which inherits SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=press_ctrl_c).start()
        t0 = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            list(run_in_order(duckdb.connect(), ["slow"], lambda n: [], work))
        assert time.perf_counter() - t0 < 20  # the query was stopped, not waited for
    finally:
        signal.signal(signal.SIGINT, previous)
