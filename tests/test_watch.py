"""`profiler watch`: a landing folder of a shop's own exports, read the way `ingest` reads them.

The exports are REES46's real purchases (`../shared/data`), rewritten as an orders export (no event
type column, US times, the buyer in a column no synonym knows) and as an Amazon-style reviews export
(no kind column, Unix times).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from conftest import TAOBAO, rees46_purchases, run_cli, sql_project

OPTIONS = ("--event-type", "purchase", "--kind", "review", "--ts-format", "%m/%d/%Y %H:%M")


@pytest.fixture(autouse=True)
def _quick_second_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--once` looks at each file twice, a second apart; here nothing writes between the looks
    but the test that says so."""
    import profiler.watch as watch

    monkeypatch.setattr(watch, "ONCE_SETTLE", 0.05)


def landing(root: Path) -> tuple[Path, list[tuple[str, datetime, str, float]]]:
    """`root/events/orders.csv` and `root/feedback/reviews.csv` as the shop exports them."""
    buys = rees46_purchases()
    (root / "events").mkdir(parents=True)
    (root / "feedback").mkdir()
    orders = "".join(
        f"{i},{item},1,{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d},{price},{user}\n"
        for i, (user, t, item, price) in enumerate(buys)
    )
    (root / "events" / "orders.csv").write_text(
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,buyer\n" + orders
    )
    reviews = "".join(
        f"{user},{item},{int(t.timestamp()) + 86400},{1 + i % 5},fine\n"
        for i, (user, t, item, _) in enumerate(buys[:20])
    )
    (root / "feedback" / "reviews.csv").write_text(
        "reviewerID,asin,unixReviewTime,overall,reviewText\n" + reviews
    )
    return root, buys


def test_watch_reads_each_folder_with_its_options(tmp_path: Path) -> None:
    land, buys = landing(tmp_path / "landing")
    (land / "events.parquet").write_bytes(b"PAR1")  # where `generate --out` puts its files
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    out = run_cli(
        "watch", str(land), "--once", "--map", "events.user_id=buyer", *OPTIONS,
        warehouse=wh, project=project,
    )  # fmt: skip
    # helper-54: files beside the source folders were left unread, unsaid
    assert f"note: files in {land} itself are not read (events.parquet)" in out
    assert "214 loaded, 0 quarantined of 214 lines" in out
    assert "read: user_id <- buyer, ts <- InvoiceDate, item_id <- StockCode" in out
    assert "ignored (no canonical column; --map names one): InvoiceNo" in out
    assert "20 loaded, 0 quarantined of 20 lines" in out
    assert "exact repeat" not in out  # equal purchase lines of one file are separate purchases
    # reviews come a day after the purchase, so after the newest event: the build says so
    assert "20 feedback row(s) are newer than the as-of and not in the profile yet" in out
    assert (land / "events" / "_loaded" / "orders.csv").exists()
    assert (land / "feedback" / "_loaded" / "reviews.csv").exists()
    with duckdb.connect(str(wh), read_only=True) as con:
        events = con.execute(
            "SELECT user_id, ts, item_id, price, event_type FROM raw_events ORDER BY ALL"
        ).fetchall()
        kinds = con.execute("SELECT kind, count(*) FROM raw_feedback GROUP BY ALL").fetchall()
        profiled = con.execute("SELECT count(*), sum(purchases_lifetime) FROM user_profile")
        users, bought = profiled.fetchone()
    assert events == sorted((u, t, i, p, "purchase") for u, t, i, p in buys)
    assert kinds == [("review", 20)]
    # watch built the profile; cut to the minute, two purchases equal another line of the file:
    # REES46 logged them seconds apart, and they count as the separate purchases they are
    assert (users, bought) == (len({b[0] for b in buys}), len(buys))
    assert len(set(buys)) == 212 and len(buys) == 214
    # a build as of the newest review has it in the profile: nothing is newer
    with duckdb.connect(str(wh), read_only=True) as con:
        (newest,) = con.execute("SELECT max(ts) FROM raw_feedback").fetchone()
    at = run_cli("build", "--as-of", newest.isoformat(), warehouse=wh, project=project)
    assert "newer than the as-of" not in at, at
    # a build given --as-of is not told to give --as-of (helper-63)
    past = run_cli("build", "--as-of", "2019-10-01T12:00:00", warehouse=wh, project=project)
    assert (
        "newer than the as-of and not in the profile yet: a build at a later as-of counts"
        in " ".join(past.split())
    )


def test_watch_without_the_options_rejects_the_export_with_the_reason(tmp_path: Path) -> None:
    land, _ = landing(tmp_path / "landing")
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "p")
    run_cli("watch", str(land), "--once", warehouse=wh, project=project, ok=False)
    reason = (land / "events" / "_rejected" / "orders.csv.reason.txt").read_text()
    assert "--event-type purchase" in reason
    # moved back and read with the option it lacked, it loads; its old reason goes (helper-39)
    (land / "events" / "_rejected" / "orders.csv").replace(land / "events" / "orders.csv")
    run_cli("watch", str(land), "--once", "--map", "events.user_id=buyer", *OPTIONS,
            warehouse=wh, project=project)  # fmt: skip
    assert (land / "events" / "_loaded" / "orders.csv").exists()
    assert list((land / "events" / "_rejected").iterdir()) == []


def test_watch_refuses_bad_options_before_touching_anything(tmp_path: Path) -> None:
    land, _ = landing(tmp_path / "landing")
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    for bad, said in [
        (("--map", "user_id=buyer"), "SOURCE.TARGET=COLUMN"),
        (("--map", "events.buyer=user_id"), "'buyer' is not a column of source events"),
        (("--event-type", "refund"), "choose one of: view, cart, fav, purchase, search"),
        (("--ts-format", "%Q"), "--ts-format '%Q'"),
        (("--encoding", "klingon"), "--encoding 'klingon': not an encoding"),
        # repeated or half-given: refused, not read otherwise than asked (the last one winning)
        (("--map", "events.price"), "--map 'price' must look like TARGET=COLUMN"),
        (("--event-type", "purchase", "--event-type", "view"), "--event-type given twice"),
        (("--columns", "events=a,b", "--columns", "events=c,d"), "name the source first, once"),
    ]:
        out = run_cli("watch", str(land), "--once", *bad, warehouse=wh, project=project, ok=False)
        assert said in out and len(out.strip().splitlines()) == 1, out
    assert not wh.exists()
    assert sorted(p.name for p in (land / "events").iterdir()) == ["orders.csv"]


def test_watch_reads_a_folder_of_files_without_a_header_line(tmp_path: Path) -> None:
    """`--columns events=...` names the columns of the files in events/ (Taobao's own
    UserBehavior.csv has no header line); other folders keep reading their headers."""
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    land = tmp_path / "landing"
    (land / "events").mkdir(parents=True)
    body = TAOBAO.read_text().split("\n", 1)[1]
    (land / "events" / "UserBehavior.csv").write_text(body)
    columns = "events=user_id,item_id,category_id,event_type,ts"
    out = run_cli("watch", str(land), "--once", "--columns", columns, warehouse=wh, project=project)
    assert "94,287 loaded, 0 quarantined of 94,287 lines" in out
    for bad, said in [
        ("user_id,item_id", "name the source first, once, as SOURCE=A,B,C"),
        ("orders=user_id,ts", "name the source first"),
        ("events=user_id,,ts", "an empty name"),
    ]:
        out = run_cli("watch", str(land), "--once", "--columns", bad, warehouse=wh,
                      project=project, ok=False)  # fmt: skip
        assert said in out and len(out.strip().splitlines()) == 1, out


def test_what_a_file_says_is_printed_as_text_never_as_markup(tmp_path: Path) -> None:
    """Summaries and errors quote a file's column names and values; `[/x]` there is text."""
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    land = tmp_path / "landing"
    (land / "events").mkdir(parents=True)
    text = "user_id,event_type,ts,[/x]\n1,[/b],2019-10-01,a\n2,view,2019-10-01,b\n"
    (land / "events" / "odd.csv").write_text(text)
    out = run_cli("watch", str(land), "--once", warehouse=wh, project=project)
    assert "unknown_event_type ('[/b]' 1)" in out and "ignored" in out and "[/x]" in out
    (tmp_path / "again.csv").write_text(text.replace("[/x]", "[/y]"))
    out = run_cli("ingest", "events", str(tmp_path / "again.csv"), warehouse=wh, project=project)
    assert "('[/b]' 1)" in out and "[/y]" in out
    bad = run_cli("ingest", "events", str(tmp_path / "again.csv"), "--map", "[/z]=user_id",
                  warehouse=wh, project=project, ok=False)  # fmt: skip
    assert "[/z]" in bad and len(bad.strip().splitlines()) == 1


def test_event_type_codes_map_to_the_vocabulary(tmp_path: Path) -> None:
    """Tmall's user_log says what happened with codes (0 click, 1 cart, 2 purchase, 3 favourite):
    Taobao's lines rewritten that way, with one code (4) the shop never explained."""
    code = {"pv": "0", "cart": "1", "buy": "2", "fav": "3"}
    lines = TAOBAO.read_text().splitlines()[1:301]
    body = "".join(
        f"{u},{i},{c},{'4' if n == 7 else code[k]},{t}\n"
        for n, (u, i, c, k, t) in enumerate(line.split(",") for line in lines)
    )
    path = tmp_path / "user_log.csv"
    path.write_text("user_id,item_id,cat_id,action_type,time_stamp\n" + body)
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    codes = ["0=view", "1=cart", "2=purchase", "3=fav"]
    options = [x for c in codes for x in ("--event-type", c)]
    args = ["ingest", "events", str(path), "--map", "event_type=action_type", *options]
    out = run_cli(*args, warehouse=wh, project=project)
    assert "299 loaded, 1 quarantined" in out and "unknown_event_type ('4' 1)" in out
    # `watch` reads the codes of files landing in events/ alike
    (tmp_path / "landing" / "events").mkdir(parents=True)
    (tmp_path / "landing" / "events" / path.name).write_bytes(path.read_bytes())
    watched = tmp_path / "watched.duckdb"
    run_cli("watch", str(tmp_path / "landing"), "--once", "--map", "events.event_type=action_type",
            *options, warehouse=watched, project=project)  # fmt: skip
    named = {"pv": "view", "buy": "purchase"}
    expected: dict[str, int] = {}
    for n, line in enumerate(lines):
        if n != 7:
            kind = named.get(line.split(",")[3], line.split(",")[3])
            expected[kind] = expected.get(kind, 0) + 1
    for loaded in (wh, watched):
        with duckdb.connect(str(loaded), read_only=True) as con:
            got = con.execute("SELECT event_type, count(*) FROM raw_events GROUP BY ALL")
            assert dict(got.fetchall()) == expected, loaded
    for bad, said in [
        (["--event-type", "purchase", "--event-type", "0=view"], "keep one kind"),
        (["--event-type", "0=refund"], "'refund' is not one of the event types"),
        (["--event-type", "0=view", "--event-type", "0=purchase"], "mapped twice"),
        (["--event-type", "=cart"], "name the value the file sends"),
    ]:
        out = run_cli("ingest", "events", str(path), *bad, warehouse=wh, project=project, ok=False)
        assert said in out and len(out.strip().splitlines()) == 1, out


def test_a_file_of_which_nothing_loaded_is_not_a_success(tmp_path: Path) -> None:
    """The orders export read without its time format: every line is quarantined. `ingest`
    exits non-zero (a scheduler must notice) and `watch` puts the file in `_rejected/`, from
    where it can be dropped in again with the right options."""
    land, _ = landing(tmp_path / "landing")
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    orders = land / "events" / "orders.csv"
    (tmp_path / "orders.csv").write_bytes(orders.read_bytes())
    args = ["--map", "user_id=buyer", "--event-type", "purchase"]
    out = run_cli("ingest", "events", str(tmp_path / "orders.csv"), *args,
                  warehouse=wh, project=project, ok=False)  # fmt: skip
    assert "0 loaded, 214 quarantined" in out and "error: nothing loaded from 214 lines" in out
    (land / "feedback" / "reviews.csv").unlink()
    out = run_cli("watch", str(land), "--once", "--map", "events.user_id=buyer", *args[2:],
                  warehouse=wh, project=project, ok=False)  # fmt: skip
    assert "rejected orders.csv: nothing loaded from 214 lines" in out, out
    reason = (land / "events" / "_rejected" / "orders.csv.reason.txt").read_text()
    assert reason.startswith("nothing loaded") and "bad_timestamp" in reason
    with duckdb.connect(str(wh), read_only=True) as con:  # each send's lines once, in quarantine
        assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (214,)


def test_watch_rejects_a_file_cut_short_as_ingest_fails_it(tmp_path: Path) -> None:
    """helper-84: `ingest` fails a file that ends inside its last line (cut short), but `watch`
    archived it in `_loaded/`, built on it and said 0. Both now apply one rule: the file goes to
    `_rejected/` with the way out, nothing of it loads, and `--once` exits 1; the whole file
    dropped in after it loads once. Taobao."""
    lines = TAOBAO.read_text().splitlines()
    land, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    project = sql_project(tmp_path / "project")
    events = land / "events"
    events.mkdir(parents=True)
    cut = "\n".join(lines[:101]) + "\n" + lines[101][:12]  # a line stopped halfway
    (events / "day.csv").write_text(cut)
    (tmp_path / "day.csv").write_text(cut)
    said = run_cli("ingest", "events", str(tmp_path / "day.csv"), warehouse=tmp_path / "i.duckdb",
                   project=project, ok=False)  # fmt: skip
    assert "day.csv ends in the middle of its last line" in said, said
    out = run_cli("watch", str(land), "--once", warehouse=wh, project=project, ok=False)
    assert "rejected day.csv: day.csv ends in the middle of its last line" in out, out
    assert not (events / "_loaded").exists() or not list((events / "_loaded").iterdir())
    reason = (events / "_rejected" / "day.csv.reason.txt").read_text()
    assert "(cut short?): nothing of it loaded" in reason
    assert "send it whole with --replace-batch 1, which takes them out" in reason
    with duckdb.connect(str(wh), read_only=True) as con:  # nothing loaded, as with ingest
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (0,)
    (events / "day.csv").write_text("\n".join(lines[:102]) + "\n")  # sent whole
    run_cli("watch", str(land), "--once", warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (101,)


def test_watch_takes_every_file_and_overwrites_none(tmp_path: Path) -> None:
    """Two exports under one name are both kept in `_loaded/`; a `.tsv` is read like `ingest`
    reads it; a spreadsheet is rejected with the reason, not left lying there unsaid. Taobao."""
    lines = TAOBAO.read_text().splitlines()
    land, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    project = sql_project(tmp_path / "project")
    events = land / "events"
    events.mkdir(parents=True)
    (events / "day.csv").write_text("\n".join(lines[:101]) + "\n")
    run_cli("watch", str(land), "--once", warehouse=wh, project=project)
    (events / "day.csv").write_text("\n".join([lines[0], *lines[101:201]]) + "\n")
    (events / "more.tsv").write_text(
        "\n".join(x.replace(",", "\t") for x in [lines[0], *lines[201:251]])
    )
    (events / "orders.xlsx").write_bytes(b"PK\x03\x04 not a csv")
    out = run_cli("watch", str(land), "--once", warehouse=wh, project=project, ok=False)
    assert sorted(p.name for p in (events / "_loaded").iterdir()) == [
        "day.2.csv",
        "day.csv",
        "more.tsv",
    ]
    reason = (events / "_rejected" / "orders.xlsx.reason.txt").read_text()
    assert "unknown file type .xlsx" in reason and "rejected" in out
    # a third under the name overwrites neither (helper-97: an `if` for the `while` went unseen)
    (events / "day.csv").write_text("\n".join([lines[0], *lines[251:301]]) + "\n")
    run_cli("watch", str(land), "--once", warehouse=wh, project=project)
    kept = sorted(p.name for p in (events / "_loaded").iterdir())
    assert kept == ["day.2.csv", "day.3.csv", "day.csv", "more.tsv"]
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (300,)


def test_watch_reads_a_partitioned_export_and_archives_each_part_beside_it(tmp_path: Path) -> None:
    """A Spark or Hive export lands as `events/dt=.../part-0.parquet`: watch read none of it and
    said nothing (helper-61). Taobao's lines in three day partitions, each part under one name;
    a second scan takes nothing again."""
    lines = TAOBAO.read_text().splitlines()
    land, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    project = sql_project(tmp_path / "project")
    for n in range(3):
        part = land / "events" / f"dt=2017-11-2{n}"
        part.mkdir(parents=True)
        body = "\n".join([lines[0], *lines[1 + 100 * n : 101 + 100 * n]]) + "\n"
        (part / "part-0.csv").write_text(body)
        (part / "_SUCCESS").write_text("")
    (land / "events" / "_SUCCESS").write_text("")  # Spark's, in the output folder itself
    # what Spark writes beside its output is never read nor moved (helper-65)
    attempt = land / "events" / "_temporary" / "0" / "attempt_1" / "dt=2017-11-20"
    attempt.mkdir(parents=True)
    (attempt / "part-0.csv").write_text("\n".join(lines[:50]) + "\n")
    run_cli("watch", str(land), "--once", warehouse=wh, project=project)
    assert (attempt / "part-0.csv").exists() and (
        land / "events" / "dt=2017-11-20" / "_SUCCESS"
    ).exists()
    assert (land / "events" / "_SUCCESS").exists()
    for n in range(3):
        assert [p.name for p in (land / "events" / f"dt=2017-11-2{n}" / "_loaded").iterdir()] == [
            "part-0.csv"
        ]
    run_cli("watch", str(land), "--once", warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT _batch_id) FROM raw_events"
        ).fetchone() == (
            300,
            3,
        )


def test_a_mapped_value_wins_over_a_synonym_whatever_its_case(tmp_path: Path) -> None:
    """A shop whose `Buy` means a view (a "buy box" impression): the mapping is compared the way
    synonyms are, so `Buy`, `buy` and `BUY` are all views, not purchases. Taobao's lines."""
    lines = TAOBAO.read_text().splitlines()[1:41]
    sent = ["Buy", "buy", "BUY", "pv"]
    fields = [line.split(",") for line in lines]
    body = "".join(f"{u},{i},{c},{sent[n % 4]},{t}\n" for n, (u, i, c, _, t) in enumerate(fields))
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,category_id,behavior_type,ts\n" + body)
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    run_cli(
        "ingest", "events", str(path), "--event-type", "buy=view", warehouse=wh, project=project
    )
    with duckdb.connect(str(wh), read_only=True) as con:
        got = con.execute("SELECT event_type, count(*) FROM raw_events GROUP BY ALL").fetchall()
    assert got == [("view", 40)]


def test_watch_leaves_writers_files_and_a_file_renamed_over_alone(
    tmp_path: Path, monkeypatch
) -> None:
    """Files still being written (`.part`, `~$`) are not taken; a file renamed onto the name
    being ingested is not archived unread but taken at the next scan. Taobao's lines."""
    from rich.console import Console

    import profiler.commands as commands
    from profiler.settings import load_settings
    from profiler.watch import watch_folder

    lines = TAOBAO.read_text().splitlines()
    land = tmp_path / "landing"
    events = land / "events"
    events.mkdir(parents=True)
    (events / "day.csv").write_text("\n".join(lines[:101]) + "\n")
    (events / "next.csv.part").write_text("\n".join(lines[:11]) + "\n")
    (events / "~$orders.xlsx").write_bytes(b"lock")
    real = commands.ingest_file

    def ingest_then_rename_over(settings, source, path, mapping, reading=None):
        result = real(settings, source, path, mapping, reading)
        if path.name == "day.csv" and not (tmp_path / "renamed").exists():
            (tmp_path / "renamed").write_text("")
            tmp = events / ".day.csv.tmp"
            tmp.write_text("\n".join([lines[0], *lines[101:151]]) + "\n")
            tmp.replace(path)  # the shop's writer finishes its next export under the same name
        return result

    monkeypatch.setattr(commands, "ingest_file", ingest_then_rename_over)
    settings = load_settings(sql_project(tmp_path / "project"), tmp_path / "wh.duckdb")
    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115
    watch_folder(settings, land, 0, quiet, once=True)
    assert not (events / "_loaded").exists() and (events / "day.csv").exists()
    watch_folder(settings, land, 0, quiet, once=True)
    assert sorted(p.name for p in (events / "_loaded").iterdir()) == ["day.csv"]
    assert sorted(p.name for p in events.iterdir()) == ["_loaded", "next.csv.part", "~$orders.xlsx"]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (150,)


def test_watch_once_takes_files_in_the_order_they_landed(tmp_path: Path) -> None:
    """A newer users file must load later to win: `--once` took `export_10` before `export_9`
    by name, so the older city won (helper-23). The fixture's customer 1 moving twice."""
    import os

    land = tmp_path / "landing"
    (land / "users").mkdir(parents=True)
    (land / "events").mkdir()
    (land / "events" / "e.csv").write_text("user_id,event_type,ts\n1,view,2017-11-20 10:00:00\n")
    for n, (name, city) in enumerate((("export_9.csv", "Ningbo"), ("export_10.csv", "Suzhou"))):
        path = land / "users" / name
        path.write_text(f"customer_id,city\n1,{city}\n")
        os.utime(path, (1_700_000_000 + n * 60, 1_700_000_000 + n * 60))  # 9 landed first
    wh = tmp_path / "wh.duckdb"
    events = (land / "events" / "e.csv").rename(tmp_path / "e.csv")
    out = run_cli("watch", str(land), "--once", warehouse=wh, project=sql_project(tmp_path / "p"))
    assert "no events yet: the profile is built once events arrive" in out  # helper-32: silent
    events.rename(land / "events" / "e.csv")
    run_cli("watch", str(land), "--once", warehouse=wh, project=sql_project(tmp_path / "p2"))
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT city FROM int_users WHERE user_id = '1'").fetchone() == (
            "Suzhou",
        )


def test_a_busy_warehouse_leaves_the_file_and_a_restart_builds_what_was_ingested(
    tmp_path: Path,
) -> None:
    """helper-29: a file that landed while a build held the warehouse went to `_rejected/` as
    if it were bad, and a watch stopped between ingest and build never built that data. The
    message is one line however long the warehouse's path (helper-104: wrapped at the
    terminal's width, a log's grep for the file missed it)."""
    from profiler.lock import warehouse_lock

    land, buys = landing(tmp_path / "landing")
    (land / "feedback" / "reviews.csv").unlink()
    deep = tmp_path / "a_folder_with_a_long_name" / ("shop_warehouses_" * 8)
    deep.mkdir(parents=True)
    wh, project = deep / "wh.duckdb", sql_project(tmp_path / "project")
    args = ("watch", str(land), "--once", "--map", "events.user_id=buyer", *OPTIONS)
    with warehouse_lock(wh, "build"):
        out = run_cli(*args, warehouse=wh, project=project)
    said = [line for line in out.splitlines() if line.startswith("orders.csv:")]
    assert len(said) == 1 and "is busy" in said[0] and "left for the next scan" in said[0], out
    assert (land / "events" / "orders.csv").exists() and not (
        land / "events" / "_rejected"
    ).exists()
    # ingested, then stopped before its build: the next watch builds it, with nothing new landed
    events = land / "events" / "orders.csv"
    run_cli("ingest", "events", str(events), "--event-type", "purchase", "--map", "user_id=buyer",
            "--ts-format", "%m/%d/%Y %H:%M", warehouse=wh, project=project)  # fmt: skip
    events.unlink()
    run_cli(*args, warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT sum(purchases_lifetime) FROM user_profile").fetchone() == (
            len(buys),
        )


def test_a_reader_holding_the_warehouse_does_not_get_a_file_rejected(tmp_path: Path) -> None:
    """helper-34: any other open connection (an analyst's read-only one) made a landing file go
    to `_rejected/` ("Conflicting lock"), never retried, and a watch started then stopped."""
    import subprocess
    import sys

    land, _ = landing(tmp_path / "landing")
    (land / "feedback" / "reviews.csv").unlink()
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=project)
    reader = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(wh)!r}, read_only=True); print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert reader.stdout.readline().strip() == "open"
        args = ("watch", str(land), "--once", "--map", "events.user_id=buyer", *OPTIONS)
        out = run_cli(*args, warehouse=wh, project=project)
        assert "left for the next scan" in out, out
        assert (land / "events" / "orders.csv").exists()
        assert not (land / "events" / "_rejected").exists()
    finally:
        reader.kill()
        reader.wait()


def test_guest_orders_as_customer_0_over_daily_files_are_warned_at_the_build(
    tmp_path: Path,
) -> None:
    """helper-34: split into daily files, WooCommerce's guest customer 0 was warned about by few
    ingests and by no build, while it held 38% of the spend. REES46's purchases, every third a
    guest's, in files of 5 lines."""
    buys = rees46_purchases()[:60]
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    for day in range(0, len(buys), 5):
        path = tmp_path / f"orders_{day}.csv"
        path.write_text("customer_id,order_date,product_id,price\n" + "".join(
            f"{'0' if n % 3 == 0 else u},{t:%Y-%m-%d %H:%M:%S},{i},{p}\n"
            for n, (u, t, i, p) in enumerate(buys[day:day + 5], start=day)
        ))  # fmt: skip
        run_cli(
            "ingest", "events", str(path), "--event-type", "purchase", warehouse=wh, project=project
        )
    out = " ".join(run_cli("build", warehouse=wh, project=project).split())
    assert "WARNING: user '0' has 20 events, more than 3x anyone else" in out, out
    # ids that start at 0: Taobao's busiest user (539 events, the next 504) as 0 is no guest
    first = tmp_path / "first_id_0.csv"
    first.write_text(TAOBAO.read_text().replace("\n1000664,", "\n0,"))
    wh = tmp_path / "ids.duckdb"
    run_cli("ingest", "events", str(first), warehouse=wh, project=project)
    assert "user '0'" not in run_cli("build", warehouse=wh, project=project)


def test_watch_once_exits_non_zero_when_its_build_is_refused(tmp_path: Path) -> None:
    """helper-81: `watch --once` exited 0 after a build its gate refused, so a scheduler saw a
    success. A source's suite that the landed orders fail (a price above 1) refuses the build."""
    import json

    land, _ = landing(tmp_path / "landing")
    wh, project = tmp_path / "wh.duckdb", sql_project(tmp_path / "project")
    (project / "expectations").mkdir(exist_ok=True)
    rule = {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "price", "max_value": 1},
    }
    (project / "expectations" / "raw_events.json").write_text(
        json.dumps({"name": "raw_events", "expectations": [rule]})
    )
    out = run_cli(
        "watch", str(land), "--once", "--map", "events.user_id=buyer", *OPTIONS,
        warehouse=wh, project=project, ok=False,
    )  # fmt: skip
    assert "new batches of raw_events refused by its suite" in " ".join(out.split()), out


def _watch_in_process(tmp_path: Path):
    """The settings of a fresh warehouse over the SQL project, and a console that prints nowhere."""
    from rich.console import Console

    from profiler.settings import load_settings

    settings = load_settings(sql_project(tmp_path / "project"), tmp_path / "wh.duckdb")
    return settings, Console(file=open(os.devnull, "w"))  # noqa: SIM115


def _land_taobao(events: Path, names: tuple[str, ...], per_file: int) -> list[str]:
    """Taobao's lines, `per_file` of them (after the header) to each file of `names` in turn,
    landed in that order; returns the file's lines."""
    lines = TAOBAO.read_text().splitlines()
    events.mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(names):
        body = lines[1 + per_file * n : 1 + per_file * (n + 1)]
        (events / name).write_text("\n".join([lines[0], *body]) + "\n")
        os.utime(events / name, (1_700_000_000 + n * 60, 1_700_000_000 + n * 60))
    return lines


def _profiled(wh: Path) -> int | None:
    """Users in the built profile; None before any build published it."""
    with duckdb.connect(str(wh), read_only=True) as con:
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "user_profile" not in tables:
            return None
        return con.execute("SELECT count(*) FROM user_profile").fetchone()[0]


def test_watch_takes_a_file_once_its_size_stops_and_builds_again_after_a_busy_build(
    tmp_path: Path, monkeypatch
) -> None:
    """Without `--once`: a file still growing is not taken (a half-copied export would load half
    of itself, once); taken once its size held for a scan; a build kept out by another writer is
    not the watch's end, and the next scan builds what arrived. Taobao's lines, copied in two
    halves; each scan's pause runs the next step."""
    import profiler.commands as commands
    import profiler.watch as watch
    from profiler.lock import Busy

    lines = TAOBAO.read_text().splitlines()
    events = tmp_path / "landing" / "events"
    events.mkdir(parents=True)
    day = events / "day.csv"
    day.write_text("\n".join(lines[:51]) + "\n")  # the copy is halfway
    settings, quiet = _watch_in_process(tmp_path)
    real_build, builds = commands.build_project, []

    def build_busy_once(*args):
        builds.append(1)
        if len(builds) == 1:
            raise Busy(f"{settings.warehouse} is busy: `profiler build` (pid 1) holds it")
        return real_build(*args)

    monkeypatch.setattr(commands, "build_project", build_busy_once)

    def copied_rest():
        assert day.exists() and not (events / "_loaded").exists()  # seen once: not taken
        with day.open("a") as fh:
            fh.write("\n".join(lines[51:101]) + "\n")

    def still_growing():  # its size changed since the last scan: not taken yet
        assert day.exists() and not (events / "_loaded").exists()

    def taken_and_build_busy():
        assert [p.name for p in (events / "_loaded").iterdir()] == ["day.csv"]
        assert builds == [1] and _profiled(settings.warehouse) is None

    def built_at_the_next_scan():
        assert _profiled(settings.warehouse) == len({line.split(",")[0] for line in lines[1:101]})

    steps = [copied_rest, still_growing, taken_and_build_busy, built_at_the_next_scan]

    def scripted_sleep(seconds, stop):
        steps.pop(0)()
        stop.requested = not steps

    monkeypatch.setattr(watch, "_sleep", scripted_sleep)
    assert watch.watch_folder(settings, tmp_path / "landing", 0, quiet)
    assert steps == []
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (100,)


def test_sigterm_stops_the_watch_between_files_and_before_its_build(
    tmp_path: Path, monkeypatch
) -> None:
    """A SIGTERM during the first of two files: that file finishes and is archived, the second
    stays where it landed, nothing is built; the next watch takes the second and builds both.
    Taobao's lines in two files."""
    import signal

    import profiler.commands as commands
    from profiler.watch import watch_folder

    land = tmp_path / "landing"
    events = land / "events"
    lines = _land_taobao(events, ("a.csv", "b.csv"), 100)
    real = commands.ingest_file

    def ingest_then_sigterm(settings, source, path, mapping, reading=None):
        result = real(settings, source, path, mapping, reading)
        if path.name == "a.csv":
            os.kill(os.getpid(), signal.SIGTERM)  # the service manager stops the watch
        return result

    monkeypatch.setattr(commands, "ingest_file", ingest_then_sigterm)
    settings, quiet = _watch_in_process(tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    watch_folder(settings, land, 0, quiet, once=True)
    assert signal.getsignal(signal.SIGTERM) == before
    assert [p.name for p in (events / "_loaded").iterdir()] == ["a.csv"]
    assert (events / "b.csv").exists() and _profiled(settings.warehouse) is None
    monkeypatch.setattr(commands, "ingest_file", real)
    assert watch_folder(settings, land, 0, quiet, once=True)
    assert sorted(p.name for p in (events / "_loaded").iterdir()) == ["a.csv", "b.csv"]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (200,)
    assert _profiled(settings.warehouse) == len({line.split(",")[0] for line in lines[1:201]})


def test_a_refused_file_renamed_over_while_read_is_not_rejected_in_its_place(
    tmp_path: Path, monkeypatch
) -> None:
    """The file ingest refused (no time column) is replaced under its name by the shop's whole
    export while it was read: the export is not put in `_rejected/` with the other file's reason,
    but taken at the next scan. Taobao's lines."""
    import profiler.commands as commands
    from profiler.errors import ProfilerError
    from profiler.watch import watch_folder

    lines = TAOBAO.read_text().splitlines()
    land = tmp_path / "landing"
    events = land / "events"
    events.mkdir(parents=True)
    day = events / "day.csv"
    day.write_text("user_id,item_id\n" + "".join(f"{x.split(',')[0]},1\n" for x in lines[1:11]))
    real = commands.ingest_file

    def refused_then_renamed_over(settings, source, path, mapping, reading=None):
        try:
            return real(settings, source, path, mapping, reading)
        except ProfilerError:
            tmp = events / ".day.csv.tmp"
            tmp.write_text("\n".join(lines[:101]) + "\n")
            tmp.replace(path)
            raise

    monkeypatch.setattr(commands, "ingest_file", refused_then_renamed_over)
    settings, quiet = _watch_in_process(tmp_path)
    watch_folder(settings, land, 0, quiet, once=True)
    assert day.exists() and not (events / "_rejected").exists()
    monkeypatch.setattr(commands, "ingest_file", real)
    assert watch_folder(settings, land, 0, quiet, once=True)
    assert [p.name for p in (events / "_loaded").iterdir()] == ["day.csv"]


def test_a_file_loaded_under_a_rejected_ones_name_keeps_that_ones_reason(tmp_path: Path) -> None:
    """`orders.csv` refused (no time column) stays in `_rejected/` with its reason; a later,
    good `orders.csv` loads, and the rejected one's reason is still beside it. Taobao's lines."""
    lines = TAOBAO.read_text().splitlines()
    land, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    project = sql_project(tmp_path / "project")
    events = land / "events"
    events.mkdir(parents=True)
    (events / "orders.csv").write_text("user_id,item_id\n1,2\n")
    run_cli("watch", str(land), "--once", warehouse=wh, project=project, ok=False)
    (events / "orders.csv").write_text("\n".join(lines[:101]) + "\n")
    run_cli("watch", str(land), "--once", warehouse=wh, project=project)
    assert (events / "_loaded" / "orders.csv").exists()
    assert (events / "_rejected" / "orders.csv").exists()
    assert (
        "lacks required events column(s)"
        in (events / "_rejected" / "orders.csv.reason.txt").read_text()
    )


def test_watch_once_leaves_a_file_still_being_copied_in_for_the_next_run(
    tmp_path: Path, monkeypatch
) -> None:
    """helper-108: `--once` (from cron) took a file a `cp` or `scp` was still writing under its
    final name: 300 of its 1,000 lines loaded, the copier finished it inside `_loaded/`, and the
    rest never loaded, with exit 0. It now looks twice, `ONCE_SETTLE` apart: a file that grew in
    between waits for the next run, which loads it whole. Taobao's lines; the copier writes its
    second half during the pause."""
    import profiler.watch as watch

    events = tmp_path / "landing" / "events"
    lines = _land_taobao(events, ("day.csv",), 100)
    day = events / "day.csv"
    real_sleep = watch._sleep

    def copier_writes_on(seconds, stop):
        with day.open("a") as fh:
            fh.write("\n".join(lines[101:201]) + "\n")

    monkeypatch.setattr(watch, "_sleep", copier_writes_on)
    out = run_cli("watch", str(tmp_path / "landing"), "--once", warehouse=tmp_path / "wh.duckdb",
                  project=sql_project(tmp_path / "project"))  # fmt: skip
    assert "day.csv is still arriving" in out and "left for the next run" in out, out
    assert day.exists() and not (events / "_loaded").exists()
    monkeypatch.setattr(watch, "_sleep", real_sleep)
    run_cli("watch", str(tmp_path / "landing"), "--once", warehouse=tmp_path / "wh.duckdb",
            project=tmp_path / "project")  # fmt: skip
    assert [p.name for p in (events / "_loaded").iterdir()] == ["day.csv"]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (200,)


def test_a_first_watch_creates_the_warehouses_folder(tmp_path: Path) -> None:
    """A new shop's `PROFILER_WAREHOUSE` names a folder that does not exist yet: the lock file
    (taken before the warehouse is opened) creates it, and the first file loads. Taobao."""
    events = tmp_path / "landing" / "events"
    _land_taobao(events, ("day.csv",), 100)
    wh = tmp_path / "srv" / "shop" / "wh.duckdb"
    run_cli("watch", str(tmp_path / "landing"), "--once", warehouse=wh,
            project=sql_project(tmp_path / "project"))  # fmt: skip
    assert [p.name for p in (events / "_loaded").iterdir()] == ["day.csv"]
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (100,)


def test_a_file_taken_away_while_read_does_not_stop_the_watch(tmp_path: Path, monkeypatch) -> None:
    """The shop's cleanup deletes the file while it is being read: what was read stays loaded,
    nothing goes to `_loaded/`, the watch goes on (the next file loads) and builds. Taobao."""
    import profiler.commands as commands
    from profiler.watch import watch_folder

    events = tmp_path / "landing" / "events"
    lines = _land_taobao(events, ("a.csv", "b.csv"), 50)
    real = commands.ingest_file

    def ingest_then_deleted(settings, source, path, mapping, reading=None):
        result = real(settings, source, path, mapping, reading)
        if path.name == "a.csv":
            path.unlink()
        return result

    monkeypatch.setattr(commands, "ingest_file", ingest_then_deleted)
    settings, quiet = _watch_in_process(tmp_path)
    assert watch_folder(settings, tmp_path / "landing", 0, quiet, once=True)
    assert [p.name for p in (events / "_loaded").iterdir()] == ["b.csv"]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (100,)
    assert _profiled(settings.warehouse) == len({line.split(",")[0] for line in lines[1:101]})
