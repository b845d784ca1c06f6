-- kind: table
-- grain: user_id
-- tags: audience, serving
-- description: Ad audiences "category X affinity > 0.6", for every category X at once: users whose top category holds more than 60% of the affinity of their top 3 categories (time-decayed, see preference_features). Select one category's audience with WHERE category = 'X'; a user is in at most one.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   as_of: the as-of time of the profile the audience was drawn from
--   category: the category the user leans to (top_category_1)
--   affinity_share: that category's share of the user's top-3 category affinity, 0.6-1
WITH rules AS (
    SELECT 0.6 AS min_share
),

shares AS (
    SELECT
        user_id,
        as_of,
        top_category_1 AS category,
        -- rounded, so float noise from summation order never moves a user across the threshold
        round(
            top_category_1_affinity
                / (top_category_1_affinity + coalesce(top_category_2_affinity, 0) + coalesce(top_category_3_affinity, 0)),
            9
        ) AS affinity_share
    FROM user_profile
    WHERE top_category_1 IS NOT NULL AND top_category_1_affinity > 0
)

SELECT s.user_id, s.as_of, s.category, s.affinity_share
FROM shares AS s
CROSS JOIN rules AS r
WHERE s.affinity_share > r.min_share
