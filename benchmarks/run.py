"""Benchmark `profiler` end to end on generated data, beside the bare DuckDB floor.

    python benchmarks/run.py --events 1000000 10000000 100000000 [--users-per-event 0.01]
        [--out benchmarks/out] [--reuse-data] [--select SELECTOR]

For each size: generate a shop with `profiler generate` (or reuse `OUT/data_N` with
--reuse-data), ingest it, run a full build, measure two floors on the same warehouse (warm, best
of three): `count` is one bare `SELECT user_id, count(*) FROM raw_events GROUP BY user_id`, `basic`
the same GROUP BY with the basic per-user aggregates (events per type, first and last time,
money). Then a 1% next-day batch (ingest + build), a fixed 100k-event batch on the next day (the
same batch whatever the history, to see whether a batch costs the batch or the history), an idle
build, and the gate's share of the full build. Every step runs as its own `profiler` process, as a
user would run it, so import and start-up costs count. Peak memory is each process's max RSS. Per
build, the slowest models (from target/run_results.json) are printed: that is where the time goes.
Prints a Markdown table; paste it into RESULTS.md with the commit it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAYS = 30
START = date(2024, 1, 1)
FIXED_BATCH = 100_000  # events: the same batch at every size
SELECT: list[str] = []  # `--select` for every build, e.g. the profile alone


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run one command; return (seconds, peak RSS in MB, output)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out}")
    return seconds, usage.ru_maxrss / 1024, out


def profiler(*args: str) -> list[str]:
    return [sys.executable, "-m", "profiler", *args]


FLOORS = {
    "count": "SELECT user_id, count(*) FROM raw_events GROUP BY user_id",
    "basic": (
        "SELECT user_id, count(*), count(*) FILTER (WHERE event_type = 'view'), "
        "count(*) FILTER (WHERE event_type = 'cart'), count(*) FILTER (WHERE event_type = 'fav'), "
        "count(*) FILTER (WHERE event_type = 'purchase'), count(*) FILTER (WHERE event_type = 'search'), "
        "min(ts), max(ts), sum(amount) FROM raw_events GROUP BY user_id"
    ),
}


def floor(warehouse: Path, query: str) -> float:
    """Best of three warm runs of `query`, in a fresh read-only connection."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute(query).fetchall()  # warm
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        con.execute(query).fetchall()
        best = min(best, time.perf_counter() - t0)
    con.close()
    return best


def gate_seconds(target: Path) -> float:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return sum(r.get("gate_time", 0.0) for r in results)


def slowest(target: Path, n: int = 6) -> str:
    """The build's slowest models as `name time (gate time)`, from run_results.json."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    top = sorted(results, key=lambda r: -r.get("execution_time", 0.0))[:n]
    return ", ".join(
        f"{r['model']} {r.get('execution_time', 0.0):.1f}s"
        + (f" (gate {r['gate_time']:.1f}s)" if r.get("gate_time", 0) >= 0.05 else "")
        for r in top
    )


def generate(
    events: int, users: int, days: int, start: date, seed: int, out: Path, env: dict[str, str]
) -> tuple[float, float, str]:
    """`profiler generate` into OUT: (seconds, peak MB, output)."""
    args = ["--users", str(users), "--events", str(events), "--days", str(days)]
    args += ["--start", start.isoformat(), "--seed", str(seed), "--out", str(out)]
    return run(profiler("generate", *args), env)


def batch(
    events: int, users: int, day: date, seed: int, folder: Path, env: dict[str, str]
) -> tuple[float, float, float, str]:
    """Generate and send one day's events and feedback, then build: (total s, build s, peak MB, slowest)."""
    shutil.rmtree(folder, ignore_errors=True)
    generate(events, users, 1, day, seed, folder, env)
    t0 = time.perf_counter()
    peak = 0.0
    for source in ("events", "feedback"):  # a daily feed: the catalogue and users were sent once
        _, mem, _ = run(profiler("ingest", source, str(folder / f"{source}.parquet")), env)
        peak = max(peak, mem)
    s, mem, _ = run(profiler("build", *SELECT), env)
    return time.perf_counter() - t0, s, max(peak, mem), slowest(REPO / "target")


def bench(events: int, users: int, out: Path, reuse_data: bool) -> dict:
    data = out / f"data_{events}"
    warehouse = out / f"wh_{events}.duckdb"
    for p in out.glob(f"wh_{events}.*duckdb*"):
        p.unlink()
    env = {
        **os.environ,
        "PROFILER_PROJECT_DIR": str(REPO),
        "PROFILER_WAREHOUSE": str(warehouse),
        "PROFILER_PII_KEY": "bench",
    }
    r: dict = {"events": events, "users": users}
    if not (reuse_data and (data / "feedback.parquet").exists()):
        shutil.rmtree(data, ignore_errors=True)
        r["generate_s"], _, _ = generate(events, users, DAYS, START, 1, data, env)
    t = 0.0
    for source in ("users", "items", "events", "feedback"):
        s, mem, _ = run(profiler("ingest", source, str(data / f"{source}.parquet")), env)
        t += s
        r["ingest_peak_mb"] = max(r.get("ingest_peak_mb", 0), mem)
    r["ingest_s"] = t
    r["ingest_rows_per_s"] = events / t
    r["full_build_s"], r["full_build_peak_mb"], _ = run(profiler("build", *SELECT), env)
    r["full_slowest"] = slowest(REPO / "target")
    r["gate_s"] = gate_seconds(REPO / "target")
    for name, query in FLOORS.items():
        r[f"floor_{name}_s"] = floor(warehouse, query)
    day = START + timedelta(days=DAYS)
    r["batch_s"], r["batch_build_s"], r["batch_peak_mb"], r["batch_slowest"] = batch(
        events // 100, users, day, 2, out / f"batch_{events}", env
    )
    r["fixed_batch_s"], r["fixed_batch_build_s"], _, r["fixed_batch_slowest"] = batch(
        FIXED_BATCH, users, day + timedelta(days=1), 3, out / f"fixed_batch_{events}", env
    )
    r["idle_build_s"], _, _ = run(profiler("build", *SELECT), env)
    return r


def table(rows: list[dict]) -> str:
    head = (
        "| events | users | ingest rows/s | full build s | floor s (count / basic) | build / floor (count / basic) "
        "| 1% batch s (ingest+build) | batch / full | 100k batch s | idle build s | gate share | peak MB |"
    )
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        full, fc, fb = r["full_build_s"], r["floor_count_s"], r["floor_basic_s"]
        lines.append(
            f"| {r['events']:,} | {r['users']:,} | {r['ingest_rows_per_s']:,.0f} | {full:.1f} | {fc:.2f} / {fb:.2f} | "
            f"{full / fc:.0f}x / {full / fb:.0f}x | {r['batch_s']:.1f} ({r['batch_build_s']:.1f} build) | "
            f"{r['batch_s'] / full:.0%} | {r['fixed_batch_s']:.1f} | {r['idle_build_s']:.2f} | {r['gate_s'] / full:.0%} | "
            f"{max(r['full_build_peak_mb'], r['batch_peak_mb'], r['ingest_peak_mb']):,.0f} |"
        )
    lines.append("")
    for r in rows:
        lines.append(f"- {r['events']:,} events, slowest in the full build: {r['full_slowest']}")
        lines.append(f"- {r['events']:,} events, slowest in the 1% batch: {r['batch_slowest']}")
        lines.append(
            f"- {r['events']:,} events, slowest in the 100k batch: {r['fixed_batch_slowest']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--users-per-event", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--reuse-data", action="store_true", help="reuse OUT/data_N when it exists")
    parser.add_argument(
        "--select", help="build only these models (a dbt selector), e.g. +user_profile_history"
    )
    args = parser.parse_args()
    if args.select:
        SELECT.extend(["--select", args.select])
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.events:
        rows.append(bench(n, max(1000, int(n * args.users_per_event)), args.out, args.reuse_data))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
