"""How to read a file beyond its column names: the options a user gives (`--event-type`, `--kind`,
`--ts-format`, `--decimal-comma`) and the event and feedback vocabularies they are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.errors import ProfilerError
from profiler.sources import Source

# Keys are compared after lower-casing and turning '-' and ' ' into '_'.
EVENT_TYPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    # not GA4's page_view: any page, the product's besides its view_item (views counted twice)
    "view": ("view", "views", "viewed", "pv", "detail", "view_item", "product_view", "click",
             "clicks", "product_viewed", "viewcontent"),  # Segment: Product Viewed; Meta: ViewContent
    "cart": ("cart", "carts", "addtocart", "add_to_cart", "add_cart", "addcart", "add_to_basket",
             "product_added"),
    "fav": ("fav", "favorite", "favourite", "favorites", "favourites", "wishlist",
            "add_to_wishlist", "addtowishlist", "like", "product_added_to_wishlist"),
    "purchase": ("purchase", "purchases", "purchased", "buy", "bought", "order", "orders",
                 "transaction", "checkout_complete", "order_completed"),
    "search": ("search", "searches", "searched", "query", "view_search_results",
               "products_searched"),
}  # fmt: skip
FEEDBACK_KIND_SYNONYMS: dict[str, tuple[str, ...]] = {
    "rating": ("rating", "rate", "rated", "stars", "star_rating", "score"),
    "review": ("review", "reviewed", "product_review"),
    "complaint": ("complaint", "complain", "complained"),
    "like": ("like", "liked", "thumbs_up", "upvote"),
    "comment": ("comment", "commented", "reply"),
    "share": ("share", "shared"),
}
VOCABULARIES = {"event_type": EVENT_TYPE_SYNONYMS, "kind": FEEDBACK_KIND_SYNONYMS}


@dataclass(frozen=True)
class Reading:
    """How to read a file beyond its column names: one field per ingest option (`--event-type`,
    `--kind`, `--ts-format`, ... `--decimal-point`), built by name (`commands.reading_of`).

    `event_type` (events) and `kind` (feedback) give every record that value, for a file that
    holds one kind of record and no column saying so: an orders export is all `purchase`, a
    reviews export all `review`. `ts_format` is a strptime format for every timestamp column sent
    as text, for times that are not ISO 8601 (`%m/%d/%Y %H:%M` reads `12/1/2010 8:26`); numbers
    and typed Parquet times do not need one. `decimal_comma` reads numbers sent as text the way
    European exports write them: `1.234,50` is 1234.5 (an option, because `1.234` alone could be
    either). `values` maps what a file's event type or kind column sends to the vocabulary, for
    codes no synonym can know (`--event-type 0=view`: Tmall's `action_type` 0..3): triples of
    (column, value as sent, canonical value). `columns` names the columns of a CSV file that has
    no header line, in order (`--columns`: Taobao's full UserBehavior.csv starts with data).
    """

    event_type: str | None = None
    kind: str | None = None
    ts_format: str | None = None
    decimal_comma: bool = False
    values: tuple[tuple[str, str, str], ...] = ()
    time_zone: str | None = None  # `--time-zone`; None: the warehouse's (see `shop_time`)
    columns: tuple[str, ...] = ()  # `--columns`: a headerless CSV file's column names
    encoding: str | None = None  # `--encoding`: a text file's encoding when it is not UTF-8
    rating_scale: int | None = None  # `--rating-scale`: 5, 10 or 100 points (None: 5, checked)
    minor_units: bool = False  # `--minor-units`: money in cents (Stripe's API): divided by 100
    times_utc: bool = False  # `--times-utc`: times without a zone are UTC, not the shop's clock
    decimal_point: bool = False  # `--decimal-point`: commas only group thousands, 1,899 is 1899

    def constants(self) -> dict[str, str]:
        """Canonical column -> the value every record gets."""
        values = {"event_type": self.event_type, "kind": self.kind}
        return {column: value for column, value in values.items() if value is not None}

    def value_map(self, column: str) -> dict[str, str]:
        """Value as sent -> canonical value, for `column`."""
        return {sent: canonical for c, sent, canonical in self.values if c == column}


AS_SENT = Reading()  # the file's own columns and formats
SKIP = "skip"  # `--event-type VALUE=skip`: the lines sending VALUE load nowhere, said as skipped
# a rating of N points is read as ceil(rating * 5 / N) stars: 9 and 10 of 10 are 5 stars
RATING_SCALES = (5, 10, 100)


def option_name(column: str) -> str:
    """The ingest option that gives every record one value of `column`: --event-type, --kind."""
    return "--" + column.replace("_", "-")


_CONSTANT_SOURCE = {"event_type": "events", "kind": "feedback"}


def vocabulary_key(value: str) -> str:
    """How a value is compared with the vocabularies: lower case, '-' and ' ' as '_'."""
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def check_reading(source: Source, reading: Reading) -> Reading:
    """Refuse an `--event-type`, `--kind` or `--ts-format` that cannot work, before any work;
    returns it with canonical values."""
    canonical = {
        column: _canonical(source, column, value, value)
        for column, value in reading.constants().items()
    }
    values, mapped = [], {}
    for column, sent, value in reading.values:
        option = option_name(column)
        if column in canonical:
            raise ProfilerError(
                f"{option} {canonical[column]} gives every line one value, "
                f"{option} {sent}={value} maps the file's values; keep one kind"
            )
        if not sent.strip():
            raise ProfilerError(f"{option} ={value}: name the value the file sends, as VALUE=TYPE")
        # VALUE=skip: those lines are not events of the profile (Snowplow's order-level
        # `transaction` beside its `transaction_item` lines, helper-35); quarantined as skipped
        target = (
            SKIP
            if vocabulary_key(value) == SKIP
            else _canonical(source, column, value, f"{sent}={value}")
        )
        key = (column, vocabulary_key(sent))  # compared as the synonyms are: `Buy` is `buy`
        if mapped.setdefault(key, target) != target:
            raise ProfilerError(
                f"{option} {sent}: mapped twice ({mapped[key]}, {target}); keep one"
            )
        values.append((column, vocabulary_key(sent), target))
    if reading.ts_format is not None:
        check_ts_format(reading.ts_format)
    if reading.decimal_comma and reading.decimal_point:
        raise ProfilerError("--decimal-comma and --decimal-point: give the one the file uses")
    if reading.rating_scale is not None and reading.rating_scale not in RATING_SCALES:
        raise ProfilerError(
            f"--rating-scale {reading.rating_scale}: give the points of the file's best rating, "
            f"one of {', '.join(map(str, RATING_SCALES))}"
        )
    return Reading(
        canonical.get("event_type"),
        canonical.get("kind"),
        reading.ts_format,
        reading.decimal_comma,
        tuple(values),
        reading.time_zone,
        check_columns(reading.columns),
        check_encoding(reading.encoding),
        reading.rating_scale,
        reading.minor_units,
        reading.times_utc,
        decimal_point=reading.decimal_point,
    )


def check_encoding(encoding: str | None) -> str | None:
    """Refuse an `--encoding` Python cannot decode with; its canonical name otherwise."""
    if encoding is None:
        return None
    import codecs

    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ProfilerError(
            f"--encoding {encoding!r}: not an encoding; e.g. cp1252 (Windows, as Excel saves "
            "CSV), latin-1, utf-16, gb18030, shift_jis"
        ) from None


def parse_columns(text: str | None) -> tuple[str, ...]:
    """`--columns user_id,item_id,ts`: the names, trimmed; () when not given."""
    return () if text is None else tuple(name.strip() for name in text.split(","))


def check_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse `--columns` with an empty or repeated name (compared as column names are)."""
    seen: set[str] = set()
    for name in columns:
        if not name.strip():
            raise ProfilerError(
                f"--columns {','.join(columns)}: an empty name; give every column a name, in order"
            )
        if name.lower() in seen:
            raise ProfilerError(f"--columns {','.join(columns)}: {name!r} named twice")
        seen.add(name.lower())
    return columns


def _canonical(source: Source, column: str, value: str, said: str) -> str:
    """The vocabulary's name for `value` of `column` (`buy` -> `purchase`), or a one-line error
    quoting what the user `said`."""
    option = option_name(column)
    if source.name != _CONSTANT_SOURCE[column]:
        raise ProfilerError(f"{option} is for {_CONSTANT_SOURCE[column]} files, not {source.name}")
    key = vocabulary_key(value)
    vocabulary = VOCABULARIES[column]
    found = next((c for c, names in vocabulary.items() if key in names), None)
    if found is None:
        raise ProfilerError(
            f"{option} {said}: {value!r} is not one of the {column.replace('_', ' ')}s; "
            f"choose one of: {', '.join(vocabulary)}"
        )
    return found


def check_ts_format(fmt: str) -> None:
    """Refuse a `--ts-format` DuckDB's strptime would refuse on every record, in one line."""
    import duckdb

    if "%" not in fmt:
        raise ProfilerError(
            f"--ts-format {fmt!r}: has no %-directive; write it as strptime does, "
            "e.g. '%m/%d/%Y %H:%M' for 12/1/2010 8:26"
        )
    with duckdb.connect() as con:
        try:
            con.execute("SELECT try_strptime('', ?)", [fmt])
        except duckdb.Error as err:
            first = str(err).splitlines()[0].split(": ", 1)[-1]
            raise ProfilerError(f"--ts-format {fmt!r}: {first}") from None
    if not any(d in fmt for d in ("%Y", "%y", "%G", "%c", "%x")):
        raise ProfilerError(
            f"--ts-format {fmt!r}: has no year (%Y or %y), so every time would read as 1900; "
            "times without a year (Tmall's 1111 for 11 November) need one added before ingest"
        )
