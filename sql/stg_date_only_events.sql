-- kind: incremental_by_time
-- time_column: day
-- lookback: 0
-- grain: user_id, day, event_type
-- tags: cleaning, events
-- description: A user's events of one type on one day that are all at midnight exactly, as sent: those were sent as dates, without a time of day (CDNOW's and H&M's purchase files, an orders export beside a timed clickstream). The rule lives here and only here. Their equal lines are separate events (two orders of one size, a line per unit bought), never exact repeats (stg_event_repeats); they count for the day's bot limit, not a minute's (stg_bot_bursts); they state no hour and start no session of their own unless they carry a session_id (int_user_day: a day with nothing else is one session of 0 seconds, or one per session id). One event of the type at another time of that day makes them timed events at midnight. A timed feed's lone event of a type at exactly 00:00:00 reads as sent as a date too (about one line in 86,400 of a clickstream timed to the second): it loses its hour and session start, and equal copies of it count as separate events.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   day: calendar day the events were sent for (shop time)
--   event_type: event type
--   lines: raw lines of that type on that day, every one at midnight exactly
WITH at_midnight AS (
    -- only a group with a line at midnight can qualify: in a timed feed, a handful of lines
    SELECT user_id, CAST(ts AS DATE) AS day, event_type, count(*) AS lines
    FROM raw_events
    WHERE CAST(ts AS TIME) = TIME '00:00:00'
    GROUP BY user_id, CAST(ts AS DATE), event_type
)

SELECT m.user_id, m.day, m.event_type, m.lines
FROM at_midnight AS m
WHERE NOT EXISTS (
    SELECT 1
    FROM raw_events AS e
    WHERE e.user_id = m.user_id
        AND e.event_type = m.event_type
        AND CAST(e.ts AS DATE) = m.day
        AND CAST(e.ts AS TIME) <> TIME '00:00:00'
)
