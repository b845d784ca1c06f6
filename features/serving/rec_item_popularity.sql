-- kind: table
-- grain: item_id
-- tags: serving, recommendations
-- description: Item popularity as of the build's as-of: the users who acted on the item each day of the last 90, each weighted by their deepest action that day (view 1, fav 2, cart 3, purchase 5: macros/weights.sql) and halved for every 7 days between that day and the as-of day (the rules below), with the item's rank overall, in its category and in its brand. A user counts once per item and day however many events they sent, so one account (a reseller's 100,000 purchase lines) cannot make an item the shop's favourite (helper-83). Items without an event in those 90 days are left out.
-- columns:
--   item_id: item id as the shop sends it
--   category: the item's category on its latest day with one; NULL when unknown
--   brand: the item's brand on its latest day with one; NULL when unknown
--   popularity: time-decayed weighted user-days up to the as-of, rounded to 9 decimals (equal whatever the order of the sum)
--   users_90d: user-days with an event on the item in the last 90 days
--   buyers_90d: user-days with a purchase of the item in the last 90 days
--   rank_overall: 1 = the most popular item of the shop (ties: smaller item id first)
--   rank_in_category: rank within its category; NULL without a category
--   rank_in_brand: rank within its brand; NULL without a brand
WITH rules AS (
    SELECT
        7.0 AS half_life_days,
        90 AS window_days
),

as_of AS (
    SELECT CAST(as_of AS DATE) AS as_of_day FROM as_of_time
),

scored AS (
    SELECT
        d.item_id,
        arg_max(d.category, CASE WHEN d.category IS NOT NULL THEN d.day END) AS category,
        arg_max(d.brand, CASE WHEN d.brand IS NOT NULL THEN d.day END) AS brand,
        sum(
            (d.viewers * action_weight('view') + d.favers * action_weight('fav')
                + d.carters * action_weight('cart') + d.buyers * action_weight('purchase'))
            * power(0.5, date_diff('day', d.day, a.as_of_day) / r.half_life_days)
        ) AS popularity,
        CAST(sum(d.users) AS BIGINT) AS users_90d,
        CAST(sum(d.buyers) AS BIGINT) AS buyers_90d
    FROM rec_item_day AS d
    CROSS JOIN as_of AS a
    CROSS JOIN rules AS r
    WHERE date_diff('day', d.day, a.as_of_day) < r.window_days
    GROUP BY d.item_id
)

SELECT
    item_id,
    category,
    brand,
    round(popularity, 9) AS popularity,
    users_90d,
    buyers_90d,
    row_number() OVER (ORDER BY round(popularity, 9) DESC, item_id) AS rank_overall,
    CASE WHEN category IS NOT NULL THEN row_number() OVER (PARTITION BY category ORDER BY round(popularity, 9) DESC, item_id) END AS rank_in_category,
    CASE WHEN brand IS NOT NULL THEN row_number() OVER (PARTITION BY brand ORDER BY round(popularity, 9) DESC, item_id) END AS rank_in_brand
FROM scored
WHERE popularity > 0
