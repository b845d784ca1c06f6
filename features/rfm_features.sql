-- kind: table
-- grain: user_id
-- tags: rfm, features
-- description: RFM as of the build's as-of, one row per user of int_users, two ways. Modelling columns with the semantics of lifetimes.utils.summary_data_from_transaction_data (daily periods) for BG/NBD and Gamma-Gamma models; they are NULL for users who never purchased (lifetimes has no row for them). And segmentation: R, F and M scores 1-5 among purchasers and a named segment; 'prospect' for users who never purchased.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   as_of: the as-of time these features are stated at (shop time), the same as user_profile.as_of
--   rfm_frequency: purchase days minus one (repeat purchase days), lifetimes 'frequency'; NULL without purchases
--   rfm_recency_days: days from the first to the last purchase day, lifetimes 'recency'; NULL without purchases
--   rfm_age_days: days from the first purchase day to the as-of day, lifetimes 'T'; NULL without purchases
--   rfm_monetary_value: mean money spent per repeat purchase day (the first purchase day left out; money as in total_spend: the amount, else the event's or the catalogue's unit price x quantity, 0 when priced nowhere), lifetimes 'monetary_value', unrounded as lifetimes computes it; 0 with a single purchase day; NULL without purchases
--   purchase_days: days with at least one purchase (0 for non-purchasers)
--   days_since_last_purchase: days from the last purchase day to the as-of day; NULL without purchases
--   total_spend: money spent ever, in the shop's currency as sent (no conversion), rounded to the millionth: the amount, else the event's or the catalogue's unit price x quantity (a purchase without amount or price is valued at its item's newest catalogue price, stg_items, so a new price list revalues it); 0 when purchases are priced nowhere, NULL without purchases
--   r_score: recency score 1-5 among purchasers: ceil(5 x cumulative share of purchasers whose last purchase day is this day or earlier), so ties share the higher score (everyone who bought on the as-of day gets 5); NULL without purchases
--   f_score: frequency score 1-5 among purchasers: least(5, 1 + floor(5 x percent rank of purchase days)), so ties share the lower score (single-day buyers get 1; two purchase days give 1 + floor(5 x the share of the other purchasers with one purchase day): 5 in a young shop where over 80% of them bought once, 3 where 40-60% did). Like r_score and m_score it ranks the user among all purchasers, so it moves as other buyers buy: a user who did nothing can change score and segment, and user_profile_history records that change; NULL without purchases
--   m_score: monetary score 1-5 among purchasers by total spend, as f_score (without prices every purchaser gets 1); NULL without purchases
--   rfm_score: the three scores as text, e.g. '545'; NULL without purchases
--   rfm_segment: champions, loyal, new, potential loyalist, needs attention, at risk, hibernating or lost by R and F (the CASE in rfm_features.sql; docs/models.md lists the rules); 'prospect' without purchases. Its 'new' and 'at risk' are RFM ranks among all buyers, not lifecycle_stage's of the same names, which judge the user's own purchase cycle: so champions or loyal can be lifecycle 'churned' and lost can be lifecycle 'new'
WITH as_of AS (
    SELECT CAST(as_of AS DATE) AS as_of_day FROM as_of_time
),

purchasers AS (
    SELECT
        l.user_id,
        l.purchase_days,
        l.purchase_days - 1 AS rfm_frequency,
        date_diff('day', l.first_purchase_day, l.last_purchase_day) AS rfm_recency_days,
        date_diff('day', l.first_purchase_day, a.as_of_day) AS rfm_age_days,
        CASE
            WHEN l.purchase_days > 1
                THEN (coalesce(l.purchase_amount, 0) - l.first_purchase_day_amount) / (l.purchase_days - 1)
            ELSE 0
        END AS rfm_monetary_value,
        date_diff('day', l.last_purchase_day, a.as_of_day) AS days_since_last_purchase,
        coalesce(l.purchase_amount, 0) AS total_spend,
        l.last_purchase_day
    FROM int_user_lifetime AS l
    CROSS JOIN as_of AS a
    WHERE l.purchase_days > 0
),

scored AS (
    SELECT
        *,
        -- Ties: the big blocks of tied users sit at the good end for recency (bought on the
        -- as-of day) and at the poor end for frequency and money (one purchase day, little
        -- spend); each rule keeps such a block at its natural end.
        CAST(ceil(5 * cume_dist() OVER (ORDER BY last_purchase_day)) AS INTEGER) AS r_score,
        least(5, 1 + CAST(floor(5 * percent_rank() OVER (ORDER BY purchase_days)) AS INTEGER)) AS f_score,
        least(5, 1 + CAST(floor(5 * percent_rank() OVER (ORDER BY round(total_spend, 6))) AS INTEGER)) AS m_score
    FROM purchasers
)

SELECT
    u.user_id,
    t.as_of,
    s.rfm_frequency,
    s.rfm_recency_days,
    s.rfm_age_days,
    s.rfm_monetary_value,
    coalesce(s.purchase_days, 0) AS purchase_days,
    s.days_since_last_purchase,
    s.total_spend,
    s.r_score,
    s.f_score,
    s.m_score,
    CAST(s.r_score AS VARCHAR) || CAST(s.f_score AS VARCHAR) || CAST(s.m_score AS VARCHAR) AS rfm_score,
    CASE
        WHEN s.user_id IS NULL THEN 'prospect'
        WHEN s.r_score >= 4 AND s.f_score >= 4 THEN 'champions'
        WHEN s.r_score >= 3 AND s.f_score >= 3 THEN 'loyal'
        WHEN s.r_score >= 4 AND s.rfm_frequency = 0 THEN 'new'
        WHEN s.r_score >= 4 THEN 'potential loyalist'
        WHEN s.r_score = 3 THEN 'needs attention'
        WHEN s.f_score >= 3 THEN 'at risk'
        WHEN s.r_score = 2 THEN 'hibernating'
        ELSE 'lost'
    END AS rfm_segment
FROM int_users AS u
CROSS JOIN as_of_time AS t
LEFT JOIN scored AS s ON s.user_id = u.user_id
