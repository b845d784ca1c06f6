-- kind: incremental_by_time
-- time_column: day
-- lookback: 0
-- grain: item_id, day
-- tags: serving, recommendations, internal
-- description: Per-item per-day totals of cleaned item events (from rec_user_item_day), so item popularity reads one row per item and day instead of one per user.
-- columns:
--   item_id: item id as the shop sends it
--   day: calendar day (shop time)
--   category: the item's category that day (the largest of its users' values); NULL when unknown
--   brand: the item's brand that day; NULL when unknown
--   users: users with an event on the item that day
--   views: product views
--   favs: add-to-favourites events
--   carts: add-to-cart events
--   purchases: purchase events
--   buyers: users who bought the item that day
--   carters: users whose deepest action on the item that day was a cart (no purchase)
--   favers: users whose deepest action on the item that day was a fav (no cart or purchase)
--   viewers: users who only viewed the item that day
SELECT
    item_id,
    day,
    max(category) AS category,
    max(brand) AS brand,
    count(*) AS users,
    CAST(sum(views) AS BIGINT) AS views,
    CAST(sum(favs) AS BIGINT) AS favs,
    CAST(sum(carts) AS BIGINT) AS carts,
    CAST(sum(purchases) AS BIGINT) AS purchases,
    count(*) FILTER (WHERE purchases > 0) AS buyers,
    count(*) FILTER (WHERE purchases = 0 AND carts > 0) AS carters,
    count(*) FILTER (WHERE purchases = 0 AND carts = 0 AND favs > 0) AS favers,
    count(*) FILTER (WHERE purchases = 0 AND carts = 0 AND favs = 0 AND views > 0) AS viewers
FROM rec_user_item_day
GROUP BY item_id, day
