"""Tables and files: the batch's arrays as Arrow tables in each source's canonical columns,
written as Parquet or CSV."""

from __future__ import annotations

from typing import TYPE_CHECKING

from profiler.generate.behaviour import _query_texts
from profiler.generate.columns import _canonical, _decimal_ids, _labels, _timestamps
from profiler.generate.feedback import _feedback_texts
from profiler.generate.shop import _category_ids, _category_paths, _stream
from profiler.sources import EVENT_TYPES, FEEDBACK_KINDS

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    import numpy as np
    import pyarrow as pa

    from profiler.generate.behaviour import _Events
    from profiler.generate.feedback import _Feedback
    from profiler.generate.shop import _Catalogue, _Population

FIRST_NAMES = {
    "F": ("Anna", "Maria", "Sophie", "Emma", "Olivia", "Julia", "Eva", "Laura", "Katarzyna",
          "Lena", "Sara", "Hannah", "Chloe", "Mia", "Zofia", "Elena", "Amelia", "Clara"),
    "M": ("Jan", "Piotr", "Lukas", "Tom", "James", "Oliver", "Max", "Adam", "David", "Daniel",
          "Marco", "Paul", "Jakub", "Felix", "Noah", "Leon", "Tomas", "Erik"),
}  # fmt: skip
LAST_NAMES = (
    "Novak", "Kowalski", "Smith", "Jones", "Brown", "Muller", "Schmidt", "Fischer", "Weber",
    "Nowak", "Wisniewski", "Taylor", "Wilson", "Rossi", "Bianchi", "Dubois", "Martin", "Bernard",
    "Jansen", "Horvat", "Kovac", "Novotny", "Svoboda", "Dvorak", "Lindqvist", "Nielsen", "Hansen",
    "Garcia", "Lopez", "Evans", "Walker", "Kaminski",
)  # fmt: skip
# (city, region, phone prefix, digits after it, weight)
CITIES = (
    ("London", "England", "+44 7700 9", 5, 9.0), ("Manchester", "England", "+44 7700 9", 5, 3.0),
    ("Edinburgh", "Scotland", "+44 7700 9", 5, 1.5), ("Warsaw", "Mazowieckie", "+48 600 ", 6, 4.0),
    ("Krakow", "Malopolskie", "+48 600 ", 6, 2.0), ("Berlin", "Berlin", "+49 151 ", 8, 5.0),
    ("Munich", "Bavaria", "+49 151 ", 8, 3.0), ("Hamburg", "Hamburg", "+49 151 ", 8, 2.5),
    ("Prague", "Prague", "+420 601 ", 6, 2.5), ("Brno", "South Moravia", "+420 601 ", 6, 1.0),
    ("Amsterdam", "North Holland", "+31 6 ", 8, 2.5), ("Rotterdam", "South Holland", "+31 6 ", 8, 1.5),
    ("Paris", "Ile-de-France", "+33 6 ", 8, 5.0), ("Lyon", "Auvergne-Rhone-Alpes", "+33 6 ", 8, 2.0),
    ("Milan", "Lombardy", "+39 320 ", 7, 3.0), ("Rome", "Lazio", "+39 320 ", 7, 3.0),
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")


def _events_table(ev: _Events, cat: _Catalogue, start: date) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    search = ev.item < 0
    item = np.where(search, 0, ev.item)
    category = cat.category[item]
    price = cat.price[item]
    no_quantity = ev.quantity == 0
    amount = np.zeros(len(price))
    sold = np.flatnonzero(~no_quantity)
    amount[sold] = np.round(price[sold] * ev.quantity[sold], 2)
    table = pa.table(
        {
            "user_id": _labels(ev.user, ev.user_ids),
            "event_type": _labels(ev.etype, pa.array(EVENT_TYPES)),
            "ts": _timestamps(start, ev.ts),
            "item_id": _labels(item, cat.ids, search),
            "category_id": _labels(category, _category_ids(), search),
            "category_path": _labels(category, _category_paths(), search),
            "brand": _labels(cat.label[item], cat.brands, search),
            "price": pa.array(price, mask=search),
            "quantity": pa.array(ev.quantity.astype(np.int32), mask=no_quantity),
            "amount": pa.array(amount, mask=no_quantity),
            "session_id": _labels(ev.session, ev.session_ids),
            "query": _labels(np.maximum(ev.query, 0), pa.array(_query_texts()), ev.query < 0),
        }
    )
    return _canonical("events", table)


def _users_table(pop: _Population, start: date) -> pa.Table:
    """Fake but realistic personal details: names that match the gender, unique emails on
    reserved example domains, phone numbers in the city's country format."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(pop.signup)
    u = _stream(7).random((n, 6))
    gender = np.minimum((u[:, 0] > 0.51).astype(np.int64) + (u[:, 0] > 0.97), 2)  # F, M, unknown
    n_f, n_m = len(FIRST_NAMES["F"]), len(FIRST_NAMES["M"])
    first = np.where(
        gender == 1, n_f + u[:, 1] * n_m, u[:, 1] * np.where(gender == 0, n_f, n_f + n_m)
    )
    first_names = pa.array(FIRST_NAMES["F"] + FIRST_NAMES["M"]).take(first.astype(np.int64))
    last_names = pa.array(LAST_NAMES).take((u[:, 2] * len(LAST_NAMES)).astype(np.int64))
    city = np.minimum(
        np.searchsorted(_cdf([c[4] for c in CITIES]), u[:, 3], side="right"), len(CITIES) - 1
    )
    digits = np.array([c[3] for c in CITIES])[city]
    subscriber = 10 ** (digits - 1) + (u[:, 4] * 9 * 10 ** (digits - 1)).astype(np.int64)
    numbers = _decimal_ids(np.arange(1, n + 1))
    local = pc.binary_join_element_wise(
        pc.binary_join_element_wise(pc.utf8_lower(first_names), pc.utf8_lower(last_names), "."),
        numbers,
        "",
    )
    domain = pa.array(EMAIL_DOMAINS).take((u[:, 5] * len(EMAIL_DOMAINS)).astype(np.int64))
    birth_year = np.clip(np.rint(_stream(8).normal(1986.0, 13.0, n)), 1940, 2008).astype(np.int32)
    table = pa.table(
        {
            "user_id": numbers,
            "gender": _labels(np.minimum(gender, 1), pa.array(["F", "M"]), gender == 2),
            "birth_year": pa.array(birth_year, mask=_stream(9).random(n) < 0.04),
            "city": pa.array([c[0] for c in CITIES]).take(city),
            "region": pa.array([c[1] for c in CITIES]).take(city),
            "signup_ts": _timestamps(start, pop.signup),
            "name": pc.binary_join_element_wise(first_names, last_names, " "),
            "email": pc.binary_join_element_wise(local, domain, "@"),
            "phone": pc.binary_join_element_wise(
                pa.array([c[2] for c in CITIES]).take(city), _decimal_ids(subscriber), ""
            ),
        }
    )
    return _canonical("users", table)


def _feedback_table(fb: _Feedback, ev: _Events, cat: _Catalogue, start: date) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    table = pa.table(
        {
            "user_id": _labels(ev.user[fb.event], ev.user_ids),
            "ts": _timestamps(start, fb.ts),
            "kind": _labels(fb.kind, pa.array(FEEDBACK_KINDS)),
            "item_id": _labels(ev.item[fb.event], cat.ids),
            "rating": pa.array(fb.rating.astype(np.int32), mask=fb.rating == 0),
            "text": _labels(np.maximum(fb.text, 0), pa.array(_feedback_texts()), fb.text < 0),
        }
    )
    return _canonical("feedback", table)


def _cdf(weights: list[float]) -> np.ndarray:
    import numpy as np

    return np.cumsum(weights) / np.sum(weights)


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    """Write beside the target and rename, so a watcher never ingests half a file."""
    import pyarrow as pa

    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "csv":
        import pyarrow.csv as csv

        csv.write_csv(_iso_timestamps(table), tmp)
    else:
        import pyarrow.parquet as pq

        # No stored Arrow schema: readers get plain strings, not the dictionaries we wrote.
        # Timestamps are near-sorted: plain + zstd beats a dictionary in time and size.
        plain = {f.name for f in table.schema if pa.types.is_timestamp(f.type)}
        dictionary = [name for name in table.column_names if name not in plain]
        pq.write_table(
            table, tmp, compression="zstd", use_dictionary=dictionary, store_schema=False
        )
    tmp.replace(path)


def _iso_timestamps(table: pa.Table) -> pa.Table:
    """CSV has no timestamp type: write ISO-8601 in UTC, like 2024-01-05T10:31:00Z."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            text = pc.strftime(table.column(i).cast(pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%SZ")
            table = table.set_column(i, field.name, text)
    return table
