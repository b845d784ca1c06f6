-- kind: table
-- grain: user_id, rank
-- tags: serving, recommendations
-- description: Top 10 items per user as of the build's as-of, never an item the user already bought. Candidates come from four sources, each scored 0-1 and weighted (the rules below): items the user viewed, faved or carted in the last 30 days (interest halving every 3 days, relative to the user's strongest), the most popular items of the user's top 3 categories and top 3 brands (item popularity relative to the best of that category or brand, times the category's or brand's share of the user's top-3 affinity), and the items popular with shoppers of the user's RFM segment, which is all a cold-start user gets. An item's score is the weighted sum over the sources that proposed it; its reason is the source that contributed most. Offline evaluation: profiler.serve.recommend_eval (hit rate and recall at 10 against a global-popularity baseline, in _profiler.model_runs and the docs site).
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   rank: 1 = the best recommendation; 1..10
--   item_id: the recommended item
--   score: weighted sum of the source scores (higher is better; comparable within a user), rounded to 9 decimals
--   reason: why: 'viewed recently', 'carted recently', 'top category <category>', 'favourite brand <brand>', 'popular with <segment> shoppers' or, when the segment had no events in the 30 days, 'popular in the shop'
--   category: the item's category; NULL when unknown
--   brand: the item's brand; NULL when unknown
--   as_of: the as-of time of the build
WITH rules AS (
    SELECT
        10 AS top_n,
        15 AS candidates_per_source,
        15 AS segment_candidates,
        30 AS recent_window_days,
        CAST(3.0 AS DOUBLE) AS recent_half_life_days,
        CAST(1.0 AS DOUBLE) AS recent_weight,
        CAST(0.6 AS DOUBLE) AS category_weight,
        CAST(0.4 AS DOUBLE) AS brand_weight,
        CAST(0.05 AS DOUBLE) AS segment_weight
),

as_of AS (
    SELECT as_of, CAST(as_of AS DATE) AS as_of_day FROM as_of_time
),

bought AS (
    SELECT DISTINCT user_id, item_id
    FROM rec_user_item_day
    WHERE purchases > 0
),

recent AS MATERIALIZED (
    SELECT
        d.user_id,
        d.item_id,
        sum(CAST(d.views + 2 * d.favs + 3 * d.carts AS DOUBLE) * power(0.5, date_diff('day', d.day, a.as_of_day) / r.recent_half_life_days)) AS interest,
        sum(d.carts) AS carts
    FROM rec_user_item_day AS d
    CROSS JOIN as_of AS a
    CROSS JOIN rules AS r
    WHERE date_diff('day', d.day, a.as_of_day) < r.recent_window_days
    GROUP BY d.user_id, d.item_id
    -- an item seen only in searches (an item_id on a search event) is no interest: leaving it out
    -- also keeps the relative scores below from dividing 0 by 0
    HAVING sum(d.views + 2 * d.favs + 3 * d.carts) > 0
),

recent_cut AS (
    -- Only the top candidates_per_source of each user are kept: the user's n-th best interest
    -- bounds them, so the window below ranks a few items per user instead of every one.
    SELECT
        c.user_id,
        max(c.interest) AS best,
        list_last(max(round(c.interest, 9), r.candidates_per_source)) AS threshold
    FROM recent AS c
    CROSS JOIN rules AS r
    GROUP BY c.user_id, r.candidates_per_source
),

recent_ranked AS (
    SELECT
        c.*,
        c.interest / k.best AS relative,
        row_number() OVER (PARTITION BY c.user_id ORDER BY round(c.interest, 9) DESC, c.item_id) AS rank
    FROM recent AS c
    INNER JOIN recent_cut AS k ON k.user_id = c.user_id
    WHERE round(c.interest, 9) >= k.threshold
),

tastes AS (
    -- The user's top 3 categories and brands, each with its share of the user's top-3 affinity.
    SELECT user_id, 'category' AS dimension, value, affinity / sum(affinity) OVER (PARTITION BY user_id) AS share
    FROM (
        SELECT user_id, top_category_1 AS value, top_category_1_affinity AS affinity FROM preference_features
        UNION ALL
        SELECT user_id, top_category_2, top_category_2_affinity FROM preference_features
        UNION ALL
        SELECT user_id, top_category_3, top_category_3_affinity FROM preference_features
    ) AS c
    WHERE value IS NOT NULL AND affinity > 0
    UNION ALL
    SELECT user_id, 'brand' AS dimension, value, affinity / sum(affinity) OVER (PARTITION BY user_id) AS share
    FROM (
        SELECT user_id, top_brand_1 AS value, top_brand_1_affinity AS affinity FROM preference_features
        UNION ALL
        SELECT user_id, top_brand_2, top_brand_2_affinity FROM preference_features
        UNION ALL
        SELECT user_id, top_brand_3, top_brand_3_affinity FROM preference_features
    ) AS b
    WHERE value IS NOT NULL AND affinity > 0
),

leaders AS (
    -- The most popular items of every category and brand, relative to the best one.
    SELECT 'category' AS dimension, p.category AS value, p.item_id, p.popularity / max(p.popularity) OVER (PARTITION BY p.category) AS relative
    FROM rec_item_popularity AS p
    CROSS JOIN rules AS r
    WHERE p.rank_in_category <= r.candidates_per_source
    UNION ALL
    SELECT 'brand' AS dimension, p.brand, p.item_id, p.popularity / max(p.popularity) OVER (PARTITION BY p.brand) AS relative
    FROM rec_item_popularity AS p
    CROSS JOIN rules AS r
    WHERE p.rank_in_brand <= r.candidates_per_source
),

segments AS (
    -- every user the shop knows (cold starts included) and the RFM segment
    SELECT u.user_id, coalesce(r.rfm_segment, 'unknown') AS segment
    FROM int_users AS u
    LEFT JOIN rfm_features AS r ON r.user_id = u.user_id
),

segment_popular AS (
    -- Items popular with a segment's shoppers over the last 30 days (popularity weights as in
    -- rec_item_popularity); segments too small to have any get the shop's overall favourites.
    SELECT segment, item_id, relative
    FROM (
        SELECT
            s.segment,
            d.item_id,
            CAST(sum(d.views + 2 * d.favs + 3 * d.carts + 5 * d.purchases) AS DOUBLE)
                / max(sum(d.views + 2 * d.favs + 3 * d.carts + 5 * d.purchases)) OVER (PARTITION BY s.segment) AS relative,
            row_number() OVER (
                PARTITION BY s.segment
                ORDER BY sum(d.views + 2 * d.favs + 3 * d.carts + 5 * d.purchases) DESC, d.item_id
            ) AS rank
        FROM rec_user_item_day AS d
        JOIN segments AS s ON s.user_id = d.user_id
        CROSS JOIN as_of AS a
        CROSS JOIN rules AS r
        WHERE date_diff('day', d.day, a.as_of_day) < r.recent_window_days
        GROUP BY s.segment, d.item_id
        HAVING sum(d.views + 2 * d.favs + 3 * d.carts + 5 * d.purchases) > 0
    ) AS ranked
    CROSS JOIN rules AS r
    WHERE rank <= r.segment_candidates
    UNION ALL
    SELECT 'shop' AS segment, p.item_id, p.popularity / max(p.popularity) OVER () AS relative
    FROM rec_item_popularity AS p
    CROSS JOIN rules AS r
    WHERE p.rank_overall <= r.segment_candidates
),

segment_choice AS (
    SELECT s.user_id, s.segment, CASE WHEN EXISTS (SELECT 1 FROM segment_popular AS p WHERE p.segment = s.segment) THEN s.segment ELSE 'shop' END AS source
    FROM segments AS s
),

candidates AS (
    -- source codes, in the order of their reasons' names (ties go to the later name):
    -- 1 carted recently, 2 favourite brand, 3 popular with the segment, 4 top category,
    -- 5 viewed recently. The reason's text is written only for the final top 10.
    SELECT
        c.user_id,
        c.item_id,
        r.recent_weight * c.relative AS contribution,
        CASE WHEN c.carts > 0 THEN 1 ELSE 5 END AS source
    FROM recent_ranked AS c
    CROSS JOIN rules AS r
    WHERE c.rank <= r.candidates_per_source
    UNION ALL
    SELECT
        t.user_id,
        l.item_id,
        CASE WHEN t.dimension = 'category' THEN r.category_weight ELSE r.brand_weight END * t.share * l.relative,
        CASE WHEN t.dimension = 'category' THEN 4 ELSE 2 END
    FROM tastes AS t
    JOIN leaders AS l ON l.dimension = t.dimension AND l.value = t.value
    CROSS JOIN rules AS r
    UNION ALL
    SELECT s.user_id, p.item_id, r.segment_weight * p.relative, 3
    FROM segment_choice AS s
    JOIN segment_popular AS p ON p.segment = s.source
    CROSS JOIN rules AS r
),

scored AS MATERIALIZED (
    -- the reason is the source with the largest contribution (ties: the later reason by name)
    SELECT
        c.user_id,
        c.item_id,
        sum(c.contribution) AS score,
        arg_max(c.source, CAST(round(c.contribution * 1e9) AS BIGINT) * 8 + c.source) AS source
    FROM candidates AS c
    WHERE NOT EXISTS (SELECT 1 FROM bought AS b WHERE b.user_id = c.user_id AND b.item_id = c.item_id)
    GROUP BY c.user_id, c.item_id
),

scored_cut AS (
    -- the user's top_n-th best score bounds the top top_n, as in recent_cut
    SELECT s.user_id, list_last(max(round(s.score, 9), r.top_n)) AS threshold
    FROM scored AS s
    CROSS JOIN rules AS r
    GROUP BY s.user_id, r.top_n
),

ranked AS (
    SELECT
        s.*,
        row_number() OVER (PARTITION BY s.user_id ORDER BY round(s.score, 9) DESC, s.item_id) AS rank
    FROM scored AS s
    INNER JOIN scored_cut AS k ON k.user_id = s.user_id
    WHERE round(s.score, 9) >= k.threshold
)

SELECT
    k.user_id,
    k.rank,
    k.item_id,
    round(k.score, 9) AS score,
    CASE k.source
        WHEN 1 THEN 'carted recently'
        WHEN 2 THEN 'favourite brand ' || p.brand
        WHEN 3 THEN CASE WHEN s.source = 'shop' THEN 'popular in the shop' ELSE 'popular with ' || s.source || ' shoppers' END
        WHEN 4 THEN 'top category ' || p.category
        ELSE 'viewed recently'
    END AS reason,
    p.category,
    p.brand,
    a.as_of
FROM ranked AS k
CROSS JOIN rules AS r
CROSS JOIN as_of AS a
LEFT JOIN rec_item_popularity AS p ON p.item_id = k.item_id
LEFT JOIN segment_choice AS s ON s.user_id = k.user_id
WHERE k.rank <= r.top_n
