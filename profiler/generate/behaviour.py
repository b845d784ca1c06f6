"""One batch: what happens in the window, driven by `seed`.

Sessions, browsing, view -> cart -> purchase funnels, search queries and repeat purchases of
staples, as arrays of indices in time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from profiler.generate.columns import _decimal_ids, _hex_ids
from profiler.generate.draws import _chance, _draw, _quantiles, _skewed
from profiler.generate.shop import CATEGORIES, DAY, MAX_BRANDS
from profiler.sources import EVENT_TYPES

if TYPE_CHECKING:
    from datetime import date

    import numpy as np
    import pyarrow as pa

    from profiler.generate.shop import _Catalogue, _Population

VIEW, CART, FAV, PURCHASE, SEARCH = map(
    EVENT_TYPES.index, ("view", "cart", "fav", "purchase", "search")
)
QUERY_FORMS = ("{leaf}", "cheap {leaf}", "best {leaf}")  # then "{brand} {leaf}" per brand
HOUR_WEIGHTS = (1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.2, 2.6, 2.8, 3.0,
                3.1, 3.0, 2.9, 2.9, 3.0, 3.3, 3.8, 4.4, 4.8, 4.5, 3.4, 2.0)  # fmt: skip
# Shares of event types after a session's first event (a view or a search). Purchases turn the
# view before them into a cart most of the time, so carts end near 6% of events.
TYPE_SHARES = {VIEW: 0.88, CART: 0.06, FAV: 0.03, PURCHASE: 0.014, SEARCH: 0.016}
FIRST_SEARCH = 0.1  # share of sessions that open with a search
SLOT_SHARES = (0.45, 0.25, 0.15, 0.15)  # favourite categories 1-3, then any popular one
CHURN_BASE, CHURN_UNHAPPY = 0.06, 0.25  # churn share: base + unhappy * sigmoid(-satisfaction)
REPEAT_BUDGET = 0.002  # repeat-purchase sessions per event, at most


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
