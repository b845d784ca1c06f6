-- kind: table
-- grain: user_id
-- tags: integration, users, basic
-- description: Every user the shop knows, once: registered users (stg_users), users seen only in events and users seen only in feedback. A user whose every event was bot-like browsing (stg_bot_bursts: a scraper's id, most likely) has no row; the build's line says how many. The basic-information dimension of the profile.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   is_registered: TRUE when the user is in the users feed and registered by the as-of (a signup time after it: FALSE, and the users feed's attributes NULL: the shop did not know them yet)
--   has_events: TRUE when the user has at least one (cleaned) event up to the as-of
--   has_feedback: TRUE when the user left at least one piece of feedback up to the as-of
--   bot_like_days: days whose browsing was left out as a bot-like burst (stg_bot_bursts) up to the as-of; that browsing counts nowhere else (not in activity, first_seen_day or tenure), the day's purchases do; 0 for most users
--   gender: gender, lower case, with male/man and ISO 5218's 1 as m, female/woman and 2 as f, any other value as sent (lower case: x, d, diverse); NULL when unknown (0 or 9) or not registered by the as-of
--   birth_year: year of birth; NULL when unknown, outside 1900..2030, or not registered by the as-of
--   age: as-of year minus birth year (the birthday is not known: a user born in December 1990 counts 27 all through 2017); NULL when the birth year is NULL or gives an age outside 0..120
--   city: city; NULL when unknown or not registered by the as-of
--   region: region or state; NULL when unknown or not registered by the as-of
--   signup_day: registration day; NULL when unknown or after the as-of (users who registered after the as-of and did nothing before it are left out)
--   first_seen_day: earliest of registration, first event and first feedback; NULL for a registered user without a signup time, events or feedback
--   last_seen_day: latest day with an event or feedback; NULL for registered users who never acted
--   first_active_day: first day with an event; NULL without events
--   last_active_day: last day with an event; NULL without events
WITH feedback_users AS (
    SELECT user_id, min(day) AS first_feedback_day, max(day) AS last_feedback_day
    FROM int_user_feedback_day
    GROUP BY user_id
),

bot_days AS (
    -- user-days whose browsing stg_events left out
    SELECT user_id, count(*) AS bot_like_days
    FROM stg_bot_bursts
    GROUP BY user_id
),

all_users AS (
    SELECT user_id FROM stg_users
    UNION
    SELECT user_id FROM int_user_lifetime
    UNION
    SELECT user_id FROM feedback_users
)

SELECT
    a.user_id,
    u.user_id IS NOT NULL AS is_registered,
    l.user_id IS NOT NULL AS has_events,
    f.user_id IS NOT NULL AS has_feedback,
    coalesce(b.bot_like_days, 0) AS bot_like_days,
    u.gender,
    u.birth_year,
    CASE WHEN year(t.as_of) - u.birth_year BETWEEN 0 AND 120 THEN year(t.as_of) - u.birth_year END AS age,
    u.city,
    u.region,
    CAST(u.signup_ts AS DATE) AS signup_day,
    least(CAST(u.signup_ts AS DATE), l.first_active_day, f.first_feedback_day) AS first_seen_day,
    greatest(l.last_active_day, f.last_feedback_day) AS last_seen_day,
    l.first_active_day,
    l.last_active_day
FROM all_users AS a
CROSS JOIN as_of_time AS t
-- registered by the as-of: a signup after it was not known then, nor what the feed says of the
-- user (point in time: a training set as of then must not see it)
LEFT JOIN stg_users AS u ON u.user_id = a.user_id AND coalesce(u.signup_ts <= t.as_of, TRUE)
LEFT JOIN int_user_lifetime AS l ON l.user_id = a.user_id
LEFT JOIN feedback_users AS f ON f.user_id = a.user_id
LEFT JOIN bot_days AS b ON b.user_id = a.user_id
-- Registered after the as-of and silent until then: not a user yet at that time.
WHERE u.user_id IS NOT NULL OR l.user_id IS NOT NULL OR f.user_id IS NOT NULL
