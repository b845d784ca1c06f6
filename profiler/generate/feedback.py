"""Feedback that agrees with behaviour: ratings, reviews and complaints after purchases, likes,
comments and shares after views and favourites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from profiler.generate.behaviour import FAV, PURCHASE, VIEW
from profiler.generate.draws import _chance, _draw
from profiler.generate.shop import DAY
from profiler.sources import FEEDBACK_KINDS

if TYPE_CHECKING:
    import numpy as np

    from profiler.generate.behaviour import _Events
    from profiler.generate.shop import _Catalogue, _Population

RATING, REVIEW, COMPLAINT, LIKE, COMMENT, SHARE = map(
    FEEDBACK_KINDS.index, ("rating", "review", "complaint", "like", "comment", "share")
)
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
