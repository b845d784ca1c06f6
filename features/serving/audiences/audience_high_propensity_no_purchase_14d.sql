-- kind: table
-- grain: user_id
-- tags: audience, serving
-- description: Campaign audience "high propensity, no purchase in 14 days": the users the purchase_propensity model ranks in its top two deciles (user_scores, through the profile's p_purchase_30d_decile) who have not bought in the last 14 days, or never. Where the model could not score (too little history: p_purchase_30d is NULL), purchase intent this week stands in: an add-to-cart or favourite in the last 7 days, on at least 2 active days. `basis` says which rule admitted the user.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   as_of: the as-of time of the profile the audience was drawn from
--   basis: 'score' (top deciles of purchase_propensity) or 'intent' (no score; carts or favourites this week)
--   p_purchase_30d: the model's purchase probability; NULL when not scored
--   p_purchase_30d_decile: its decile, 1 = the 10% most likely buyers
--   carts_7d: add-to-cart events in the last 7 days
--   favs_7d: add-to-favourites events in the last 7 days
--   days_since_last_purchase: days since the last purchase day; NULL when the user never bought
WITH rules AS (
    SELECT 2 AS top_deciles, 14 AS no_purchase_days, 2 AS min_active_days_7d
),

judged AS (
    SELECT
        p.*,
        CASE
            WHEN p.p_purchase_30d_decile IS NOT NULL THEN
                CASE WHEN p.p_purchase_30d_decile <= r.top_deciles THEN 'score' END
            WHEN (p.carts_7d > 0 OR p.favs_7d > 0) AND p.active_days_7d >= r.min_active_days_7d THEN 'intent'
        END AS basis
    FROM user_profile AS p
    CROSS JOIN rules AS r
    WHERE p.days_since_last_purchase IS NULL OR p.days_since_last_purchase >= r.no_purchase_days  -- 14 days: the as-of day and the 13 before
)

SELECT
    user_id,
    as_of,
    basis,
    p_purchase_30d,
    p_purchase_30d_decile,
    carts_7d,
    favs_7d,
    days_since_last_purchase
FROM judged
WHERE basis IS NOT NULL
