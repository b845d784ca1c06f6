-- kind: incremental_by_time
-- time_column: day
-- lookback: 0
-- grain: user_id, day
-- tags: cleaning, events, quality
-- description: User-days dropped as bot-like bursts: more than 300 browsing events (views, carts, favs, searches) in one calendar minute or more than 5000 in one day (after removing exact repeats; every line sent as a date without a time of day, stg_date_only_events, counts, for the day limit only). Purchases are payments, not clicks: they never count toward a limit, and stg_events keeps them when it leaves the rest of a flagged user-day out (a wholesale order of 500 lines is one minute of purchases, not a bot). A day with at least one purchase line per 100 browsing events is a buyer's (a reseller's, a company account's), not a scraper's: the day limit does not apply to it, the minute limit does (helper-83: a reseller buying 150 times a day lost all its browsing). This table says which user-days and why.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   day: calendar day of the burst (shop time)
--   events: browsing events (views, carts, favs, searches) the user had that day, exact repeats counted once; purchases do not count
--   max_events_per_minute: most browsing events in one calendar minute that day (events sent as dates have no minute: 0 when all were)
--   purchases: purchases the user made that day, as stg_events counts them (equal lines of one file count each, a copy in another file does not; equal lines timed to a fraction of a second are one purchase; lines sent as dates all count)
--   reason: which limit the user-day broke, with the numbers
WITH rules AS (
    -- The bot limits live here, and only here.
    SELECT
        300 AS max_events_per_minute,
        5000 AS max_events_per_day,
        0.01 AS buyer_purchases_per_event  -- at least this many purchase lines per browsing event: no day limit
),

-- Raw rows per user and hour bound the deduplicated counts from above, and a calendar minute
-- lies within one hour: only user-hours over a limit can hold a burst. Deduplicating just those
-- few keeps this check cheap.
hour_counts AS (
    SELECT
        user_id,
        CAST(ts AS DATE) AS day,
        date_trunc('hour', ts) AS hour,
        count(*) AS raw_events
    FROM raw_events
    WHERE event_type <> 'purchase'  -- payments, not clicks: never a burst
    GROUP BY user_id, CAST(ts AS DATE), date_trunc('hour', ts)
),

candidate_days AS (
    SELECT h.user_id, h.day
    FROM hour_counts AS h
    CROSS JOIN rules AS r
    GROUP BY h.user_id, h.day, r.max_events_per_minute, r.max_events_per_day
    HAVING max(h.raw_events) > r.max_events_per_minute OR sum(h.raw_events) > r.max_events_per_day
),

candidate_events AS (
    -- Each event once, as stg_events counts them: exact repeats once, but every line sent as a
    -- date (stg_date_only_events), whose equal lines are separate events.
    SELECT
        e.user_id,
        e.ts,
        d.user_id IS NOT NULL AS date_only,
        CASE WHEN d.user_id IS NOT NULL THEN count(*) ELSE 1 END AS events
    FROM raw_events AS e
    INNER JOIN candidate_days AS c ON c.user_id = e.user_id AND c.day = CAST(e.ts AS DATE)
    LEFT JOIN stg_date_only_events AS d
        ON d.user_id = e.user_id AND d.day = c.day AND d.event_type = e.event_type
    WHERE e.event_type <> 'purchase'
    GROUP BY
        e.user_id, e.event_type, e.ts, e.item_id, e.category_id, e.category_path, e.brand,
        e.price, e.quantity, e.amount, e.session_id, e.query, d.user_id
),

per_minute AS (
    -- a date has no minutes: events sent as dates count for the day limit only
    SELECT
        user_id,
        CAST(ts AS DATE) AS day,
        CASE WHEN NOT date_only THEN date_trunc('minute', ts) END AS minute,
        sum(events) AS events
    FROM candidate_events
    GROUP BY user_id, CAST(ts AS DATE), CASE WHEN NOT date_only THEN date_trunc('minute', ts) END
),

day_purchases AS (
    -- purchases as stg_events counts them (stg_event_repeats' rule): equal lines of one file are
    -- that many (units of an order) and the same lines in another file add nothing (helper-86: a
    -- re-sent copy of a day's purchases made a bot's day a buyer's), except lines timed to a
    -- fraction of a second, an event stream's, whose equal lines are one purchase (helper-89),
    -- and lines sent as dates (stg_date_only_events), every one of which counts
    SELECT user_id, day, sum(events) AS purchases
    FROM (
        SELECT
            user_id,
            day,
            CASE
                WHEN date_only THEN sum(copies)
                WHEN ts = date_trunc('second', ts) THEN max(copies)
                ELSE 1
            END AS events
        FROM (
            SELECT
                e.user_id, c.day, e.ts, e.item_id, e.category_id, e.category_path, e.brand,
                e.price, e.quantity, e.amount, e.session_id, e.query, e._batch_id,
                d.user_id IS NOT NULL AS date_only,
                count(*) AS copies
            FROM raw_events AS e
            INNER JOIN candidate_days AS c ON c.user_id = e.user_id AND c.day = CAST(e.ts AS DATE)
            LEFT JOIN stg_date_only_events AS d
                ON d.user_id = e.user_id AND d.day = c.day AND d.event_type = e.event_type
            WHERE e.event_type = 'purchase'
            GROUP BY
                e.user_id, c.day, e.ts, e.item_id, e.category_id, e.category_path, e.brand,
                e.price, e.quantity, e.amount, e.session_id, e.query, e._batch_id, d.user_id
        ) AS per_file
        GROUP BY
            user_id, day, ts, item_id, category_id, category_path, brand, price, quantity,
            amount, session_id, query, date_only
    ) AS lines
    GROUP BY user_id, day
),

per_day AS (
    SELECT
        user_id,
        day,
        CAST(sum(events) AS BIGINT) AS events,
        coalesce(CAST(max(events) FILTER (WHERE minute IS NOT NULL) AS BIGINT), 0) AS max_events_per_minute
    FROM per_minute
    GROUP BY user_id, day
)

SELECT
    d.user_id,
    d.day,
    d.events,
    d.max_events_per_minute,
    CAST(coalesce(p.purchases, 0) AS BIGINT) AS purchases,
    CASE
        WHEN d.max_events_per_minute > r.max_events_per_minute
            THEN CAST(d.max_events_per_minute AS VARCHAR) || ' events in one minute (limit '
                || CAST(r.max_events_per_minute AS VARCHAR) || ')'
        ELSE CAST(d.events AS VARCHAR) || ' events in one day (limit '
            || CAST(r.max_events_per_day AS VARCHAR) || ') and ' || CAST(coalesce(p.purchases, 0) AS VARCHAR)
            || ' purchase(s), fewer than 1 per ' || CAST(CAST(1 / r.buyer_purchases_per_event AS INTEGER) AS VARCHAR)
    END AS reason
FROM per_day AS d
CROSS JOIN rules AS r
LEFT JOIN day_purchases AS p ON p.user_id = d.user_id AND p.day = d.day
WHERE d.max_events_per_minute > r.max_events_per_minute
    OR (d.events > r.max_events_per_day AND coalesce(p.purchases, 0) < d.events * r.buyer_purchases_per_event)
