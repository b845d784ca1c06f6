-- kind: incremental_by_time
-- time_column: day
-- lookback: 0
-- grain: user_id, ts, event_type, item_id, category_id, category_path, brand, price, quantity, amount, session_id, query
-- tags: cleaning, events, quality
-- description: Exact repeat events (equal in every canonical column; the batch does not count; equal lines sent as dates, without a time of day (stg_date_only_events), are separate events, never repeats; equal purchase lines of one file are separate units or orders, and only copies of them from other files are repeats, unless their time has a fraction of a second: an event stream's stamp, whose equal lines are repeats), as the distinct timed events of every (user, time) moment at which some event arrived more than it counts. Readers of raw_events take these rows, each repeated `events` times, instead of the raw rows of their (user, time, event type), so each event counts once; copies says how often each arrived.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
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
--   events: how many events those rows stand for: 1, except for purchases timed to the whole second, whose equal lines in one file are separate units or orders (the most any one file sent; the same line in another file is a re-export)
WITH shared_moments AS (
    -- Only a moment (user, time) holding more than one raw line can hold a repeat. Grouping on
    -- those two columns is cheaper than on the whole row, and few moments qualify.
    SELECT user_id, ts
    FROM raw_events
    GROUP BY user_id, ts
    HAVING count(*) > 1
),

per_file AS (
    -- the distinct events of those moments, compared column by column, per file (batch)
    SELECT
        e.user_id, e.ts, e.event_type, e.item_id, e.category_id, e.category_path, e.brand,
        e.price, e.quantity, e.amount, e.session_id, e.query,
        count(*) AS copies
    FROM raw_events AS e
    INNER JOIN shared_moments AS m ON m.user_id = e.user_id AND m.ts = e.ts
    GROUP BY
        e.user_id, e.ts, e.event_type, e.item_id, e.category_id, e.category_path, e.brand,
        e.price, e.quantity, e.amount, e.session_id, e.query, e._batch_id
),

lines AS (
    -- A purchase is a payment, and an orders export writes one line per unit or order: equal
    -- purchase lines of one file are that many events. The same line in several files is a
    -- re-export, so a purchase line stands for as many events as the file that sent it most
    -- often; any other equal lines are one event. A time with a fraction of a second is an
    -- event stream's (GA4's microseconds): two equal purchase lines there are one purchase sent
    -- twice (helper-51: BigQuery's events_* read the intraday table's copy of a day too).
    SELECT
        user_id, ts, event_type, item_id, category_id, category_path, brand,
        price, quantity, amount, session_id, query,
        sum(copies) AS copies,
        CASE WHEN event_type = 'purchase' AND ts = date_trunc('second', ts) THEN max(copies) ELSE 1 END AS events
    FROM per_file
    GROUP BY
        user_id, ts, event_type, item_id, category_id, category_path, brand,
        price, quantity, amount, session_id, query
),

timed_lines AS (
    -- Equal lines sent as dates (stg_date_only_events) are separate events, never repeats: a
    -- date cannot tell two orders of one size apart. They stay out of this table, so readers
    -- keep every raw copy of them, even at a moment where a timed event repeats.
    SELECT l.*
    FROM lines AS l
    WHERE NOT EXISTS (
        SELECT 1
        FROM stg_date_only_events AS d
        WHERE d.user_id = l.user_id
            AND d.day = CAST(l.ts AS DATE)
            AND d.event_type = l.event_type
    )
),

moments AS (
    -- the moments holding a repeat
    SELECT DISTINCT user_id, ts
    FROM timed_lines
    WHERE copies > events
)

SELECT
    l.user_id,
    l.ts,
    CAST(l.ts AS DATE) AS day,
    l.event_type,
    l.item_id,
    l.category_id,
    l.category_path,
    l.brand,
    l.price,
    l.quantity,
    l.amount,
    l.session_id,
    l.query,
    l.copies,
    CAST(l.events AS BIGINT) AS events
FROM timed_lines AS l
INNER JOIN moments AS m ON m.user_id = l.user_id AND m.ts = l.ts
