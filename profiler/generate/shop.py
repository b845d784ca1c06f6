"""The shop: catalogue and population, fixed by `users` alone.

Ids, the catalogue and each user's lasting traits come from fixed seeds, never from `seed`, so
every batch of one shop sees the same items and users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from profiler.generate.columns import _canonical, _decimal_ids

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

DAY = 86_400  # seconds
_CATALOGUE_SEED = 4_620_191_001  # fixed: the catalogue must not change with `seed`
_USER_SEED = 6_492_017_112  # fixed: a user's traits must not change with `seed`
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
