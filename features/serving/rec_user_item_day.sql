-- kind: incremental_by_time
-- time_column: day
-- lookback: 0
-- grain: user_id, item_id, day
-- tags: serving, recommendations, internal
-- description: Per-user per-item per-day rollup of cleaned item events, the input of item popularity and of the recommendations (items already bought, items looked at lately). Events from stg_events (exact repeats once, bot-like user-days out); categories and brands come from the event, else the item (stg_items), normalised as in the profile (lower-case dotted path, else category id).
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   item_id: item id as the shop sends it
--   day: calendar day (shop time)
--   category: the item's category that day (lower-case dotted path, else category id); NULL when unknown
--   brand: the item's brand that day (lower case); NULL when unknown
--   views: product views of the item that day
--   favs: add-to-favourites events
--   carts: add-to-cart events
--   purchases: purchase events
WITH cleaned AS (
    -- each event once, bot-like user-days out (stg_events)
    SELECT
        e.user_id,
        e.item_id,
        e.day,
        e.event_type,
        coalesce(
            category_levels(e.category_path),
            i.category_path,
            nullif(trim(e.category_id), ''),
            i.category_id
        ) AS category,
        coalesce(name_key(e.brand), i.brand) AS brand
    FROM stg_events AS e
    LEFT JOIN stg_items AS i ON i.item_id = e.item_id
    WHERE e.item_id IS NOT NULL
)

SELECT
    user_id,
    item_id,
    day,
    max(category) AS category,
    max(brand) AS brand,
    count(*) FILTER (WHERE event_type = 'view') AS views,
    count(*) FILTER (WHERE event_type = 'fav') AS favs,
    count(*) FILTER (WHERE event_type = 'cart') AS carts,
    count(*) FILTER (WHERE event_type = 'purchase') AS purchases
FROM cleaned
GROUP BY user_id, item_id, day
