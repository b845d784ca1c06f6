-- kind: incremental_by_key
-- unique_key: item_id
-- grain: item_id
-- tags: cleaning, items
-- description: The catalogue, one row per item: the newest batch's row wins; categories and brands normalised. Events without item attributes take them from here.
-- columns:
--   item_id: item id as the shop sends it
--   category_id: category id (trimmed); NULL when unknown
--   category_path: dotted category path, lower case (for example electronics.audio.headphone); NULL when unknown
--   brand: brand, lower case and trimmed; NULL when unknown
--   price: unit price; NULL when unknown or negative
--   title: item title
--   _batch_id: the ingest batch the row came from
WITH ranked AS (
    SELECT
        item_id,
        nullif(trim(category_id), '') AS category_id,
        nullif(replace(replace(replace(lower(trim(category_path)), ' > ', '.'), '>', '.'), '/', '.'), '') AS category_path,
        nullif(lower(trim(brand)), '') AS brand,
        CASE WHEN price >= 0 THEN price END AS price,
        nullif(trim(title), '') AS title,
        _batch_id,
        row_number() OVER (
            PARTITION BY item_id
            ORDER BY _batch_id DESC, category_path, brand, price, title, category_id
        ) AS newest
    FROM raw_items
    WHERE item_id IS NOT NULL
)
SELECT item_id, category_id, category_path, brand, price, title, _batch_id
FROM ranked
WHERE newest = 1
