-- kind: incremental_by_key
-- unique_key: item_id
-- grain: item_id
-- tags: cleaning, items
-- description: The catalogue, one row per item: each column is the newest value the shop sent for it (the later file, then the later line of a file; rows loaded before lines were kept: the first by values), so a price list that sends item_id and price alone changes prices and keeps categories; an empty value never erases a known one. Categories and brands normalised. Events without item attributes take them from here.
-- columns:
--   item_id: item id as the shop sends it
--   category_id: category id (trimmed); NULL when unknown
--   category_path: dotted category path, lower case (for example electronics.audio.headphone): levels sent as `a > b`, `a>b` or, in a path without `>`, `a / b` or `a/b` (a `/` beside a `>` is part of a name: 디지털/가전>음향기기 has two levels; macros/names.sql's category_levels); NULL when unknown
--   brand: brand, lower case and trimmed (Turkish ı as i, so KADIN and Kadın are one name, here and in categories); NULL when unknown
--   price: unit price; NULL when unknown or negative
--   title: item title
--   _batch_id: the newest ingest batch with a row of the item
WITH cleaned AS (
    SELECT
        item_id,
        nullif(trim(category_id), '') AS category_id,
        category_levels(category_path) AS category_path,
        name_key(brand) AS brand,
        CASE WHEN price >= 0 THEN price END AS price,
        nullif(trim(title), '') AS title,
        _batch_id,
        _record
    FROM raw_items
    WHERE item_id IS NOT NULL
),

merged AS (
    -- per column, the newest value sent: rows newest first, the first value that is not NULL
    SELECT
        item_id,
        first_value(category_id IGNORE NULLS) OVER newest_first AS category_id,
        first_value(category_path IGNORE NULLS) OVER newest_first AS category_path,
        first_value(brand IGNORE NULLS) OVER newest_first AS brand,
        first_value(price IGNORE NULLS) OVER newest_first AS price,
        first_value(title IGNORE NULLS) OVER newest_first AS title,
        _batch_id,
        row_number() OVER newest_first AS newest
    FROM cleaned
    WINDOW newest_first AS (
        PARTITION BY item_id
        ORDER BY _batch_id DESC, _record DESC NULLS LAST, category_path, brand, price, title, category_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    )
)

SELECT item_id, category_id, category_path, brand, price, title, _batch_id
FROM merged
WHERE newest = 1
