"""Incremental builds of the profile equal one full build, whatever batches the data arrives in.

Hypothesis cuts a real sample at random times into batches, ingests them in a random order (late
data included) and builds after each; every profile table must then equal the table one build of
all the data gives. Samples: REES46 (session ids, prices, brands, five exact repeats), Taobao
(nine days of history) and CDNOW (purchases with dates only), each with a small feedback feed
stated below.
"""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from conftest import (
    REES46,
    REPO,
    TAOBAO,
    cdnow_lines,
    model_tables,
    run_cli,
    sql_project,
    table_diff,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROFILE = ("--select", "+user_profile_history")  # the profile and everything it reads, nothing else
FEEDBACK = [  # user, time, kind, rating: stated here, for users of both samples
    ["541312140", "2019-10-01 01:00:00", "rating", "4"],
    ["541312140", "2019-10-01 02:00:00", "complaint", ""],
    ["100101", "2017-11-28 10:00:00", "rating", "5"],
    ["100101", "2017-12-02 10:00:00", "review", "3"],
    ["1000417", "2017-12-01 10:00:00", "complaint", ""],
]
SAMPLES = {
    # path, column with the time, parse it to Unix seconds, first and last second
    "rees46": (
        REES46,
        "event_time",
        lambda v: int(datetime.fromisoformat(v.replace(" UTC", "+00:00")).timestamp()),
    ),
    "taobao": (TAOBAO, "ts", int),
    # CDNOW's first 20,000 purchase lines (conftest.cdnow_lines: real purchases with dates
    # only, sorted by customer; some equal lines on one day are separate purchases),
    # cut by line number: a cut can fall between the equal lines of one customer-day
    "cdnow": (None, "line", int),
}
INGEST_ARGS = {  # how each sample is ingested, beyond the file
    "cdnow": ("--event-type", "purchase", "--ts-format", "%Y%m%d", "--map", "amount=dollar_value"),
}
PROFILE_MODELS = [  # every table of the profile but its SCD2 history, which records builds
    *sorted(
        p.stem for p in (REPO / "sql").glob("*.sql") if "-- kind: ephemeral" not in p.read_text()
    ),
    "behaviour_features",
    "preference_features",
    "rfm_features",
    "sentiment_features",
    "user_profile",
]


def load(sample: str) -> tuple[list[str], list[list[str]], list[int]]:
    path, column, seconds = SAMPLES[sample]
    if sample == "cdnow":
        rows = cdnow_lines()[:20_000]
        return ["customer_id", "date", "quantity", "dollar_value"], rows, list(range(len(rows)))
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    i = header.index(column)
    return header, rows, [seconds(r[i]) for r in rows]


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def feedback_file(tmp: Path) -> Path:
    return write(tmp / "feedback.csv", ["user_id", "ts", "kind", "rating"], FEEDBACK)


def full_build(sample: str, tmp: Path, project: Path) -> Path:
    header, rows, _ = load(sample)
    wh = tmp / f"full_{sample}.duckdb"
    if not wh.exists():
        events = write(tmp / f"all_{sample}.csv", header, rows)
        ingest = INGEST_ARGS.get(sample, ())
        run_cli("ingest", "events", str(events), *ingest, warehouse=wh, project=project)
        run_cli("ingest", "feedback", str(feedback_file(tmp)), warehouse=wh, project=project)
        run_cli("build", *PROFILE, warehouse=wh, project=project)
    return wh


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("incremental")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's SQL without suites and specs: the gate and training have their own tests."""
    return sql_project(tmp_path_factory.mktemp("project"))


@pytest.mark.parametrize("sample", sorted(SAMPLES))
@settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_batches_in_any_order_equal_one_full_build(
    sample: str, workdir: Path, project: Path, data: st.DataObject
) -> None:
    header, rows, seconds = load(sample)
    lo, hi = min(seconds), max(seconds)
    cuts = sorted(data.draw(st.sets(st.integers(lo + 1, hi), min_size=1, max_size=3), label="cuts"))
    order = data.draw(st.permutations(range(len(cuts) + 1)), label="order")
    feedback_after = data.draw(st.integers(0, len(cuts)), label="feedback after batch")
    check_batches(sample, cuts, order, feedback_after, workdir, project)


def test_an_example_hypothesis_found(workdir: Path, project: Path) -> None:
    """REES46 in three batches, the last cut first: the mean price looked at came out one
    millionth apart (a parallel sum's last bits on either side of a rounding step)."""
    check_batches("rees46", [1569888001, 1569897342], [0, 2, 1], 0, workdir, project)


def test_equal_lines_of_a_date_split_across_batches(workdir: Path, project: Path) -> None:
    """CDNOW lines 1380 and 1381 are equal (customer 00398, 1998-05-18, 1 CD, $12.99): two
    purchases. Cut between them, the second batch first: still two purchases, as in one build."""
    wh = check_batches("cdnow", [1381], [1, 0], 0, workdir, project)
    con = duckdb.connect(str(wh), read_only=True)
    try:
        day = "SELECT purchases FROM int_user_day WHERE user_id = '00398' AND day = '1998-05-18'"
        assert con.execute(day).fetchall() == [(2,)]
    finally:
        con.close()


def check_batches(
    sample: str,
    cuts: list[int],
    order: list[int],
    feedback_after: int,
    workdir: Path,
    project: Path,
) -> Path:
    """Ingest the sample cut at `cuts` in `order`, building after each batch; compare. Returns
    the incrementally built warehouse."""
    header, rows, seconds = load(sample)
    lo, hi = min(seconds), max(seconds)
    bounds = [lo, *cuts, hi + 1]
    batches = [
        [r for r, s in zip(rows, seconds, strict=True) if a <= s < b]
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    run = workdir / f"{sample}_{'_'.join(map(str, cuts))}_{'_'.join(map(str, order))}"
    shutil.rmtree(run, ignore_errors=True)  # hypothesis replays a failing example
    run.mkdir()
    wh = run / "wh.duckdb"
    for step, i in enumerate(order):
        if not batches[i]:
            continue
        batch = write(run / f"batch_{i}.csv", header, batches[i])
        ingest = INGEST_ARGS.get(sample, ())
        run_cli("ingest", "events", str(batch), *ingest, warehouse=wh, project=project)
        if step == feedback_after:
            run_cli("ingest", "feedback", str(feedback_file(run)), warehouse=wh, project=project)
        run_cli("build", *PROFILE, warehouse=wh, project=project)
    if feedback_after >= len(order) or not batches[order[feedback_after]]:
        run_cli("ingest", "feedback", str(feedback_file(run)), warehouse=wh, project=project)
        run_cli("build", *PROFILE, warehouse=wh, project=project)

    full = full_build(sample, workdir, project)
    assert set(PROFILE_MODELS) <= set(model_tables(wh))
    diffs = {t: n for t in PROFILE_MODELS if (n := table_diff(full, wh, t))}
    assert diffs == {}, f"cuts {cuts}, order {order}"
    return wh
