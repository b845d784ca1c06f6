-- kind: incremental_by_key
-- unique_key: user_id
-- grain: user_id
-- tags: behaviour, rfm
-- description: Lifetime totals per user from the day rollup: activity span, counts, sessions, purchase days, spend, the purchase cycle, and sessions by hour of day and weekday. Depends on nothing but the user's own days, so a batch recomputes only the users it touched.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   first_active_day: first day with an event (shop time)
--   last_active_day: last day with an event (shop time)
--   active_days: days with at least one event
--   events: events
--   views: product views
--   carts: add-to-cart events
--   favs: add-to-favourites events
--   purchases: purchase events
--   searches: search events
--   sessions: sessions
--   session_seconds: summed session durations, seconds to the millisecond
--   priced_events: views, carts and purchases whose unit price is known
--   price_sum: sum of the unit prices of those events, rounded to the millionth
--   purchase_days: days with at least one purchase
--   first_purchase_day: first day with a purchase; NULL without purchases
--   last_purchase_day: last day with a purchase; NULL without purchases
--   purchase_quantity: units bought; 0 without purchases
--   purchase_amount: money spent, rounded to the millionth; NULL when no purchase had an amount or a price
--   first_purchase_day_amount: money spent on the first purchase day (0 when unpriced); NULL without purchases
--   purchase_gap_mean_days: mean days between consecutive purchase days; NULL with fewer than 2 purchase days
--   purchase_gap_std_days: sample standard deviation of those gaps; NULL with fewer than 3 purchase days
--   sessions_h00: sessions started between 00:00 and 00:59 shop time (events sent as dates start none)
--   sessions_h01: sessions started between 01:00 and 01:59 shop time
--   sessions_h02: sessions started between 02:00 and 02:59 shop time
--   sessions_h03: sessions started between 03:00 and 03:59 shop time
--   sessions_h04: sessions started between 04:00 and 04:59 shop time
--   sessions_h05: sessions started between 05:00 and 05:59 shop time
--   sessions_h06: sessions started between 06:00 and 06:59 shop time
--   sessions_h07: sessions started between 07:00 and 07:59 shop time
--   sessions_h08: sessions started between 08:00 and 08:59 shop time
--   sessions_h09: sessions started between 09:00 and 09:59 shop time
--   sessions_h10: sessions started between 10:00 and 10:59 shop time
--   sessions_h11: sessions started between 11:00 and 11:59 shop time
--   sessions_h12: sessions started between 12:00 and 12:59 shop time
--   sessions_h13: sessions started between 13:00 and 13:59 shop time
--   sessions_h14: sessions started between 14:00 and 14:59 shop time
--   sessions_h15: sessions started between 15:00 and 15:59 shop time
--   sessions_h16: sessions started between 16:00 and 16:59 shop time
--   sessions_h17: sessions started between 17:00 and 17:59 shop time
--   sessions_h18: sessions started between 18:00 and 18:59 shop time
--   sessions_h19: sessions started between 19:00 and 19:59 shop time
--   sessions_h20: sessions started between 20:00 and 20:59 shop time
--   sessions_h21: sessions started between 21:00 and 21:59 shop time
--   sessions_h22: sessions started between 22:00 and 22:59 shop time
--   sessions_h23: sessions started between 23:00 and 23:59 shop time
--   sessions_mon: sessions on Mondays
--   sessions_tue: sessions on Tuesdays
--   sessions_wed: sessions on Wednesdays
--   sessions_thu: sessions on Thursdays
--   sessions_fri: sessions on Fridays
--   sessions_sat: sessions on Saturdays
--   sessions_sun: sessions on Sundays
WITH purchase_days AS (
    SELECT
        user_id,
        day,
        purchase_amount,
        date_diff('day', lag(day) OVER (PARTITION BY user_id ORDER BY day), day) AS gap_days,
        row_number() OVER (PARTITION BY user_id ORDER BY day) AS nth
    FROM int_user_day
    WHERE purchases > 0
),

purchase_stats AS (
    SELECT
        user_id,
        count(*) AS purchase_days,
        min(day) AS first_purchase_day,
        max(day) AS last_purchase_day,
        sum(coalesce(purchase_amount, 0)) FILTER (WHERE nth = 1) AS first_purchase_day_amount,
        avg(gap_days) AS purchase_gap_mean_days,
        stddev_samp(gap_days) AS purchase_gap_std_days
    FROM purchase_days
    GROUP BY user_id
),

activity AS (
    SELECT
        user_id,
        min(day) AS first_active_day,
        max(day) AS last_active_day,
        count(*) AS active_days,
        CAST(sum(events) AS BIGINT) AS events,
        CAST(sum(views) AS BIGINT) AS views,
        CAST(sum(carts) AS BIGINT) AS carts,
        CAST(sum(favs) AS BIGINT) AS favs,
        CAST(sum(purchases) AS BIGINT) AS purchases,
        CAST(sum(searches) AS BIGINT) AS searches,
        CAST(sum(sessions) AS BIGINT) AS sessions,
        round(sum(session_seconds), 3) AS session_seconds,  -- to the millisecond, as the days
        CAST(sum(priced_events) AS BIGINT) AS priced_events,
        round(sum(price_sum), 6) AS price_sum,  -- to the millionth: a --full-refresh sums in another order (helper-78)
        coalesce(CAST(sum(purchase_quantity) AS BIGINT), 0) AS purchase_quantity,
        round(sum(purchase_amount), 6) AS purchase_amount,  -- to the millionth, as the days
        CAST(sum(sessions_h00) AS BIGINT) AS sessions_h00,
        CAST(sum(sessions_h01) AS BIGINT) AS sessions_h01,
        CAST(sum(sessions_h02) AS BIGINT) AS sessions_h02,
        CAST(sum(sessions_h03) AS BIGINT) AS sessions_h03,
        CAST(sum(sessions_h04) AS BIGINT) AS sessions_h04,
        CAST(sum(sessions_h05) AS BIGINT) AS sessions_h05,
        CAST(sum(sessions_h06) AS BIGINT) AS sessions_h06,
        CAST(sum(sessions_h07) AS BIGINT) AS sessions_h07,
        CAST(sum(sessions_h08) AS BIGINT) AS sessions_h08,
        CAST(sum(sessions_h09) AS BIGINT) AS sessions_h09,
        CAST(sum(sessions_h10) AS BIGINT) AS sessions_h10,
        CAST(sum(sessions_h11) AS BIGINT) AS sessions_h11,
        CAST(sum(sessions_h12) AS BIGINT) AS sessions_h12,
        CAST(sum(sessions_h13) AS BIGINT) AS sessions_h13,
        CAST(sum(sessions_h14) AS BIGINT) AS sessions_h14,
        CAST(sum(sessions_h15) AS BIGINT) AS sessions_h15,
        CAST(sum(sessions_h16) AS BIGINT) AS sessions_h16,
        CAST(sum(sessions_h17) AS BIGINT) AS sessions_h17,
        CAST(sum(sessions_h18) AS BIGINT) AS sessions_h18,
        CAST(sum(sessions_h19) AS BIGINT) AS sessions_h19,
        CAST(sum(sessions_h20) AS BIGINT) AS sessions_h20,
        CAST(sum(sessions_h21) AS BIGINT) AS sessions_h21,
        CAST(sum(sessions_h22) AS BIGINT) AS sessions_h22,
        CAST(sum(sessions_h23) AS BIGINT) AS sessions_h23,
        CAST(coalesce(sum(sessions) FILTER (WHERE weekday = 1), 0) AS BIGINT) AS sessions_mon,
        CAST(coalesce(sum(sessions) FILTER (WHERE weekday = 2), 0) AS BIGINT) AS sessions_tue,
        CAST(coalesce(sum(sessions) FILTER (WHERE weekday = 3), 0) AS BIGINT) AS sessions_wed,
        CAST(coalesce(sum(sessions) FILTER (WHERE weekday = 4), 0) AS BIGINT) AS sessions_thu,
        CAST(coalesce(sum(sessions) FILTER (WHERE weekday = 5), 0) AS BIGINT) AS sessions_fri,
        CAST(coalesce(sum(sessions) FILTER (WHERE weekday = 6), 0) AS BIGINT) AS sessions_sat,
        CAST(coalesce(sum(sessions) FILTER (WHERE weekday = 7), 0) AS BIGINT) AS sessions_sun
    FROM int_user_day
    GROUP BY user_id
)

SELECT
    a.user_id,
    a.first_active_day,
    a.last_active_day,
    a.active_days,
    a.events,
    a.views,
    a.carts,
    a.favs,
    a.purchases,
    a.searches,
    a.sessions,
    a.session_seconds,
    a.priced_events,
    a.price_sum,
    coalesce(p.purchase_days, 0) AS purchase_days,
    p.first_purchase_day,
    p.last_purchase_day,
    a.purchase_quantity,
    a.purchase_amount,
    p.first_purchase_day_amount,
    p.purchase_gap_mean_days,
    p.purchase_gap_std_days,
    a.sessions_h00,
    a.sessions_h01,
    a.sessions_h02,
    a.sessions_h03,
    a.sessions_h04,
    a.sessions_h05,
    a.sessions_h06,
    a.sessions_h07,
    a.sessions_h08,
    a.sessions_h09,
    a.sessions_h10,
    a.sessions_h11,
    a.sessions_h12,
    a.sessions_h13,
    a.sessions_h14,
    a.sessions_h15,
    a.sessions_h16,
    a.sessions_h17,
    a.sessions_h18,
    a.sessions_h19,
    a.sessions_h20,
    a.sessions_h21,
    a.sessions_h22,
    a.sessions_h23,
    a.sessions_mon,
    a.sessions_tue,
    a.sessions_wed,
    a.sessions_thu,
    a.sessions_fri,
    a.sessions_sat,
    a.sessions_sun
FROM activity AS a
LEFT JOIN purchase_stats AS p ON p.user_id = a.user_id
