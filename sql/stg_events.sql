-- kind: ephemeral
-- tags: cleaning, events
-- description: The cleaned event stream every rollup reads: each event once and no bot-like browsing. Equal lines sent as dates (stg_date_only_events) are separate events and all stay; at a moment where some other line arrived more often than it counts, stg_event_repeats' distinct events, each as often as it counts, replace the raw rows of their type (equal purchase lines of one file timed to the whole second are separate units; a copy in another file adds nothing); the browsing events (views, carts, favs, searches) of user-days flagged in stg_bot_bursts are left out (they stay listed there, with the reason), their purchases stay. Ephemeral: never stored, inlined as a subquery into each reader, so an incremental reader still reads only its own slice of raw_events.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   event_type: event type
--   ts: event time (shop time)
--   day: calendar day of the event (shop time)
--   item_id: item id as sent
--   category_id: category id as sent
--   category_path: category path as sent
--   brand: brand as sent
--   price: unit price as sent
--   quantity: quantity as sent
--   amount: amount as sent
--   session_id: session id as sent
--   query: search query as sent
WITH once AS (
    SELECT
        e.user_id, e.event_type, e.ts, e.item_id, e.category_id, e.category_path, e.brand,
        e.price, e.quantity, e.amount, e.session_id, e.query
    FROM raw_events AS e
    LEFT JOIN stg_event_repeats AS r
        ON r.user_id = e.user_id AND r.ts = e.ts AND r.event_type = e.event_type
    WHERE r.user_id IS NULL
    UNION ALL
    -- a distinct event of a repeated moment, as many times as it counts (purchase lines of one
    -- file: one per unit or order)
    SELECT
        user_id, event_type, ts, item_id, category_id, category_path, brand,
        price, quantity, amount, session_id, query
    FROM (SELECT *, unnest(range(events)) AS nth FROM stg_event_repeats) AS r
)

SELECT
    o.user_id,
    o.event_type,
    o.ts,
    CAST(o.ts AS DATE) AS day,
    o.item_id,
    o.category_id,
    o.category_path,
    o.brand,
    o.price,
    o.quantity,
    o.amount,
    o.session_id,
    o.query
FROM once AS o
LEFT JOIN stg_bot_bursts AS b ON b.user_id = o.user_id AND b.day = CAST(o.ts AS DATE)
WHERE b.user_id IS NULL OR o.event_type = 'purchase'  -- a flagged day keeps its purchases: payments, not clicks
