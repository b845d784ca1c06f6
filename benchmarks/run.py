"""Benchmark `profiler` end to end on generated data, beside the bare DuckDB floor.

    python benchmarks/run.py --events 1000000 10000000 [--users-per-event 0.02] [--out benchmarks/out]

For each size: generate a shop with `profiler generate`, ingest it, run a full build, measure the
floor (one bare `SELECT user_id, count(*) FROM raw_events GROUP BY user_id` on the same warehouse),
then a 1% next-day batch (generate + ingest + build), an idle build, and the gate's share of the
full build. Every step runs as its own `profiler` process, as a user would run it, so import and
start-up costs count. Peak memory is each process's max RSS. Prints a Markdown table; paste it into
RESULTS.md with the commit it measured.
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


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run one command; return (seconds, peak RSS in MB, output)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out}")
    return seconds, usage.ru_maxrss / 1024, out


def profiler(*args: str) -> list[str]:
    return [sys.executable, "-m", "profiler", *args]


def floor(warehouse: Path) -> float:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute("SELECT user_id, count(*) FROM raw_events GROUP BY user_id").fetchall()  # warm
    t0 = time.perf_counter()
    con.execute("SELECT user_id, count(*) FROM raw_events GROUP BY user_id").fetchall()
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def gate_seconds(target: Path) -> float:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return sum(r.get("gate_time", 0.0) for r in results)


def bench(events: int, users: int, out: Path) -> dict[str, float]:
    data, batch = out / f"data_{events}", out / f"batch_{events}"
    warehouse = out / f"wh_{events}.duckdb"
    for p in (data, batch):
        shutil.rmtree(p, ignore_errors=True)
    for p in out.glob(f"wh_{events}.duckdb*"):
        p.unlink()
    env = {**os.environ, "PROFILER_PROJECT_DIR": str(REPO), "PROFILER_WAREHOUSE": str(warehouse), "PROFILER_PII_KEY": "bench"}
    r: dict[str, float] = {"events": events, "users": users}
    r["generate_s"], _, _ = run(profiler("generate", "--users", str(users), "--events", str(events), "--days", str(DAYS), "--start", START.isoformat(), "--seed", "1", "--out", str(data)), env)
    t = 0.0
    for source in ("users", "items", "events", "feedback"):
        s, mem, _ = run(profiler("ingest", source, str(data / f"{source}.parquet")), env)
        t += s
        r["ingest_peak_mb"] = max(r.get("ingest_peak_mb", 0), mem)
    r["ingest_s"] = t
    r["ingest_rows_per_s"] = events / t
    r["full_build_s"], r["full_build_peak_mb"], _ = run(profiler("build"), env)
    r["gate_s"] = gate_seconds(REPO / "target")
    r["floor_s"] = floor(warehouse)
    nxt = START + timedelta(days=DAYS)
    run(profiler("generate", "--users", str(users), "--events", str(events // 100), "--days", "1", "--start", nxt.isoformat(), "--seed", "2", "--out", str(batch)), env)
    t0 = time.perf_counter()
    peak = 0.0
    for source in ("events", "feedback"):  # a daily feed: the catalogue and users were sent once
        _, mem, _ = run(profiler("ingest", source, str(batch / f"{source}.parquet")), env)
        peak = max(peak, mem)
    s, mem, _ = run(profiler("build"), env)
    r["batch_s"], r["batch_build_s"], r["batch_peak_mb"] = time.perf_counter() - t0, s, max(peak, mem)
    r["idle_build_s"], _, _ = run(profiler("build"), env)
    return r


def table(rows: list[dict[str, float]]) -> str:
    head = "| events | users | ingest rows/s | full build s | floor s | build / floor | 1% batch s (ingest+build) | batch / full | idle build s | gate share | peak MB |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        lines.append(
            f"| {r['events']:,} | {r['users']:,} | {r['ingest_rows_per_s']:,.0f} | {r['full_build_s']:.1f} | {r['floor_s']:.2f} | "
            f"{r['full_build_s'] / r['floor_s']:.1f}x | {r['batch_s']:.1f} ({r['batch_build_s']:.1f} build) | "
            f"{r['batch_s'] / r['full_build_s']:.0%} | {r['idle_build_s']:.2f} | {r['gate_s'] / r['full_build_s']:.0%} | "
            f"{max(r['full_build_peak_mb'], r['batch_peak_mb'], r['ingest_peak_mb']):,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--users-per-event", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.events:
        rows.append(bench(n, max(1000, int(n * args.users_per_event)), args.out))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
