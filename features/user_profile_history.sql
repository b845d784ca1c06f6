-- kind: scd2
-- unique_key: user_id
-- track_columns: rfm_segment, lifecycle_stage, top_category, loyalty_band
-- grain: user_id, valid_from
-- tags: profile, history
-- description: How each user's profile moved: SCD type 2 history of its slowly changing parts. A new row opens whenever one of the tracked columns changes at a build; valid_from and valid_to are build as-of times, is_current marks the open row. A row records a change of any tracked column, and a user's first row is no change: "segment changes last month" are rows with valid_from >= <a month ago> whose rfm_segment differs from the user's previous row (lag(rfm_segment) OVER (PARTITION BY user_id ORDER BY valid_from), not NULL). A warehouse loaded at once starts with one row per user, stamped with that build's as-of (docs/models.md: backfilling).
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   rfm_segment: RFM segment (see rfm_features)
--   lifecycle_stage: lifecycle stage (see sentiment_features)
--   top_category: the category with the highest affinity (top_category_1 of preference_features)
--   loyalty_band: loyalty band (see sentiment_features)
--   valid_from: as-of of the build that first saw these values
--   valid_to: as-of of the build that saw them change; NULL while current
--   is_current: TRUE for the row that holds now
SELECT
    user_id,
    rfm_segment,
    lifecycle_stage,
    top_category_1 AS top_category,
    loyalty_band
FROM user_profile
