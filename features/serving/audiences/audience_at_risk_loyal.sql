-- kind: table
-- grain: user_id
-- tags: audience, serving
-- description: Campaign audience "at-risk loyal customers": customers who used to buy often or are loyal (frequency score 4-5, or loyalty band medium or high) and are slipping away: lifecycle stage 'at risk' (late against their own purchase cycle), or RFM segment 'at risk' (recency in the lower scores among all buyers) unless their own cycle says they are still 'new' or 'active'. A win-back audience.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   as_of: the as-of time of the profile the audience was drawn from
--   rfm_segment: RFM segment
--   lifecycle_stage: lifecycle stage
--   loyalty_band: loyalty band
--   f_score: RFM frequency score 1-5
--   days_since_last_purchase: days since the last purchase day
SELECT
    user_id,
    as_of,
    rfm_segment,
    lifecycle_stage,
    loyalty_band,
    f_score,
    days_since_last_purchase
FROM user_profile
WHERE (lifecycle_stage = 'at risk' OR (rfm_segment = 'at risk' AND lifecycle_stage NOT IN ('new', 'active')))
  AND (f_score >= 4 OR loyalty_band IN ('medium', 'high'))
