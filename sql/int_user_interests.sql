-- kind: incremental_by_key
-- unique_key: user_id
-- grain: user_id
-- tags: preference, search
-- description: What each user is interested in, lifetime, one row per user with items or searches: the top 3 categories and brands by time-decayed affinity and the top 3 search queries. Affinity weighs views 1, favs 2, carts 3 and purchases 5 (macros/weights.sql), halving every 30 days (rules below). Scores are stated at a fixed reference day, so their order never depends on the as-of; preference_features ages them to the as-of and rounds them to 9 significant digits. They are sums of doubles, so their last bits (about 1e-15 relative) may differ between two builds of the same data (helper-82: in half the users of a generated shop); nothing ranked or published from them does. Events from stg_events (each event once, the browsing of bot-like user-days out), with category, brand and (for purchases without amount or price) price taken from stg_items where the event lacks them, categories as dotted lower-case paths (else the category id), brands and queries lower case (Turkish ı as i: KADIN and Kadın are one name).
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   reference_day: the day the scores are stated at (2020-01-01); a score at day D is score x 0.5 ^ ((D - reference_day) / half_life_days)
--   half_life_days: the decay half-life, in days
--   top_category_1: category with the highest affinity (ties, affinities equal to float noise (their log2 to 9 decimals): the more recent last day with it, then alphabetical; dotted path, lower case, else category id); only categories with affinity count (searches weigh 0: a category only searched in has none); NULL when the user has none
--   top_category_1_score: its affinity at reference_day
--   top_category_1_spend: money spent in it; 0 when nothing priced was bought there
--   top_category_2: second category by affinity
--   top_category_2_score: its affinity at reference_day
--   top_category_2_spend: money spent in it
--   top_category_3: third category by affinity
--   top_category_3_score: its affinity at reference_day
--   top_category_3_spend: money spent in it
--   top_brand_1: brand with the highest affinity (ties, affinities equal to float noise (their log2 to 9 decimals): the more recent last day with it, then alphabetical; lower case); only brands with affinity count; NULL when the user has none
--   top_brand_1_score: its affinity at reference_day
--   top_brand_2: second brand by affinity
--   top_brand_2_score: its affinity at reference_day
--   top_brand_3: third brand by affinity
--   top_brand_3_score: its affinity at reference_day
--   top_search_term_1: most frequent search query (lower case, trimmed; ties: the more recent last day with it, then alphabetical); NULL without searches
--   top_search_term_2: second most frequent search query
--   top_search_term_3: third most frequent search query
--   categories_engaged: distinct categories the user had events on
--   brands_engaged: distinct brands the user had events on
--   search_terms_used: distinct search queries
--   spend: money spent on purchases with an amount or price (the denominator of spend shares); NULL without such purchases
WITH rules AS (
    -- The half-life and the reference day: here and only here (the weights per event type are
    -- macros/weights.sql's action_weight). Scores grow as 2 ^ (days since the reference /
    -- half-life), which stays inside double range for days up to 1000 half-lives from the
    -- reference: 1938..2102 at 30 days.
    SELECT
        30.0 AS half_life_days,
        CAST('2020-01-01' AS DATE) AS reference_day
),

as_sent AS (
    -- First summed on the columns as sent (cheap to group on); the item lookup and the
    -- normalisation then run once per group instead of once per event. item_id stays in the
    -- group only where the event lacks something the item can supply.
    SELECT
        e.user_id,
        e.category_id,
        e.category_path,
        e.brand,
        CASE WHEN e.event_type = 'search' THEN e.query END AS query,
        CASE
            WHEN e.category_path IS NULL OR e.brand IS NULL
                OR (e.event_type = 'purchase' AND e.amount IS NULL AND e.price IS NULL)
                THEN e.item_id
        END AS lookup_item,
        sum(
            action_weight(e.event_type) * power(2.0, date_diff('day', r.reference_day, CAST(e.ts AS DATE)) / r.half_life_days)
        ) AS score,
        count(*) AS events,
        CAST(max(e.ts) AS DATE) AS last_day,
        sum(CASE WHEN e.event_type = 'purchase' THEN coalesce(e.amount, e.price * coalesce(e.quantity, 1)) END) AS spend,
        sum(CASE WHEN e.event_type = 'purchase' AND e.amount IS NULL AND e.price IS NULL THEN coalesce(e.quantity, 1) END)
            AS unpriced_quantity
    FROM stg_events AS e  -- each event once, the browsing of bot-like user-days out
    CROSS JOIN rules AS r
    GROUP BY
        e.user_id, e.category_id, e.category_path, e.brand,
        CASE WHEN e.event_type = 'search' THEN e.query END,
        CASE
            WHEN e.category_path IS NULL OR e.brand IS NULL
                OR (e.event_type = 'purchase' AND e.amount IS NULL AND e.price IS NULL)
                THEN e.item_id
        END
),

normalised AS (
    SELECT
        a.user_id,
        coalesce(
            category_levels(a.category_path),
            i.category_path,
            a.category_id,
            i.category_id
        ) AS category,
        coalesce(name_key(a.brand), i.brand) AS brand,
        name_key(a.query) AS query,
        a.score,
        a.events,
        a.last_day,
        a.spend,
        a.unpriced_quantity * i.price AS spend_from_items
    FROM as_sent AS a
    LEFT JOIN stg_items AS i ON i.item_id = a.lookup_item
),

per_value AS (
    -- Small enough now to group four ways, each way only the rows with a value for it and only
    -- the sums it needs: per category, per brand (no spend), per query (no score or spend: searches
    -- rank by count), per user (spend).
    SELECT
        user_id,
        'category' AS dimension,
        category AS value,
        sum(score) AS score,
        CAST(sum(events) AS BIGINT) AS events,
        max(last_day) AS last_day,
        CASE
            WHEN count(spend) + count(spend_from_items) > 0
                THEN round(sum(coalesce(spend, 0) + coalesce(spend_from_items, 0)), 6)  -- to the millionth
        END AS spend
    FROM normalised
    WHERE category IS NOT NULL
    GROUP BY user_id, category
    UNION ALL
    SELECT
        user_id,
        'brand' AS dimension,
        brand AS value,
        sum(score) AS score,
        CAST(sum(events) AS BIGINT) AS events,
        max(last_day) AS last_day,
        NULL AS spend
    FROM normalised
    WHERE brand IS NOT NULL
    GROUP BY user_id, brand
    UNION ALL
    SELECT
        user_id,
        'query' AS dimension,
        query AS value,
        NULL AS score,
        CAST(sum(events) AS BIGINT) AS events,
        max(last_day) AS last_day,
        NULL AS spend
    FROM normalised
    WHERE query IS NOT NULL
    GROUP BY user_id, query
    UNION ALL
    SELECT
        user_id,
        'user' AS dimension,
        NULL AS value,
        NULL AS score,
        NULL AS events,
        NULL AS last_day,
        CASE
            WHEN count(spend) + count(spend_from_items) > 0
                THEN round(sum(coalesce(spend, 0) + coalesce(spend_from_items, 0)), 6)  -- to the millionth
        END AS spend
    FROM normalised
    GROUP BY user_id
),

ranked AS (
    SELECT
        user_id,
        dimension,
        value,
        score,
        spend,
        row_number() OVER (
            PARTITION BY user_id, dimension
            -- queries rank by how often they were searched, the rest by affinity; scores compare
            -- as log2 rounded to 9 places, so float noise from summation order never reorders
            -- equal ones; then recency, then name
            ORDER BY
                CASE
                    WHEN dimension = 'query' THEN events
                    WHEN score > 0 THEN round(log2(score), 9)
                    ELSE -1e300
                END DESC,
                last_day DESC,
                value
        ) AS rank
    FROM per_value
)

SELECT
    v.user_id,
    max(r.reference_day) AS reference_day,
    max(r.half_life_days) AS half_life_days,
    max(CASE WHEN v.dimension = 'category' AND v.rank = 1 AND v.score > 0 THEN v.value END) AS top_category_1,
    max(CASE WHEN v.dimension = 'category' AND v.rank = 1 AND v.score > 0 THEN v.score END) AS top_category_1_score,
    max(CASE WHEN v.dimension = 'category' AND v.rank = 1 AND v.score > 0 THEN coalesce(v.spend, 0) END) AS top_category_1_spend,
    max(CASE WHEN v.dimension = 'category' AND v.rank = 2 AND v.score > 0 THEN v.value END) AS top_category_2,
    max(CASE WHEN v.dimension = 'category' AND v.rank = 2 AND v.score > 0 THEN v.score END) AS top_category_2_score,
    max(CASE WHEN v.dimension = 'category' AND v.rank = 2 AND v.score > 0 THEN coalesce(v.spend, 0) END) AS top_category_2_spend,
    max(CASE WHEN v.dimension = 'category' AND v.rank = 3 AND v.score > 0 THEN v.value END) AS top_category_3,
    max(CASE WHEN v.dimension = 'category' AND v.rank = 3 AND v.score > 0 THEN v.score END) AS top_category_3_score,
    max(CASE WHEN v.dimension = 'category' AND v.rank = 3 AND v.score > 0 THEN coalesce(v.spend, 0) END) AS top_category_3_spend,
    max(CASE WHEN v.dimension = 'brand' AND v.rank = 1 AND v.score > 0 THEN v.value END) AS top_brand_1,
    max(CASE WHEN v.dimension = 'brand' AND v.rank = 1 AND v.score > 0 THEN v.score END) AS top_brand_1_score,
    max(CASE WHEN v.dimension = 'brand' AND v.rank = 2 AND v.score > 0 THEN v.value END) AS top_brand_2,
    max(CASE WHEN v.dimension = 'brand' AND v.rank = 2 AND v.score > 0 THEN v.score END) AS top_brand_2_score,
    max(CASE WHEN v.dimension = 'brand' AND v.rank = 3 AND v.score > 0 THEN v.value END) AS top_brand_3,
    max(CASE WHEN v.dimension = 'brand' AND v.rank = 3 AND v.score > 0 THEN v.score END) AS top_brand_3_score,
    max(CASE WHEN v.dimension = 'query' AND v.rank = 1 THEN v.value END) AS top_search_term_1,
    max(CASE WHEN v.dimension = 'query' AND v.rank = 2 THEN v.value END) AS top_search_term_2,
    max(CASE WHEN v.dimension = 'query' AND v.rank = 3 THEN v.value END) AS top_search_term_3,
    -- every value counts here, those without affinity too (a category only searched in)
    count(*) FILTER (WHERE v.dimension = 'category') AS categories_engaged,
    count(*) FILTER (WHERE v.dimension = 'brand') AS brands_engaged,
    count(*) FILTER (WHERE v.dimension = 'query') AS search_terms_used,
    max(CASE WHEN v.dimension = 'user' THEN v.spend END) AS spend
FROM ranked AS v
CROSS JOIN rules AS r
GROUP BY v.user_id
