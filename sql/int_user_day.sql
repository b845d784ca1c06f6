-- kind: incremental_by_time
-- time_column: day
-- lookback: 0
-- grain: user_id, day
-- tags: behaviour, sessions
-- description: Per-user per-day rollup of cleaned events, read by every windowed behaviour feature and by int_user_lifetime instead of raw events. Cleaning: the events of stg_events (each event once, the browsing of bot-like user-days out), money is the amount, else unit price (from the event, else stg_items) x quantity, with quantity 1 for purchases that send none. Sessions: the shop's session_id, else a new session after more than 30 minutes without events; they end at midnight (shop time), so every day is built on its own. Events sent as dates (stg_date_only_events) state no hour and start no session of their own unless they carry a session_id (Diginetica's sessions of dated views); a day of nothing else is one session of 0 seconds, or one per session id.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   day: calendar day (shop time)
--   weekday: ISO day of the week, 1 = Monday .. 7 = Sunday
--   events: events that day (each once, as stg_events counts them)
--   views: product views
--   carts: add-to-cart events
--   favs: add-to-favourites events
--   purchases: purchase events (one per purchased line)
--   searches: search events
--   sessions: sessions that day
--   session_seconds: summed session durations, first to last event of each session (browse time), seconds to the millisecond
--   purchase_quantity: units bought (1 per purchase line without a quantity; a line of quantity 0 adds none); NULL without purchases
--   purchase_amount: money spent (amount, else price x quantity), rounded to the millionth; NULL when no purchase had an amount or a price
--   first_ts: first event of the day (shop time)
--   priced_events: views, carts and purchases whose unit price is known (from the event, else the item, else a purchase's amount over its quantity)
--   price_sum: sum of the unit prices of those events, rounded to the millionth (price_sum / priced_events = mean price looked at)
--   last_ts: last event of the day (shop time)
--   sessions_h00: sessions that started between 00:00 and 00:59 shop time (events sent as dates, stg_date_only_events, start none)
--   sessions_h01: sessions that started between 01:00 and 01:59 shop time
--   sessions_h02: sessions that started between 02:00 and 02:59 shop time
--   sessions_h03: sessions that started between 03:00 and 03:59 shop time
--   sessions_h04: sessions that started between 04:00 and 04:59 shop time
--   sessions_h05: sessions that started between 05:00 and 05:59 shop time
--   sessions_h06: sessions that started between 06:00 and 06:59 shop time
--   sessions_h07: sessions that started between 07:00 and 07:59 shop time
--   sessions_h08: sessions that started between 08:00 and 08:59 shop time
--   sessions_h09: sessions that started between 09:00 and 09:59 shop time
--   sessions_h10: sessions that started between 10:00 and 10:59 shop time
--   sessions_h11: sessions that started between 11:00 and 11:59 shop time
--   sessions_h12: sessions that started between 12:00 and 12:59 shop time
--   sessions_h13: sessions that started between 13:00 and 13:59 shop time
--   sessions_h14: sessions that started between 14:00 and 14:59 shop time
--   sessions_h15: sessions that started between 15:00 and 15:59 shop time
--   sessions_h16: sessions that started between 16:00 and 16:59 shop time
--   sessions_h17: sessions that started between 17:00 and 17:59 shop time
--   sessions_h18: sessions that started between 18:00 and 18:59 shop time
--   sessions_h19: sessions that started between 19:00 and 19:59 shop time
--   sessions_h20: sessions that started between 20:00 and 20:59 shop time
--   sessions_h21: sessions that started between 21:00 and 21:59 shop time
--   sessions_h22: sessions that started between 22:00 and 22:59 shop time
--   sessions_h23: sessions that started between 23:00 and 23:59 shop time
WITH rules AS (
    SELECT 1800 AS session_gap_seconds  -- without a session_id, 30 minutes of inactivity end a session
),

cleaned AS (
    -- each event once, the browsing of bot-like user-days out (stg_events)
    SELECT
        e.user_id,
        e.day,
        e.ts,
        e.event_type,
        e.session_id,
        -- the unit price: the event's, else the item's, else a purchase's amount per unit
        -- (helper-44: a point of sale sends the line's money and quantity alone)
        coalesce(
            e.price,
            i.price,
            CASE WHEN e.event_type = 'purchase' AND coalesce(e.quantity, 1) > 0
                THEN e.amount / coalesce(e.quantity, 1) END
        ) AS price,
        CASE WHEN e.event_type = 'purchase' THEN coalesce(e.quantity, 1) END AS quantity,
        -- money: the amount, else unit price x quantity (quantity 1 when not sent)
        CASE
            WHEN e.event_type = 'purchase'
                THEN coalesce(e.amount, coalesce(e.price, i.price) * coalesce(e.quantity, 1))
        END AS amount,
        -- sent as a date, without a time of day: no session of its own, no hour
        d.user_id IS NOT NULL AS date_only
    FROM stg_events AS e
    -- only an event without a price looks its item up (a NULL key probes nothing)
    LEFT JOIN stg_items AS i ON i.item_id = CASE WHEN e.price IS NULL THEN e.item_id END
    LEFT JOIN stg_date_only_events AS d
        ON d.user_id = e.user_id AND d.day = e.day AND d.event_type = e.event_type
),

pieces AS (
    -- One row per shop session, and per calendar minute of events without a session_id: gaps
    -- inside a minute are under a minute, so cutting between minute rows at long gaps gives
    -- exactly the sessions the events themselves would give. Events sent as dates without a
    -- session_id make pieces of their own; in a session they join its piece, which spans its
    -- timed events (a session of dated events alone: 0 seconds, no hour).
    SELECT
        user_id,
        day,
        session_id,
        bool_and(date_only) AS date_only,
        CASE WHEN session_id IS NULL AND NOT date_only THEN date_trunc('minute', ts) END AS minute,
        coalesce(min(CASE WHEN NOT date_only THEN ts END), min(ts)) AS first_ts,
        coalesce(max(CASE WHEN NOT date_only THEN ts END), max(ts)) AS last_ts,
        count(*) AS events,
        count(CASE WHEN event_type = 'view' THEN 1 END) AS views,
        count(CASE WHEN event_type = 'cart' THEN 1 END) AS carts,
        count(CASE WHEN event_type = 'fav' THEN 1 END) AS favs,
        count(CASE WHEN event_type = 'purchase' THEN 1 END) AS purchases,
        count(CASE WHEN event_type = 'search' THEN 1 END) AS searches,
        sum(quantity) AS purchase_quantity,
        sum(amount) AS purchase_amount,
        count(CASE WHEN event_type IN ('view', 'cart', 'purchase') THEN price END) AS priced_events,
        sum(CASE WHEN event_type IN ('view', 'cart', 'purchase') THEN price END) AS price_sum
    FROM cleaned
    GROUP BY
        user_id, day, session_id, session_id IS NULL AND date_only,
        CASE WHEN session_id IS NULL AND NOT date_only THEN date_trunc('minute', ts) END
),

cut AS (
    SELECT
        p.*,
        CASE
            WHEN p.session_id IS NOT NULL THEN 1
            WHEN p.date_only THEN 0
            WHEN p.gap_seconds IS NULL OR p.gap_seconds > r.session_gap_seconds THEN 1
            ELSE 0
        END AS starts_session,
        -- the hour the session it starts starts in: none for a piece that starts none, or whose
        -- events were all sent as dates (the 24 counters below read it, computed once here)
        CASE
            WHEN p.date_only THEN NULL
            WHEN p.session_id IS NOT NULL OR p.gap_seconds IS NULL OR p.gap_seconds > r.session_gap_seconds
                THEN hour(p.first_ts)
        END AS start_hour
    FROM (
        SELECT
            *,
            epoch(first_ts) - epoch(lag(last_ts) OVER (
                PARTITION BY user_id, day, session_id IS NULL, date_only ORDER BY first_ts, minute
            )) AS gap_seconds
        FROM pieces
    ) AS p
    CROSS JOIN rules AS r
)

SELECT
    user_id,
    day,
    isodow(day) AS weekday,
    CAST(sum(events) AS BIGINT) AS events,
    CAST(sum(views) AS BIGINT) AS views,
    CAST(sum(carts) AS BIGINT) AS carts,
    CAST(sum(favs) AS BIGINT) AS favs,
    CAST(sum(purchases) AS BIGINT) AS purchases,
    CAST(sum(searches) AS BIGINT) AS searches,
    -- a day of nothing but events sent as dates, none in a session, is one session (of 0 seconds)
    CAST(sum(starts_session) AS BIGINT)
        + CASE WHEN bool_and(date_only AND session_id IS NULL) THEN 1 ELSE 0 END AS sessions,
    -- a session lasts from its first to its last event: each piece's own span, plus the gaps
    -- between pieces of one session; to the millisecond (epoch differences of millisecond times
    -- came out as 95.0329999923706)
    round(
        sum(epoch(last_ts) - epoch(first_ts))
            + coalesce(sum(gap_seconds) FILTER (WHERE starts_session = 0 AND NOT date_only), 0),
        3
    ) AS session_seconds,
    CAST(sum(purchase_quantity) AS BIGINT) AS purchase_quantity,
    -- to the millionth: a parallel sum's last bits (699.0200000000001) are no money
    round(sum(purchase_amount), 6) AS purchase_amount,
    CAST(sum(priced_events) AS BIGINT) AS priced_events,
    round(sum(price_sum), 6) AS price_sum,  -- to the millionth, as the money
    min(first_ts) AS first_ts,
    max(last_ts) AS last_ts,
    count(CASE WHEN start_hour = 0 THEN 1 END) AS sessions_h00,
    count(CASE WHEN start_hour = 1 THEN 1 END) AS sessions_h01,
    count(CASE WHEN start_hour = 2 THEN 1 END) AS sessions_h02,
    count(CASE WHEN start_hour = 3 THEN 1 END) AS sessions_h03,
    count(CASE WHEN start_hour = 4 THEN 1 END) AS sessions_h04,
    count(CASE WHEN start_hour = 5 THEN 1 END) AS sessions_h05,
    count(CASE WHEN start_hour = 6 THEN 1 END) AS sessions_h06,
    count(CASE WHEN start_hour = 7 THEN 1 END) AS sessions_h07,
    count(CASE WHEN start_hour = 8 THEN 1 END) AS sessions_h08,
    count(CASE WHEN start_hour = 9 THEN 1 END) AS sessions_h09,
    count(CASE WHEN start_hour = 10 THEN 1 END) AS sessions_h10,
    count(CASE WHEN start_hour = 11 THEN 1 END) AS sessions_h11,
    count(CASE WHEN start_hour = 12 THEN 1 END) AS sessions_h12,
    count(CASE WHEN start_hour = 13 THEN 1 END) AS sessions_h13,
    count(CASE WHEN start_hour = 14 THEN 1 END) AS sessions_h14,
    count(CASE WHEN start_hour = 15 THEN 1 END) AS sessions_h15,
    count(CASE WHEN start_hour = 16 THEN 1 END) AS sessions_h16,
    count(CASE WHEN start_hour = 17 THEN 1 END) AS sessions_h17,
    count(CASE WHEN start_hour = 18 THEN 1 END) AS sessions_h18,
    count(CASE WHEN start_hour = 19 THEN 1 END) AS sessions_h19,
    count(CASE WHEN start_hour = 20 THEN 1 END) AS sessions_h20,
    count(CASE WHEN start_hour = 21 THEN 1 END) AS sessions_h21,
    count(CASE WHEN start_hour = 22 THEN 1 END) AS sessions_h22,
    count(CASE WHEN start_hour = 23 THEN 1 END) AS sessions_h23
FROM cut
GROUP BY user_id, day
