"""The four sources a shop sends: canonical columns, their types, synonyms and personal columns.

This is the contract of GUIDE.md in code. Ingest and the engine both read it; nothing else
declares a source.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_TYPES = ("view", "cart", "fav", "purchase", "search")
FEEDBACK_KINDS = ("rating", "review", "complaint", "like", "comment", "share")
TIME_SYNONYMS = ("event_time", "timestamp", "time")  # what shops call a time column
# a bare `date` last: a file with a real time column as well takes that one
DATE_SYNONYM = "date"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type of the stored column
    required: bool = False
    personal: bool = False
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    name: str
    columns: tuple[Column, ...]
    time_column: str | None = None  # the column `--as-of` filters on; None for dimensions
    key: str = "user_id"

    @property
    def table(self) -> str:
        return f"raw_{self.name}"

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def personal(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.personal)

    def column_names_lower(self) -> set[str]:
        return {c.name for c in self.columns}

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


SOURCES: dict[str, Source] = {
    "events": Source(
        "events",
        (
            Column(
                "user_id",
                "VARCHAR",
                True,
                synonyms=(
                    "userid",
                    "user",
                    "customer_unique_id",
                    "customer_id",
                    "visitorid",
                    "visitor_id",
                    "uid",
                    "household_key",  # Dunnhumby's The Complete Journey
                    "id_customer",  # PrestaShop's
                    "user_pseudo_id",  # GA4's BigQuery export (its user_id, when sent, wins)
                ),
            ),
            Column(
                "event_type",
                "VARCHAR",
                True,
                synonyms=(
                    "behavior_type",
                    "behaviour_type",
                    "event",
                    "action",
                    "action_type",
                    "event_name",  # GA4
                    "type",
                    "btag",  # Alibaba's display-ad behavior_log (pv, cart, fav, buy)
                ),
            ),
            Column(
                "ts",
                "TIMESTAMP",
                True,
                synonyms=(
                    *TIME_SYNONYMS,
                    "event_timestamp",  # GA4's, in microseconds (before its event_date)
                    "event_ts",
                    "datetime",
                    "created_at",
                    "created",  # Stripe's, Unix seconds
                    "order_time",
                    "order_date",
                    "order_purchase_timestamp",  # Olist's orders (not its delivery dates)
                    "invoice_date",
                    "t_dat",  # H&M's transactions
                    "event_date",  # Diginetica's eventdate
                    DATE_SYNONYM,
                ),
            ),
            Column(
                "item_id",
                "VARCHAR",
                synonyms=(
                    "product_id",
                    "itemid",
                    "sku",
                    "product",
                    "stock_code",
                    "article_id",
                    "parent_asin",  # Amazon 2023: products by parent_asin, as in its metadata
                    "asin",
                    "id_product",  # PrestaShop's order_detail
                    "lineitem_sku",  # Shopify's orders export, Recharge's charges
                    "line_item_sku",
                    "sku_id",  # JD.com's JData
                ),
            ),
            # Tmall's cat_id; Alibaba's and JD.com's cate
            Column("category_id", "VARCHAR", synonyms=("categoryid", "category", "cat_id", "cate")),
            Column("category_path", "VARCHAR", synonyms=("category_code", "item_category")),
            # Tmall sends brand ids; GA4 item_brand
            Column("brand", "VARCHAR", synonyms=("brand_id", "item_brand")),
            # Shopify's and Recharge's line price and quantity, beside an order's total (helper-44)
            Column(
                "price",
                "DOUBLE",
                synonyms=("unit_price", "item_price", "lineitem_price", "line_item_price"),
            ),
            Column(
                "quantity",
                "INTEGER",
                # Magento's qty_ordered (read as 1 without it: spend -47% in helper-27's export)
                synonyms=(
                    "qty",
                    "quantity_purchased",
                    "qty_ordered",
                    "quantity_ordered",
                    "lineitem_quantity",
                    "line_item_quantity",
                ),  # fmt: skip
            ),
            Column(
                "amount",
                "DOUBLE",
                # not `total`: Shopify's is the order's, on its first line only (+31% spend);
                # WooCommerce's line_total and Magento's row_total are the line's
                synonyms=(
                    "revenue",
                    "value",
                    "$value",  # Klaviyo's
                    "order_amount",
                    "sales_value",
                    "line_total",
                    "row_total",
                ),
            ),
            Column("session_id", "VARCHAR", synonyms=("user_session", "session", "sessionid")),
            Column("query", "VARCHAR", synonyms=("search_query", "search_term", "keyword")),
        ),
        time_column="ts",
    ),
    "users": Source(
        "users",
        (
            Column(
                "user_id",
                "VARCHAR",
                True,
                synonyms=("userid", "customer_unique_id", "customer_id", "uid", "id_customer"),
            ),
            # PrestaShop's codes; Alibaba's final_gender_code (1 male, 2 female)
            Column("gender", "VARCHAR", synonyms=("sex", "id_gender", "final_gender_code")),
            # a date of birth reads as its year
            Column(
                "birth_year",
                "INTEGER",
                synonyms=("year_of_birth", "birthday", "birth_date", "date_of_birth", "dob"),
            ),
            Column("city", "VARCHAR", synonyms=("customer_city", "billing_city")),
            Column(
                "region",
                "VARCHAR",
                synonyms=(
                    "state",
                    "province",
                    "customer_state",
                    "billing_state",
                    "billing_province",
                ),
            ),
            Column(
                "signup_ts",
                "TIMESTAMP",
                synonyms=(
                    "signup_time",
                    "signup_date",
                    "registered_at",
                    "registration_date",
                    "created_at",
                    "register_time",
                    "user_reg_tm",  # JD.com's JData
                ),
            ),
            Column("name", "VARCHAR", personal=True, synonyms=("full_name",)),
            Column("email", "VARCHAR", personal=True, synonyms=("email_address", "mail")),
            Column("phone", "VARCHAR", personal=True, synonyms=("phone_number", "mobile")),
        ),
    ),
    "items": Source(
        "items",
        (
            Column(
                "item_id",
                "VARCHAR",
                True,
                # Amazon 2023's metadata names a product by parent_asin alone; its reviews send
                # both, asin the variant: parent_asin first everywhere, so the two join
                synonyms=(
                    "product_id",
                    "itemid",
                    "sku",
                    "article_id",
                    "parent_asin",
                    "asin",
                    "id_product",
                    "sku_id",
                ),  # fmt: skip
            ),
            Column("category_id", "VARCHAR", synonyms=("categoryid", "cat_id", "cate")),
            Column("category_path", "VARCHAR", synonyms=("category_code", "category_name")),
            Column("brand", "VARCHAR"),
            Column("price", "DOUBLE"),
            Column("title", "VARCHAR", synonyms=("name", "product_name")),
        ),
        key="item_id",
    ),
    "feedback": Source(
        "feedback",
        (
            Column(
                "user_id",
                "VARCHAR",
                True,
                synonyms=(
                    "userid",
                    "customer_unique_id",
                    "customer_id",
                    "uid",
                    "reviewer_id",
                    "id_customer",
                ),  # fmt: skip
            ),
            Column(
                "ts",
                "TIMESTAMP",
                True,
                synonyms=(
                    *TIME_SYNONYMS,
                    "created_at",
                    "unix_review_time",
                    "review_time",
                    "review_creation_date",
                    "review_date",  # Judge.me's
                    DATE_SYNONYM,
                ),
            ),
            Column("kind", "VARCHAR", True, synonyms=("type", "feedback_type")),
            Column(
                "item_id",
                "VARCHAR",
                synonyms=(
                    "product_id",
                    "itemid",
                    "sku",
                    "parent_asin",
                    "asin",
                    "id_product",
                    "sku_id",
                ),  # fmt: skip
            ),
            Column("rating", "INTEGER", synonyms=("score", "stars", "review_score", "overall")),
            Column(
                "text",
                "VARCHAR",
                synonyms=("review", "comment", "body", "review_text", "review_comment_message"),
            ),
        ),
        time_column="ts",
    ),
}

BATCH_COLUMN = "_batch_id"
# users and items (no time column) keep each row's record number in its file: a file's last row
# of a user or an item is its newest, as in any export of changes
RECORD_COLUMN = "_record"


def engine_columns(source: Source) -> dict[str, str]:
    """The columns ingest adds to `raw_<source>` beside the canonical ones, with their types."""
    extra = {BATCH_COLUMN: "BIGINT NOT NULL"}
    if source.time_column is None:
        extra[RECORD_COLUMN] = "BIGINT"  # NULL for rows loaded before it was kept
    return extra


def raw_table_ddl(source: Source) -> str:
    """The CREATE statement of `raw_<source>`: canonical columns plus the engine's."""
    cols = [f"{c.name} {c.type}" for c in source.columns]
    cols += [f"{name} {kind}" for name, kind in engine_columns(source).items()]
    return f"CREATE TABLE IF NOT EXISTS {source.table} ({', '.join(cols)})"


def get_source(name: str) -> Source:
    from profiler.errors import ProfilerError

    if name not in SOURCES:
        raise ProfilerError(f"unknown source {name!r}; choose one of: {', '.join(SOURCES)}")
    return SOURCES[name]
