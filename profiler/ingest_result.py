"""What one `profiler ingest` did: the counts, the columns read, and every finding the summary
(`ingest_summary.describe_ingest`) states; `failure` is what makes the command fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from profiler.ingest_ids import PaddedIds, StrangerIds, UnknownItems
from profiler.ingest_options import AS_SENT, Reading
from profiler.ingest_write import REFUSED


@dataclass
class IngestResult:
    source: str
    file: str
    batch_id: int | None  # None when the file content was already ingested (skipped)
    lines: int  # data records seen, the header excluded
    loaded: int
    quarantined: dict[str, int]  # reason -> count
    duplicate: bool  # same content already ingested -> nothing loaded
    columns: dict[str, str] = field(default_factory=dict)  # canonical column -> file column
    ignored: list[str] = field(default_factory=list)  # file columns no canonical column uses
    duplicate_of: int | None = None  # the batch that loaded this content before
    # reason -> the most frequent values behind `unknown_event_type` / `unknown_kind`, with counts
    unknown: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    reading: Reading = AS_SENT  # how the file was read (`--ts-format`, `--decimal-comma`...)
    # lines at midnight equal to lines already loaded: a date-only feed sent again, in part?
    dated_again: int = 0
    # `replace=True`: the earlier loads of this content this one took out of raw and quarantine
    replaced: tuple[int, ...] = ()
    # (source, batch) that loaded this same content as another source: a file sent to the
    # wrong source? (one flat export may also feed two sources on purpose)
    also_as: tuple[tuple[str, int], ...] = ()
    # loaded lines whose user id was an e-mail address, stored as its pseudonym
    email_ids: int = 0
    # (word the file sent, event type or kind it was read as, lines), most frequent first
    read_as: list[tuple[str, str, int]] = field(default_factory=list)
    # events' item ids the catalogue lacks, when most of them do (ids written differently?)
    unknown_items: UnknownItems | None = None
    padded_ids: PaddedIds | None = None  # user ids written with leading zeros added or cut
    padded_items: PaddedIds | None = None  # item ids so
    stranger_ids: StrangerIds | None = None  # feedback keyed by another id (an order's)?
    # the file's purchases, when none of them has an amount or a price
    unpriced: int = 0
    serial_birthdays: tuple[int, str] | None = None  # (count, one as sent)
    gender_codes: list[tuple[str, int]] = field(default_factory=list)  # (code, users)
    one_day: tuple[int, int] | None = None  # every time on this day of a month, over N months
    midnight_utc: tuple[int, int, str] | None = None  # `ingest_checks.midnight_utc`
    yearless_birthdays: tuple[int, list[str]] | None = None  # (count, some as sent)
    purchases_twice: tuple[int, list[int]] = (0, [])  # `ingest_checks.purchases_twice`
    purchases_resent: tuple[int, list[int]] = (0, [])  # `ingest_checks.purchases_resent`
    int96: list[str] = field(default_factory=list)  # time columns read from Parquet INT96
    late_signups: tuple[int, int, float] | None = None  # `ingest_checks.signups_after_events`
    by_line_order: tuple[str, int] | None = None  # `ingest_checks.updates_by_line_order`
    amount_counts: tuple[int, str] | None = None  # `ingest_checks.amount_like_quantity`
    type_words: tuple[str, list[tuple[str, str, int]]] | None = None  # `event_words_elsewhere`
    dropped: tuple[int, list[str]] = (0, [])  # `ingest_checks.columns_dropped`
    product_strings: tuple[int, str] = (0, "")  # `ingest_ids.product_strings`
    itemless: tuple[int, int] = (0, 0)  # `ingest_checks.itemless_purchases`
    guest_columns: list[str] | None = None  # `ingest_ids.guest_columns`
    sets_utc: bool = False  # the warehouse's first batch, without --time-zone: its clock is UTC
    zone_unset: str | None = None  # a first load's --time-zone, no clock set: nothing loaded
    purchase_words: tuple[int, list[str]] = (0, [])  # `ingest_checks.purchase_words_together`
    scale_remembered: bool = False  # the rating scale is the warehouse's last, not given
    header_copies: dict[str, str] = field(default_factory=dict)  # `NAME (2)` -> NAME (CSV)
    thousands: list[tuple[str, int, str]] = field(default_factory=list)  # `three_decimals`
    # reason -> how many more values than `unknown` shows
    unknown_more: dict[str, int] = field(default_factory=dict)
    # (orders whose lines all carry the order's total, orders of several items), when most do
    order_totals: tuple[int, int] = (0, 0)
    # (user id, lines, the busiest other user's lines) of a 0 or -1 that looks like guests'
    catch_all: list[tuple[str, int, int]] = field(default_factory=list)
    # the values of an ignored currency column and their lines, when there is more than one
    currencies: list[tuple[str, int]] = field(default_factory=list)
    # an ignored status column and its values that say an order was not paid (cancelled...)
    unpaid: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)
    partly_refunded: list = field(default_factory=list)  # `ingest_kept.unpaid_statuses`
    # canonical columns read from a file column that is empty on every loaded line
    empty: list[str] = field(default_factory=list)
    # the reason the file's last line was quarantined for, when it ends without a line break
    cut_short: str | None = None
    cut_record: bool = False  # and that line is part of a record, no footer: the command fails
    # why the file was refused whole (`_refusal`): every line went to quarantine, none to raw
    refused: str | None = None
    # (currency, an amount) when every purchase's money is a whole number beside a currency
    # with cents: sent in cents?
    cents: tuple[str, float] | None = None
    # a currency without cents (jpy) whose money --minor-units divided by 100
    whole_in_minor_units: str | None = None
    # (ignored event id column, lines repeating an id an earlier line sent)
    repeated_ids: tuple[str, int] | None = None
    orders_again: tuple[str, int, int, int, int] | None = None  # `ingest_kept.orders_again`
    # (ignored JSON key, lines) holding a list of items (Segment's `properties.products`)
    item_lists: tuple[str, int] | None = None
    # (user ids that are another registered id's e-mail, the file's user ids): one person twice
    by_address: tuple[int, int] = (0, 0)
    # canonical column -> the nested key that gives its value where the column read is empty
    fallbacks: dict[str, str] = field(default_factory=dict)
    # up to 200 distinct unreadable times, for the summary to find the format that reads them
    bad_times: list[str] = field(default_factory=list)

    @property
    def read(self) -> int:
        """Lines read well: those loaded, or those a file refused whole would have loaded."""
        return self.loaded + self.quarantined.get(REFUSED, 0)

    def failure(self) -> str | None:
        """Why a scheduler must see this load as failed (`ingest` exits 1, `watch` rejects the
        file), or None. Such a file loaded no line: its lines are in `quarantine`."""
        if self.refused:
            return self.refused
        if self.loaded == 0 and self.lines > 0:
            return f"nothing loaded from {self.lines:,} lines; they are in `quarantine`, with the reasons"
        return None
