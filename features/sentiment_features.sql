-- kind: table
-- grain: user_id
-- tags: sentiment, loyalty, features
-- description: Satisfaction and loyalty as of the build's as-of, one row per user of int_users: ratings and their trend, complaints, repeat purchasing, tenure, a 0-1 loyalty score with a band, and a lifecycle stage judged against the user's own purchase cycle. Every weight and threshold is in the rules below. Users without feedback get zero counts and NULL averages.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   as_of: the as-of time these features are stated at (shop time), the same as user_profile.as_of
--   feedback_count: feedback entries of any kind ever
--   ratings: ratings given (1-5 stars, on ratings and reviews)
--   avg_rating: mean rating; NULL without ratings
--   avg_rating_30d: mean rating over the as-of day and the 29 days before it; NULL without ratings then
--   rating_trend: mean rating of the last 30 days minus the mean before them (positive = improving); NULL unless both periods have ratings
--   complaints: complaints ever
--   complaints_90d: complaints over the as-of day and the 89 days before it
--   complaint_rate: complaints per purchase day (an order proxy; above 1 when the complaints outnumber the purchase days); NULL without purchases (loyalty_score then counts any complaint as a rate of 1); 0 for every buyer of a shop that sends no feedback, where complaints are unknown rather than absent
--   reviews: reviews written
--   likes: likes given
--   shares: shares
--   repeat_purchase_rate: share of purchase days that were repeat purchases, (purchase days - 1) / purchase days; NULL without purchases
--   tenure_days: days from first_seen_day (registration, first event or first feedback) to the as-of day
--   loyalty_score: 0-1: 0.35 repeat (repeat purchase days, purchase days - 1, over 4: 5+ purchase days = 1) + 0.25 purchase recency (halves every 30 days; 0 without purchases) + 0.2 tenure (a year = 1) + 0.2 satisfaction ((avg rating - 1) / 4, 0.5 without ratings, times 1 - complaint rate, at most 1; without purchases a complaint counts as a rate of 1)
--   loyalty_band: 'low' (< 0.4), 'medium' (< 0.7) or 'high'
--   purchase_cycle_days: the cycle lifecycle_stage is judged by: the user's mean days between purchase days (2+ purchase days), else the median of that over all such users, else 30; at least 7; NULL without purchases
--   lifecycle_stage: 'new' (one purchase day, the last at most 2 cycles ago), 'active' (last purchase at most 1.5 cycles ago), 'at risk' (at most 3 cycles), 'churned' (longer ago; a one-purchase-day user past 2 cycles is at risk or churned by the same bounds); 'prospect' without purchases
WITH rules AS (
    -- Loyalty weights, bands and lifecycle thresholds: stated here and only here.
    SELECT
        0.35 AS repeat_weight,
        0.25 AS recency_weight,
        0.20 AS tenure_weight,
        0.20 AS satisfaction_weight,
        4.0 AS repeat_days_for_full_score,
        30.0 AS recency_half_life_days,
        365.0 AS tenure_days_for_full_score,
        0.4 AS medium_band_from,
        0.7 AS high_band_from,
        30.0 AS default_cycle_days,
        7.0 AS min_cycle_days,
        2.0 AS new_within_cycles,
        1.5 AS active_within_cycles,
        3.0 AS at_risk_within_cycles
),

as_of AS (
    SELECT CAST(as_of AS DATE) AS as_of_day FROM as_of_time
),

feedback AS (
    SELECT
        f.user_id,
        CAST(sum(f.feedback) AS BIGINT) AS feedback_count,
        CAST(sum(f.ratings) AS BIGINT) AS ratings,
        CAST(sum(f.rating_sum) AS BIGINT) AS rating_sum,
        CAST(sum(f.ratings) FILTER (WHERE date_diff('day', f.day, a.as_of_day) < 30) AS BIGINT) AS ratings_30d,
        CAST(sum(f.rating_sum) FILTER (WHERE date_diff('day', f.day, a.as_of_day) < 30) AS BIGINT) AS rating_sum_30d,
        CAST(sum(f.ratings) FILTER (WHERE date_diff('day', f.day, a.as_of_day) >= 30) AS BIGINT) AS ratings_before,
        CAST(sum(f.rating_sum) FILTER (WHERE date_diff('day', f.day, a.as_of_day) >= 30) AS BIGINT) AS rating_sum_before,
        CAST(sum(f.complaints) AS BIGINT) AS complaints,
        CAST(coalesce(sum(f.complaints) FILTER (WHERE date_diff('day', f.day, a.as_of_day) < 90), 0) AS BIGINT) AS complaints_90d,
        CAST(sum(f.reviews) AS BIGINT) AS reviews,
        CAST(sum(f.likes) AS BIGINT) AS likes,
        CAST(sum(f.shares) AS BIGINT) AS shares
    FROM int_user_feedback_day AS f
    CROSS JOIN as_of AS a
    GROUP BY f.user_id
),

population_cycle AS (
    SELECT median(purchase_gap_mean_days) AS median_cycle_days
    FROM int_user_lifetime
    WHERE purchase_days >= 2
),

base AS (
    SELECT
        u.user_id,
        coalesce(f.feedback_count, 0) AS feedback_count,
        coalesce(f.ratings, 0) AS ratings,
        f.rating_sum / nullif(f.ratings, 0) AS avg_rating,
        f.rating_sum_30d / nullif(f.ratings_30d, 0) AS avg_rating_30d,
        f.rating_sum_before / nullif(f.ratings_before, 0) AS avg_rating_before,
        coalesce(f.complaints, 0) AS complaints,
        coalesce(f.complaints_90d, 0) AS complaints_90d,
        coalesce(f.reviews, 0) AS reviews,
        coalesce(f.likes, 0) AS likes,
        coalesce(f.shares, 0) AS shares,
        coalesce(l.purchase_days, 0) AS purchase_days,
        date_diff('day', l.last_purchase_day, a.as_of_day) AS days_since_last_purchase,
        date_diff('day', u.first_seen_day, a.as_of_day) AS tenure_days,
        CASE WHEN l.purchase_days > 0 THEN greatest(
            coalesce(l.purchase_gap_mean_days, p.median_cycle_days, r.default_cycle_days),
            r.min_cycle_days
        ) END AS purchase_cycle_days
    FROM int_users AS u
    CROSS JOIN as_of AS a
    CROSS JOIN rules AS r
    CROSS JOIN population_cycle AS p
    LEFT JOIN feedback AS f ON f.user_id = u.user_id
    LEFT JOIN int_user_lifetime AS l ON l.user_id = u.user_id
),

measured AS (
    SELECT
        b.*,
        b.complaints / nullif(b.purchase_days, 0) AS complaint_rate,
        (b.purchase_days - 1) / nullif(b.purchase_days, 0) AS repeat_purchase_rate,
        r.repeat_weight * least(greatest(b.purchase_days - 1, 0) / r.repeat_days_for_full_score, 1.0)
        + r.recency_weight * coalesce(power(0.5, b.days_since_last_purchase / r.recency_half_life_days), 0)
        + r.tenure_weight * least(coalesce(b.tenure_days, 0) / r.tenure_days_for_full_score, 1.0)
        + r.satisfaction_weight * coalesce((b.avg_rating - 1) / 4, 0.5)
            -- a complaint without a purchase is no satisfied customer (helper-52: it scored as none)
            * (1 - least(CASE WHEN b.purchase_days > 0 THEN b.complaints / b.purchase_days ELSE b.complaints END, 1.0)) AS loyalty_score
    FROM base AS b
    CROSS JOIN rules AS r
)

SELECT
    m.user_id,
    t.as_of,
    m.feedback_count,
    m.ratings,
    m.avg_rating,
    m.avg_rating_30d,
    m.avg_rating_30d - m.avg_rating_before AS rating_trend,
    m.complaints,
    m.complaints_90d,
    m.complaint_rate,
    m.reviews,
    m.likes,
    m.shares,
    m.repeat_purchase_rate,
    m.tenure_days,
    m.loyalty_score,
    CASE
        WHEN m.loyalty_score >= r.high_band_from THEN 'high'
        WHEN m.loyalty_score >= r.medium_band_from THEN 'medium'
        ELSE 'low'
    END AS loyalty_band,
    m.purchase_cycle_days,
    CASE
        WHEN m.purchase_days = 0 THEN 'prospect'
        WHEN m.purchase_days = 1 AND m.days_since_last_purchase <= r.new_within_cycles * m.purchase_cycle_days THEN 'new'
        WHEN m.days_since_last_purchase <= r.active_within_cycles * m.purchase_cycle_days THEN 'active'
        WHEN m.days_since_last_purchase <= r.at_risk_within_cycles * m.purchase_cycle_days THEN 'at risk'
        ELSE 'churned'
    END AS lifecycle_stage
FROM measured AS m
CROSS JOIN rules AS r
CROSS JOIN as_of_time AS t
