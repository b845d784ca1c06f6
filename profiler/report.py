"""What a build prints: a progress bar while models run, then one line per model."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from profiler.runlog import ModelResult, RunResults
from profiler.shop_time import DEFAULT, warehouse_zone

_STYLE = {"success": "green", "skipped": "yellow", "blocked": "red", "error": "red"}


class BuildPrinter:
    def __init__(self, console) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, object] = {}  # a spinner per running model (`workers` may be > 1)
        self.lock = threading.Lock()

    def __enter__(self) -> BuildPrinter:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def start(self, model, plan) -> None:
        with self.lock:
            self.tasks[model.name] = self.progress.add_task(
                f"{model.name}: {plan.action} ({plan.reason})"
            )

    def result(self, r: ModelResult) -> None:
        with self.lock:
            task = self.tasks.pop(r.model, None)
            if task is not None:
                self.progress.remove_task(task)
        style = _STYLE.get(r.status, "white")
        # rows in: the raw rows behind the model's work (helper-69 took them for its input's)
        rows = f"{r.rows_in:>11,} raw in {r.rows_out:>11,} out" if r.action != "skip" else " " * 34
        line = f"[{style}]{r.status:<8}[/{style}] {r.model:<28} {r.kind:<20} {r.action:<6} {rows} {r.execution_time:7.2f}s  {r.reason}"
        self.console.print(line, soft_wrap=True)
        if r.message:  # it may quote data: text, never markup
            indented = "\n".join(f"         {line}" for line in r.message.splitlines())
            self.console.print(indented, soft_wrap=True, style=style, markup=False)

    def summary(self, con, run: RunResults, warehouse: Path, as_of_given: bool = False) -> None:
        from profiler.build_model import PAST_AS_OF

        # a source's suite is said apart, not counted as a model (helper-81: 25 of 24 models)
        models = [r for r in run.results if r.kind != "source"]
        refused = [r.model for r in run.results if r.kind == "source" and r.status == "error"]
        worked = sum(r.action != "skip" and r.status == "success" for r in models)
        bad = [r for r in models if r.status in ("error", "blocked")]
        held = sum(r.status == "skipped" for r in models)  # behind a failed upstream
        # a history a look at the past leaves as it is is not up to date (helper-69)
        kept = sum(r.action == "skip" and r.reason == PAST_AS_OF for r in models)
        # an ephemeral model is never built, so never "up to date" either (helper-75: a first
        # build said "1 up to date")
        inlined = sum(r.kind == "ephemeral" and r.status == "success" for r in models)
        zone = warehouse_zone(con) or DEFAULT
        shop_time = f" ({zone})" if zone != DEFAULT else ""
        self.console.print(
            f"as of {run.as_of}{shop_time}: {worked} model(s) built, {len(models) - worked - len(bad) - held - kept - inlined} up to date, {len(bad)} failed"
            + (f", {held} not built (upstream failed)" if held else "")
            + (
                f", new batches of {', '.join(refused)} refused by "
                + ("its suite" if len(refused) == 1 else "their suites")
                if refused
                else ""
            )
            + (f", {kept} history left as it is (an as-of in its past)" if kept else "")
            + f", in {run.elapsed_time:.2f}s",
            soft_wrap=True,
        )
        row = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = 'user_profile'"
        ).fetchone()
        stale = ""
        if row[0]:
            users = con.execute("SELECT count(*) FROM user_profile").fetchone()[0]
            (as_of,) = con.execute(
                "SELECT max(as_of) FROM _profiler.models WHERE name = 'user_profile'"
            ).fetchone()
            # a --select without the profile leaves it at its own as-of (helper-28: the header
            # said the build's)
            other = (
                f", as of {as_of}: not selected in this build"
                if as_of
                and run.as_of
                and as_of.isoformat() != run.as_of
                and not any(r.model == "user_profile" for r in run.results)
                else ""
            )
            self.console.print(
                f"profile: table user_profile in {warehouse} ({users:,} users{other})",
                soft_wrap=True,
            )
            guests = _catch_all_user(con)
            if guests:
                self.console.print(guests, style="bold red", soft_wrap=True)
            stale = _stale_profile(con, run)
            if stale:  # a blocked model holds back only what reads it: say which profile this is
                self.console.print(stale, style="bold red", soft_wrap=True)
            if users == 0:
                self.console.print(
                    f"no user has an event, a registration or feedback up to the as-of {run.as_of}; "
                    "an --as-of before the data gives an empty profile",
                    soft_wrap=True,
                )
        addresses = address_ids(con)
        if addresses:
            self.console.print(addresses, style="bold red", soft_wrap=True)
        ahead = _as_of_against_data(con, run)
        if ahead:
            self.console.print(ahead, soft_wrap=True)
        cleaned = _cleaning(con)
        if cleaned:  # nothing a shop sent is dropped unsaid
            self.console.print(f"cleaning: {cleaned}", soft_wrap=True)
        # a profile this build did not publish is behind for the reason above, not for feedback
        # yet to come (helper-77: the line followed a refused build)
        waiting = 0 if stale else _feedback_after(con, run.as_of)
        if waiting:  # reviews are often written days after the last event a shop sent
            self.console.print(
                f"{waiting:,} feedback row(s) are newer than the as-of and not in the profile yet: "
                # helper-63: said to a build given --as-of too
                + (
                    "a build at a later as-of counts them"
                    if as_of_given
                    else "they count once events reach their time, or with --as-of"
                ),
                soft_wrap=True,
            )


def _as_of_against_data(con, run: RunResults) -> str:
    """An --as-of days after the newest data is allowed (a profile stated at a chosen time), but
    every user then looks idle since; one before it replaces the published profile with a past
    one: say either."""
    from datetime import datetime

    from profiler.state import newest_data

    newest = newest_data(con)
    if run.as_of is None or newest is None:
        return ""
    as_of = datetime.fromisoformat(run.as_of)
    if as_of < newest:  # helper-37: a look at the past replaced what BI and audiences read, unsaid
        if not any(r.action != "skip" and r.status == "success" for r in run.results):
            return ""  # nothing was built as of then (helper-75: said after a refused build)
        return (
            f"note: the as-of is before the newest data ({newest}): the tables built (and the "
            "serving copy, when this build replaced it) show the profile as of then until a "
            "build without --as-of"
        )
    # calendar days, as the profile's recency counts them (helper-43: 6 said, 7 idle)
    days = (as_of.date() - newest.date()).days
    if days < 1:
        return ""
    return (
        f"note: the as-of is {days:,} calendar day(s) after the newest data ({newest}): "
        "windows, recency and lifecycle stages count up to it"
    )


ADDRESS_IDS_CHECKED = "address_ids_checked_through_batch"


def address_ids(con) -> str:
    """User ids that hold an e-mail address as sent: profiler before session 14 stored
    `Jane Doe <jane@x.com>` so, in the profile and its exports (helper-40), where ingest now
    keeps the address's pseudonym. Each batch is looked at until it is clean, then remembered."""
    from profiler.pii import email_sql
    from profiler.state import get_setting, has_table, max_batch, put_setting

    mark = int(get_setting(con, ADDRESS_IDS_CHECKED) or 0)
    found = []
    for source in ("events", "feedback", "users"):
        if not has_table(con, f"raw_{source}"):
            continue
        n, batches = con.execute(
            f"SELECT count(*), array_sort(list(DISTINCT _batch_id)) FROM raw_{source} "
            f"WHERE _batch_id > ? AND {email_sql('user_id')}",
            [mark],
        ).fetchone()
        if n:
            found.append(f"{n:,} in raw_{source} (batch {', '.join(map(str, batches[:5]))})")
    if not found:
        newest = max_batch(con)
        if newest > mark:  # nothing written when nothing was new
            put_setting(con, ADDRESS_IDS_CHECKED, str(newest))
        return ""
    return (
        f"WARNING: user ids that hold an e-mail address as sent, loaded by an older profiler: "
        f"{'; '.join(found)}; ingest those files again with --replace, which keeps only the "
        "address's pseudonym (the same user as the address's other rows)"
    )


def _catch_all_user(con) -> str:
    """User 0 or -1 with more than 3x the events of anyone else: guest checkouts as one customer
    (WooCommerce), said by each ingest only when that file shows it (helper-34: 32 daily files,
    a '0' with 38% of all spend)."""
    try:
        row = con.execute(
            "WITH u AS (SELECT user_id, events_lifetime AS n FROM user_profile) "
            "SELECT z.user_id, z.n, (SELECT max(n) FROM u WHERE user_id NOT IN ('0', '-1')) "
            "FROM u AS z WHERE z.user_id IN ('0', '-1') ORDER BY z.n DESC LIMIT 1"
        ).fetchone()
    except duckdb.Error:  # a project whose profile has no events_lifetime
        return ""
    if not row or not row[1] or row[1] < 3 or row[1] <= 3 * (row[2] or 0):
        return ""
    return (
        f"WARNING: user {row[0]!r} has {row[1]:,} events, more than 3x anyone else ({row[2] or 0:,}):"
        " guest checkouts written as one customer? They merge strangers into one profile; map a "
        "column that names each guest (--map user_id=billing_email) and ingest again with --replace"
    )


def _stale_profile(con, run: RunResults) -> str:
    """When user_profile did not publish in this build: which build it still is."""
    mine = next((r for r in run.results if r.model == "user_profile"), None)
    if mine is None or mine.status == "success":
        return ""
    (as_of,) = con.execute(
        "SELECT max(as_of) FROM _profiler.models WHERE name = 'user_profile'"
    ).fetchone()
    which = f"the build as of {as_of}" if as_of else "a build from before the data was replaced"
    built = any(r.action != "skip" and r.status == "success" for r in run.results)
    return (
        f"WARNING: user_profile was not rebuilt ({mine.status}: see above); it still holds "
        f"{which}"
        # helper-75: said after a build that published nothing
        + (
            ", while the tables that did publish hold the new data"
            if built
            else "; nothing was published"
        )
    )


def _cleaning(con) -> str:
    """What cleaning left out of the profile, with the tables that list it; '' when nothing."""
    have = {
        f"{table}.{column}"
        for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = "
            "current_database() AND table_schema = 'main' AND table_name IN "
            "('stg_event_repeats', 'stg_bot_bursts', 'int_user_feedback_day')"
        ).fetchall()
    }
    parts = []
    if "stg_event_repeats.events" in have:
        extra, repeated = con.execute(
            "SELECT sum(copies - events), count(*) FILTER (WHERE copies > events) FROM stg_event_repeats"
        ).fetchone()
        if extra:  # lines left out, and the events they repeated (helper-30: "5 events" were 3)
            parts.append(
                f"{extra:,} exact repeat line(s) of {repeated:,} event(s) left out, each event "
                "counted once (stg_event_repeats)"
            )
    if "int_user_feedback_day.repeats" in have:
        (extra,) = con.execute("SELECT sum(repeats) FROM int_user_feedback_day").fetchone()
        if extra:
            parts.append(
                f"{extra:,} feedback line(s) a file had sent already left out "
                "(int_user_feedback_day)"
            )
    if "stg_bot_bursts.user_id" in have:
        (days,) = con.execute("SELECT count(*) FROM stg_bot_bursts").fetchone()
        if days:
            parts.append(f"{days:,} bot-like user-day(s), their browsing left out (stg_bot_bursts)")
            parts.extend(_bots_only(con))
    return "; ".join(parts)


def _bots_only(con) -> list[str]:
    """Users whose every event was bot-like browsing: they have no profile row (helper-71: they
    were gone without a word)."""
    try:
        (users,) = con.execute(
            "SELECT count(DISTINCT b.user_id) FROM stg_bot_bursts AS b "
            "WHERE NOT EXISTS (SELECT 1 FROM int_users AS u WHERE u.user_id = b.user_id)"
        ).fetchone()
    except duckdb.Error:  # a project without int_users
        return []
    return [f"{users:,} user(s) with nothing else, so no profile"] if users else []


def _feedback_after(con, as_of) -> int:
    """Feedback rows newer than the build's as-of (the newest event, unless --as-of said)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = 'raw_feedback'"
    ).fetchone()[0]
    if not exists or as_of is None:
        return 0
    return con.execute("SELECT count(*) FROM raw_feedback WHERE ts > ?", [as_of]).fetchone()[0]
