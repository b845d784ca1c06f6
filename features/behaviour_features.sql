-- kind: table
-- grain: user_id
-- tags: behaviour, features
-- description: Behaviour as of the build's as-of, one row per user of int_users: event counts over 1/7/30/90 days and lifetime, activity, sessions and browse time, funnel conversion, hour and weekday habits, purchase cycle and search terms. Windows are calendar days (shop time) ending on the as-of day. Users without events get zero counts and NULL rates.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   as_of: the as-of time these features are stated at (shop time), the same as user_profile.as_of
--   views_1d: product views in the as-of day
--   carts_1d: add-to-cart events in the as-of day
--   favs_1d: add-to-favourites events in the as-of day
--   purchases_1d: purchase events in the as-of day
--   searches_1d: searches in the as-of day
--   views_7d: product views in the 7 days up to and including the as-of day
--   carts_7d: add-to-cart events in the 7 days up to and including the as-of day
--   favs_7d: add-to-favourites events in the 7 days up to and including the as-of day
--   purchases_7d: purchase events in the 7 days up to and including the as-of day
--   searches_7d: searches in the 7 days up to and including the as-of day
--   views_30d: product views in the 30 days up to and including the as-of day
--   carts_30d: add-to-cart events in the 30 days up to and including the as-of day
--   favs_30d: add-to-favourites events in the 30 days up to and including the as-of day
--   purchases_30d: purchase events in the 30 days up to and including the as-of day
--   searches_30d: searches in the 30 days up to and including the as-of day
--   views_90d: product views in the 90 days up to and including the as-of day
--   carts_90d: add-to-cart events in the 90 days up to and including the as-of day
--   favs_90d: add-to-favourites events in the 90 days up to and including the as-of day
--   purchases_90d: purchase events in the 90 days up to and including the as-of day
--   searches_90d: searches in the 90 days up to and including the as-of day
--   spend_7d: money spent in the 7 days up to and including the as-of day, as total_spend counts it (the amount, else the event's or the catalogue's unit price x quantity), rounded to the millionth; 0 without purchases in the window or when they are priced nowhere
--   spend_30d: money spent in the 30 days up to and including the as-of day, as spend_7d
--   spend_90d: money spent in the 90 days up to and including the as-of day, as spend_7d
--   views_lifetime: product views ever (up to the as-of)
--   carts_lifetime: add-to-cart events ever (up to the as-of)
--   favs_lifetime: add-to-favourites events ever (up to the as-of)
--   purchases_lifetime: purchase events ever (up to the as-of): lines, whatever their quantity, not units or orders
--   searches_lifetime: searches ever (up to the as-of)
--   events_lifetime: events of any type ever
--   active_days_7d: days with an event in the 7 days up to and including the as-of day
--   active_days_30d: days with an event in the 30 days up to and including the as-of day
--   active_days_90d: days with an event in the 90 days up to and including the as-of day
--   active_days_lifetime: days with an event ever
--   days_since_last_active: days from the last active day to the as-of day; NULL without events
--   sessions_30d: sessions in the 30 days up to and including the as-of day
--   sessions_lifetime: sessions ever (session_id, else a new session after more than 30 minutes without events; split at midnight); events without a session_id form sessions among themselves, by the 30 minutes, even on a day whose other events carry one
--   events_per_session: mean events per session, lifetime; NULL without sessions
--   avg_session_seconds: mean session duration (first to last event), seconds, lifetime; NULL without sessions
--   view_to_cart_rate: add-to-carts per product view, lifetime; NULL without views (can exceed 1 when carts come without views in the feed)
--   cart_to_purchase_rate: purchases per add-to-cart, lifetime; NULL without carts (can exceed 1 when purchases skip the cart)
--   view_to_purchase_rate: purchases per product view, lifetime; NULL without views (can exceed 1 when purchases come without views in the feed, or when bot-like days' browsing was left out: their purchases stay)
--   top_hour: hour of day (shop time, 0..23) in which the user started the most sessions, lifetime; ties go to the earlier hour; sessions end at midnight, so one running past it also starts again in hour 0 (a night-owl shop's hour 0 is inflated by them); NULL without sessions started at a time of day (events sent as dates, stg_date_only_events, start none)
--   top_hour_share: share of the user's sessions with a start hour (those not started by events sent as dates) that started in top_hour; NULL without such sessions
--   top_weekday: ISO weekday (1 = Monday .. 7 = Sunday) with the most sessions, lifetime; ties go to the earlier day; NULL without sessions
--   weekend_share: share of sessions on Saturday or Sunday; NULL without sessions
--   purchase_cycle_days_mean: mean days between consecutive purchase days; NULL with fewer than 2 purchase days
--   purchase_cycle_days_std: sample standard deviation of the days between purchase days; NULL with fewer than 3 purchase days
--   top_search_term_1: the user's most frequent search query, lower case and trimmed (ties: the more recent last day with it, then alphabetical); NULL without searches
--   top_search_term_2: second most frequent search query
--   top_search_term_3: third most frequent search query
--   search_terms_used: distinct search queries ever
WITH as_of AS (
    SELECT CAST(as_of AS DATE) AS as_of_day FROM as_of_time
),

recent_days AS (
    SELECT d.*, date_diff('day', d.day, a.as_of_day) AS age_days
    FROM int_user_day AS d
    CROSS JOIN as_of AS a
    WHERE date_diff('day', d.day, a.as_of_day) < 90
),

windows AS (
    SELECT
        user_id,
        CAST(coalesce(sum(views) FILTER (WHERE age_days < 1), 0) AS BIGINT) AS views_1d,
        CAST(coalesce(sum(carts) FILTER (WHERE age_days < 1), 0) AS BIGINT) AS carts_1d,
        CAST(coalesce(sum(favs) FILTER (WHERE age_days < 1), 0) AS BIGINT) AS favs_1d,
        CAST(coalesce(sum(purchases) FILTER (WHERE age_days < 1), 0) AS BIGINT) AS purchases_1d,
        CAST(coalesce(sum(searches) FILTER (WHERE age_days < 1), 0) AS BIGINT) AS searches_1d,
        CAST(coalesce(sum(views) FILTER (WHERE age_days < 7), 0) AS BIGINT) AS views_7d,
        CAST(coalesce(sum(carts) FILTER (WHERE age_days < 7), 0) AS BIGINT) AS carts_7d,
        CAST(coalesce(sum(favs) FILTER (WHERE age_days < 7), 0) AS BIGINT) AS favs_7d,
        CAST(coalesce(sum(purchases) FILTER (WHERE age_days < 7), 0) AS BIGINT) AS purchases_7d,
        CAST(coalesce(sum(searches) FILTER (WHERE age_days < 7), 0) AS BIGINT) AS searches_7d,
        CAST(coalesce(sum(views) FILTER (WHERE age_days < 30), 0) AS BIGINT) AS views_30d,
        CAST(coalesce(sum(carts) FILTER (WHERE age_days < 30), 0) AS BIGINT) AS carts_30d,
        CAST(coalesce(sum(favs) FILTER (WHERE age_days < 30), 0) AS BIGINT) AS favs_30d,
        CAST(coalesce(sum(purchases) FILTER (WHERE age_days < 30), 0) AS BIGINT) AS purchases_30d,
        CAST(coalesce(sum(searches) FILTER (WHERE age_days < 30), 0) AS BIGINT) AS searches_30d,
        CAST(coalesce(sum(views) FILTER (WHERE age_days < 90), 0) AS BIGINT) AS views_90d,
        CAST(coalesce(sum(carts) FILTER (WHERE age_days < 90), 0) AS BIGINT) AS carts_90d,
        CAST(coalesce(sum(favs) FILTER (WHERE age_days < 90), 0) AS BIGINT) AS favs_90d,
        CAST(coalesce(sum(purchases) FILTER (WHERE age_days < 90), 0) AS BIGINT) AS purchases_90d,
        CAST(coalesce(sum(searches) FILTER (WHERE age_days < 90), 0) AS BIGINT) AS searches_90d,
        round(coalesce(sum(purchase_amount) FILTER (WHERE age_days < 7), 0), 6) AS spend_7d,
        round(coalesce(sum(purchase_amount) FILTER (WHERE age_days < 30), 0), 6) AS spend_30d,
        round(coalesce(sum(purchase_amount), 0), 6) AS spend_90d,
        count(*) FILTER (WHERE age_days < 7) AS active_days_7d,
        count(*) FILTER (WHERE age_days < 30) AS active_days_30d,
        count(*) AS active_days_90d,
        CAST(coalesce(sum(sessions) FILTER (WHERE age_days < 30), 0) AS BIGINT) AS sessions_30d
    FROM recent_days
    GROUP BY user_id
)

SELECT
    u.user_id,
    t.as_of,
    coalesce(w.views_1d, 0) AS views_1d,
    coalesce(w.carts_1d, 0) AS carts_1d,
    coalesce(w.favs_1d, 0) AS favs_1d,
    coalesce(w.purchases_1d, 0) AS purchases_1d,
    coalesce(w.searches_1d, 0) AS searches_1d,
    coalesce(w.views_7d, 0) AS views_7d,
    coalesce(w.carts_7d, 0) AS carts_7d,
    coalesce(w.favs_7d, 0) AS favs_7d,
    coalesce(w.purchases_7d, 0) AS purchases_7d,
    coalesce(w.searches_7d, 0) AS searches_7d,
    coalesce(w.views_30d, 0) AS views_30d,
    coalesce(w.carts_30d, 0) AS carts_30d,
    coalesce(w.favs_30d, 0) AS favs_30d,
    coalesce(w.purchases_30d, 0) AS purchases_30d,
    coalesce(w.searches_30d, 0) AS searches_30d,
    coalesce(w.views_90d, 0) AS views_90d,
    coalesce(w.carts_90d, 0) AS carts_90d,
    coalesce(w.favs_90d, 0) AS favs_90d,
    coalesce(w.purchases_90d, 0) AS purchases_90d,
    coalesce(w.searches_90d, 0) AS searches_90d,
    coalesce(w.spend_7d, 0) AS spend_7d,
    coalesce(w.spend_30d, 0) AS spend_30d,
    coalesce(w.spend_90d, 0) AS spend_90d,
    coalesce(l.views, 0) AS views_lifetime,
    coalesce(l.carts, 0) AS carts_lifetime,
    coalesce(l.favs, 0) AS favs_lifetime,
    coalesce(l.purchases, 0) AS purchases_lifetime,
    coalesce(l.searches, 0) AS searches_lifetime,
    coalesce(l.events, 0) AS events_lifetime,
    coalesce(w.active_days_7d, 0) AS active_days_7d,
    coalesce(w.active_days_30d, 0) AS active_days_30d,
    coalesce(w.active_days_90d, 0) AS active_days_90d,
    coalesce(l.active_days, 0) AS active_days_lifetime,
    date_diff('day', l.last_active_day, a.as_of_day) AS days_since_last_active,
    coalesce(w.sessions_30d, 0) AS sessions_30d,
    coalesce(l.sessions, 0) AS sessions_lifetime,
    l.events / nullif(l.sessions, 0) AS events_per_session,
    l.session_seconds / nullif(l.sessions, 0) AS avg_session_seconds,
    l.carts / nullif(l.views, 0) AS view_to_cart_rate,
    l.purchases / nullif(l.carts, 0) AS cart_to_purchase_rate,
    l.purchases / nullif(l.views, 0) AS view_to_purchase_rate,
    CASE greatest(l.sessions_h00, l.sessions_h01, l.sessions_h02, l.sessions_h03, l.sessions_h04, l.sessions_h05, l.sessions_h06, l.sessions_h07, l.sessions_h08, l.sessions_h09, l.sessions_h10, l.sessions_h11, l.sessions_h12, l.sessions_h13, l.sessions_h14, l.sessions_h15, l.sessions_h16, l.sessions_h17, l.sessions_h18, l.sessions_h19, l.sessions_h20, l.sessions_h21, l.sessions_h22, l.sessions_h23)
        WHEN 0 THEN NULL  -- no session on a day with a time of day
        WHEN l.sessions_h00 THEN 0
        WHEN l.sessions_h01 THEN 1
        WHEN l.sessions_h02 THEN 2
        WHEN l.sessions_h03 THEN 3
        WHEN l.sessions_h04 THEN 4
        WHEN l.sessions_h05 THEN 5
        WHEN l.sessions_h06 THEN 6
        WHEN l.sessions_h07 THEN 7
        WHEN l.sessions_h08 THEN 8
        WHEN l.sessions_h09 THEN 9
        WHEN l.sessions_h10 THEN 10
        WHEN l.sessions_h11 THEN 11
        WHEN l.sessions_h12 THEN 12
        WHEN l.sessions_h13 THEN 13
        WHEN l.sessions_h14 THEN 14
        WHEN l.sessions_h15 THEN 15
        WHEN l.sessions_h16 THEN 16
        WHEN l.sessions_h17 THEN 17
        WHEN l.sessions_h18 THEN 18
        WHEN l.sessions_h19 THEN 19
        WHEN l.sessions_h20 THEN 20
        WHEN l.sessions_h21 THEN 21
        WHEN l.sessions_h22 THEN 22
        WHEN l.sessions_h23 THEN 23
    END AS top_hour,
    greatest(l.sessions_h00, l.sessions_h01, l.sessions_h02, l.sessions_h03, l.sessions_h04, l.sessions_h05, l.sessions_h06, l.sessions_h07, l.sessions_h08, l.sessions_h09, l.sessions_h10, l.sessions_h11, l.sessions_h12, l.sessions_h13, l.sessions_h14, l.sessions_h15, l.sessions_h16, l.sessions_h17, l.sessions_h18, l.sessions_h19, l.sessions_h20, l.sessions_h21, l.sessions_h22, l.sessions_h23)
        / nullif((l.sessions_h00 + l.sessions_h01 + l.sessions_h02 + l.sessions_h03 + l.sessions_h04 + l.sessions_h05 + l.sessions_h06 + l.sessions_h07 + l.sessions_h08 + l.sessions_h09 + l.sessions_h10 + l.sessions_h11 + l.sessions_h12 + l.sessions_h13 + l.sessions_h14 + l.sessions_h15 + l.sessions_h16 + l.sessions_h17 + l.sessions_h18 + l.sessions_h19 + l.sessions_h20 + l.sessions_h21 + l.sessions_h22 + l.sessions_h23), 0) AS top_hour_share,
    CASE WHEN l.sessions > 0 THEN
        CASE greatest(l.sessions_mon, l.sessions_tue, l.sessions_wed, l.sessions_thu, l.sessions_fri, l.sessions_sat, l.sessions_sun)
            WHEN l.sessions_mon THEN 1
            WHEN l.sessions_tue THEN 2
            WHEN l.sessions_wed THEN 3
            WHEN l.sessions_thu THEN 4
            WHEN l.sessions_fri THEN 5
            WHEN l.sessions_sat THEN 6
            WHEN l.sessions_sun THEN 7
        END
    END AS top_weekday,
    (l.sessions_sat + l.sessions_sun) / nullif(l.sessions, 0) AS weekend_share,
    l.purchase_gap_mean_days AS purchase_cycle_days_mean,
    l.purchase_gap_std_days AS purchase_cycle_days_std,
    i.top_search_term_1,
    i.top_search_term_2,
    i.top_search_term_3,
    coalesce(i.search_terms_used, 0) AS search_terms_used
FROM int_users AS u
CROSS JOIN as_of AS a
CROSS JOIN as_of_time AS t
LEFT JOIN int_user_lifetime AS l ON l.user_id = u.user_id
LEFT JOIN windows AS w ON w.user_id = u.user_id
LEFT JOIN int_user_interests AS i ON i.user_id = u.user_id
