"""The SQL of one value as ingest reads it: text trimmed, words for "no value", ids, numbers,
times and the event and feedback vocabularies. Pure functions from SQL to SQL; `ingest_rules`
puts them together into the one query that types a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from profiler.sqltext import literal as quote_literal

# Text that means "no value" in exports (pandas, R, SQL dumps, spreadsheets), in these spellings
# lower-case, upper-case or capitalised; never applied to free text (a search for "none" is a
# search). Personal columns included: two users with e-mail `N/A` must not share a pseudonym.
NULL_WORDS = (
    "null",
    "nan",
    "none",
    "na",
    "n/a",
    "\\n",
    "nat",
    "unknown",
    "-",
    "?",
    "0000-00-00",
    "0000-00-00 00:00:00",
    "(not set)",
    "#n/a",  # Excel's failed lookup
    "<na>",  # pandas' missing value made text (astype(str))
)  # fmt: skip  (MySQL's zero dates: Shopware; GA4's `(not set)`)
FREE_TEXT = ("query", "title", "text")
_NULL_SPELLINGS = tuple(
    dict.fromkeys(
        [w for word in NULL_WORDS for w in (word, word.upper(), word.capitalize())] + ["NaN", "NaT"]
    )
)


_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")  # fmt: skip


def is_numeric(native: str | None) -> bool:
    return native is not None and native.startswith(_NUMERIC)


def is_temporal(native: str | None) -> bool:
    return native is not None and native.startswith(("TIMESTAMP", "DATE"))


def null_word(v: str) -> str:
    """TRUE when `v` is a word exports write for "no value" (`NULL`, `NaN`, `N/A`, `\\N`...):
    a user id `NULL` is a missing user, a birth year `unknown` is unknown, not a bad line.
    Exact spellings in a CASE chain: `lower()` on every value would cost 3x as much."""
    whens = " ".join(f"WHEN {quote_literal(word)} THEN TRUE" for word in _NULL_SPELLINGS)
    # a cheap guard first: the words start with a few characters (a range compare reads only the
    # string's prefix), and are short
    starts = " OR ".join(
        f"({v} >= {quote_literal(c)} AND {v} < {quote_literal(chr(ord(c) + 1))})"
        for c in sorted({word[0] for word in _NULL_SPELLINGS})
    )
    longest = max(map(len, _NULL_SPELLINGS))
    return f"(({starts}) AND strlen({v}) <= {longest} AND CASE {v} {whens} ELSE FALSE END)"


def whole_id(v: str, *, guarded: bool = True) -> str:
    """An id a float column wrote (`541312140.0`, as pandas does for ids with gaps) is the id
    `541312140`, and one written `'6800000000000` (the apostrophe Shopify puts before long
    numbers, to keep spreadsheets from rounding them) is `6800000000000`, as one written as a
    formula, `="00123"` (to keep its leading zeros), is `00123`, so one user never becomes two;
    any other id stays exactly as sent. `guarded=False` keeps the apostrophe: a brand sent as a
    number (Tmall's brand_id) loses only the `.0`, and '47 stays a brand."""
    guard = (
        f"WHEN starts_with({v}, '''') AND regexp_full_match({v}, '''[0-9]+') THEN substr({v}, 2) "
        f"WHEN starts_with({v}, '=\"') AND regexp_full_match({v}, '=\"[0-9]+\"') "
        f"THEN substr({v}, 3, strlen({v}) - 3) "
        if guarded
        else ""
    )
    return (
        f"CASE WHEN contains({v}, '.') AND regexp_full_match({v}, '-?[0-9]+\\.0+') "
        f"THEN split_part({v}, '.', 1) {guard}ELSE {v} END"
    )


# Characters that show nothing and mean nothing in a key: right-to-left and left-to-right marks
# and isolates around Arabic or Hebrew values, zero-width spaces, word joiners, the BOM, the soft
# hyphen. A customer id with one is still that customer (helper-50: `\u200f1001629` beside
# `1001629` made two profiles). Not the zero-width joiner and non-joiner: Persian spelling and
# emoji sequences are made with them (helper-56), so they go only from a value's ends.
INVISIBLE = "[\u00ad\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
_JOINERS = "\u200c\u200d"
# Spaces beyond ASCII's: no-break, narrow no-break (French and Russian thousands), ideographic.
_UNICODE_SPACES = "\u00a0\u2000-\u200a\u202f\u205f\u3000"
# Full-width ASCII (Japanese and Chinese exports' `１２３`, `ＰＣ`) and the Arabic-Indic and
# Persian digits, with the Arabic decimal and thousands separators, as ASCII.
_WIDE = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_NARROW = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
_DIGITS_FROM = (
    "".join(chr(c) for c in (*range(0x660, 0x66A), *range(0x6F0, 0x6FA))) + "\u066b\u066c"
)
_DIGITS_TO = "0123456789" * 2 + ".,"


def trimmed(text: str, fold: bool = True) -> str:
    """Trim spaces, empty becomes NULL. Text with characters beyond ASCII also loses Unicode
    spaces and invisible marks at its ends; with `fold` (every column but prose: titles and
    review text stay as written) also its invisible marks inside, and it reads full-width letters
    and digits and Arabic-Indic digits as ASCII: `١٠٠١٦٢٩`, `１００１６２９` and `1001629` are one
    id, `¥１，９８０` one price. The guards make it cheap: DuckDB's trim copies every string, and
    almost none need trimming; strlen (bytes) equals length (characters) for ASCII text, and one
    search for the special characters spares a Chinese shop's text the rewrite (translate alone
    made its ingest 3x slower)."""
    wides = "\uff01-\uff5e\u0660-\u066c\u06f0-\u06f9" if fold else ""
    special = f"{INVISIBLE[:-1]}{_JOINERS}{_UNICODE_SPACES}{wides}]"
    wide = text
    if fold:
        wide = f"regexp_replace({wide}, {quote_literal(INVISIBLE)}, '', 'g')"
        wide = f"translate({wide}, {quote_literal(_WIDE + _DIGITS_FROM)}, {quote_literal(_NARROW + _DIGITS_TO)})"
    ends = f"[\\s{INVISIBLE[1:-1]}{_JOINERS}{_UNICODE_SPACES}]"
    wide = f"regexp_replace({wide}, {quote_literal(f'^{ends}+|{ends}+$')}, '', 'g')"
    return (
        f"nullif(CASE WHEN strlen({text}) <> length({text}) "
        f"AND regexp_matches({text}, {quote_literal(special)}) THEN {wide} "
        f"WHEN starts_with({text}, ' ') OR ends_with({text}, ' ') "
        f"THEN trim({text}) ELSE {text} END, '')"
    )


def epoch_sql(d: str) -> str:
    """Unix time to TIMESTAMP, guessing the unit from the magnitude (s, ms, us, ns)."""
    micros = (
        f"CASE WHEN abs({d}) >= 1e17 THEN {d} / 1000 WHEN abs({d}) >= 1e14 THEN {d} "
        f"WHEN abs({d}) >= 1e11 THEN {d} * 1000 ELSE {d} * 1e6 END"
    )
    return (
        f"CASE WHEN abs({micros}) < 9e15 THEN make_timestamp(CAST(round({micros}) AS BIGINT)) END"
    )


def timestamp_sql(
    v: str,
    d: str,
    native: str | None,
    fmt: str | None = None,
    zone: str = "UTC",
    naive_utc: bool = False,
) -> str:
    """The shop's wall-clock time (`zone`, see `shop_time`) from a native value, a Unix number,
    or text with or without a zone.

    Instants (zone-aware values, Unix numbers, text with an offset or a zone name) are converted
    to the zone; text without one is read in it, because ingest runs with the session time zone
    at the shop's. With `naive_utc` (`--times-utc`) times without a zone are UTC instants, the
    session runs in UTC, and dates stay the shop's dates. With a strptime format (`--ts-format`)
    text is read by that format first.
    """
    z = quote_literal(zone)
    utc = naive_utc and zone != "UTC"
    if native is not None and native.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone({z}, {v})"
    if native == "DATE":
        return f"CAST({v} AS TIMESTAMP)"
    if is_temporal(native):
        return f"timezone({z}, timezone('UTC', {v}))" if utc else f"CAST({v} AS TIMESTAMP)"
    epoch = epoch_sql(d) if zone == "UTC" else f"timezone({z}, timezone('UTC', {epoch_sql(d)}))"
    if is_numeric(native):
        return epoch
    spaced_offset = rf"regexp_replace({v}, '\s+([+-]\d\d):?(\d\d)$', '\1:\2')"
    text = (
        f"coalesce(timezone({z}, TRY_CAST({v} AS TIMESTAMPTZ)), "
        f"timezone({z}, TRY_CAST({spaced_offset} AS TIMESTAMPTZ)))"
    )
    if utc:  # a date is no instant: 2019-10-01 stays that day
        text = f"CASE WHEN length({v}) = 10 THEN TRY_CAST(TRY_CAST({v} AS DATE) AS TIMESTAMP) ELSE {text} END"
    if fmt is not None:  # the format first; Unix numbers and ISO 8601 text still read, unless
        # the format itself starts like ISO (`%Y-%d-%m`): then 2024-01-13 is a bad time, not 13 Jan
        parsed = f"try_strptime({v}, {quote_literal(fmt)})"
        if re.search("%[zZ]", fmt):
            parsed = f"timezone({z}, {parsed})"
        elif utc and re.search("%[HIMS]", fmt):
            parsed = f"timezone({z}, timezone('UTC', {parsed}))"
        iso = "NULL" if fmt.startswith("%Y-") else text
        return f"coalesce({parsed}, CASE WHEN {d} IS NOT NULL THEN {epoch} ELSE {iso} END)"
    return f"CASE WHEN {d} IS NOT NULL THEN {epoch} ELSE {text} END"


def vocabulary_sql(
    v: str, synonyms: dict[str, tuple[str, ...]], sent: Mapping[str, str] | None = None
) -> str:
    """Canonical value or NULL. Values the user mapped (`sent`, keys compared like synonyms:
    lower case, '-' and ' ' as '_') win over the synonyms; values already canonical skip the
    normalising string work, and CASE chains (not IN lists, which DuckDB plans as joins) keep it a
    cheap projection."""
    key = f"replace(replace(lower({v}), '-', '_'), ' ', '_')"
    mapped = dict(sent or {})
    canon = " ".join(
        f"WHEN {quote_literal(c)} THEN {quote_literal(c)}" for c in synonyms if c not in mapped
    )
    whens = " ".join(
        [f"WHEN {quote_literal(a)} THEN {quote_literal(b)}" for a, b in mapped.items()]
        + [
            f"WHEN {quote_literal(name)} THEN {quote_literal(c)}"
            for c, names in synonyms.items()
            for name in names
            if name not in mapped
        ]
    )
    return f"CASE {v} {canon} ELSE CASE {key} {whens} END END"


def decimal_comma_sql(v: str) -> str:
    """`1.234,50` -> `1234.50`: dots (or spaces) group thousands, the comma marks decimals. Text
    that is not such a number (`12.50`, `1,2,3`) stays unreadable: quarantined as `bad_type`."""
    groups = "[. \u00a0\u202f]"
    grouped = rf"^[+-]?(\d{{1,3}}({groups}\d{{3}})+|\d+)(,\d+)?$"
    return (
        f"CASE WHEN regexp_full_match({v}, {quote_literal(grouped)}) "
        f"THEN replace(regexp_replace({v}, {quote_literal(groups)}, '', 'g'), ',', '.') END"
    )


def decimal_point_sql(v: str) -> str:
    """`1,899` -> `1899`, `1,234.50` -> `1234.50`: commas group thousands, the dot marks
    decimals (`--decimal-point`: a won, yen or peso export's `129,000`, ambiguous without it)."""
    grouped = r"^[+-]?(\d{1,3}(,\d{3})+|\d{1,2}(,\d\d)+,\d{3}|\d+)(\.\d+)?$"  # and lakhs
    return (
        f"CASE WHEN TRY_CAST({v} AS DOUBLE) IS NOT NULL THEN {v} "  # .5, 1e3: as without it
        f"WHEN regexp_full_match({v}, {quote_literal(grouped)}) THEN replace({v}, ',', '') END"
    )


# a currency sign or an ISO code before or after an amount, as shop exports write prices; a
# sign before the currency stays (`-$5` is -5)
# (helpers 44, 45: Shopee's `Rp 149.000`, `₱1,899`, a Chinese shop's `￥199.00` and `199.00元`,
# a Korean one's `4,900원`; helper-50: `13 897,80 ₽` with a no-break space, `Rs. 30,547.32`,
# `1.234,50 TL`, `1 234,50 руб.`, and `\7,680`: the yen sign cp932 decodes as a backslash)
_S = "[\\s\u00a0\u202f]"
CURRENCY_BEFORE = (
    rf"^([+-]?){_S}*(R\$|US\$|S\$|HK\$|NT\$|A\$|C\$|NZ\$|MX\$|Rp\.?|Rs\.?|RM|Fr\.|[$€£¥₹₽₩₺₱₫฿₴₦₪￥\\]"
    rf"|[A-Z]{{3}}{_S}?){_S}*"
)
CURRENCY_AFTER = (
    rf"{_S}*([$€£¥₹₽₩₺₱₫฿₴₦₪￥元円원₸₾₼৳]|zł|Kč|kr|Ft|TL|lei|kn|руб\.?|р\.|грн\.?|лв\.?|Fr\.?"
    rf"|ر\.س\.?|د\.إ\.?|{_S}[A-Z]{{3}})$"
)
# 1,234.56 (1,234 alone could be 1.234 in Europe); India's lakh grouping 1,00,000.50 and the
# Swiss apostrophes 1'234.50 and 1’234.50, which no other reading shares
THOUSANDS = (
    r"^[+-]?(\d{1,3}(,\d{3})+\.\d+|\d{1,2}(,\d\d)+,\d{3}(\.\d+)?|\d{1,3}(['’]\d{3})+(\.\d+)?)$"
)


def without_currency_sql(v: str) -> str:
    """`$35.79`, `-$5`, `R$ 35,79`, `35.79 USD`, `$1,234.56` -> the number alone; text that does
    not read as a number otherwise stays as it is. The regexes run only on text that does not
    read as a number as it is."""
    bare = (
        f"regexp_replace(regexp_replace({v}, {quote_literal(CURRENCY_BEFORE)}, '\\1'), "
        f"{quote_literal(CURRENCY_AFTER)}, '')"
    )
    return (
        f"CASE WHEN TRY_CAST({v} AS DOUBLE) IS NOT NULL THEN {v} "
        f"WHEN regexp_full_match({bare}, {quote_literal(THOUSANDS)}) "
        f"THEN regexp_replace({bare}, '[,''’]', '', 'g') "
        f"ELSE {bare} END"
    )
