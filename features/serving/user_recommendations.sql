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

item_order AS (
    -- Every item a candidate can be (items with events in the recent window, items with a
    -- popularity), numbered in item id order: candidates are keyed by (user, number), and the
    -- ranking below breaks ties with the number, as an ORDER BY item_id would. With the
    -- item's category and brand (rec_item_popularity) for the final rows.
    SELECT n.item_id, n.position, p.category, p.brand
    FROM (
        SELECT item_id, row_number() OVER (ORDER BY item_id) AS position
        FROM (
            SELECT d.item_id
            FROM rec_user_item_day AS d
            CROSS JOIN as_of AS a
            CROSS JOIN rules AS r
            WHERE date_diff('day', d.day, a.as_of_day) < r.recent_window_days
            UNION
            SELECT item_id FROM rec_item_popularity
        ) AS i
    ) AS n
    LEFT JOIN rec_item_popularity AS p ON p.item_id = n.item_id
),

bought AS (
    -- items the user ever bought, by their number (an item without one can be no candidate)
    SELECT DISTINCT d.user_id, o.position
    FROM rec_user_item_day AS d
    JOIN item_order AS o ON o.item_id = d.item_id
    WHERE d.purchases > 0
),

recent AS (
    SELECT
        d.user_id,
        d.item_id,
        sum(
            (d.views * action_weight('view') + d.favs * action_weight('fav') + d.carts * action_weight('cart'))
            * power(0.5, date_diff('day', d.day, a.as_of_day) / r.recent_half_life_days)) AS interest,
        sum(d.carts) AS carts
    FROM rec_user_item_day AS d
    CROSS JOIN as_of AS a
    CROSS JOIN rules AS r
    WHERE date_diff('day', d.day, a.as_of_day) < r.recent_window_days
    GROUP BY d.user_id, d.item_id
    -- an item seen only in searches (an item_id on a search event) is no interest: leaving it out
    -- also keeps the relative scores below from dividing 0 by 0
    HAVING sum(d.views * action_weight('view') + d.favs * action_weight('fav') + d.carts * action_weight('cart')) > 0
),

tastes AS (
    -- The user's top 3 categories and brands, each with its share of the user's top-3 affinity.
    SELECT user_id, 'category' AS dimension, slot, value, affinity / sum(affinity) OVER (PARTITION BY user_id) AS share
    FROM (
        SELECT user_id, 1 AS slot, top_category_1 AS value, top_category_1_affinity AS affinity FROM preference_features
        UNION ALL
        SELECT user_id, 2, top_category_2, top_category_2_affinity FROM preference_features
        UNION ALL
        SELECT user_id, 3, top_category_3, top_category_3_affinity FROM preference_features
    ) AS c
    WHERE value IS NOT NULL AND affinity > 0
    UNION ALL
    SELECT user_id, 'brand' AS dimension, slot, value, affinity / sum(affinity) OVER (PARTITION BY user_id) AS share
    FROM (
        SELECT user_id, 1 AS slot, top_brand_1 AS value, top_brand_1_affinity AS affinity FROM preference_features
        UNION ALL
        SELECT user_id, 2, top_brand_2, top_brand_2_affinity FROM preference_features
        UNION ALL
        SELECT user_id, 3, top_brand_3, top_brand_3_affinity FROM preference_features
    ) AS b
    WHERE value IS NOT NULL AND affinity > 0
),

leaders AS (
    -- The most popular items of every category and brand, relative to the best one: one row per
    -- item that leads its category or its brand (the relative popularity of the other is NULL
    -- where it does not lead that one).
    SELECT
        p.item_id,
        o.position,
        p.category,
        p.brand,
        CASE WHEN p.rank_in_category <= r.candidates_per_source THEN p.popularity / max(p.popularity) OVER (PARTITION BY p.category) END AS category_relative,
        CASE WHEN p.rank_in_brand <= r.candidates_per_source THEN p.popularity / max(p.popularity) OVER (PARTITION BY p.brand) END AS brand_relative
    FROM rec_item_popularity AS p
    JOIN item_order AS o ON o.item_id = p.item_id
    CROSS JOIN rules AS r
    WHERE p.rank_in_category <= r.candidates_per_source OR p.rank_in_brand <= r.candidates_per_source
),

segments AS (
    -- every user the shop knows (cold starts included) and the RFM segment
    SELECT u.user_id, coalesce(r.rfm_segment, 'unknown') AS segment
    FROM int_users AS u
    LEFT JOIN rfm_features AS r ON r.user_id = u.user_id
),

segment_popular AS (
    -- Items popular with a segment's shoppers over the last 30 days (as rec_item_popularity
    -- counts: each user-day once, by its deepest action, so one account's many lines do not make
    -- the segment's favourites); segments too small to have any get the shop's overall favourites.
    SELECT segment, item_id, relative
    FROM (
        SELECT
            s.segment,
            d.item_id,
            CAST(sum(deepest_action_weight(d.purchases, d.carts, d.favs, d.views)) AS DOUBLE)
                / max(sum(deepest_action_weight(d.purchases, d.carts, d.favs, d.views))) OVER (PARTITION BY s.segment) AS relative,
            row_number() OVER (
                PARTITION BY s.segment
                ORDER BY sum(deepest_action_weight(d.purchases, d.carts, d.favs, d.views)) DESC, d.item_id
            ) AS rank
        FROM rec_user_item_day AS d
        JOIN segments AS s ON s.user_id = d.user_id
        CROSS JOIN as_of AS a
        CROSS JOIN rules AS r
        WHERE date_diff('day', d.day, a.as_of_day) < r.recent_window_days
        GROUP BY s.segment, d.item_id
        HAVING sum(deepest_action_weight(d.purchases, d.carts, d.favs, d.views)) > 0
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

profile AS (
    -- One row per user: the segment its popular items come from and the top categories and brands
    -- with their shares, carried on each of the user's candidates so that every source's
    -- contribution to an item is read off the item's own row (no join per candidate and source).
    SELECT coalesce(s.user_id, t.user_id) AS user_id, s.source, t.* EXCLUDE (user_id)
    FROM segment_choice AS s
    FULL JOIN (
        SELECT
            user_id,
            max(value) FILTER (WHERE dimension = 'category' AND slot = 1) AS category_1,
            max(share) FILTER (WHERE dimension = 'category' AND slot = 1) AS category_1_share,
            max(value) FILTER (WHERE dimension = 'category' AND slot = 2) AS category_2,
            max(share) FILTER (WHERE dimension = 'category' AND slot = 2) AS category_2_share,
            max(value) FILTER (WHERE dimension = 'category' AND slot = 3) AS category_3,
            max(share) FILTER (WHERE dimension = 'category' AND slot = 3) AS category_3_share,
            max(value) FILTER (WHERE dimension = 'brand' AND slot = 1) AS brand_1,
            max(share) FILTER (WHERE dimension = 'brand' AND slot = 1) AS brand_1_share,
            max(value) FILTER (WHERE dimension = 'brand' AND slot = 2) AS brand_2,
            max(share) FILTER (WHERE dimension = 'brand' AND slot = 2) AS brand_2_share,
            max(value) FILTER (WHERE dimension = 'brand' AND slot = 3) AS brand_3,
            max(share) FILTER (WHERE dimension = 'brand' AND slot = 3) AS brand_3_share
        FROM tastes
        GROUP BY user_id
    ) AS t ON t.user_id = s.user_id
),

proposed AS (
    -- What the sources besides the recent top propose, keyed by what a user's profile names: 2 a
    -- top category's leaders, 3 a favourite brand's leaders, 4 a segment's popular items; each
    -- with the item's category and brand leadership.
    SELECT 2 AS proposer, l.category AS key, l.item_id, l.position, l.category, l.brand, l.category_relative, l.brand_relative
    FROM leaders AS l
    WHERE l.category_relative IS NOT NULL
    UNION ALL
    SELECT 3, l.brand, l.item_id, l.position, l.category, l.brand, l.category_relative, l.brand_relative
    FROM leaders AS l
    WHERE l.brand_relative IS NOT NULL
    UNION ALL
    SELECT 4, sp.segment, sp.item_id, o.position, l.category, l.brand, l.category_relative, l.brand_relative
    FROM segment_popular AS sp
    JOIN item_order AS o ON o.item_id = sp.item_id
    LEFT JOIN leaders AS l ON l.item_id = sp.item_id
),

recent_ranked AS (
    -- Each user's top candidates_per_source items by interest (rounded to 9 places, then item id),
    -- with the interest relative to the user's strongest, in one window over the user's items (an
    -- interest has no upper bound, so it cannot share one integer key with the item number as the
    -- final ranking does).
    SELECT
        ranked.user_id,
        o.position,
        ranked.relative,
        CASE WHEN ranked.carts > 0 THEN 1 ELSE 5 END AS recent_code,
        o.position IN (SELECT position FROM proposed) AS proposed_elsewhere
    FROM (
        SELECT
            c.user_id,
            c.item_id,
            c.carts,
            c.interest / max(c.interest) OVER (
                PARTITION BY c.user_id ORDER BY round(c.interest, 9) DESC, c.item_id
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
            ) AS relative,
            row_number() OVER (PARTITION BY c.user_id ORDER BY round(c.interest, 9) DESC, c.item_id) AS rank
        FROM recent AS c
    ) AS ranked
    JOIN item_order AS o ON o.item_id = ranked.item_id
    CROSS JOIN rules AS r
    WHERE ranked.rank <= r.candidates_per_source
),

others AS (
    -- The items the user's top categories, favourite brands and segment propose, each once: on the
    -- row of the first of those sources proposing it, where the user's profile gives the share of
    -- the item's category and brand (NULL: not one of the user's, or the item does not lead it).
    -- No GROUP BY over (user, item): at ~60-90 candidates per user that aggregate (and the table
    -- of them) outgrew the memory limit and spilled from about 1M users on.
    SELECT user_id, position, source, category_share * category_relative AS category_part, brand_share * brand_relative AS brand_part, segment_relative
    FROM (
        SELECT
            p.user_id,
            x.position,
            p.source,
            x.proposer,
            CASE WHEN x.category_relative IS NOT NULL THEN CASE x.category WHEN p.category_1 THEN p.category_1_share WHEN p.category_2 THEN p.category_2_share WHEN p.category_3 THEN p.category_3_share END END AS category_share,
            x.category_relative,
            CASE WHEN x.brand_relative IS NOT NULL THEN CASE x.brand WHEN p.brand_1 THEN p.brand_1_share WHEN p.brand_2 THEN p.brand_2_share WHEN p.brand_3 THEN p.brand_3_share END END AS brand_share,
            x.brand_relative,
            sp.relative AS segment_relative
        FROM (
            SELECT
                *,
                unnest([
                    {'proposer': 2, 'key': category_1}, {'proposer': 2, 'key': category_2}, {'proposer': 2, 'key': category_3},
                    {'proposer': 3, 'key': brand_1}, {'proposer': 3, 'key': brand_2}, {'proposer': 3, 'key': brand_3},
                    {'proposer': 4, 'key': source}
                ]) AS k
            FROM profile
        ) AS p
        JOIN proposed AS x ON x.proposer = p.k.proposer AND x.key = p.k.key
        LEFT JOIN segment_popular AS sp ON sp.segment = p.source AND sp.item_id = x.item_id
    ) AS c
    -- a top category's leader is always on its own row; a brand's or a segment's item only when no
    -- earlier source proposes it
    WHERE proposer = 2
        OR (proposer = 3 AND category_share IS NULL)
        OR (proposer = 4 AND category_share IS NULL AND brand_share IS NULL)
),

candidates AS (
    -- Each candidate once per user: the recent top joined to the other sources' items. Only recent
    -- items that another source proposes at all go into the join (it builds on them); the rest
    -- come as they are.
    SELECT
        coalesce(c.user_id, o.user_id) AS user_id,
        coalesce(c.position, o.position) AS position,
        o.source AS segment_source,
        c.relative AS recent_relative,
        c.recent_code,
        o.category_part,
        o.brand_part,
        o.segment_relative
    FROM (SELECT * FROM recent_ranked WHERE proposed_elsewhere) AS c
    FULL JOIN others AS o ON o.user_id = c.user_id AND o.position = c.position
    UNION ALL
    SELECT
        user_id,
        position,
        NULL AS segment_source,
        relative AS recent_relative,
        recent_code,
        NULL AS category_part,
        NULL AS brand_part,
        NULL AS segment_relative
    FROM recent_ranked
    WHERE NOT proposed_elsewhere
),

scored AS (
    -- Never an item already bought. The score is the weighted sum of the sources' scores; the
    -- reason is the source with the largest contribution (ties: the later reason by name). Source
    -- codes, in the order of their reasons' names: 1 carted recently, 2 favourite brand, 3 popular
    -- with the segment, 4 top category, 5 viewed recently. The reason's text is written only for
    -- the final top 10.
    SELECT
        user_id,
        position,
        segment_source,
        coalesce(by_recent, 0) + coalesce(by_category, 0) + coalesce(by_brand, 0) + coalesce(by_segment, 0) AS score,
        greatest(
            CAST(round(by_recent * 1e9) AS BIGINT) * 8 + recent_code,
            CAST(round(by_category * 1e9) AS BIGINT) * 8 + 4,
            CAST(round(by_brand * 1e9) AS BIGINT) * 8 + 2,
            CAST(round(by_segment * 1e9) AS BIGINT) * 8 + 3
        ) % 8 AS source
    FROM (
        SELECT
            c.user_id,
            c.position,
            c.segment_source,
            r.recent_weight * c.recent_relative AS by_recent,
            c.recent_code,
            r.category_weight * c.category_part AS by_category,
            r.brand_weight * c.brand_part AS by_brand,
            r.segment_weight * c.segment_relative AS by_segment
        FROM candidates AS c
        CROSS JOIN rules AS r
    ) AS x
    WHERE NOT EXISTS (SELECT 1 FROM bought AS b WHERE b.user_id = x.user_id AND b.position = x.position)
),

top AS (
    -- The user's top_n items by score rounded to 9 places, then item id (its number), with their
    -- sources; the segment's name comes along for the reason. A window, not DuckDB's top-N
    -- aggregate `max(key, n)`, which Spark SQL has no form of (20-25% slower here at 10M events).
    SELECT user_id, segment_source, rank, score_nanos, position, source
    FROM (
        SELECT
            s.user_id,
            max(s.segment_source) OVER (PARTITION BY s.user_id) AS segment_source,
            row_number() OVER (
                PARTITION BY s.user_id ORDER BY round(s.score * 1e9) DESC, s.position
            ) AS rank,
            CAST(round(s.score * 1e9) AS BIGINT) AS score_nanos,
            s.position,
            s.source,
            r.top_n
        FROM scored AS s
        CROSS JOIN rules AS r
    ) AS k
    WHERE rank <= top_n
)

SELECT
    k.user_id,
    k.rank,
    o.item_id,
    CAST(k.score_nanos AS DOUBLE) / 1e9 AS score,
    CASE k.source
        WHEN 1 THEN 'carted recently'
        WHEN 2 THEN 'favourite brand ' || o.brand
        WHEN 3 THEN CASE WHEN k.segment_source = 'shop' THEN 'popular in the shop' ELSE 'popular with ' || k.segment_source || ' shoppers' END
        WHEN 4 THEN 'top category ' || o.category
        ELSE 'viewed recently'
    END AS reason,
    o.category,
    o.brand,
    a.as_of
FROM top AS k
CROSS JOIN as_of AS a
JOIN item_order AS o ON o.position = k.position
