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
from conftest import TAOBAO, run_cli

PROFILE = ("--select", "+user_profile_history")  # the profile and everything it reads, nothing else
RFM = ["rfm_frequency", "rfm_recency_days", "rfm_age_days", "rfm_monetary_value"]
LIFETIMES = ["frequency", "recency", "T", "monetary_value"]


def item_price(item_id: str) -> float:
    return round(1 + (int(item_id) % 997) * 0.37, 2)


@pytest.fixture(scope="module")
def taobao_with_prices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("rfm")
    with TAOBAO.open(newline="") as f:
        rows = list(csv.DictReader(f))
    items = tmp / "items.csv"
    with items.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "category_id", "price"])
        for item, category in sorted({(r["item_id"], r["category_id"]) for r in rows}):
            w.writerow([item, category, item_price(item)])
    wh = tmp / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh)
    run_cli("ingest", "items", str(items), warehouse=wh)
    run_cli("build", *PROFILE, warehouse=wh)
    purchases = pd.DataFrame(
        {
            "user_id": [r["user_id"] for r in rows if r["behavior_type"] == "buy"],
            "date": [
                datetime.fromtimestamp(int(r["ts"]), UTC).replace(tzinfo=None)
                for r in rows
                if r["behavior_type"] == "buy"
            ],
            "amount": [item_price(r["item_id"]) for r in rows if r["behavior_type"] == "buy"],
        }
    )
    return wh, purchases


def profile_rfm(wh: Path) -> pd.DataFrame:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return (
            con.execute(f"SELECT user_id, as_of, purchase_days, {', '.join(RFM)} FROM user_profile")
            .df()
            .set_index("user_id")
        )
    finally:
        con.close()


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
