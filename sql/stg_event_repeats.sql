-- kind: incremental_by_time
-- time_column: day
-- lookback: 0
-- grain: user_id, ts, event_type, item_id, category_id, category_path, brand, price, quantity, amount, session_id, query
-- tags: cleaning, events, quality
-- description: Exact repeat events (equal in every canonical column; the batch does not count; on a user-day whose every event is at midnight exactly, sent as a date without a time, equal lines are separate events, never repeats), as the distinct events of every (user, time) moment at which some event arrived more than once. Readers of raw_events take these rows instead of the raw rows of those moments, so each event counts once; copies says how often each arrived.
-- columns:
--   user_id: pseudonymous user id
--   ts: the moment (shop time)
--   day: calendar day of the moment (shop time)
--   event_type: event type
--   item_id: item id as sent
--   category_id: category id as sent
--   category_path: category path as sent
--   brand: brand as sent
--   price: unit price as sent
--   quantity: quantity as sent
--   amount: amount as sent
--   session_id: session id as sent
--   query: search query as sent
--   copies: how many raw rows carried this event (1 for a distinct event that merely shares the moment)
WITH repeated AS (
    -- A hash of the whole row finds the repeats cheaply; the GROUP BY below then compares the
    -- rows of those moments column by column, so a hash collision cannot merge two events.
    SELECT hash(user_id, event_type, ts, item_id, category_id, category_path, brand, price, quantity, amount, session_id, query) AS row_hash
    FROM raw_events
    GROUP BY 1
    HAVING count(*) > 1
),

repeated_moments AS (
    SELECT DISTINCT user_id, ts
    FROM raw_events
    WHERE hash(user_id, event_type, ts, item_id, category_id, category_path, brand, price, quantity, amount, session_id, query)
        IN (SELECT row_hash FROM repeated)
),

dated_days AS (
    -- A user-day whose every event is at midnight exactly was sent as a date without a time of
    -- day (a date-only feed: CDNOW, H&M). A date cannot tell two events apart, so its equal
    -- lines (two orders of one size, a line per unit bought) are separate events, never
    -- repeats. A timed day keeps its repeats at midnight: one event of another time decides.
    SELECT m.user_id, CAST(m.ts AS DATE) AS day
    FROM repeated_moments AS m
    WHERE CAST(m.ts AS TIME) = TIME '00:00:00'
        AND NOT EXISTS (
            SELECT 1
            FROM raw_events AS e
            WHERE e.user_id = m.user_id
                AND CAST(e.ts AS DATE) = CAST(m.ts AS DATE)
                AND CAST(e.ts AS TIME) <> TIME '00:00:00'
        )
),

moments AS (
    SELECT m.user_id, m.ts
    FROM repeated_moments AS m
    LEFT JOIN dated_days AS d ON d.user_id = m.user_id AND d.day = CAST(m.ts AS DATE)
    WHERE d.user_id IS NULL
)

SELECT
    e.user_id,
    e.ts,
    CAST(e.ts AS DATE) AS day,
    e.event_type,
    e.item_id,
    e.category_id,
    e.category_path,
    e.brand,
    e.price,
    e.quantity,
    e.amount,
    e.session_id,
    e.query,
    count(*) AS copies
FROM raw_events AS e
INNER JOIN moments AS m ON m.user_id = e.user_id AND m.ts = e.ts
GROUP BY
    e.user_id, e.ts, e.event_type, e.item_id, e.category_id, e.category_path, e.brand, e.price,
    e.quantity, e.amount, e.session_id, e.query
