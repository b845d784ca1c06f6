"""Synthetic shop data: events, users, items and feedback that behave like a real shop's.

The real slices in ../shared/data are small and lack prices, sessions or user attributes. Volume
tests, benchmarks and demos need millions of events with the structure features look for:
heavy-tailed activity, churn, sessions, view -> cart -> purchase funnels, category and brand
affinities, repeat buyers, and feedback that agrees with behaviour.

Batches continue one shop. Ids, the catalogue and each user's lasting traits (activity level,
favourite categories and brands, staple item and buying cycle, satisfaction, personal details) come
from fixed seeds and depend only on `users`; `seed`, `start` and `days` decide only what happens in
the batch's window. Everything is vectorised with numpy, and strings are Arrow dictionaries plus
indices, so no Python code runs per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from profiler.errors import ProfilerError
from profiler.sources import EVENT_TYPES, FEEDBACK_KINDS, SOURCES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np
    import pyarrow as pa

FORMATS = ("parquet", "csv")
DAY = 86_400  # seconds
_CATALOGUE_SEED = 4_620_191_001  # fixed: the catalogue must not change with `seed`
_USER_SEED = 6_492_017_112  # fixed: a user's traits must not change with `seed`
VIEW, CART, FAV, PURCHASE, SEARCH = map(
    EVENT_TYPES.index, ("view", "cart", "fav", "purchase", "search")
)
RATING, REVIEW, COMPLAINT, LIKE, COMMENT, SHARE = map(
    FEEDBACK_KINDS.index, ("rating", "review", "complaint", "like", "comment", "share")
)

# (category_path, median unit price, popularity, brands from most to least stocked)
CATEGORIES: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("electronics.smartphone", 320.0, 9.0, ("samsung", "apple", "xiaomi", "huawei", "oppo")),
    ("electronics.audio.headphone", 60.0, 6.0, ("sony", "jbl", "sennheiser", "apple", "xiaomi")),
    ("electronics.video.tv", 480.0, 4.0, ("samsung", "lg", "sony", "philips", "tcl")),
    ("electronics.clocks", 140.0, 3.0, ("casio", "garmin", "apple", "fossil")),
    ("electronics.tablet", 290.0, 2.5, ("apple", "samsung", "lenovo", "huawei")),
    ("computers.notebook", 720.0, 5.0, ("lenovo", "hp", "asus", "acer", "apple")),
    ("computers.peripherals.mouse", 25.0, 2.0, ("logitech", "razer", "hp", "a4tech")),
    ("computers.components.videocards", 420.0, 1.5, ("msi", "asus", "gigabyte", "palit")),
    ("appliances.kitchen.refrigerators", 560.0, 3.0, ("bosch", "samsung", "lg", "beko")),
    ("appliances.kitchen.kettle", 32.0, 2.0, ("tefal", "philips", "bosch", "redmond")),
    ("appliances.kitchen.coffee_machine", 190.0, 1.5, ("delonghi", "philips", "krups")),
    ("appliances.environment.vacuum", 160.0, 3.0, ("dyson", "xiaomi", "samsung", "philips")),
    ("appliances.personal.hair_cutter", 38.0, 1.0, ("philips", "braun", "remington")),
    ("apparel.shoes.sneakers", 85.0, 5.0, ("nike", "adidas", "puma", "reebok", "new balance")),
    ("apparel.tshirt", 18.0, 3.0, ("nike", "adidas", "zara", "h&m")),
    ("apparel.jeans", 55.0, 2.5, ("levis", "wrangler", "lee", "zara")),
    ("apparel.jacket", 120.0, 2.0, ("the north face", "columbia", "zara", "adidas")),
    ("furniture.living_room.sofa", 540.0, 1.5, ("ikea", "jysk", "bolia")),
    ("furniture.bedroom.bed", 380.0, 1.0, ("ikea", "jysk", "hilding")),
    ("furniture.kitchen.chair", 60.0, 1.0, ("ikea", "jysk", "kettal")),
    ("beauty.fragrance.perfume", 75.0, 2.0, ("chanel", "dior", "hugo boss", "calvin klein")),
    ("beauty.skin_care.cream", 22.0, 2.5, ("nivea", "loreal", "garnier", "shiseido")),
    ("kids.toys.constructor", 45.0, 2.0, ("lego", "playmobil", "mega bloks")),
    ("kids.diapers", 19.0, 2.0, ("pampers", "huggies", "libero")),
    ("grocery.coffee", 11.0, 2.5, ("lavazza", "illy", "jacobs", "nescafe")),
    ("pets.food.dry", 29.0, 2.0, ("royal canin", "purina", "whiskas", "pedigree")),
    ("sport.bicycle", 460.0, 1.0, ("trek", "giant", "merida", "cube")),
    ("sport.fitness.dumbbells", 40.0, 1.0, ("domyos", "adidas", "reebok")),
    ("auto.accessories.videoregister", 70.0, 1.0, ("xiaomi", "garmin", "neoline")),
    ("stationery.cartrige", 30.0, 1.0, ("hp", "canon", "epson")),
    ("books.fiction", 14.0, 1.5, ("penguin", "harpercollins", "vintage")),
    ("construction.tools.drill", 95.0, 1.5, ("bosch", "makita", "dewalt", "metabo")),
)
STAPLES = ("kids.diapers", "grocery.coffee", "pets.food.dry", "beauty.skin_care.cream")
MAX_BRANDS = max(len(c[3]) for c in CATEGORIES)
QUERY_FORMS = ("{leaf}", "cheap {leaf}", "best {leaf}")  # then "{brand} {leaf}" per brand

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
REVIEW_TEXTS = (  # by rating 1..5, three each
    ("Broke after a week, do not buy.", "Nothing like the photos.", "Waste of money."),
    ("Works, but feels cheap.", "Below expectations.", "Sizing is way off."),
    ("Does the job.", "Average quality for the price.", "Okay, nothing special."),
    ("Good value, would buy again.", "Works well, quick delivery.", "Nice, minor flaws."),
    ("Excellent, exactly as described!", "Love it.", "Best purchase this year."),
)
COMPLAINT_TEXTS = (
    "Item arrived damaged.", "Delivery was two weeks late.", "Wrong item sent.",
    "Refund still not processed.", "Missing parts in the box.",
)  # fmt: skip
COMMENT_TEXTS = (
    "Does this come in black?", "Is it in stock in the store?", "Looks great!",
    "How long is the warranty?", "Got one for my brother.",
)  # fmt: skip
HOUR_WEIGHTS = (1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.2, 2.6, 2.8, 3.0,
                3.1, 3.0, 2.9, 2.9, 3.0, 3.3, 3.8, 4.4, 4.8, 4.5, 3.4, 2.0)  # fmt: skip


def generate(
    out: Path,
    *,
    users: int,
    events: int,
    days: int,
    start: date,
    seed: int,
    fmt: str = "parquet",
) -> dict[str, int]:
    """Write one batch of a synthetic shop to `out`; return the rows written per source.

    Writes `events`, `users`, `items` and `feedback` (`.parquet` or `.csv`) in the canonical
    columns of `profiler.sources`, so they ingest without a column map. A later batch (`start` =
    the next day, another `seed`) continues the same shop: same users, same items, new events.
    The same arguments give the same tables.

    For example, `generate(Path("data"), users=1_000, events=50_000, days=30,
    start=date(2024, 1, 1), seed=1)` returns `{"events": 50000, "users": 1000, "items": 200,
    "feedback": ...}`.
    """
    _check(users=users, events=events, days=days, seed=seed, fmt=fmt)
    import numpy as np

    start = date(start.year, start.month, start.day)  # a datetime counts from its day
    rng = np.random.default_rng([seed, users, events, days, start.toordinal()])
    cat = _catalogue(max(200, users // 5))
    pop = _population(users, cat, days)
    ev = _events(rng, cat, pop, n_events=events, days=days, start=start)
    tables = {
        "events": _events_table(ev, cat, start),
        "users": _users_table(pop, start),
        "items": cat.table,
        "feedback": _feedback_table(_feedback(rng, ev, cat, pop, days), ev, cat, start),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        _write(table, out / f"{name}.{fmt}", fmt)
    return {name: table.num_rows for name, table in tables.items()}


def _check(*, users: int, events: int, days: int, seed: int, fmt: str) -> None:
    """Fail before any work, with a message that names the argument to fix."""
    if fmt not in FORMATS:
        raise ProfilerError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    for name, value, least in (("users", users, 1), ("events", events, 0), ("days", days, 1)):
        if value < least:
            raise ProfilerError(f"{name} must be at least {least}, got {value}")
    if seed < 0:
        raise ProfilerError(f"seed must be a non-negative integer, got {seed}")


# --- the shop: catalogue and population, fixed by `users` alone -------------------------------


@dataclass(frozen=True)
class _Catalogue:
    """Items in (category, brand) group order, so a group's items are one contiguous range."""

    category: np.ndarray  # per item: index into CATEGORIES
    brand: np.ndarray  # per item: index into its category's brands
    label: np.ndarray  # per item: index into `brands`
    price: np.ndarray
    quality: np.ndarray  # latent: drives ratings and complaints
    group_start: np.ndarray  # (category, brand) -> first item
    group_size: np.ndarray  # (category, brand) -> number of items, 0 if the brand is absent
    brands: pa.Array
    ids: pa.Array  # item_id per item
    table: pa.Table  # items.parquet, ordered by item_id


def _catalogue(n_items: int) -> _Catalogue:
    """Every brand of every category stocks at least one item; the rest follow popularity."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(_CATALOGUE_SEED)
    n_brands = np.array([len(c[3]) for c in CATEGORIES])
    group_cat = np.repeat(np.arange(len(CATEGORIES)), n_brands)
    group_brand = np.arange(len(group_cat)) - np.repeat(np.cumsum(n_brands) - n_brands, n_brands)
    weight = np.array([c[2] for c in CATEGORIES])[group_cat] / (group_brand + 1)
    per_group = 1 + rng.multinomial(n_items - len(weight), weight / weight.sum())
    group = np.repeat(np.arange(len(weight)), per_group)
    category, brand = group_cat[group].astype(np.int32), group_brand[group].astype(np.int32)
    size = np.zeros((len(CATEGORIES), MAX_BRANDS), dtype=np.int32)
    size[group_cat, group_brand] = per_group
    start = (np.cumsum(size) - size.ravel()).reshape(size.shape).astype(np.int32)

    median = np.array([c[1] for c in CATEGORIES])[category]
    premium = rng.lognormal(0.0, 0.3, len(weight))[group]  # some brands cost more
    raw = median * premium * rng.lognormal(0.0, 0.45, n_items)
    price = np.maximum(np.where(raw >= 10, np.round(raw) - 0.01, np.round(raw, 2)), 0.49)
    quality = rng.normal(0.0, 0.6, n_items)
    number = 1_000_001 + rng.permutation(n_items)  # ids do not reveal the category
    names = sorted({b for c in CATEGORIES for b in c[3]})
    label = np.array([names.index(b) for c in CATEGORIES for b in c[3]], dtype=np.int32)[group]
    ids = _decimal_ids(number)
    table = pa.table(
        {
            "item_id": ids,
            "category_id": _category_ids().take(category),
            "category_path": _category_paths().take(category),
            "brand": pa.array(names).take(label),
            "price": price,
            "title": _titles(rng, names, label, category, group),
        }
    ).take(np.argsort(number))
    return _Catalogue(
        category=category,
        brand=brand,
        label=label,
        price=price,
        quality=quality,
        group_start=start,
        group_size=size,
        brands=pa.array(names),
        ids=ids,
        table=_canonical("items", table),
    )


def _titles(
    rng: np.random.Generator,
    names: list[str],
    label: np.ndarray,
    category: np.ndarray,
    group: np.ndarray,
) -> pa.Array:
    """Like "Sony headphone WX-4821": brand, leaf category, a model code per brand line."""
    import pyarrow as pa
    import pyarrow.compute as pc

    shown = [b.upper() if len(b) <= 3 else b.title() for b in names]  # JBL, HP, LG; Sony
    leaf = [c[0].rsplit(".", 1)[1].replace("_", " ") for c in CATEGORIES]
    letters = rng.integers(0, 26, (int(group.max()) + 1, 2))
    line = pa.array([chr(65 + a) + chr(65 + b) for a, b in letters]).take(group)
    model = _decimal_ids(rng.integers(100, 10_000, len(group)))
    parts = (pa.array(shown).take(label), pa.array(leaf).take(category))
    return pc.binary_join_element_wise(*parts, pc.binary_join_element_wise(line, model, "-"), " ")


@dataclass(frozen=True)
class _Population:
    """Users' lasting traits. User i's traits depend only on i, except its signup (ids follow
    signup order, so that depends on `users`) and its staple (an item of the catalogue)."""

    activity: np.ndarray  # relative rate of sessions, heavy-tailed
    favourite: np.ndarray  # (users, 3) categories, most liked first
    loyal_brand: np.ndarray  # (users, 3) preferred brand within each favourite category
    satisfaction: np.ndarray  # latent: better ratings, fewer complaints, less churn
    staple: np.ndarray  # item bought every `cycle` days, -1 for most users
    cycle: np.ndarray
    phase: np.ndarray  # buys on days whose ordinal % cycle == phase, the same in every batch
    signup: np.ndarray  # seconds from the window's start; negative before it


def _population(n: int, cat: _Catalogue, days: int) -> _Population:
    """One random stream per trait, drawn element by element, so growing `users` only appends."""
    import numpy as np

    popularity = np.array([c[2] for c in CATEGORIES])
    favourite = _stream(1).choice(len(CATEGORIES), size=(n, 3), p=popularity / popularity.sum())
    n_brands = np.array([len(c[3]) for c in CATEGORIES])
    loyal_brand = (n_brands[favourite] * _stream(2).random((n, 3)) ** 1.5).astype(np.int64)
    pool = np.flatnonzero(np.isin(cat.category, [_category(path) for path in STAPLES]))
    u = _stream(3).random((n, 4))
    staple = np.where(u[:, 0] < 0.08, pool[(u[:, 1] * len(pool)).astype(np.int64)], -1)
    cycle = np.array([7, 10, 14, 21, 28, 30])[(u[:, 2] * 6).astype(np.int64)]
    return _Population(
        activity=_stream(4).lognormal(0.0, 1.2, n),
        favourite=favourite,
        loyal_brand=loyal_brand,
        satisfaction=_stream(5).normal(0.0, 1.0, n),
        staple=staple,
        cycle=cycle,
        phase=(u[:, 3] * cycle).astype(np.int64),
        signup=_signups(n, days),
    )


def _signups(n: int, days: int) -> np.ndarray:
    """Ids follow signup order, as a shop's sequence does. The newest users (0.4% a day, at most
    25%) sign up inside the window; the rest over the three years before, more of them recently,
    as in a growing shop."""
    import numpy as np

    q = (np.arange(n) + _stream(6).random(n)) / n
    new = min(0.25, 0.004 * days)
    x = q / (1 - new)
    before = -3 * 365 * DAY * (1 - np.minimum(x, 1.0)) ** 1.6
    inside = (q - (1 - new)) / new * days * DAY
    return np.floor(np.where(q < 1 - new, before, inside)).astype(np.int64)


def _stream(trait: int) -> np.random.Generator:
    import numpy as np

    return np.random.default_rng([_USER_SEED, trait])


def _category(path: str) -> int:
    return next(i for i, c in enumerate(CATEGORIES) if c[0] == path)


def _category_ids() -> pa.Array:
    import pyarrow as pa

    return pa.array([str(1001 + i) for i in range(len(CATEGORIES))])


def _category_paths() -> pa.Array:
    import pyarrow as pa

    return pa.array([c[0] for c in CATEGORIES])


# --- one batch: what happens in the window, driven by `seed` ---------------------------------

# Shares of event types after a session's first event (a view or a search). Purchases turn the
# view before them into a cart most of the time, so carts end near 6% of events.
TYPE_SHARES = {VIEW: 0.88, CART: 0.06, FAV: 0.03, PURCHASE: 0.014, SEARCH: 0.016}
FIRST_SEARCH = 0.1  # share of sessions that open with a search
SLOT_SHARES = (0.45, 0.25, 0.15, 0.15)  # favourite categories 1-3, then any popular one
CHURN_BASE, CHURN_UNHAPPY = 0.06, 0.25  # churn share: base + unhappy * sigmoid(-satisfaction)
REPEAT_BUDGET = 0.002  # repeat-purchase sessions per event, at most
_DRAW_BITS = 16  # weighted draws index a 2**16 lookup table: ~10x faster than a CDF search


@dataclass(frozen=True)
class _Events:
    """Events in time order: indices into users, sessions, EVENT_TYPES, items and queries."""

    user: np.ndarray
    session: np.ndarray
    etype: np.ndarray
    item: np.ndarray  # -1 for searches
    query: np.ndarray  # -1 except for searches
    quantity: np.ndarray  # 0 except for carts and purchases
    ts: np.ndarray  # seconds from the window's start
    user_ids: pa.Array
    session_ids: pa.Array


def _events(
    rng: np.random.Generator,
    cat: _Catalogue,
    pop: _Population,
    *,
    n_events: int,
    days: int,
    start: date,
) -> _Events:
    """Browsing sessions plus repeat buyers' view-cart-purchase sessions: exactly `n_events`."""
    import numpy as np

    lo, hi = _active_window(rng, pop, days)
    budget = int(REPEAT_BUDGET * n_events)
    rep_user, rep_t0 = _repeat_purchases(rng, pop, lo, hi, start=start, days=days, budget=budget)
    user, session, first, ts = _sessions(rng, n_events - 3 * len(rep_user), pop, lo, hi, days)
    etype, item, query = _browse(rng, cat, pop, user[session], session, first)
    quantity = np.zeros(len(etype), dtype=np.int16)
    buys = np.flatnonzero((etype == CART) | (etype == PURCHASE))
    quantity[buys] = np.minimum(rng.geometric(0.82, len(buys)), 12)

    k = len(rep_user)
    rep_quantity = np.repeat(np.minimum(rng.geometric(0.5, k), 12), 3) * np.tile([0, 1, 1], k)
    columns = [
        (user[session], np.repeat(rep_user, 3)),
        (session, len(user) + np.repeat(np.arange(k), 3)),
        (etype, np.tile([VIEW, CART, PURCHASE], k)),
        (item, np.repeat(pop.staple[rep_user], 3)),
        (query, np.full(3 * k, -1)),
        (quantity, rep_quantity),
        (ts, np.repeat(rep_t0, 3) + np.tile([0, 40, 95], k)),
    ]
    columns = [np.concatenate([a, b.astype(a.dtype)]) for a, b in columns]
    # Sessions are laid out by start time, so this sort only interleaves them. Stable: events
    # of one session clipped to the same last second keep their order.
    order = np.argsort(columns[-1], kind="stable")
    return _Events(
        *(c[order] for c in columns),
        user_ids=_decimal_ids(np.arange(1, len(pop.activity) + 1)),
        session_ids=_hex_ids(rng, len(user) + k),
    )


def _active_window(
    rng: np.random.Generator, pop: _Population, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds [lo, hi) in which each user acts: from signup on, and until churn for the users
    who churn in this window. Unhappy users churn more, which gives churn models a signal."""
    import numpy as np

    n, end = len(pop.activity), days * DAY
    lo = np.clip(pop.signup, 0, end - 1)
    p_churn = CHURN_BASE + CHURN_UNHAPPY / (1 + np.exp(2.5 * pop.satisfaction))
    churns = rng.random(n) < p_churn
    hi = np.where(churns, lo + ((end - lo) * rng.random(n)).astype(np.int64), end)
    return lo, np.maximum(hi, np.minimum(lo + 3600, end))


def _repeat_purchases(
    rng: np.random.Generator,
    pop: _Population,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    start: date,
    days: int,
    budget: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Users with a staple buy it every `cycle` days on a calendar rhythm that carries on across
    batches. At most `budget` sessions, so they never swamp a small batch. Returns (user, start
    second) per session."""
    import numpy as np

    buyers = np.flatnonzero(pop.staple >= 0)
    cycle = pop.cycle[buyers]
    first = (pop.phase[buyers] - start.toordinal()) % cycle  # first buying day in the window
    count = np.maximum(0, -((first - days) // cycle))
    user = np.repeat(buyers, count)
    nth = np.arange(len(user)) - np.repeat(np.cumsum(count) - count, count)
    day = np.repeat(first, count) + nth * np.repeat(cycle, count)
    t0 = day * DAY + _time_of_day(rng, len(user))
    t0 = np.minimum(t0, days * DAY - 100)  # room for the cart and the purchase
    keep = np.flatnonzero((t0 >= lo[user]) & (t0 < hi[user]))
    if len(keep) > budget:
        keep = np.sort(rng.choice(keep, budget, replace=False))
    return user[keep], t0[keep]


def _sessions(
    rng: np.random.Generator,
    n_events: int,
    pop: _Population,
    lo: np.ndarray,
    hi: np.ndarray,
    days: int,
) -> tuple[np.ndarray, ...]:
    """Sessions of a few to dozens of events, seconds to minutes apart, by users drawn in
    proportion to activity x active time, at the hours shoppers keep.

    Returns the user per session, and the session of each event, the first event of each
    session and each event's second. Sessions are laid out in order of start time."""
    import numpy as np

    lengths = _session_lengths(rng, n_events)
    n_sessions = len(lengths)
    weight = pop.activity * (hi - lo)
    per_user = rng.multinomial(n_sessions, weight / weight.sum())
    user = np.repeat(np.arange(len(weight), dtype=np.int32), per_user)
    day = (lo[user] + (hi[user] - lo[user]) * rng.random(n_sessions)) // DAY
    t0 = day.astype(np.int64) * DAY + _time_of_day(rng, n_sessions)
    by_start = np.argsort(t0, kind="stable")
    user, t0 = user[by_start], t0[by_start]

    first = np.cumsum(lengths) - lengths
    session = np.repeat(np.arange(n_sessions, dtype=np.int32), lengths)
    gaps = 1 + _quantiles(rng, lambda z: np.exp(3.6 + 1.0 * z), n_events)  # median ~40 s
    gaps[first] = 0
    clock = np.cumsum(gaps)  # one clock through all sessions; each session starts at its t0
    duration = clock[first + lengths - 1] - clock[first]
    t0 = np.maximum(np.minimum(np.maximum(t0, lo[user]), hi[user] - duration), 0)
    ts = np.minimum(np.repeat(t0 - clock[first], lengths) + clock, days * DAY - 1)
    return user, session, first, ts


def _session_lengths(rng: np.random.Generator, n_events: int) -> np.ndarray:
    """Lognormal lengths (median ~5, tail to ~100) that add up to exactly `n_events`."""
    import numpy as np

    chunks, total = [], 0
    while total < n_events:
        lengths = np.minimum(np.ceil(rng.lognormal(1.5, 0.85, n_events // 5 + 16)), 200)
        chunks.append(lengths.astype(np.int64))
        total += int(chunks[-1].sum())
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    lengths = np.concatenate(chunks)
    reach = np.cumsum(lengths)
    last = int(np.searchsorted(reach, n_events))  # the session that reaches the total
    lengths = lengths[: last + 1]
    lengths[-1] -= reach[last] - n_events
    return lengths


def _time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into the day: quiet at night, busy in the evening."""
    import numpy as np

    hour = _draw(rng, HOUR_WEIGHTS, n).astype(np.int64)
    return hour * 3600 + rng.integers(0, 3600, n)


def _draw(rng: np.random.Generator, weights: Sequence[float], n: int) -> np.ndarray:
    """n indices drawn with probability proportional to `weights` (to 1/65536)."""
    import numpy as np

    edges = np.rint(np.cumsum(weights) / np.sum(weights) * (1 << _DRAW_BITS)).astype(np.int64)
    table = np.repeat(np.arange(len(edges), dtype=np.int32), np.diff(edges, prepend=0))
    return table[_bits(rng, n)]


def _chance(rng: np.random.Generator, p: float, n: int) -> np.ndarray:
    """n coin flips that come up True with probability p (to 1/65536)."""
    return _bits(rng, n) < round(p * (1 << _DRAW_BITS))


def _quantiles(rng: np.random.Generator, of_normal: Callable, n: int) -> np.ndarray:
    """n integer draws of a transformed normal, through a table of its 65536 quantiles."""
    import numpy as np

    z = np.sort(np.random.default_rng(0).standard_normal(1 << _DRAW_BITS))
    return of_normal(z).astype(np.int64)[_bits(rng, n)]


def _bits(rng: np.random.Generator, n: int) -> np.ndarray:
    import numpy as np

    return rng.integers(0, 1 << _DRAW_BITS, n, dtype=np.uint16)


def _skewed(rng: np.random.Generator, size: np.ndarray, power: float) -> np.ndarray:
    """A rank in [0, size) per element, low ranks likelier: floor(size * u**power)."""
    import numpy as np

    powers = (((np.arange(1 << _DRAW_BITS) + 0.5) / (1 << _DRAW_BITS)) ** power).astype(np.float32)
    return (size.astype(np.float32) * powers[_bits(rng, len(size))]).astype(np.int32)


def _browse(
    rng: np.random.Generator,
    cat: _Catalogue,
    pop: _Population,
    user: np.ndarray,
    session: np.ndarray,
    first: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event type, item and query per event. A session centres on one of the user's favourite
    categories (or a popular one), brands follow the user's loyalty, popular items get most
    views, and carts, favourites and purchases act on the item viewed last, so funnels hold."""
    import numpy as np

    n = len(session)
    slot = _draw(rng, SLOT_SHARES, len(first))[session]
    strays = np.flatnonzero(_chance(rng, 0.25, n))  # an event off the session's theme
    slot[strays] = _draw(rng, SLOT_SHARES, len(strays))
    fav = np.flatnonzero(slot < 3)
    liked = user[fav] * 3 + slot[fav]
    category = _draw(rng, [c[2] for c in CATEGORIES], n)
    category[fav] = pop.favourite.ravel()[liked]
    brand = _skewed(rng, np.array([len(c[3]) for c in CATEGORIES], dtype=np.int32)[category], 1.5)
    loyal = np.flatnonzero(_chance(rng, 0.55, len(fav)))
    brand[fav[loyal]] = pop.loyal_brand.ravel()[liked[loyal]]
    group = category * MAX_BRANDS + brand
    item = cat.group_start.ravel()[group] + _skewed(rng, cat.group_size.ravel()[group], 3.0)

    etype = _funnel(rng, n, first)
    acts = (etype == CART) | (etype == FAV) | (etype == PURCHASE)
    seen = np.maximum.accumulate(np.where(acts, 0, np.arange(n, dtype=np.int32)))
    item = item[seen]  # acts are on the item viewed last
    return etype, *_queries(rng, cat, session, etype, item)


def _funnel(rng: np.random.Generator, n: int, first: np.ndarray) -> np.ndarray:
    """Event types such that every cart, favourite and purchase follows a view or another act in
    its session, never a search or nothing; most purchases go through the cart."""
    import numpy as np

    etype = _draw(rng, [TYPE_SHARES[t] for t in range(len(EVENT_TYPES))], n).astype(np.int8)
    etype[first] = np.where(_chance(rng, FIRST_SEARCH, len(first)), SEARCH, VIEW)
    acts = (etype == CART) | (etype == FAV) | (etype == PURCHASE)
    etype[acts & (np.roll(etype, 1) == SEARCH)] = VIEW
    opens = np.zeros(n, dtype=bool)
    opens[first] = True
    # The view just before a purchase becomes its cart, if a view or an act still precedes it.
    buys = np.flatnonzero((etype == PURCHASE) & (np.roll(etype, 1) == VIEW) & ~np.roll(opens, 1))
    buys = buys[(etype[buys - 2] != SEARCH) & _chance(rng, 0.6, len(buys))]
    etype[buys - 1] = CART
    return etype


def _queries(
    rng: np.random.Generator,
    cat: _Catalogue,
    session: np.ndarray,
    etype: np.ndarray,
    item: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """A search names what the session looks at next: its category, sometimes with the brand.
    Returns items (-1 on searches) and query indices into `_query_texts()` (-1 elsewhere)."""
    import numpy as np

    n = len(etype)
    searches = np.flatnonzero(etype == SEARCH)
    after = np.minimum(searches + 1, max(n - 1, 0))
    leads = (session[after] == session[searches]) & (etype[after] != SEARCH)
    target = item[np.where(leads, after, searches)]
    form = rng.integers(0, len(QUERY_FORMS) + 1, len(searches))
    form = np.where(form < len(QUERY_FORMS), form, len(QUERY_FORMS) + cat.brand[target])
    query = np.full(n, -1, dtype=np.int32)
    query[searches] = cat.category[target] * (len(QUERY_FORMS) + MAX_BRANDS) + form
    item[searches] = -1
    return item, query


def _query_texts() -> list[str]:
    """Per category: the plain forms, then "<brand> <leaf>" per brand slot."""
    texts = []
    for path, _, _, brands in CATEGORIES:
        leaf = path.rsplit(".", 1)[1].replace("_", " ")
        texts += [form.format(leaf=leaf) for form in QUERY_FORMS]
        texts += [f"{b} {leaf}" for b in brands] + [leaf] * (MAX_BRANDS - len(brands))
    return texts


def _hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """Session ids of 16 hex digits, built as one buffer rather than n Python strings."""
    import numpy as np
    import pyarrow as pa

    digits = rng.integers(0, 16, (n, 16), dtype=np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[digits]
    offsets = np.arange(0, 16 * (n + 1), 16, dtype=np.int64)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars))]
    return pa.Array.from_buffers(pa.large_string(), n, buffers)


def _decimal_ids(numbers: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return pa.array(numbers).cast(pa.string())


# --- feedback ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Feedback:
    event: np.ndarray  # the event it is about
    kind: np.ndarray  # index into FEEDBACK_KINDS
    rating: np.ndarray  # 1-5 on ratings and reviews, 0 elsewhere
    text: np.ndarray  # index into _feedback_texts(), -1 for none
    ts: np.ndarray  # seconds from the window's start


def _feedback(
    rng: np.random.Generator, ev: _Events, cat: _Catalogue, pop: _Population, days: int
) -> _Feedback:
    """About 2% of events leave feedback. Half the purchases get a rating or review that follows
    the user's satisfaction and the item's quality, and a low one often comes with a complaint,
    so the users who complain are the ones who rate low. Views and favourites get likes,
    comments and shares minutes later."""
    import numpy as np

    bought = np.flatnonzero(ev.etype == PURCHASE)
    happy = pop.satisfaction[ev.user[bought]]
    score = 4.0 + 0.8 * happy + 0.7 * cat.quality[ev.item[bought]]
    stars = np.clip(np.rint(score + rng.normal(0.0, 0.8, len(bought))), 1, 5).astype(np.int64)
    rated = _chance(rng, 0.5, len(bought))
    complained = rng.random(len(bought)) < np.where(stars <= 2, 0.4, 0.015)
    bought = np.concatenate([bought[rated], bought[complained]])
    stars = np.concatenate([stars[rated], stars[complained]])
    reviews = np.where(_chance(rng, 0.3, rated.sum()), REVIEW, RATING)
    kind_b = np.concatenate([reviews, np.full(complained.sum(), COMPLAINT)])
    lag_b = DAY // 2 + rng.exponential(3 * DAY, len(bought)).astype(np.int64)

    viewed = np.flatnonzero(ev.etype == VIEW)
    viewed = viewed[_chance(rng, 0.012, len(viewed))]
    faved = np.flatnonzero(ev.etype == FAV)
    faved = faved[_chance(rng, 0.25, len(faved))]
    kind_v = np.array([LIKE, COMMENT, SHARE])[_draw(rng, (0.55, 0.25, 0.2), len(viewed))]
    engaged = np.concatenate([viewed, faved])
    lag_e = 30 + rng.exponential(1200.0, len(engaged)).astype(np.int64)

    event = np.concatenate([bought, engaged])
    kind = np.concatenate([kind_b, kind_v, np.full(len(faved), LIKE)])
    rating = np.concatenate([stars, np.zeros(len(engaged), dtype=np.int64)])
    rating[(kind != RATING) & (kind != REVIEW)] = 0
    pick = rng.integers(0, 5, len(event))  # which of the texts of its kind
    text = np.select(
        [kind == REVIEW, kind == COMPLAINT, kind == COMMENT],
        [(rating - 1) * 3 + pick % 3, 15 + pick, 20 + pick],
        -1,
    )
    ts = ev.ts[event] + np.concatenate([lag_b, lag_e])
    keep = np.flatnonzero(ts < days * DAY)  # later feedback falls outside this batch
    keep = keep[np.argsort(ts[keep], kind="stable")]
    return _Feedback(event[keep], kind[keep], rating[keep], text[keep], ts[keep])


def _feedback_texts() -> list[str]:
    return [t for texts in REVIEW_TEXTS for t in texts] + list(COMPLAINT_TEXTS + COMMENT_TEXTS)


# --- tables and files --------------------------------------------------------------------------


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


def _labels(index: np.ndarray, labels: pa.Array, missing: np.ndarray | None = None) -> pa.Array:
    """Strings from indices into `labels`, never one Python string per row.

    Small label sets stay a dictionary, which Parquet writes as it is; beyond Parquet's 1 MiB
    dictionary page the writer would fall back to plain encoding slowly, so those are taken
    out as plain strings. Readers get plain strings either way (no Arrow schema is stored)."""
    import numpy as np
    import pyarrow as pa

    indices = pa.array(index.astype(np.int32, copy=False), mask=missing)
    if labels.nbytes > 1 << 20:
        return labels.take(indices)
    return pa.DictionaryArray.from_arrays(indices, labels)


def _timestamps(start: date, seconds: np.ndarray) -> pa.Array:
    """Naive timestamps that mean UTC, as the warehouse's TIMESTAMP columns do."""
    import numpy as np
    import pyarrow as pa

    return pa.array(np.datetime64(start, "us") + seconds.astype("timedelta64[s]"))


def _cdf(weights: list[float]) -> np.ndarray:
    import numpy as np

    return np.cumsum(weights) / np.sum(weights)


def _canonical(source: str, table: pa.Table) -> pa.Table:
    """Exactly the source's canonical columns in their order, so files ingest without a map."""
    names = [c.name for c in SOURCES[source].columns]
    if sorted(table.column_names) != sorted(names):
        raise AssertionError(f"{source}: columns {table.column_names} are not {names}")
    return table.select(names)


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
