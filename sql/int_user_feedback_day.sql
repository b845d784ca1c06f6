-- kind: incremental_by_time
-- time_column: day
-- lookback: 0
-- grain: user_id, day
-- tags: sentiment, feedback
-- description: Per-user per-day rollup of feedback (ratings, reviews, complaints, likes, comments, shares); ratings outside 1..5 are ignored. Equal lines of one file are separate entries (Olist: two reviews of one date, both 5 stars without a comment); the same line in several files is a re-export and counts as often as the file that sent it most often (repeats says how many lines that left out).
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   day: calendar day of the feedback (shop time)
--   feedback: feedback entries of any kind
--   ratings: entries with a rating from 1 to 5 (ratings and reviews with stars)
--   rating_sum: sum of those ratings
--   complaints: complaints
--   reviews: reviews
--   likes: likes
--   comments: comments
--   shares: shares
--   repeats: lines left out as copies, from other files, of lines already counted (a re-export)
WITH per_file AS (
    SELECT user_id, ts, kind, item_id, rating, text, count(*) AS copies
    FROM raw_feedback
    GROUP BY user_id, ts, kind, item_id, rating, text, _batch_id
),

deduped AS (
    -- an entry counts as often as the file that sent it most often
    SELECT user_id, ts, kind, rating, max(copies) AS entries, sum(copies) - max(copies) AS repeats
    FROM per_file
    GROUP BY user_id, ts, kind, item_id, rating, text
)

SELECT
    user_id,
    CAST(ts AS DATE) AS day,
    CAST(sum(entries) AS BIGINT) AS feedback,
    CAST(coalesce(sum(entries) FILTER (WHERE rating BETWEEN 1 AND 5), 0) AS BIGINT) AS ratings,
    coalesce(CAST(sum(rating * entries) FILTER (WHERE rating BETWEEN 1 AND 5) AS BIGINT), 0) AS rating_sum,
    CAST(coalesce(sum(entries) FILTER (WHERE kind = 'complaint'), 0) AS BIGINT) AS complaints,
    CAST(coalesce(sum(entries) FILTER (WHERE kind = 'review'), 0) AS BIGINT) AS reviews,
    CAST(coalesce(sum(entries) FILTER (WHERE kind = 'like'), 0) AS BIGINT) AS likes,
    CAST(coalesce(sum(entries) FILTER (WHERE kind = 'comment'), 0) AS BIGINT) AS comments,
    CAST(coalesce(sum(entries) FILTER (WHERE kind = 'share'), 0) AS BIGINT) AS shares,
    CAST(sum(repeats) AS BIGINT) AS repeats
FROM deduped
GROUP BY user_id, CAST(ts AS DATE)
