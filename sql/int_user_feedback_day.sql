-- kind: incremental_by_time
-- time_column: day
-- lookback: 0
-- grain: user_id, day
-- tags: sentiment, feedback
-- description: Per-user per-day rollup of feedback (ratings, reviews, complaints, likes, comments, shares); exact repeats count once and ratings outside 1..5 are ignored.
-- columns:
--   user_id: pseudonymous user id
--   day: calendar day of the feedback (shop time)
--   feedback: feedback entries of any kind
--   ratings: entries with a rating from 1 to 5 (ratings and reviews with stars)
--   rating_sum: sum of those ratings
--   complaints: complaints
--   reviews: reviews
--   likes: likes
--   comments: comments
--   shares: shares
WITH deduped AS (
    SELECT DISTINCT user_id, ts, kind, item_id, rating, text
    FROM raw_feedback
)

SELECT
    user_id,
    CAST(ts AS DATE) AS day,
    count(*) AS feedback,
    count(*) FILTER (WHERE rating BETWEEN 1 AND 5) AS ratings,
    coalesce(CAST(sum(rating) FILTER (WHERE rating BETWEEN 1 AND 5) AS BIGINT), 0) AS rating_sum,
    count(*) FILTER (WHERE kind = 'complaint') AS complaints,
    count(*) FILTER (WHERE kind = 'review') AS reviews,
    count(*) FILTER (WHERE kind = 'like') AS likes,
    count(*) FILTER (WHERE kind = 'comment') AS comments,
    count(*) FILTER (WHERE kind = 'share') AS shares
FROM deduped
GROUP BY user_id, CAST(ts AS DATE)
