"""Engine state's pure interval helpers: a slice rebuilds exactly the days its intervals cover."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import TAOBAO, run_cli
from hypothesis import given
from hypothesis import strategies as st

from profiler.state import (
    ModelState,
    data_arrived_between,
    data_lineage,
    days_to_intervals,
    ensure_schema,
    merge_intervals,
    newest_data,
    read_states,
    write_state,
)

DAY0 = date(2017, 11, 25)  # Taobao's first day
spans = st.tuples(st.integers(0, 60), st.integers(1, 15)).map(
    lambda s: (DAY0 + timedelta(days=s[0]), DAY0 + timedelta(days=s[0] + s[1]))
)


def _days(intervals: list[tuple[date, date]]) -> set[date]:
    return {s + timedelta(days=n) for s, e in intervals for n in range((e - s).days)}


@given(st.lists(spans, max_size=12))
def test_merged_intervals_cover_the_same_days_apart_and_in_order(intervals) -> None:
    """Start-inclusive, end-exclusive: the merge covers every day of the input and no other
    (an interval inside another must not shorten it), and what it returns is sorted, with a gap
    between neighbours (touching ones are one: fewer predicates in a slice)."""
    merged = merge_intervals(intervals)
    assert _days(merged) == _days(intervals)
    assert all(a[1] < b[0] for a, b in zip(merged, merged[1:], strict=False))


def test_days_become_ranges_of_neighbours() -> None:
    """A batch's days 1, 2, 3 and 5 are two ranges; a day inside a range adds nothing."""
    days = [DAY0 + timedelta(days=n) for n in (5, 1, 2, 3, 2)]
    assert days_to_intervals(days) == [
        (DAY0 + timedelta(days=1), DAY0 + timedelta(days=4)),
        (DAY0 + timedelta(days=5), DAY0 + timedelta(days=6)),
    ]


@pytest.mark.parametrize("written", ["2.0", "v2"])
def test_a_state_version_that_is_no_number_is_refused_in_one_line(
    tmp_path: Path, written: str
) -> None:
    """A newer profiler may write its state version in another form ("2.0"): this one refuses
    the warehouse in one line, as for "2", rather than dying on int("2.0") with a ValueError."""
    wh = tmp_path / "wh.duckdb"
    with duckdb.connect(str(wh)) as con:
        ensure_schema(con)
        con.execute(
            "UPDATE _profiler.settings SET value = ? WHERE name = 'state_version'", [written]
        )
    out = run_cli("check", warehouse=wh, ok=False)
    assert f"written by a newer profiler (engine state version {written};" in out


def test_a_point_in_time_copy_of_an_older_warehouse_leaves_its_state_views_alone(
    tmp_path: Path,
) -> None:
    """`ensure_schema` in a point-in-time catalog, whose `_profiler.batches` is a view of the
    warehouse's, adds state columns to tables only: a warehouse whose batches predate
    `file_columns` is read through the view as it is, not refused with "Cannot ALTER a view"."""
    from profiler.ml.pit import point_in_time

    wh = tmp_path / "wh.duckdb"
    with duckdb.connect(str(wh)) as con:
        ensure_schema(con)
        con.execute("ALTER TABLE _profiler.batches DROP COLUMN file_columns")
        with point_in_time(con, Path(__file__).parents[1]) as pit:
            got = pit.con.execute("SELECT count(*) FROM _profiler.batches").fetchone()
        assert got == (0,)


def test_the_states_of_a_warehouse_from_before_fingerprint_parts_read_without_them(
    tmp_path: Path,
) -> None:
    """`profiler check` and `export` read the model states (`plan.edited_since_built`) without
    upgrading the warehouse: one whose `_profiler.models` predates `fingerprint_parts` reads with
    none, not a KeyError."""
    from profiler.plan import edited_since_built

    wh = tmp_path / "wh.duckdb"
    with duckdb.connect(str(wh)) as con:
        ensure_schema(con)
        state = ModelState("stg_users", "view", "data", "meta", 1, 3, None, {}, 928, {"sql": "x"})
        write_state(con, state)
        con.execute("ALTER TABLE _profiler.models DROP COLUMN fingerprint_parts")
        (got,) = read_states(con).values()
        assert (got.name, got.rows, got.fingerprint_parts) == ("stg_users", 928, {})
        assert "stg_users" in edited_since_built(con, Path(__file__).parents[1])


def test_each_warehouse_is_its_own_data_lineage(tmp_path: Path) -> None:
    """A trained model is reused only within one data lineage: two warehouses made apart (two
    shops on one project folder) are two lineages, and a warehouse keeps its own."""
    lineages = []
    for name in ("shop_a", "shop_b"):
        with duckdb.connect(str(tmp_path / f"{name}.duckdb")) as con:
            ensure_schema(con)
            first = data_lineage(con)
            ensure_schema(con)
            assert data_lineage(con) == first
            lineages.append(first)
    assert None not in lineages and lineages[0] != lineages[1]


def test_the_data_seen_through_a_batch_and_what_arrived_after_it(tmp_path: Path) -> None:
    """Two batches of Taobao's sample (its first 500 lines, then the next 500). Through batch 0
    nothing was seen; through the first, its newest time. Data arrived after the first batch in
    (t - 1s, t] for t the second batch's earliest time (the end is in), not after the second."""
    from profiler.ingest import ingest

    lines = TAOBAO.read_text().splitlines(True)
    parts = [tmp_path / "part1.csv", tmp_path / "part2.csv"]
    parts[0].write_text("".join(lines[:501]))
    parts[1].write_text("".join([lines[0], *lines[501:1001]]))
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as con:
        first, second = (ingest(con, "events", p, pii_key=b"test-key").batch_id for p in parts)
        ts = "SELECT {}(ts) FROM raw_events WHERE _batch_id = ?"
        (newest_first,) = con.execute(ts.format("max"), [first]).fetchone()
        (t,) = con.execute(ts.format("min"), [second]).fetchone()
        assert isinstance(t, datetime)
        assert newest_data(con, through_batch=first - 1) is None
        assert newest_data(con, through_batch=first) == newest_first
        assert data_arrived_between(con, first, t - timedelta(seconds=1), t)
        assert not data_arrived_between(con, second, t - timedelta(seconds=1), t)
