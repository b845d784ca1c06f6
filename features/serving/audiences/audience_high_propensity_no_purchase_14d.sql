-- kind: table
-- grain: user_id
-- tags: audience, serving
-- description: Campaign audience "high propensity, no purchase in 14 days": shoppers showing purchase intent this week (an add-to-cart or favourite in the last 7 days, on at least 2 active days) who have not bought in the last 14 days (or never). Propensity here comes from profile features, not from user_scores: user_scores is written by the model layer outside the build graph, so no model can read it yet; when the profile carries the purchase score, replace the intent rule with a score threshold.
-- columns:
--   user_id: pseudonymous user id
--   as_of: the as-of time of the profile the audience was drawn from
--   carts_7d: add-to-cart events in the last 7 days
--   favs_7d: add-to-favourites events in the last 7 days
--   active_days_7d: days with an event in the last 7 days
--   days_since_last_purchase: days since the last purchase day; NULL when the user never bought
WITH rules AS (
    SELECT 14 AS no_purchase_days, 2 AS min_active_days_7d
)

SELECT
    p.user_id,
    p.as_of,
    p.carts_7d,
    p.favs_7d,
    p.active_days_7d,
    p.days_since_last_purchase
FROM user_profile AS p
CROSS JOIN rules AS r
WHERE (p.carts_7d > 0 OR p.favs_7d > 0)
  AND p.active_days_7d >= r.min_active_days_7d
  AND (p.days_since_last_purchase IS NULL OR p.days_since_last_purchase > r.no_purchase_days)
