"""The profile's RFM modelling columns equal lifetimes' summary of the same purchases.

`rfm_frequency`, `rfm_recency_days`, `rfm_age_days` and `rfm_monetary_value` must be what
`lifetimes.utils.summary_data_from_transaction_data(df, 'user_id', 'date',
monetary_value_col='amount', observation_period_end=as_of, freq='D')` gives, so a BG/NBD or
Gamma-Gamma model can be fitted on the profile directly. lifetimes (0.11.3) works with pandas 3
and numpy 2; the project's test extra must include it.

Data: the real purchases of the shared Taobao sample (928 users, nine days). Taobao has no
prices, so the test gives its items a price (a fixed function of the item id) through an items
feed: the amounts are made up, the purchases, users and days are real, and the amounts reach the
profile the way a shop's catalogue prices would (events without a price take the item's).
"""

from __future__ import annotations

import csv
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import TAOBAO, cdnow_lines, lifecycle_stage, run_cli, sql_project

PROFILE = ("--select", "+user_profile_history")  # the profile and everything it reads, nothing else
RFM = ["rfm_frequency", "rfm_recency_days", "rfm_age_days", "rfm_monetary_value"]
LIFETIMES = ["frequency", "recency", "T", "monetary_value"]


def item_price(item_id: str) -> float:
    return round(1 + (int(item_id) % 997) * 0.37, 2)


def quantity(item_id: str) -> int:
    """Units bought per purchase line: 1 to 3, by item (Taobao sends no quantity)."""
    return 1 + int(item_id) % 3


@pytest.fixture(scope="module")
def taobao_with_prices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Taobao's events, each purchase line of `quantity` units, valued by an items feed of
    `item_price`s (the events carry no price): its warehouse, and the purchases with their money."""
    tmp = tmp_path_factory.mktemp("rfm")
    with TAOBAO.open(newline="") as f:
        rows = list(csv.DictReader(f))
    items = tmp / "items.csv"
    with items.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "category_id", "price"])
        for item, category in sorted({(r["item_id"], r["category_id"]) for r in rows}):
            w.writerow([item, category, item_price(item)])
    events = tmp / "events.csv"
    with events.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*rows[0], "quantity"])
        for r in rows:
            bought = r["behavior_type"] == "buy"
            w.writerow([*r.values(), quantity(r["item_id"]) if bought else ""])
    wh = tmp / "wh.duckdb"
    run_cli("ingest", "events", str(events), warehouse=wh)
    run_cli("ingest", "items", str(items), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    buys = [r for r in rows if r["behavior_type"] == "buy"]
    purchases = pd.DataFrame(
        {
            "user_id": [r["user_id"] for r in buys],
            "date": [datetime.fromtimestamp(int(r["ts"]), UTC).replace(tzinfo=None) for r in buys],
            "amount": [item_price(r["item_id"]) * quantity(r["item_id"]) for r in buys],
            "category": [r["category_id"] for r in buys],
        }
    )
    return wh, purchases


def profile_frame(wh: Path, columns: str) -> pd.DataFrame:
    """`user_profile`'s user_id and these columns, indexed by user."""
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(f"SELECT user_id, {columns} FROM user_profile").df().set_index("user_id")
    finally:
        con.close()


def profile_rfm(wh: Path) -> pd.DataFrame:
    return profile_frame(wh, f"as_of, purchase_days, {', '.join(RFM)}")


def lifetimes_summary(purchases: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    from lifetimes.utils import summary_data_from_transaction_data

    seen = purchases[purchases["date"] <= as_of]  # the profile sees what happened up to the as-of
    return summary_data_from_transaction_data(
        seen, "user_id", "date", monetary_value_col="amount", observation_period_end=as_of, freq="D"
    )


def assert_rfm_equals_lifetimes(profile: pd.DataFrame, expected: pd.DataFrame) -> None:
    buyers = profile[profile["purchase_days"] > 0]
    assert set(buyers.index) == set(expected.index)
    got = buyers.loc[expected.index, RFM].astype(float)
    got.columns = LIFETIMES
    pd.testing.assert_frame_equal(got, expected[LIFETIMES], check_names=False, rtol=1e-9, atol=1e-9)
    others = profile[profile["purchase_days"] == 0]
    assert others[RFM].isna().all().all(), (
        "non-purchasers have no lifetimes row: their RFM columns are NULL"
    )


def test_rfm_equals_lifetimes_summary(taobao_with_prices) -> None:
    wh, purchases = taobao_with_prices
    profile = profile_rfm(wh)
    as_of = profile["as_of"].iloc[0].to_pydatetime()
    expected = lifetimes_summary(purchases, as_of)
    assert (expected["frequency"] > 2).sum() > 50 and (
        expected["monetary_value"] > 0
    ).sum() > 50  # not a trivial case
    assert_rfm_equals_lifetimes(profile, expected)


def test_rfm_equals_lifetimes_summary_at_an_earlier_as_of(
    taobao_with_prices, tmp_path: Path
) -> None:
    """Mid-day as-of: lifetimes counts periods by calendar day, so T is whole days to the as-of day."""
    wh, purchases = taobao_with_prices
    earlier = tmp_path / "wh.duckdb"
    shutil.copy(wh, earlier)
    run_cli("build", *PROFILE, "--as-of", "2017-11-30T12:00:00", warehouse=earlier)
    profile = profile_rfm(earlier)
    assert_rfm_equals_lifetimes(
        profile, lifetimes_summary(purchases, datetime(2017, 11, 30, 12, 0, 0))
    )


# --- a date-only purchases feed -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, str]:
    """CDNOW (`conftest.cdnow_lines`) as a purchases-only feed without the model layer
    (`sql_project`). Its equal lines on one day are separate purchases, as lifetimes counts them."""
    lines = cdnow_lines()
    tmp = tmp_path_factory.mktemp("cdnow")
    path = tmp / "cdnow.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "date", "number_of_cds", "dollar_value"])
        w.writerows(lines)
    project, wh = sql_project(tmp / "project"), tmp / "wh.duckdb"
    ingest = ("--event-type", "purchase", "--ts-format", "%Y%m%d")
    maps = ("--map", "quantity=number_of_cds", "--map", "amount=dollar_value")
    run_cli("ingest", "events", str(path), *ingest, *maps, warehouse=wh, project=project)
    out = run_cli("build", *PROFILE, warehouse=wh, project=project)
    purchases = pd.DataFrame(
        {
            "user_id": [c for c, _, _, _ in lines],
            "date": pd.to_datetime([d for _, d, _, _ in lines], format="%Y%m%d"),
            "amount": [float(v) for _, _, _, v in lines],
        }
    )
    return wh, purchases, out


def test_rfm_equals_lifetimes_on_a_real_date_only_feed(cdnow) -> None:
    wh, purchases, _ = cdnow
    profile = profile_rfm(wh)
    as_of = profile["as_of"].iloc[0].to_pydatetime()
    assert as_of == datetime(1998, 6, 30)  # the newest purchase
    expected = lifetimes_summary(purchases, as_of)
    assert len(expected) == 23_570 and (expected["frequency"] > 5).sum() > 1_000
    assert_rfm_equals_lifetimes(profile, expected)


def test_equal_lines_of_a_date_are_separate_purchases(cdnow) -> None:
    """A date does not tell two purchases apart: every line counts, none is an exact repeat, and
    with no time of day there is no hour habit to state."""
    wh, purchases, out = cdnow
    equal_lines = purchases.duplicated(keep=False)
    assert equal_lines.sum() > 200  # the file has them: the case is real
    assert "exact repeat" not in out
    per_user = purchases.groupby("user_id").agg(lines=("amount", "size"), spend=("amount", "sum"))
    con = duckdb.connect(str(wh), read_only=True)
    try:
        got = (
            con.execute(
                "SELECT user_id, purchases_lifetime, total_spend, top_hour, top_hour_share "
                "FROM user_profile"
            )
            .df()
            .set_index("user_id")
        )
        assert con.execute("SELECT count(*) FROM stg_event_repeats").fetchone()[0] == 0
    finally:
        con.close()
    twice = purchases[equal_lines]["user_id"].iloc[0]
    assert got.loc[twice, "purchases_lifetime"] == per_user.loc[twice, "lines"]
    assert (got.loc[per_user.index, "purchases_lifetime"] == per_user["lines"]).all()
    assert got.loc[per_user.index, "total_spend"].to_numpy() == pytest.approx(
        per_user["spend"].to_numpy()
    )
    assert got["top_hour"].isna().all() and got["top_hour_share"].isna().all()


def test_a_date_of_many_equal_lines_is_no_burst(tmp_path: Path) -> None:
    """H&M's transactions file writes one line per unit bought, with a date and no time: 400
    lines on a day (350 articles, some bought twice) are 400 purchases, not a bot's minute. A
    timed stream of 400 events in one minute still is one. (Made-up ids; the line shapes are
    those of the two feeds.)"""
    path = tmp_path / "lines.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "t_dat", "article_id", "price", "event_type"])
        w.writerows(
            [
                ["unit-buyer", "2020-09-01", f"07060{i % 350:05d}", "0.05", "purchase"]
                for i in range(400)
            ]
        )
        w.writerows(
            [["clicker", f"2020-09-01 10:15:{i % 60:02d}", f"{i}", "1", "view"] for i in range(400)]
        )
    project, wh = sql_project(tmp_path / "project"), tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(path), "--map", "ts=t_dat", warehouse=wh, project=project)
    out = run_cli("build", *PROFILE, warehouse=wh, project=project)
    con = duckdb.connect(str(wh), read_only=True)
    try:
        bursts = con.execute("SELECT user_id, events, reason FROM stg_bot_bursts").fetchall()
        buyer = con.execute(
            "SELECT purchases_lifetime, total_spend FROM user_profile WHERE user_id = 'unit-buyer'"
        ).fetchone()
    finally:
        con.close()
    assert bursts == [("clicker", 400, "400 events in one minute (limit 300)")]
    assert buyer[0] == 400 and buyer[1] == pytest.approx(20.0)
    assert "exact repeat" not in out


def test_a_buyers_busy_day_is_no_burst(tmp_path: Path) -> None:
    """helper-83: a reseller browsing 8,000 times and buying 100 times a day lost all its browsing
    to the day limit, as a scraper would. A day with at least one purchase line per 100 browsing
    events is a buyer's: the day limit does not apply (the minute limit does). The same browsing
    with 10 purchases is still a burst. Purchases count as stg_events counts them."""
    path = tmp_path / "events.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "ts", "item_id", "price", "event_type"])
        for user in ("reseller", "scraper", "stream", "dated"):
            # 6,000 views over 10 hours: 10 a minute, under the minute limit, over the day limit
            w.writerows(
                [
                    user,
                    f"2024-03-01 {8 + i // 600:02d}:{i // 10 % 60:02d}:{i % 10 * 6:02d}",
                    str(i),
                    "2",
                    "view",
                ]
                for i in range(6000)
            )
        for user, buys in (("reseller", 60), ("scraper", 10)):
            w.writerows(
                [user, f"2024-03-01 19:{i:02d}:00", str(i), "2", "purchase"] for i in range(buys)
            )
        # an event stream's 40 purchases, each sent twice (microsecond stamps): 40, not 80, so
        # too few for 6,000 views (helper-89: counted twice, they made a bot's day a buyer's)
        w.writerows(
            ["stream", f"2024-03-01 19:{i:02d}:00.250001", str(i), "2", "purchase"]
            for i in range(40)
            for _ in range(2)
        )
    project, wh = sql_project(tmp_path / "project"), tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(path), warehouse=wh, project=project)
    header = path.read_text().splitlines()[0]
    # the scraper's purchase lines sent again in 6 more files: copies, not purchases (helper-86:
    # counted, they made its day a buyer's)
    lines = [
        r for r in path.read_text().splitlines() if r.startswith("scraper") and "purchase" in r
    ]
    # 30 purchases sent as dates, in two files: equal dated lines are separate purchases, 60
    dated = [f"dated,2024-03-01,{i},2,purchase" for i in range(30)]
    for n, sent in enumerate([lines] * 6 + [dated] * 2):
        again = tmp_path / f"again{n}.csv"
        again.write_text(
            "\n".join([header, *sent, f"other{n},2024-03-01 09:00:00,1,2,view"]) + "\n"
        )
        run_cli("ingest", "events", str(again), warehouse=wh, project=project)
    run_cli("build", *PROFILE, warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        bursts = con.execute("SELECT user_id, purchases, reason FROM stg_bot_bursts").fetchall()
        views = dict(con.execute("SELECT user_id, views_lifetime FROM user_profile").fetchall())
        bought = con.execute(
            "SELECT purchases_lifetime FROM user_profile WHERE user_id = 'dated'"
        ).fetchone()
    reason = "6000 events in one day (limit 5000) and {} purchase(s), fewer than 1 per 100"
    assert sorted(bursts) == [("scraper", 10, reason.format(10)), ("stream", 40, reason.format(40))]
    assert views == {"reseller": 6000, "scraper": 0, "stream": 0, "dated": 6000} | {
        f"other{n}": 1 for n in range(8)
    }
    assert bought == (60,)


def test_a_wholesale_invoice_is_no_burst_and_a_bot_day_keeps_its_purchases(tmp_path: Path) -> None:
    """Purchases are payments, not clicks. Online Retail II writes one line per invoice line,
    every line at the invoice's minute: 301 lines of one invoice are 301 purchases, not a bot.
    A day with 400 views in one minute is still a burst, but its purchase stays. (Made-up ids
    and prices; the line shapes are those of the UCI file.)"""
    path = tmp_path / "invoices.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "Customer ID", "type"]
        )
        w.writerows(
            ["489434", str(20000 + i), "12", "12/2/2009 7:45:00", "1.25", "14096.0", "purchase"]
            for i in range(301)
        )
        w.writerows(
            ["", str(i), "", f"12/3/2009 10:15:{i % 60:02d}", "1", "13085.0", "view"]
            for i in range(400)
        )
        w.writerow(["489500", "85048", "2", "12/3/2009 10:15:30", "6.95", "13085.0", "purchase"])
    project, wh = sql_project(tmp_path / "project"), tmp_path / "wh.duckdb"
    run_cli(
        "ingest",
        "events",
        str(path),
        "--ts-format",
        "%m/%d/%Y %H:%M:%S",
        "--map",
        "item_id=StockCode",
        "--map",
        "event_type=type",
        warehouse=wh,
        project=project,
    )
    run_cli("build", *PROFILE, warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        bursts = con.execute("SELECT user_id, events, reason FROM stg_bot_bursts").fetchall()
        got = dict(
            (row[0], row[1:])
            for row in con.execute(
                "SELECT user_id, purchases_lifetime, total_spend, views_lifetime FROM user_profile"
            ).fetchall()
        )
    assert bursts == [("13085", 400, "400 events in one minute (limit 300)")]
    assert got["14096"] == (301, pytest.approx(301 * 12 * 1.25), 0)
    assert got["13085"] == (1, pytest.approx(2 * 6.95), 0)


def test_equal_purchase_lines_of_one_file_are_units_and_a_re_export_is_not(tmp_path: Path) -> None:
    """Olist's order_items writes one line per unit: joined to the orders, two units of one
    product are equal purchase lines at the order's time, and both count. The same lines in a
    second, overlapping export count once more only where that file has more of them; a view
    sent twice at the order's moment is still one view. (Made-up ids, Olist's shapes.)"""
    header = ["customer_unique_id", "order_purchase_timestamp", "product_id", "price", "event_type"]
    order = [
        ("c1", "2017-10-02 10:56:33", "p1", "29.99", "purchase"),
        ("c1", "2017-10-02 10:56:33", "p1", "29.99", "purchase"),
        ("c1", "2017-10-02 10:56:33", "p2", "10.00", "purchase"),
        ("c1", "2017-10-02 10:56:33", "p1", "29.99", "view"),
        ("c1", "2017-10-02 10:56:33", "p1", "29.99", "view"),
        ("c1", "2017-10-02 10:56:33", "p2", "10.00", "cart"),  # once: no repeat at the moment
    ]
    later = [
        ("c1", "2017-10-02 10:56:33", "p1", "29.99", "purchase"),  # 3 units now: a file says so
        ("c1", "2017-10-09 08:00:00", "p3", "5.00", "purchase"),
    ]
    project, wh = sql_project(tmp_path / "project"), tmp_path / "wh.duckdb"
    for name, lines in (("orders_1.csv", order), ("orders_2.csv", order[:3] + later)):
        path = tmp_path / name
        with path.open("w", newline="") as f:
            csv.writer(f).writerows([header, *lines])
        olist = ("--map", "user_id=customer_unique_id", "--map", "ts=order_purchase_timestamp")
        run_cli("ingest", "events", str(path), *olist, warehouse=wh, project=project)
    out = run_cli("build", *PROFILE, warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        got = con.execute(
            "SELECT purchases_lifetime, total_spend, views_lifetime, purchase_days FROM user_profile"
        ).fetchall()
    assert got == [(5, pytest.approx(3 * 29.99 + 10.0 + 5.0), 1, 2)]
    # the second view; of the second file's 4 copies of the first file's lines, the 3 that add
    # no unit (p1: 3 units, one file says so; p2: 1): of 3 events, the cart beside them none
    assert "4 exact repeat line(s) of 3 event(s) left out" in out, out


def test_equal_purchase_lines_timed_to_the_microsecond_are_one_purchase(tmp_path: Path) -> None:
    """GA4's BigQuery export stamps events to the microsecond, and `events_*` also reads the
    intraday table's copy of the last day (helper-51: 12 of 60 users' purchases and spend
    inflated): equal purchase lines with a fraction of a second are one purchase sent twice,
    while the whole-second purchase beside them keeps its two units. (Made-up ids, GA4's
    shapes: event_timestamp in microseconds.)"""
    header = ["user_pseudo_id", "event_timestamp", "event_name", "item_id", "price"]
    stamp = 1707904800123456  # 2024-02-14 10:00:00.123456 UTC
    lines = [
        ("u1", stamp, "purchase", "p1", "49.90"),
        ("u1", stamp, "purchase", "p1", "49.90"),  # the intraday table's copy
        ("u1", stamp + 60_000_000 - 123456, "purchase", "p2", "5.00"),  # whole seconds: 2 units
        ("u1", stamp + 60_000_000 - 123456, "purchase", "p2", "5.00"),
    ]
    project, wh = sql_project(tmp_path / "project"), tmp_path / "wh.duckdb"
    path = tmp_path / "ga4.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *lines])
    pseudo = ("--map", "user_id=user_pseudo_id")
    run_cli("ingest", "events", str(path), *pseudo, warehouse=wh, project=project)
    out = run_cli("build", *PROFILE, warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        got = con.execute("SELECT purchases_lifetime, total_spend FROM user_profile").fetchall()
    assert got == [(3, pytest.approx(49.90 + 2 * 5.0))]
    assert "1 exact repeat line(s) of" in out


def test_equal_reviews_of_one_file_are_separate_and_a_re_export_is_not(tmp_path: Path) -> None:
    """Olist reviews are dated at midnight and often have no comment: two 5-star reviews of two
    orders, written the same day, are equal lines of one file and both count. A second export
    repeating them adds only its new review, and the build says how many lines it left out.
    (Made-up ids, Olist's shapes.)"""
    project, wh = sql_project(tmp_path / "project"), tmp_path / "wh.duckdb"
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "customer_unique_id,order_purchase_timestamp,product_id,price\n"
        "u1,2017-10-02 10:56:33,p1,29.99\nu1,2017-10-02 11:20:00,p2,15.00\n"
        "u1,2017-10-20 11:20:00,p3,15.00\n"
    )
    run_cli(
        "ingest",
        "events",
        str(orders),
        "--event-type",
        "purchase",
        "--map",
        "user_id=customer_unique_id",
        "--map",
        "ts=order_purchase_timestamp",
        warehouse=wh,
        project=project,
    )
    header = (
        "customer_unique_id,review_id,review_score,review_comment_message,review_creation_date\n"
    )
    first = [
        "u1,r1,5,,2017-10-10 00:00:00\n",
        "u1,r2,5,,2017-10-10 00:00:00\n",
        'u1,r3,1,"Não recebi, ""péssimo""",2017-10-15 00:00:00\n',
    ]
    for name, lines in (
        ("reviews_1.csv", first),
        ("reviews_2.csv", [*first, "u1,r4,4,,2017-10-18 00:00:00\n"]),
    ):
        (tmp_path / name).write_text(header + "".join(lines))
        reviews = ("--kind", "review", "--map", "user_id=customer_unique_id", "--map",
                   "rating=review_score", "--map", "text=review_comment_message", "--map",
                   "ts=review_creation_date")  # fmt: skip
        run_cli("ingest", "feedback", str(tmp_path / name), *reviews, warehouse=wh, project=project)
    out = run_cli("build", *PROFILE, warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        got = con.execute("SELECT ratings, reviews, avg_rating FROM sentiment_features").fetchall()
    assert got == [(4, 4, pytest.approx((5 + 5 + 1 + 4) / 4))]
    assert "3 feedback line(s) a file had sent already left out" in out


def test_a_line_of_quantity_0_keeps_its_money(tmp_path: Path) -> None:
    """Dunnhumby's transactions carry lines of QUANTITY 0 with a sales value (made-up values in
    its shape): they are purchases with their money, not bad lines; a negative quantity (a
    return) is still quarantined."""
    got, _ = build_lines(
        tmp_path,
        ["household_key", "ts", "PRODUCT_ID", "QUANTITY", "SALES_VALUE", "event_type"],
        [
            ("1", "2020-01-01 16:31:00", "1004906", "1", "2.50", "purchase"),
            ("1", "2020-01-01 16:31:00", "1033142", "0", "3.99", "purchase"),
            ("1", "2020-01-05 09:05:00", "1082185", "0", "1.25", "purchase"),
            ("1", "2020-01-06 09:05:00", "1082185", "-1", "1.25", "purchase"),
        ],
        "SELECT purchases_lifetime, total_spend, purchase_days FROM user_profile",
    )
    assert got == [(3, pytest.approx(7.74), 2)]


def build_lines(
    tmp_path: Path, header: list[str], lines: list[tuple], query: str
) -> tuple[list[tuple], str]:
    """Ingest `lines` (a REES46-shaped events file) into a new warehouse, build the profile:
    (rows of `query`, the build's output)."""
    path = tmp_path / "events.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(lines)
    project, wh = sql_project(tmp_path / "project"), tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(path), warehouse=wh, project=project)
    out = run_cli("build", *PROFILE, warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(query).fetchall(), out


def test_a_timed_day_keeps_its_repeats_and_hours_at_midnight(tmp_path: Path) -> None:
    """Only events of a type that are all at midnight that day were sent as dates. REES46-shaped
    lines (made up): a view sent twice at 00:00:00 next to one at 00:00:07 is a repeat, counted
    once, and its session starts in hour 0; the 09:00 session's repeat is one too."""
    rows = [
        ("2019-10-01 00:00:00 UTC", "1", "s1"),
        ("2019-10-01 00:00:00 UTC", "1", "s1"),
        ("2019-10-01 00:00:07 UTC", "2", "s1"),
        ("2019-10-01 09:00:00 UTC", "2", "s2"),
        ("2019-10-01 09:00:00 UTC", "2", "s2"),
    ]
    got, out = build_lines(
        tmp_path,
        ["event_time", "event_type", "product_id", "price", "user_id", "user_session"],
        [(ts, "view", item, "5.0", "u1", session) for ts, item, session in rows],
        "SELECT views_lifetime, sessions_lifetime, top_hour, top_hour_share FROM user_profile",
    )
    assert got == [(3, 2, 0, 0.5)]
    assert "2 exact repeat line(s) of 2 event(s) left out" in out


def test_an_orders_export_beside_a_timed_clickstream_keeps_every_order(tmp_path: Path) -> None:
    """Two feeds of one shop, from the real Taobao sample: its clicks as sent (timed), and its
    purchases as an orders export with a date and no time. Equal order lines on a date stay
    separate purchases although the same users clicked that day; the orders start no session and
    state no hour, so a day with orders and no clicks is one session, and the hour habits are the
    clickstream's alone."""
    with TAOBAO.open(newline="") as f:
        rows = list(csv.DictReader(f))
    clicks, orders = tmp_path / "clicks.csv", tmp_path / "orders.csv"
    with clicks.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "category_id", "behavior_type", "ts"])
        w.writerows([[r[k] for k in rows[0]] for r in rows if r["behavior_type"] != "buy"])
    bought = [
        (r["user_id"], datetime.fromtimestamp(int(r["ts"]), UTC).date(), r["item_id"])
        for r in rows
        if r["behavior_type"] == "buy"
    ]
    with orders.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "order_date", "item_id", "amount"])
        w.writerows([(u, d.isoformat(), i, item_price(i)) for u, d, i in bought])
    assert len(bought) - len(set(bought)) > 20  # equal order lines: the case is real
    project = sql_project(tmp_path / "project")
    alone, both = tmp_path / "clicks.duckdb", tmp_path / "both.duckdb"
    for wh, files in ((alone, [clicks]), (both, [clicks, orders])):
        for path in files:
            extra = ("--event-type", "purchase") if path == orders else ()
            run_cli("ingest", "events", str(path), *extra, warehouse=wh, project=project)
        run_cli("build", *PROFILE, warehouse=wh, project=project)
    query = (
        "SELECT user_id, purchases_lifetime, total_spend, sessions_lifetime, top_hour, "
        "top_hour_share FROM user_profile"
    )
    with duckdb.connect(str(alone), read_only=True) as con:
        clicked = {r[0]: r for r in con.execute(query).fetchall()}
        click_days = set(
            con.execute("SELECT user_id, day FROM int_user_day WHERE events > 0").fetchall()
        )
    with duckdb.connect(str(both), read_only=True) as con:
        got = {r[0]: r for r in con.execute(query).fetchall()}
        assert con.execute("SELECT count(*) FROM stg_event_repeats").fetchone()[0] == 0
    lines: dict[str, int] = {}
    spend: dict[str, float] = {}
    for user, _, item in bought:
        lines[user] = lines.get(user, 0) + 1
        spend[user] = spend.get(user, 0.0) + item_price(item)
    order_only_days: dict[str, int] = {}
    for user, _ in {(u, d) for u, d, _ in bought} - click_days:
        order_only_days[user] = order_only_days.get(user, 0) + 1
    assert sum(order_only_days.values()) > 0  # some users bought on a day without clicks
    for user, row in got.items():
        assert row[1] == lines.get(user, 0), user
        assert row[2] == (pytest.approx(spend[user]) if user in spend else None), user
        before = clicked.get(user, (user, 0, 0.0, 0, None, None))
        assert row[3] == before[3] + order_only_days.get(user, 0), user
        assert row[4:] == before[4:], user


def test_orders_sent_as_dates_keep_their_copies_beside_a_timed_repeat_at_midnight(
    tmp_path: Path,
) -> None:
    """A timed view sent twice at 00:00:00 is one view; two equal orders of that date, in the
    same moment, stay two orders (REES46-shaped lines, made up)."""
    rows = [
        ("2019-10-01 00:00:00", "view", "5"),
        ("2019-10-01 00:00:00", "view", "5"),
        ("2019-10-01 10:00:00", "view", "5"),
        ("2019-10-01 00:00:00", "purchase", "9"),
        ("2019-10-01 00:00:00", "purchase", "9"),
    ]
    got, out = build_lines(
        tmp_path,
        ["event_time", "event_type", "product_id", "price", "user_id"],
        [(ts, kind, item, "7.0", "u1") for ts, kind, item in rows],
        "SELECT views_lifetime, purchases_lifetime, total_spend FROM user_profile",
    )
    assert got == [(2, 2, 14.0)]
    assert "1 exact repeat line(s) of 1 event(s) left out" in out


# --- scores, segments and lifecycle of every buyer, worked out here from the purchases -----------


def expected_scores(purchases: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """R, F and M scores and the segment of every buyer, by the rules of docs/models.md: R is
    ceil(5 x the share of buyers whose last purchase day is this one or earlier); F (purchase
    days) and M (spend) are least(5, 1 + floor(5 x the share of the other buyers below))."""
    import math

    seen = purchases[purchases["date"] <= as_of]
    per = (
        seen.assign(day=seen["date"].dt.normalize())
        .groupby("user_id")
        .agg(last=("day", "max"), days=("day", "nunique"), spend=("amount", "sum"))
    )
    n = len(per)
    last, days, spend = per["last"], per["days"], per["spend"].round(6)
    per["r"] = [math.ceil(5 * ((last <= v).sum() / n)) for v in last]
    per["f"] = [min(5, 1 + math.floor(5 * ((days < v).sum() / (n - 1)))) for v in days]
    per["m"] = [min(5, 1 + math.floor(5 * ((spend < v).sum() / (n - 1)))) for v in spend]

    def segment(r: int, f: int, d: int) -> str:
        if r >= 4 and f >= 4:
            return "champions"
        if r >= 3 and f >= 3:
            return "loyal"
        if r >= 4 and d == 1:
            return "new"
        if r >= 4:
            return "potential loyalist"
        if r == 3:
            return "needs attention"
        if f >= 3:
            return "at risk"
        return "hibernating" if r == 2 else "lost"

    per["segment"] = [segment(r, f, d) for r, f, d in zip(per["r"], per["f"], days, strict=True)]
    return per


def test_every_buyers_scores_and_segment_with_prices(taobao_with_prices) -> None:
    """Every buyer of the Taobao sample, priced by the items feed: R, F and M scores and the
    segment equal the rules worked out here (the dimensions test checks a handful of users, and
    without prices every M score there is 1)."""
    wh, purchases = taobao_with_prices
    got = profile_frame(wh, "as_of, r_score, f_score, m_score, rfm_score, rfm_segment")
    as_of = got["as_of"].iloc[0].to_pydatetime()
    expected = expected_scores(purchases, as_of)
    assert len(expected) > 600 and set(expected["m"]) == {1, 2, 3, 4, 5}  # spend told apart
    assert (expected["segment"] == "at risk").sum() > 20  # F = 3 among the late buyers
    buyers = got.loc[expected.index]
    assert (buyers["r_score"].to_numpy() == expected["r"].to_numpy()).all()
    assert (buyers["f_score"].to_numpy() == expected["f"].to_numpy()).all()
    assert (buyers["m_score"].to_numpy() == expected["m"].to_numpy()).all()
    assert list(buyers["rfm_score"]) == [
        f"{r}{f}{m}" for r, f, m in zip(expected["r"], expected["f"], expected["m"], strict=True)
    ]
    assert list(buyers["rfm_segment"]) == list(expected["segment"])
    others = got.drop(expected.index)
    assert (others["rfm_segment"] == "prospect").all() and others["m_score"].isna().all()


def test_lifecycle_and_loyalty_of_every_cdnow_customer(cdnow) -> None:
    """CDNOW's 18 months of real purchases: the purchase cycle (the user's mean days between
    purchase days, else the median of that over the users with two or more, at least 7), the
    lifecycle stage judged against it and the loyalty score (no feedback: satisfaction 0.5) of
    every customer, worked out here from the purchase lines."""
    import statistics

    wh, purchases, _ = cdnow
    got = profile_frame(
        wh,
        "as_of, purchase_cycle_days, lifecycle_stage, loyalty_score, loyalty_band, "
        "repeat_purchase_rate, tenure_days",
    )
    today = got["as_of"].iloc[0].to_pydatetime().date()
    days = {u: sorted(set(d.date() for d in g)) for u, g in purchases.groupby("user_id")["date"]}
    means = {
        u: statistics.mean((b - a).days for a, b in zip(d, d[1:], strict=False))
        for u, d in days.items()
        if len(d) >= 2
    }
    population = statistics.median(means.values())
    assert abs(population - statistics.mean(means.values())) > 10  # the median, not the mean
    expected = {}
    for u, d in days.items():
        cycle = max(means.get(u, population), 7)
        since = (today - d[-1]).days
        stage = lifecycle_stage(len(d), since, cycle)
        tenure = (today - d[0]).days
        score = (
            0.35 * min((len(d) - 1) / 4, 1)
            + 0.25 * 0.5 ** (since / 30)
            + 0.2 * min(tenure / 365, 1)
            + 0.2 * 0.5
        )
        band = "high" if score >= 0.7 else "medium" if score >= 0.4 else "low"
        expected[u] = (cycle, stage, score, band, (len(d) - 1) / len(d), tenure)
    assert {s for _, s, *_ in expected.values()} == {"active", "at risk", "churned"}
    rows = got.loc[list(expected)]
    want = pd.DataFrame.from_dict(
        expected,
        orient="index",
        columns=["purchase_cycle_days", "lifecycle_stage", "loyalty_score", "loyalty_band",
                 "repeat_purchase_rate", "tenure_days"],
    )  # fmt: skip
    for column in ("lifecycle_stage", "loyalty_band", "tenure_days"):
        mismatched = (rows[column].to_numpy() != want[column].to_numpy()).sum()
        assert mismatched == 0, column
    for column in ("purchase_cycle_days", "loyalty_score", "repeat_purchase_rate"):
        assert rows[column].astype(float).to_numpy() == pytest.approx(
            want[column].astype(float).to_numpy(), rel=1e-9, abs=1e-9
        ), column


def test_catalogue_priced_spend_counts_the_units_bought(taobao_with_prices) -> None:
    """A purchase without amount or price is valued at its item's catalogue price times its
    quantity: every Taobao buyer's total spend and the spend shares of their top categories
    (helper-93: the quantity left out of the shares went unnoticed), worked out here."""
    wh, purchases = taobao_with_prices
    spend = purchases.groupby(["user_id", "category"])["amount"].sum()
    total = purchases.groupby("user_id")["amount"].sum()
    tops = ", ".join(f"top_category_{k}, top_category_{k}_spend_share" for k in (1, 2, 3))
    got = profile_frame(wh, f"total_spend, {tops}").loc[total.index]
    assert len(total) > 600 and (purchases["amount"] > purchases["amount"].round(0)).any()
    assert got["total_spend"].to_numpy() == pytest.approx(total.round(6).to_numpy(), abs=1e-6)
    shared = 0
    for user, row in got.iterrows():
        for k in (1, 2, 3):
            category = row[f"top_category_{k}"]
            if pd.isna(category):
                continue
            want = spend.get((user, category), 0.0) / total[user]
            assert row[f"top_category_{k}_spend_share"] == pytest.approx(want, abs=1e-6), user
            shared += 0 < want < 1
    assert shared > 100  # shares neither 0 nor all of it


def test_the_mean_price_looked_at_and_the_price_band_of_every_user(taobao_with_prices) -> None:
    """avg_price_viewed is the mean unit price of a user's views, carts and purchases, never
    favourites (helper-93: favourites counted went unnoticed), and price_band its third among all
    users with prices. Every Taobao user, priced by the items feed, worked out here."""
    wh, _ = taobao_with_prices
    with TAOBAO.open(newline="") as f:
        seen = {
            (r["user_id"], r["item_id"], r["behavior_type"], r["ts"])
            for r in csv.DictReader(f)
            if r["behavior_type"] in ("pv", "cart", "buy")
        }  # an exact repeat counts once
    prices: dict[str, list[float]] = {}
    for user, item, _, _ in seen:
        prices.setdefault(user, []).append(item_price(item))
    want = pd.Series({u: round(sum(p) / len(p), 6) for u, p in prices.items()})
    rank = want.rank(method="min").sub(1).div(len(want) - 1)  # percent_rank
    band = rank.map(lambda r: "budget" if r < 1 / 3 else "mid" if r < 2 / 3 else "premium")
    got = profile_frame(wh, "avg_price_viewed, price_band").loc[want.index]
    assert len(want) > 900
    assert got["avg_price_viewed"].to_numpy() == pytest.approx(want.to_numpy(), abs=2e-6)
    assert list(got["price_band"]) == list(band)
