"""The profile on real data, one test per dimension: values the SQL computes for a handful of real
users equal the same values worked out here in plain Python from the CSV rows.

Data: the shared Taobao sample (928 users' complete history: views, carts, favs and buys, no
prices, no sessions) and the REES46 slice (prices, brands, category paths, session ids). Small
derived files are written by the tests themselves, each built from those rows or stated inline:
an overlapping re-export of Taobao rows (exact repeats), a bot-like burst, a users feed, a
feedback feed and a purchases-only feed.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import REES46, TAOBAO, lifecycle_stage, run_cli

PROFILE = ("--select", "+user_profile_history")  # the profile and everything it reads, nothing else
TAOBAO_TYPES = {"pv": "view", "cart": "cart", "fav": "fav", "buy": "purchase"}
WEIGHTS = {"view": 1.0, "fav": 2.0, "cart": 3.0, "purchase": 5.0}  # int_user_interests' rules
PLURAL = {
    "view": "views",
    "cart": "carts",
    "fav": "favs",
    "purchase": "purchases",
    "search": "searches",
}
HALF_LIFE = 30.0
REFERENCE_DAY = date(2020, 1, 1)
SESSION_GAP = 1800  # seconds


@dataclass(frozen=True)
class Event:
    user_id: str
    event_type: str
    ts: datetime
    item_id: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    session_id: str | None = None
    quantity: int | None = None
    amount: float | None = None

    @property
    def day(self) -> date:
        return self.ts.date()


def taobao_events() -> list[Event]:
    with TAOBAO.open(newline="") as f:
        return [
            Event(
                r["user_id"],
                TAOBAO_TYPES[r["behavior_type"]],
                datetime.fromtimestamp(int(r["ts"]), UTC).replace(tzinfo=None),
                r["item_id"],
                r["category_id"],
            )
            for r in csv.DictReader(f)
        ]


def rees46_events() -> list[Event]:
    with REES46.open(newline="") as f:
        rows = [
            Event(
                r["user_id"],
                r["event_type"],
                datetime.fromisoformat(r["event_time"].removesuffix(" UTC")),
                r["product_id"],
                r["category_code"] or r["category_id"],
                r["brand"].lower() or None,
                float(r["price"]),
                r["user_session"] or None,
            )
            for r in csv.DictReader(f)
        ]
    return list(dict.fromkeys(rows))  # exact repeats count once (the slice has five)


def by_user(events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        out[e.user_id].append(e)
    return out


def sessions_of(events: list[Event]) -> list[tuple[datetime, datetime, int]]:
    """(start, end, events) per session: session_id, else 30 minutes of inactivity; cut at midnight."""
    out = []
    by_key: dict[tuple, list[Event]] = defaultdict(list)
    for e in events:
        if e.session_id:
            by_key[(e.day, e.session_id)].append(e)
    for evs in by_key.values():
        out.append((min(e.ts for e in evs), max(e.ts for e in evs), len(evs)))
    per_day: dict[date, list[datetime]] = defaultdict(list)
    for e in events:
        if not e.session_id:
            per_day[e.day].append(e.ts)
    for times in per_day.values():
        times.sort()
        start = prev = times[0]
        n = 0
        for t in times:
            if (t - prev).total_seconds() > SESSION_GAP:
                out.append((start, prev, n))
                start, n = t, 0
            prev, n = t, n + 1
        out.append((start, prev, n))
    return out


def profile(wh: Path, user_ids: list[str] | None = None) -> dict[str, dict]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        cur = con.execute("SELECT * FROM user_profile ORDER BY user_id")
        cols = [d[0] for d in cur.description]
        rows = {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}
    finally:
        con.close()
    return rows if user_ids is None else {u: rows[u] for u in user_ids}


def query(wh: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def approx(x, rel=1e-9, abs_=1e-9):
    return pytest.approx(x, rel=rel, abs=abs_)


# --- fixtures: real samples plus small derived feeds ---------------------------------------------

BOT_USER = "bot_1"
BOT_ONLY_USER = "bot_only_1"  # nothing but a burst: no row, and the build says so (helper-71)
BOT_DAY = date(2017, 12, 1)
FEEDBACK_ROWS = [  # user, time, kind, item, rating, text: stated here, for three Taobao users and one new
    ["100101", "2017-10-01 10:00:00", "rating", "1", "5", ""],
    ["100101", "2017-11-30 09:00:00", "rating", "2", "4", ""],
    ["100101", "2017-12-01 12:00:00", "complaint", "3", "", "Arrived damaged"],
    ["1000417", "2017-11-25 08:00:00", "review", "4", "4", "Fine"],
    ["1000417", "2017-12-02 20:00:00", "rating", "5", "2", ""],
    ["1000417", "2017-12-02 20:05:00", "complaint", "5", "", "Late"],
    ["1000417", "2017-12-02 20:06:00", "complaint", "5", "", "Still late"],
    ["feedback_only_1", "2017-11-30 11:00:00", "like", "6", "", ""],
    ["feedback_only_2", "2017-11-30 12:00:00", "complaint", "6", "", "Never arrived"],
]
USERS_ROWS = [  # user, gender, birth year, city, signup: two Taobao users, one silent, one future
    ["100101", "F", "1990", "Hangzhou", "Zhejiang", "2015-03-01 00:00:00"],
    ["1000417", "Male", "2025", "Beijing", "Beijing", "2017-11-26 12:00:00"],  # born "later"
    # helpers 44, 45: Shopware's salutation Frau (and 여, Feminino) stayed as sent, never `f`
    ["registered_only_1", "Frau", "2001", "Shanghai", "Shanghai", "2017-06-01 00:00:00"],
    ["registered_later_1", "M", "1999", "Shanghai", "Shanghai", "2018-01-01 00:00:00"],
]


@pytest.fixture(scope="module")
def taobao_wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Taobao, plus an overlapping re-export of its first 2,000 rows (exact repeats across batches),
    a bot that fires 400 views in one minute (and one that does nothing else), a users feed and a
    feedback feed."""
    tmp = tmp_path_factory.mktemp("taobao")
    wh = tmp / "wh.duckdb"
    with TAOBAO.open(newline="") as f:
        rows = list(csv.reader(f))
    overlap = write_csv(tmp / "overlap.csv", rows[0], rows[1:2001])
    burst_start = datetime(2017, 12, 1, 10, 0, 0)
    bot = [
        [
            user,
            str(first_item + i),
            "2520377",
            "pv",
            str(int((burst_start + timedelta(seconds=i * 0.1)).replace(tzinfo=UTC).timestamp())),
        ]
        for user, first_item in ((BOT_USER, 5_000_000), (BOT_ONLY_USER, 6_000_000))
        for i in range(400)
    ] + [
        [
            BOT_USER,
            "5000999",
            "2520377",
            "pv",
            str(int(datetime(2017, 11, 30, 9, 0, tzinfo=UTC).timestamp())),
        ]
    ]
    bot_file = write_csv(tmp / "bot.csv", rows[0], bot)
    users = write_csv(
        tmp / "users.csv",
        ["user_id", "gender", "birth_year", "city", "region", "signup_ts"],
        USERS_ROWS,
    )
    feedback = write_csv(
        tmp / "feedback.csv", ["user_id", "ts", "kind", "item_id", "rating", "text"], FEEDBACK_ROWS
    )
    for source, path in (
        ("events", TAOBAO),
        ("events", overlap),
        ("events", bot_file),
        ("users", users),
        ("feedback", feedback),
    ):
        run_cli("ingest", source, str(path), warehouse=wh)
    (tmp / "build.out").write_text(run_cli("build", *PROFILE, warehouse=wh))
    return wh


@pytest.fixture(scope="module")
def rees46_wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wh = tmp_path_factory.mktemp("rees46") / "wh.duckdb"
    run_cli("ingest", "events", str(REES46), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    return wh


@pytest.fixture(scope="module")
def taobao() -> dict[str, list[Event]]:
    return by_user(taobao_events())


@pytest.fixture(scope="module")
def rees46() -> dict[str, list[Event]]:
    return by_user(rees46_events())


FEATURE_TABLES = ("behaviour_features", "preference_features", "rfm_features", "sentiment_features")


def taobao_as_of() -> datetime:
    return max(e.ts for e in taobao_events())


def chosen_taobao_users(taobao: dict[str, list[Event]]) -> list[str]:
    """The three users with the most purchase days, the user with the oldest event, and a browser."""
    purchase_days = {
        u: len({e.day for e in evs if e.event_type == "purchase"}) for u, evs in taobao.items()
    }
    top = sorted(taobao, key=lambda u: (-purchase_days[u], u))[:3]
    oldest = min(taobao, key=lambda u: min(e.ts for e in taobao[u]))
    browser = next(u for u in sorted(taobao) if purchase_days[u] == 0)
    return [*top, oldest, browser, "100101", "1000417"]


# --- basic information and integration -----------------------------------------------------------


def test_every_user_once_whatever_feed_they_came_from(taobao_wh: Path, taobao) -> None:
    rows = profile(taobao_wh)
    expected = set(taobao) | {BOT_USER, "feedback_only_1", "feedback_only_2", "registered_only_1"}
    assert set(rows) == expected  # registered_later_1 signed up after the as-of and did nothing
    # a scraper's id: nothing but a burst, so no row; the build's line counts it
    built = " ".join((taobao_wh.parent / "build.out").read_text().split())
    assert (
        "2 bot-like user-day(s), their browsing left out (stg_bot_bursts); 1 user(s) with nothing else, so no profile"
        in built
    ), built
    absent = run_cli("show", BOT_ONLY_USER, warehouse=taobao_wh, ok=False)
    assert " ".join(absent.split()).endswith(
        "its events are browsing on 1 bot-like day(s), left out of the profile (stg_bot_bursts "
        "says why), and it never registered or sent feedback"
    )
    only_feedback = rows["feedback_only_1"]
    assert (
        only_feedback["is_registered"],
        only_feedback["has_events"],
        only_feedback["has_feedback"],
    ) == (False, False, True)
    assert only_feedback["events_lifetime"] == 0 and only_feedback["view_to_cart_rate"] is None
    assert only_feedback["rfm_frequency"] is None and only_feedback["rfm_segment"] == "prospect"
    silent = rows["registered_only_1"]
    assert (silent["is_registered"], silent["has_events"], silent["gender"], silent["city"]) == (
        True,
        False,
        "f",
        "Shanghai",
    )
    assert silent["first_seen_day"] == date(2017, 6, 1) and silent["last_seen_day"] is None


def test_every_feature_table_states_the_as_of_of_its_rows(taobao_wh: Path) -> None:
    """An analyst reading one feature table alone sees which day its windows end on."""
    (profile_rows,) = query(taobao_wh, "SELECT count(*) FROM user_profile")
    for table in FEATURE_TABLES:
        stated = query(taobao_wh, f"SELECT as_of, count(*) FROM {table} GROUP BY as_of")
        assert stated == [(taobao_as_of(), profile_rows[0])], table


def test_basic_information(taobao_wh: Path, taobao) -> None:
    as_of = taobao_as_of()
    rows = profile(taobao_wh, ["100101", "1000417", "1"])
    a = rows["100101"]
    assert (a["gender"], a["birth_year"], a["age"], a["region"]) == (
        "f",
        1990,
        as_of.year - 1990,
        "Zhejiang",
    )
    assert a["signup_day"] == date(2015, 3, 1) and a["first_seen_day"] == date(2015, 3, 1)
    assert a["as_of"] == as_of
    b = rows["1000417"]  # registered after browsing: first seen at the first event
    assert (b["gender"], b["birth_year"], b["age"]) == ("m", 2025, None)  # no negative age
    assert b["first_seen_day"] == min(e.day for e in taobao["1000417"])
    assert b["last_seen_day"] == max(e.day for e in taobao["1000417"])
    c = rows["1"]  # not in the users feed
    assert (c["is_registered"], c["gender"], c["age"], c["signup_day"]) == (False, None, None, None)
    assert c["first_seen_day"] == min(e.day for e in taobao["1"])


# --- cleaning ------------------------------------------------------------------------------------


def test_registration_is_stated_as_of_the_build(tmp_path: Path, taobao) -> None:
    """A user who browsed from 11-25 and registered on 12-01: a profile as of 11-29 must not know
    the registration, nor what it told (helper-24: is_registered TRUE and signup_day 12-01 in a
    profile as of 11-29, which a training set as of then would learn from). Taobao's user with
    the earliest event, plus a users row of that shape."""
    user = min(taobao, key=lambda u: (min(e.ts for e in taobao[u]), u))
    events = tmp_path / "events.csv"
    with TAOBAO.open(newline="") as f:
        rows = [r for r in csv.reader(f)]
    write_csv(events, rows[0], [r for r in rows[1:] if r[0] == user])
    users = write_csv(
        tmp_path / "users.csv",
        ["user_id", "gender", "birth_year", "city", "signup_ts"],
        [[user, "f", "1990", "Hangzhou", "2017-12-01 12:00:00"], ["777", "m", "1980", "Xi'an", "2017-12-01 12:00:00"]],
    )  # fmt: skip
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(events), warehouse=wh)
    run_cli("ingest", "users", str(users), warehouse=wh)
    columns = (
        "SELECT user_id, is_registered, gender, age, city, signup_day FROM user_profile ORDER BY 1"
    )
    run_cli("build", *PROFILE, "--as-of", "2017-11-29T12:00:00", warehouse=wh)
    assert query(wh, columns) == [(user, False, None, None, None, None)]  # 777: not a user yet
    run_cli("build", *PROFILE, warehouse=wh)
    assert query(wh, columns) == [
        (user, True, "f", 27, "Hangzhou", date(2017, 12, 1)),
        ("777", True, "m", 37, "Xi'an", date(2017, 12, 1)),
    ]
    # helper-36: PrestaShop's id_gender (ISO 5218: 1 male, 2 female, 0 unknown) came out as
    # genders "1", "2" and "0"
    codes = write_csv(
        tmp_path / "customer.csv",
        ["id_customer", "id_gender"],
        [[user, "2"], ["777", "1"], ["778", "0"]],
    )
    run_cli("ingest", "users", str(codes), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    assert query(wh, "SELECT user_id, gender FROM user_profile ORDER BY 1") == [
        (user, "f"), ("777", "m"), ("778", None)
    ]  # fmt: skip


def test_repeats_across_exports_count_once_and_bursts_are_set_aside(
    taobao_wh: Path, taobao
) -> None:
    (repeats,) = query(taobao_wh, "SELECT count(*), sum(copies - 1) FROM stg_event_repeats")
    assert repeats[1] == 2000  # the overlapping export: every one of its rows is a repeat
    bursts = query(
        taobao_wh, "SELECT user_id, day, events, max_events_per_minute, reason FROM stg_bot_bursts"
    )
    assert sorted(bursts) == [
        (user, BOT_DAY, 400, 400, "400 events in one minute (limit 300)")
        for user in (BOT_USER, BOT_ONLY_USER)
    ]
    bot = profile(taobao_wh, [BOT_USER])[BOT_USER]
    assert (
        bot["views_lifetime"] == 1 and bot["active_days_lifetime"] == 1
    )  # only the quiet day counts
    # the burst's day is counted there and nowhere else: not as a day the user was seen
    assert (bot["bot_like_days"], bot["last_active_day"], bot["last_seen_day"]) == (
        1,
        date(2017, 11, 30),
        date(2017, 11, 30),
    )
    first_user = next(iter(taobao))
    assert profile(taobao_wh, [first_user])[first_user]["events_lifetime"] == len(
        taobao[first_user]
    )


# --- behaviour -----------------------------------------------------------------------------------


def expected_behaviour(evs: list[Event], as_of: datetime) -> dict:
    today = as_of.date()
    out: dict = {}
    for n in (1, 7, 30, 90):
        recent = [e for e in evs if (today - e.day).days < n]
        for t, name in PLURAL.items():
            out[f"{name}_{n}d"] = sum(e.event_type == t for e in recent)
        if n > 1:
            out[f"active_days_{n}d"] = len({e.day for e in recent})
    for t, name in PLURAL.items():
        out[f"{name}_lifetime"] = sum(e.event_type == t for e in evs)
    out["events_lifetime"] = len(evs)
    out["active_days_lifetime"] = len({e.day for e in evs})
    out["days_since_last_active"] = (today - max(e.day for e in evs)).days
    sessions = sessions_of(evs)
    out["sessions_lifetime"] = len(sessions)
    out["sessions_30d"] = sum((today - s[0].date()).days < 30 for s in sessions)
    out["events_per_session"] = len(evs) / len(sessions)
    out["avg_session_seconds"] = sum((s[1] - s[0]).total_seconds() for s in sessions) / len(
        sessions
    )
    views, carts, buys = out["views_lifetime"], out["carts_lifetime"], out["purchases_lifetime"]
    out["view_to_cart_rate"] = carts / views if views else None
    out["cart_to_purchase_rate"] = buys / carts if carts else None
    out["view_to_purchase_rate"] = buys / views if views else None
    hours = [0] * 24
    weekdays = [0] * 7
    timed_days = {e.ts.date() for e in evs if e.ts.time() != time(0)}
    for s in sessions:
        if s[0].date() in timed_days:  # a day of midnights only was sent as a date: no hours
            hours[s[0].hour] += 1
        weekdays[s[0].isoweekday() - 1] += 1
    out["top_hour"] = hours.index(max(hours)) if max(hours) else None
    out["top_hour_share"] = max(hours) / sum(hours) if max(hours) else None
    out["top_weekday"] = weekdays.index(max(weekdays)) + 1
    out["weekend_share"] = (weekdays[5] + weekdays[6]) / len(sessions)
    days = sorted({e.day for e in evs if e.event_type == "purchase"})
    gaps = [(b - a).days for a, b in zip(days, days[1:], strict=False)]
    out["purchase_cycle_days_mean"] = statistics.mean(gaps) if gaps else None
    out["purchase_cycle_days_std"] = statistics.stdev(gaps) if len(gaps) > 1 else None
    return out


def assert_matches(row: dict, expected: dict, who: str) -> None:
    for key, value in expected.items():
        if value is None:
            assert row[key] is None, f"{who}: {key}"
        elif isinstance(value, float):
            assert row[key] == approx(value), f"{who}: {key}"
        else:
            assert row[key] == value, f"{who}: {key}"


def test_behaviour_taobao(taobao_wh: Path, taobao) -> None:
    as_of = taobao_as_of()
    users = chosen_taobao_users(taobao)
    rows = profile(taobao_wh, users)
    for u in users:
        assert_matches(rows[u], expected_behaviour(taobao[u], as_of), u)
    assert any(
        rows[u]["views_90d"] > rows[u]["views_30d"] for u in users
    )  # the oldest event's user


def test_behaviour_of_every_taobao_user(taobao_wh: Path, taobao) -> None:
    """Every user, not a chosen few (helper-93: a session that starts after a gap of exactly 30
    minutes, three Taobao users have one, went unchecked): counts, windows, sessions, funnel,
    habits and purchase cycle, worked out here from the raw file."""
    as_of = taobao_as_of()
    rows = profile(taobao_wh)
    assert len(taobao) == 928 and set(taobao) <= set(rows)
    for u, evs in taobao.items():
        assert_matches(rows[u], expected_behaviour(evs, as_of), u)


def test_behaviour_rees46_sessions_from_session_ids(rees46_wh: Path, rees46) -> None:
    as_of = max(e.ts for evs in rees46.values() for e in evs)
    several = sorted(u for u, evs in rees46.items() if len({e.session_id for e in evs}) > 1)[:3]
    buyers = sorted(u for u, evs in rees46.items() if any(e.event_type == "purchase" for e in evs))[
        :3
    ]
    rows = profile(rees46_wh, several + buyers)
    for u in several + buyers:
        assert_matches(rows[u], expected_behaviour(rees46[u], as_of), u)


def test_sessions_of_events_sent_as_dates_follow_their_session_ids(tmp_path: Path) -> None:
    """Diginetica's views carry a sessionId and only a date: each session id is a session
    (helper-20: user 114833's sessions 315 and 340 of 2016-05-12 counted as one). A session of
    dated events alone lasts 0 seconds and states no hour; dated purchases in a timed session
    join it; a day of dated events without a session id is one session. Lines in Diginetica's
    published shape (`sessionId;userId;itemId;timeframe;eventdate`)."""
    views = tmp_path / "train-item-views.csv"
    views.write_text(
        "sessionId;userId;itemId;timeframe;eventdate\n"
        "315;114833;9654;75897;2016-05-12\n340;114833;33043;0;2016-05-12\n"
        "340;114833;32118;14080;2016-05-12\n"
    )
    timed = tmp_path / "timed.csv"
    timed.write_text(
        "user_id,event_type,ts,session_id\n"
        "7,view,2016-05-12 10:00:00,s9\n7,view,2016-05-12 10:05:00,s9\n"
        "7,purchase,2016-05-12 00:00:00,s9\n8,purchase,2016-05-12 00:00:00,\n"
        "8,purchase,2016-05-12 00:00:00,\n"
    )
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(views), "--event-type", "view", warehouse=wh)
    run_cli("ingest", "events", str(timed), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    got = {
        u: rest
        for u, *rest in query(
            wh,
            "SELECT user_id, sessions, session_seconds, sessions_h00, sessions_h10, events "
            "FROM int_user_day ORDER BY user_id",
        )
    }
    assert got == {
        "114833": [2, 0, 0, 0, 3],  # two sessions of dates: no time, no hour
        "7": [1, 300, 0, 1, 3],  # the dated purchase in the 10:00 session
        "8": [1, 0, 0, 0, 2],  # dated purchases, no session id: one session of 0 seconds
    }


# --- preference ----------------------------------------------------------------------------------


def expected_tops(evs: list[Event], attr: str) -> list[tuple[str, float, float]]:
    """(value, affinity at the as-of day, spend) of the top 3, ranked as int_user_interests does."""
    score: dict[str, float] = defaultdict(float)
    last: dict[str, date] = {}
    spend: dict[str, float] = defaultdict(float)
    for e in evs:
        value = getattr(e, attr)
        if value is None or e.event_type == "search":
            continue
        score[value] += WEIGHTS[e.event_type] * 2 ** ((e.day - REFERENCE_DAY).days / HALF_LIFE)
        last[value] = max(last.get(value, e.day), e.day)
        if e.event_type == "purchase" and e.price is not None:
            spend[value] += e.price * (e.quantity or 1)
    ranked = sorted(score, key=lambda v: (-round(math.log2(score[v]), 9), -last[v].toordinal(), v))
    return [(v, score[v], spend[v]) for v in ranked[:3]]


def test_preference_taobao_categories(taobao_wh: Path, taobao) -> None:
    as_of_day = taobao_as_of().date()
    age = 0.5 ** ((as_of_day - REFERENCE_DAY).days / HALF_LIFE)
    users = chosen_taobao_users(taobao)
    rows = profile(taobao_wh, users)
    for u in users:
        tops = expected_tops(taobao[u], "category")
        for k, (value, score, _) in enumerate(tops, start=1):
            assert rows[u][f"top_category_{k}"] == value, u
            assert rows[u][f"top_category_{k}_affinity"] == approx(score * age), u
        assert rows[u]["categories_engaged"] == len({e.category for e in taobao[u]})
        assert (
            rows[u]["top_brand_1"] is None and rows[u]["brands_engaged"] == 0
        )  # Taobao has no brands
        assert rows[u]["avg_price_viewed"] is None and rows[u]["price_band"] is None  # nor prices
        assert rows[u]["top_category_1_spend_share"] is None


def test_a_category_only_searched_in_is_no_top_category(tmp_path: Path, taobao) -> None:
    """Searches weigh 0, so a category the user only searched in has no affinity and takes no
    top slot (Diginetica's queries carry a category id: 47 of 245 users had one at affinity 0).
    The Taobao user with the fewest categories, plus two searches filtered to another category; the searches still count as searches and as a category engaged."""
    user = min(taobao, key=lambda u: (len({e.category for e in taobao[u]}), -len(taobao[u]), u))
    categories = {e.category for e in taobao[user]}
    assert len(categories) < 3  # a slot left for the searched category to take, wrongly
    last = int(max(e.ts for e in taobao[user]).replace(tzinfo=UTC).timestamp())
    with TAOBAO.open(newline="") as f:
        mine = [r for r in csv.reader(f) if r[0] == user]
    searched = [[user, "", "999", "search", str(last - n), "warm socks"] for n in (1, 2)]
    path = write_csv(
        tmp_path / "events.csv",
        ["user_id", "item_id", "category_id", "behavior_type", "ts", "query"],
        [[*r, ""] for r in mine] + searched,
    )
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(path), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    row = profile(wh, [user])[user]
    tops = [row[f"top_category_{k}"] for k in (1, 2, 3)]
    assert set(tops) == {*categories, None} and "999" not in tops
    assert row["top_category_3_affinity"] is None
    assert row["categories_engaged"] == len(categories) + 1
    assert row["top_search_term_1"] == "warm socks" and row["searches_lifetime"] == 2


def test_a_category_last_seen_years_ago_keeps_its_affinity(tmp_path: Path, taobao) -> None:
    """helper-79: affinities were rounded to 9 decimals, so a user last active about 930 days
    (31 half-lives) before the as-of showed 0.0 beside a named top category, and dropped out of
    the affinity audience and the recommendations' categories. Nine significant digits keep it.
    A Taobao user's own events moved back 1,100 days, beside another user's as they were."""
    lapsed, current = sorted(taobao, key=lambda u: (-len(taobao[u]), u))[:2]
    back = 1100 * 86400
    with TAOBAO.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r[0] in (lapsed, current)]
    moved = [[*r[:4], str(int(r[4]) - back)] if r[0] == lapsed else r for r in rows]
    path = write_csv(
        tmp_path / "events.csv", ["user_id", "item_id", "category_id", "behavior_type", "ts"], moved
    )
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(path), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    row = profile(wh, [lapsed])[lapsed]
    as_of_day = max(e.ts for e in taobao[current]).date()
    shifted = [replace(e, ts=e.ts - timedelta(days=1100)) for e in taobao[lapsed]]
    for k, (value, score, _) in enumerate(expected_tops(shifted, "category"), start=1):
        age = 0.5 ** ((as_of_day - REFERENCE_DAY).days / HALF_LIFE)
        assert row[f"top_category_{k}"] == value
        assert 0 < row[f"top_category_{k}_affinity"] < 1e-9
        assert row[f"top_category_{k}_affinity"] == approx(score * age, rel=1e-8, abs_=0)


def test_category_paths_read_as_levels_whatever_they_are_written_with(
    tmp_path: Path, taobao
) -> None:
    """`a > b`, `a>b` and `a/b` are levels; a `/` beside a `>` is part of a name (helper-45:
    Naver's 디지털/가전>음향기기 became three levels); spaces around a separator go (helper-89:
    `Women / Dresses` and `women/dresses` were two categories). Six Taobao users, each with one
    path for all their events, in each shape."""
    users = sorted(taobao, key=lambda u: (-len(taobao[u]), u))[:6]
    paths = [
        "Electronics > Audio",
        "electronics>audio",
        "Electronics/Audio",
        "Electronics / Audio",
        "Electronics >Audio",
        "디지털/가전>음향기기",
    ]
    with TAOBAO.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r[0] in users]
    by_user = dict(zip(users, paths, strict=True))
    path = write_csv(
        tmp_path / "events.csv",
        ["user_id", "item_id", "category_path", "behavior_type", "ts"],
        [[r[0], r[1], by_user[r[0]], r[3], r[4]] for r in rows],
    )
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(path), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    got = {u: r["top_category_1"] for u, r in profile(wh, users).items()}
    assert got == dict(
        zip(users, ["electronics.audio"] * 5 + ["디지털/가전.음향기기"], strict=True)
    )


def test_turkish_capitals_and_small_letters_are_one_name(tmp_path: Path, taobao) -> None:
    """`KADIN GİYİM` and `Kadın Giyim` are one category, `ALTINYILDIZ` and `Altınyıldız` one
    brand (helper-50: lower() makes I an i, never the ı of Kadın, and one category was two).
    Two Taobao users, every other event of theirs in capitals."""
    users = sorted(taobao, key=lambda u: (-len(taobao[u]), u))[:2]
    with TAOBAO.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r[0] in users]
    names = [("KADIN GİYİM", "ALTINYILDIZ"), ("Kadın Giyim", "Altınyıldız")]
    path = write_csv(
        tmp_path / "events.csv",
        ["user_id", "item_id", "category_path", "brand", "behavior_type", "ts"],
        [[r[0], r[1], *names[i % 2], r[3], r[4]] for i, r in enumerate(rows)],
    )
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(path), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    got = profile(wh, users)
    for user in users:
        row = got[user]
        assert (row["top_category_1"], row["top_category_2"]) == ("kadin giyim", None)
        assert (row["top_brand_1"], row["top_brand_2"]) == ("altinyildiz", None)


def test_preference_rees46_brands_spend_and_price_band(rees46_wh: Path, rees46) -> None:
    buyers = sorted(u for u, evs in rees46.items() if any(e.event_type == "purchase" for e in evs))[
        :4
    ]
    rows = profile(rees46_wh, buyers)
    age = 0.5 ** ((date(2019, 10, 1) - REFERENCE_DAY).days / HALF_LIFE)
    for u in buyers:
        evs = rees46[u]
        total = sum(e.price for e in evs if e.event_type == "purchase")
        for attr, name in (("category", "top_category"), ("brand", "top_brand")):
            for k, (value, score, spend) in enumerate(expected_tops(evs, attr), start=1):
                assert rows[u][f"{name}_{k}"] == value, u
                assert rows[u][f"{name}_{k}_affinity"] == approx(score * age), u
                if attr == "category":
                    assert rows[u][f"top_category_{k}_spend_share"] == approx(spend / total), u
    # every buyer's total spend is the sum of their prices to the millionth, float noise rounded
    # off (note 13: one buyer's 699.0200000000001-like last bits)
    spent = {
        u: round(sum(e.price for e in evs if e.event_type == "purchase"), 6)
        for u, evs in rees46.items()
        if any(e.event_type == "purchase" for e in evs)
    }
    got = dict(
        query(rees46_wh, "SELECT user_id, total_spend FROM user_profile WHERE purchase_days > 0")
    )
    assert got == spent
    # price band: the user's mean price looked at, by percent rank among all users with prices
    means = {
        u: round(
            statistics.mean(e.price for e in evs if e.event_type in ("view", "cart", "purchase")), 6
        )
        for u, evs in rees46.items()
    }
    values = sorted(means.values())
    for u in buyers:
        below = sum(v < means[u] for v in values)
        rank = below / (len(values) - 1)
        band = "budget" if rank < 1 / 3 else "mid" if rank < 2 / 3 else "premium"
        assert rows[u]["avg_price_viewed"] == approx(means[u], abs_=1e-6)
        assert rows[u]["price_band"] == band, u


# --- RFM segmentation (the lifetimes columns have their own test file) --------------------------


def cume_dist_score(values: dict[str, float]) -> dict[str, int]:
    ordered = sorted(values.values())
    return {
        u: math.ceil(5 * sum(x <= v for x in ordered) / len(ordered)) for u, v in values.items()
    }


def percent_rank_score(values: dict[str, float]) -> dict[str, int]:
    ordered = sorted(values.values())
    n = len(ordered)
    return {
        u: min(5, 1 + math.floor(5 * (sum(x < v for x in ordered) / (n - 1) if n > 1 else 0)))
        for u, v in values.items()
    }


def test_rfm_scores_and_segments_taobao(taobao_wh: Path, taobao) -> None:
    buyers = {u: evs for u, evs in taobao.items() if any(e.event_type == "purchase" for e in evs)}
    last = {
        u: max(e.day for e in evs if e.event_type == "purchase").toordinal()
        for u, evs in buyers.items()
    }
    days = {u: len({e.day for e in evs if e.event_type == "purchase"}) for u, evs in buyers.items()}
    r, f = cume_dist_score(last), percent_rank_score(days)
    rows = profile(taobao_wh)
    for u in chosen_taobao_users(taobao) + sorted(buyers)[:20]:
        row = rows[u]
        if u not in buyers:
            assert (row["r_score"], row["rfm_segment"], row["purchase_days"]) == (
                None,
                "prospect",
                0,
            )
            continue
        assert (row["r_score"], row["f_score"], row["m_score"]) == (r[u], f[u], 1), (
            u
        )  # no prices: all spend 0
        assert row["rfm_score"] == f"{r[u]}{f[u]}1"
        segment = (
            "champions"
            if r[u] >= 4 and f[u] >= 4
            else "loyal"
            if r[u] >= 3 and f[u] >= 3
            else "new"
            if r[u] >= 4 and days[u] == 1
            else "potential loyalist"
            if r[u] >= 4
            else "needs attention"
            if r[u] == 3
            else "at risk"
            if f[u] >= 3
            else "hibernating"
            if r[u] == 2
            else "lost"
        )
        assert row["rfm_segment"] == segment, u


# --- sentiment and loyalty -----------------------------------------------------------------------


def test_sentiment_loyalty_and_lifecycle(taobao_wh: Path, taobao) -> None:
    as_of = taobao_as_of()
    today = as_of.date()
    purchase_days = {
        u: sorted({e.day for e in evs if e.event_type == "purchase"}) for u, evs in taobao.items()
    }
    cycles = [
        statistics.mean([(b - a).days for a, b in zip(d, d[1:], strict=False)])
        for d in purchase_days.values()
        if len(d) >= 2
    ]
    population_cycle = statistics.median(cycles)
    signups = {r[0]: datetime.fromisoformat(r[5]).date() for r in USERS_ROWS}
    feedback = defaultdict(list)
    for user, ts, kind, _, rating, _ in FEEDBACK_ROWS:
        feedback[user].append(
            (datetime.fromisoformat(ts).date(), kind, int(rating) if rating else None)
        )
    rows = profile(taobao_wh)
    for u in ["100101", "1000417", *chosen_taobao_users(taobao)[:3], "1"]:
        row, fb, days = rows[u], feedback.get(u, []), purchase_days[u]
        ratings = [(d, r) for d, _, r in fb if r is not None]
        recent = [r for d, r in ratings if (today - d).days < 30]
        before = [r for d, r in ratings if (today - d).days >= 30]
        complaints = sum(k == "complaint" for _, k, _ in fb)
        avg = statistics.mean(r for _, r in ratings) if ratings else None
        first_seen = min(
            [e.day for e in taobao[u]]
            + ([signups[u]] if u in signups else [])
            + [d for d, _, _ in fb]
        )
        tenure = (today - first_seen).days
        since_last = (today - days[-1]).days if days else None
        complaint_rate = complaints / len(days) if days else None
        score = (
            0.35 * min(max(len(days) - 1, 0) / 4, 1)
            + 0.25 * (0.5 ** (since_last / 30) if days else 0)
            + 0.2 * min(tenure / 365, 1)
            + 0.2
            * ((avg - 1) / 4 if avg is not None else 0.5)
            * (1 - min(complaint_rate if days else complaints, 1))
        )
        own = (
            statistics.mean([(b - a).days for a, b in zip(days, days[1:], strict=False)])
            if len(days) >= 2
            else None
        )
        cycle = max(own if own is not None else population_cycle, 7)
        stage = lifecycle_stage(len(days), since_last, cycle)
        expected = {
            "feedback_count": len(fb),
            "ratings": len(ratings),
            "avg_rating": avg,
            "avg_rating_30d": statistics.mean(recent) if recent else None,
            "rating_trend": statistics.mean(recent) - statistics.mean(before)
            if recent and before
            else None,
            "complaints": complaints,
            "complaint_rate": complaint_rate,
            "repeat_purchase_rate": (len(days) - 1) / len(days) if days else None,
            "tenure_days": tenure,
            "loyalty_score": score,
            "loyalty_band": "high" if score >= 0.7 else "medium" if score >= 0.4 else "low",
            "purchase_cycle_days": cycle if days else None,
            "lifecycle_stage": stage,
        }
        assert_matches(row, expected, u)
    # a complaint without a purchase leaves no satisfaction (helper-52: scored as no complaint)
    tenure = (today - date(2017, 11, 30)).days
    assert rows["feedback_only_1"]["loyalty_score"] == approx(0.2 * tenure / 365 + 0.2 * 0.5)
    assert rows["feedback_only_2"]["loyalty_score"] == approx(0.2 * tenure / 365)
    assert rows["100101"]["rating_trend"] == approx(-1.0)  # 4 lately against 5 before
    assert rows["1000417"]["complaint_rate"] == approx(2 / len(purchase_days["1000417"]))


# --- a shop that logs only purchases -------------------------------------------------------------


def test_purchases_only_feed(tmp_path: Path, rees46) -> None:
    """A feed of user, time, amount and quantity and nothing else: REES46's purchases."""
    buys = [e for evs in rees46.values() for e in evs if e.event_type == "purchase"]
    rows = [[e.user_id, e.ts.isoformat(sep=" "), f"{2 * e.price:.2f}", "2"] for e in buys]
    feed = write_csv(
        tmp_path / "orders.csv", ["CustomerID", "created_at", "order_amount", "qty"], rows
    )
    wh = tmp_path / "wh.duckdb"
    refused = run_cli("ingest", "events", str(feed), warehouse=wh, ok=False)
    assert "--event-type purchase" in refused and not wh.exists()
    run_cli("ingest", "events", str(feed), "--event-type", "purchase", warehouse=wh)
    before = wh.read_bytes()  # a refused file leaves a warehouse that exists as it was
    more = write_csv(
        tmp_path / "more.csv", ["CustomerID", "created_at", "order_amount", "qty"], rows[:3]
    )
    assert "--event-type" in run_cli("ingest", "events", str(more), warehouse=wh, ok=False)
    assert wh.exists() and wh.read_bytes() == before
    run_cli("build", *PROFILE, warehouse=wh)
    got = profile(wh)
    assert set(got) == {e.user_id for e in buys}
    for u in sorted(got)[:5]:
        mine = [e for e in buys if e.user_id == u]
        row = got[u]
        assert row["purchases_lifetime"] == len(mine) and row["views_lifetime"] == 0
        assert row["view_to_cart_rate"] is None and row["top_category_1"] is None
        # the unit price of a line of money and quantity (helper-44: NULL, the band too)
        unit = statistics.mean(round(2 * e.price, 2) / 2 for e in mine)
        assert row["avg_price_viewed"] == approx(unit, abs_=1e-6) and row["price_band"]
        assert row["total_spend"] == approx(sum(round(2 * e.price, 2) for e in mine), abs_=1e-6)
        assert row["rfm_frequency"] == 0 and row["rfm_monetary_value"] == 0
        assert row["sessions_lifetime"] == len(
            sessions_of([Event(u, "purchase", e.ts) for e in mine])
        )


def purchases_feed_profile(tmp_path: Path, moved: list[tuple[str, datetime, float]]) -> Path:
    """A purchases-only feed of (user, time, amount) lines, ingested and built: its warehouse."""
    feed = write_csv(
        tmp_path / "orders.csv",
        ["user_id", "ts", "amount"],
        [[u, ts.isoformat(sep=" "), f"{price:.2f}"] for u, ts, price in moved],
    )
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(feed), "--event-type", "purchase", warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    return wh


def test_spend_over_windows_sums_the_money_of_the_purchases_in_them(tmp_path: Path, rees46) -> None:
    """REES46's purchases moved back 0, 3, 12, 45 or 150 days, in turn along the users and each
    user's purchases (the slice is one day): spend_7d/30d/90d sum the money of the purchases in
    each window, as total_spend does over all of them; and every user's lifecycle stage, one
    user's single purchase moved to exactly two cycles back: still 'new' (docs/models.md)."""
    back = (0, 3, 12, 45, 150)
    buys = sorted(
        (e for evs in rees46.values() for e in evs if e.event_type == "purchase"),
        key=lambda e: (e.user_id, e.ts),
    )
    moved, turn = [], {}
    for e in buys:
        k = turn[e.user_id] = turn.get(e.user_id, len(turn)) + 1
        moved.append((e.user_id, e.ts - timedelta(days=back[k % len(back)]), e.price))
    today = max(ts for _, ts, _ in moved).date()
    days = defaultdict(set)
    for u, ts, _ in moved:
        days[u].add(ts.date())
    gaps = {  # each user's mean days between purchase days; one-day users take the median
        u: statistics.mean((b - a).days for a, b in zip(sorted(d), sorted(d)[1:], strict=False))
        for u, d in days.items()
        if len(d) >= 2
    }
    median = statistics.median(gaps.values())
    assert float(2 * median).is_integer() and median >= 7  # a day exactly two cycles back exists
    once = next(i for i, (u, ts, _) in enumerate(moved) if u not in gaps and ts.date() < today)
    u, ts, price = moved[once]
    moved[once] = (u, datetime.combine(today - timedelta(days=2 * median), ts.time()), price)
    days[u] = {moved[once][1].date()}
    wh = purchases_feed_profile(tmp_path, moved)
    got = profile(wh)
    assert set(got) == {u for u, _, _ in moved}
    for u, row in got.items():
        mine = [(ts.date(), round(price, 2)) for v, ts, price in moved if v == u]
        for n in (7, 30, 90):
            spent = round(sum(p for day, p in mine if (today - day).days < n), 6)
            assert row[f"spend_{n}d"] == approx(spent, abs_=1e-6), (u, n)
        assert row["total_spend"] == approx(round(sum(p for _, p in mine), 6), abs_=1e-6), u
        since = (today - max(days[u])).days
        stage = lifecycle_stage(len(days[u]), since, max(gaps.get(u, median), 7))
        assert row["lifecycle_stage"] == stage, (u, since)
    assert got[moved[once][0]]["lifecycle_stage"] == "new"  # at two cycles: at risk past them
    # the windows are told apart: money in each that is not in the next shorter one
    rows = got.values()
    assert any(r["spend_7d"] > 0 for r in rows) and any(
        r["spend_30d"] > r["spend_7d"] for r in rows
    )
    assert any(r["spend_90d"] > r["spend_30d"] for r in rows)
    assert any(r["spend_90d"] < r["total_spend"] for r in rows)


def test_the_profile_says_of_each_column_what_its_feature_table_says() -> None:
    """`user_profile` restates the column docs of the feature tables it joins, for analysts who
    read one file. helper-89: seven copies had drifted (the profile's `view_to_cart_rate` lost
    "can exceed 1"). A copy may add what is particular to the profile, never say less."""
    from conftest import REPO

    from profiler.lineage import upstream_tables
    from profiler.project import load_project

    models = load_project(REPO)
    profile_model = models["user_profile"]
    parents = [models[t.name] for t in upstream_tables(profile_model.sql) if t.name in models]
    drifted = [
        f"{column} ({parent.name})"
        for column, doc in profile_model.columns.items()
        for parent in parents
        if column != "as_of"
        and column in parent.columns
        and not doc.startswith(parent.columns[column])
    ]
    assert drifted == []


def test_feedback_windows_end_on_the_as_of_day(tmp_path: Path, taobao) -> None:
    """Ratings of the as-of day and the 29 days before it are the last 30 days' (one 30 days old
    is before them); complaints_90d counts the as-of day and the 89 before. Two Taobao users with
    feedback at each side of both bounds (stated here, at noon, counted back from the as-of day)."""
    today = taobao_as_of().date()
    first, second = sorted(taobao)[:2]

    def at(days_back: int) -> str:
        return f"{today - timedelta(days=days_back)} 12:00:00"

    rows = [  # user, time, kind, item, rating, text
        [first, at(0), "rating", "1", "4", ""],
        [first, at(29), "rating", "2", "5", ""],
        [first, at(30), "rating", "3", "1", ""],
        [first, at(120), "rating", "4", "2", ""],
        [first, at(10), "complaint", "5", "", "Late"],
        [first, at(89), "complaint", "6", "", "Broken"],
        [first, at(90), "complaint", "7", "", "Wrong size"],
        [second, at(30), "rating", "8", "3", ""],
        [second, at(90), "complaint", "9", "", "Never came"],
    ]
    feedback = write_csv(
        tmp_path / "feedback.csv", ["user_id", "ts", "kind", "item_id", "rating", "text"], rows
    )
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh)
    run_cli("ingest", "feedback", str(feedback), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    got = profile(wh, [first, second])
    one, two = got[first], got[second]
    assert (one["ratings"], one["complaints"], one["complaints_90d"]) == (4, 3, 2)
    assert one["avg_rating"] == approx((4 + 5 + 1 + 2) / 4)
    assert one["avg_rating_30d"] == approx((4 + 5) / 2)  # the as-of day and 29 days back
    assert one["rating_trend"] == approx((4 + 5) / 2 - (1 + 2) / 2)
    assert (two["complaints"], two["complaints_90d"], two["avg_rating_30d"]) == (1, 0, None)
    assert two["avg_rating"] == approx(3.0) and two["rating_trend"] is None


def test_the_90_day_window_ends_89_days_before_the_as_of_day(tmp_path: Path, rees46) -> None:
    """REES46's purchases moved back 0, 89 or 90 days, in turn along each user's purchases: the
    90-day window (active days, purchases, spend) holds the as-of day and the 89 before it, so a
    purchase 90 days back counts only in the lifetime columns."""
    back = (0, 89, 90)
    buys = sorted(
        (e for evs in rees46.values() for e in evs if e.event_type == "purchase"),
        key=lambda e: (e.user_id, e.ts),
    )
    moved, turn = [], defaultdict(int)
    for e in buys:
        moved.append((e.user_id, e.ts - timedelta(days=back[turn[e.user_id] % 3]), e.price))
        turn[e.user_id] += 1
    wh = purchases_feed_profile(tmp_path, moved)
    today = max(ts for _, ts, _ in moved).date()
    got = profile(wh)
    assert any((today - ts.date()).days == 90 for _, ts, _ in moved)
    for u, row in got.items():
        mine = [(ts.date(), round(price, 2)) for v, ts, price in moved if v == u]
        inside = [(day, p) for day, p in mine if (today - day).days < 90]
        assert row["purchases_90d"] == len(inside), u
        assert row["active_days_90d"] == len({day for day, _ in inside}), u
        assert row["spend_90d"] == approx(round(sum(p for _, p in inside), 6), abs_=1e-6), u
        assert row["purchases_lifetime"] == len(mine), u


def test_top_search_terms_of_a_generated_shop(tmp_path: Path) -> None:
    """Neither real sample has searches: a generated shop's (169 distinct queries, users who
    searched one several times). Each user's top 3 queries rank by number of searches, then the
    more recent last day, then alphabetically; worked out here from the generated file."""
    out = tmp_path / "shop"
    run_cli("generate", "--users", "300", "--events", "20000", "--days", "30",
            "--start", "2024-01-01", "--seed", "3", "--out", str(out), warehouse=tmp_path / "x")  # fmt: skip
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(out / "events.parquet"), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    con = duckdb.connect()
    searches = con.execute(
        f"SELECT user_id, lower(trim(query)), CAST(ts AS DATE) FROM '{out / 'events.parquet'}' "
        "WHERE event_type = 'search' AND query IS NOT NULL"
    ).fetchall()
    con.close()
    counts: dict[str, dict[str, tuple[int, date]]] = defaultdict(dict)
    for user, q, day in searches:
        n, last = counts[user].get(q, (0, day))
        counts[user][q] = (n + 1, max(last, day))
    assert sum(n > 1 for qs in counts.values() for n, _ in qs.values()) > 30  # repeats to rank
    rows = profile(wh, sorted(counts))
    for user, qs in counts.items():
        ranked = sorted(qs, key=lambda q: (-qs[q][0], -qs[q][1].toordinal(), q))[:3]
        ranked += [None] * (3 - len(ranked))
        got = [rows[user][f"top_search_term_{k}"] for k in (1, 2, 3)]
        assert got == ranked, user
        assert rows[user]["search_terms_used"] == len(qs), user
