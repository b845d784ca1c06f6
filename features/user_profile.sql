-- kind: table
-- grain: user_id
-- tags: profile
-- description: The user profile: one row per user the shop knows, as of the build's as-of, with the four dimensions side by side (basic information, behaviour, preference, sentiment and loyalty) plus RFM. Each column comes from the model named in the comment above its block, which documents how it is computed. To add a dimension (model scores, say), join its table on user_id and list its columns in a new block.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   as_of: the as-of time the profile describes (shop time): --as-of when given, else the newest event (the newest feedback when the shop has no events)
--   is_registered: TRUE when the user is in the users feed and registered by the as-of (a signup time after it: FALSE, and the users feed's attributes NULL: the shop did not know them yet)
--   has_events: TRUE when the user has at least one (cleaned) event up to the as-of
--   has_feedback: TRUE when the user left at least one piece of feedback up to the as-of
--   bot_like_days: days whose browsing was left out as a bot-like burst (stg_bot_bursts) up to the as-of; that browsing counts nowhere else (not in activity, first_seen_day or tenure), the day's purchases do; 0 for most users (one whose every event was such browsing has no row: the build's line says how many)
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
--   top_category_1: category with the highest affinity (ties, affinities equal to float noise (their log2 to 9 decimals): the more recent last day with it, then alphabetical; dotted path, lower case, else category id); only categories with affinity count (searches weigh 0); NULL when the user has none
--   top_category_1_affinity: its affinity at the as-of: each event weighted by type and halved for every half-life between its day and the as-of day (the half-life: int_user_interests' half_life_days, 30 days as shipped); rounded to 9 decimals, or to 9 significant digits below 0.1, so builds of the same data in any batches give equal values (sums of doubles differ in the last bits with their order) and a category last seen years ago keeps a value above 0
--   top_category_2: second category by affinity
--   top_category_2_affinity: its affinity at the as-of
--   top_category_3: third category by affinity
--   top_category_3_affinity: its affinity at the as-of
--   top_category_1_spend_share: share of the user's lifetime spend that went to top_category_1; NULL without priced purchases, or when those purchases have no category
--   top_category_2_spend_share: share of lifetime spend on top_category_2
--   top_category_3_spend_share: share of lifetime spend on top_category_3
--   top_brand_1: brand with the highest affinity (ties, affinities equal to float noise (their log2 to 9 decimals): the more recent last day with it, then alphabetical; lower case); only brands with affinity count; NULL when the user has none
--   top_brand_1_affinity: its affinity at the as-of
--   top_brand_2: second brand by affinity
--   top_brand_2_affinity: its affinity at the as-of
--   top_brand_3: third brand by affinity
--   top_brand_3_affinity: its affinity at the as-of
--   categories_engaged: distinct categories the user ever had events on, searches in one included
--   brands_engaged: distinct brands the user ever had events on
--   avg_price_viewed: mean unit price over the user's priced view, cart and purchase events (the event's price, else the item's, else a purchase's amount over its quantity, so a purchase line of quantity 0 has none; per event: an item viewed twice counts twice), rounded to 6 decimals; a price of 0 is a price; NULL when no price is known
--   price_band: 'budget', 'mid' or 'premium': avg_price_viewed in the lower, middle or upper third of all users with prices (by percent rank: below 1/3, below 2/3, else; equal prices share a band, so among few users a band may be empty); NULL without prices
--   rfm_frequency: purchase days minus one (repeat purchase days), lifetimes 'frequency'; NULL without purchases
--   rfm_recency_days: days from the first to the last purchase day, lifetimes 'recency'; NULL without purchases
--   rfm_age_days: days from the first purchase day to the as-of day, lifetimes 'T'; NULL without purchases
--   rfm_monetary_value: mean money spent per repeat purchase day (the first purchase day left out; money as in total_spend: the amount, else the event's or the catalogue's unit price x quantity, 0 when priced nowhere), lifetimes 'monetary_value', unrounded as lifetimes computes it; 0 with a single purchase day; NULL without purchases
--   purchase_days: days with at least one purchase (0 for non-purchasers)
--   days_since_last_purchase: days from the last purchase day to the as-of day; NULL without purchases
--   total_spend: money spent ever, in the shop's currency as sent (no conversion), rounded to the millionth: the amount, else the event's or the catalogue's unit price x quantity (a purchase without amount or price is valued at its item's newest catalogue price, stg_items, so a new price list revalues it); 0 when purchases are priced nowhere, NULL without purchases
--   r_score: recency score 1-5 among purchasers: ceil(5 x cumulative share of purchasers whose last purchase day is this day or earlier), so ties share the higher score (everyone who bought on the as-of day gets 5); NULL without purchases
--   f_score: frequency score 1-5 among purchasers: least(5, 1 + floor(5 x percent rank of purchase days)), so ties share the lower score (single-day buyers get 1; two purchase days give 1 + floor(5 x the share of the other purchasers with one purchase day): 5 in a young shop where over 80% of them bought once, 3 where 40-60% did). Like r_score and m_score it ranks the user among all purchasers, so it moves as other buyers buy: a user who did nothing can change score and segment, and user_profile_history records that change; NULL without purchases
--   m_score: monetary score 1-5 among purchasers by total spend, as f_score (without prices every purchaser gets 1); NULL without purchases
--   rfm_score: the three scores as text, e.g. '545'; NULL without purchases
--   rfm_segment: champions, loyal, new, potential loyalist, needs attention, at risk, hibernating or lost by R and F (the CASE in rfm_features.sql; docs/models.md lists the rules); 'prospect' without purchases. Its 'new' and 'at risk' are RFM ranks among all buyers, not lifecycle_stage's of the same names, which judge the user's own purchase cycle: so champions or loyal can be lifecycle 'churned' and lost can be lifecycle 'new'
--   feedback_count: feedback entries of any kind ever
--   ratings: ratings given (1-5 stars, on ratings and reviews)
--   avg_rating: mean rating; NULL without ratings
--   avg_rating_30d: mean rating over the as-of day and the 29 days before it; NULL without ratings then
--   rating_trend: mean rating of the last 30 days minus the mean before them (positive = improving); NULL unless both periods have ratings
--   complaints: complaints ever
--   complaints_90d: complaints over the as-of day and the 89 days before it
--   complaint_rate: complaints per purchase day (an order proxy; above 1 when the complaints outnumber the purchase days); NULL without purchases (loyalty_score then counts any complaint as a rate of 1); 0 for every buyer of a shop that sends no feedback, where complaints are unknown rather than absent
--   reviews: reviews written
--   likes: likes given
--   shares: shares
--   repeat_purchase_rate: share of purchase days that were repeat purchases, (purchase days - 1) / purchase days; NULL without purchases
--   tenure_days: days from first_seen_day (registration, first event or first feedback) to the as-of day
--   loyalty_score: 0-1: 0.35 repeat (repeat purchase days, purchase days - 1, over 4: 5+ purchase days = 1) + 0.25 purchase recency (halves every 30 days; 0 without purchases) + 0.2 tenure (a year = 1) + 0.2 satisfaction ((avg rating - 1) / 4, 0.5 without ratings, times 1 - complaint rate, at most 1; without purchases a complaint counts as a rate of 1)
--   loyalty_band: 'low' (< 0.4), 'medium' (< 0.7) or 'high'
--   purchase_cycle_days: the cycle lifecycle_stage is judged by: the user's mean days between purchase days (2+ purchase days), else the median of that over all such users, else 30; at least 7; NULL without purchases
--   lifecycle_stage: 'new' (one purchase day, the last at most 2 cycles ago), 'active' (last purchase at most 1.5 cycles ago), 'at risk' (at most 3 cycles), 'churned' (longer ago; a one-purchase-day user past 2 cycles is at risk or churned by the same bounds); 'prospect' without purchases
--   p_purchase_30d: model purchase_propensity: probability of at least one purchase in the p_purchase_horizon_days days after as-of (the name keeps the spec's default horizon, 30 days); NULL when the model could not be trained or scored (too little history), and after a build that moved the as-of until `profiler train` scores again (scores are only shown at the as-of they were made for)
--   p_purchase_30d_decile: decile of p_purchase_30d among all users at this as-of, 1 = the 10% most likely buyers
--   p_purchase_horizon_days: the horizon p_purchase_30d is for, in days: horizon_days in models/purchase_propensity.toml (30), or what `profiler train --horizon-days H` trained; NULL when not scored, or scored before this column existed
--   next_category: model next_category: the most likely category of the user's next purchase or cart, among their own top categories; NULL for a user without any top category, and when not scored at this as-of (as p_purchase_30d)
--   next_category_probability: probability that the next purchase or cart falls in next_category
SELECT
    u.user_id,
    t.as_of,
    -- Basic information (int_users)
    u.is_registered,
    u.has_events,
    u.has_feedback,
    u.bot_like_days,
    u.gender,
    u.birth_year,
    u.age,
    u.city,
    u.region,
    u.signup_day,
    u.first_seen_day,
    u.last_seen_day,
    u.first_active_day,
    u.last_active_day,
    -- Behaviour (behaviour_features)
    b.views_1d,
    b.carts_1d,
    b.favs_1d,
    b.purchases_1d,
    b.searches_1d,
    b.views_7d,
    b.carts_7d,
    b.favs_7d,
    b.purchases_7d,
    b.searches_7d,
    b.views_30d,
    b.carts_30d,
    b.favs_30d,
    b.purchases_30d,
    b.searches_30d,
    b.views_90d,
    b.carts_90d,
    b.favs_90d,
    b.purchases_90d,
    b.searches_90d,
    b.spend_7d,
    b.spend_30d,
    b.spend_90d,
    b.views_lifetime,
    b.carts_lifetime,
    b.favs_lifetime,
    b.purchases_lifetime,
    b.searches_lifetime,
    b.events_lifetime,
    b.active_days_7d,
    b.active_days_30d,
    b.active_days_90d,
    b.active_days_lifetime,
    b.days_since_last_active,
    b.sessions_30d,
    b.sessions_lifetime,
    b.events_per_session,
    b.avg_session_seconds,
    b.view_to_cart_rate,
    b.cart_to_purchase_rate,
    b.view_to_purchase_rate,
    b.top_hour,
    b.top_hour_share,
    b.top_weekday,
    b.weekend_share,
    b.purchase_cycle_days_mean,
    b.purchase_cycle_days_std,
    b.top_search_term_1,
    b.top_search_term_2,
    b.top_search_term_3,
    b.search_terms_used,
    -- Preference (preference_features)
    p.top_category_1,
    p.top_category_1_affinity,
    p.top_category_2,
    p.top_category_2_affinity,
    p.top_category_3,
    p.top_category_3_affinity,
    p.top_category_1_spend_share,
    p.top_category_2_spend_share,
    p.top_category_3_spend_share,
    p.top_brand_1,
    p.top_brand_1_affinity,
    p.top_brand_2,
    p.top_brand_2_affinity,
    p.top_brand_3,
    p.top_brand_3_affinity,
    p.categories_engaged,
    p.brands_engaged,
    p.avg_price_viewed,
    p.price_band,
    -- RFM (rfm_features)
    r.rfm_frequency,
    r.rfm_recency_days,
    r.rfm_age_days,
    r.rfm_monetary_value,
    r.purchase_days,
    r.days_since_last_purchase,
    r.total_spend,
    r.r_score,
    r.f_score,
    r.m_score,
    r.rfm_score,
    r.rfm_segment,
    -- Sentiment and loyalty (sentiment_features)
    s.feedback_count,
    s.ratings,
    s.avg_rating,
    s.avg_rating_30d,
    s.rating_trend,
    s.complaints,
    s.complaints_90d,
    s.complaint_rate,
    s.reviews,
    s.likes,
    s.shares,
    s.repeat_purchase_rate,
    s.tenure_days,
    s.loyalty_score,
    s.loyalty_band,
    s.purchase_cycle_days,
    s.lifecycle_stage,
    -- Predictions (user_scores, written by the model layer from models/*.toml)
    sc.p_purchase_30d,
    sc.p_purchase_30d_decile,
    sc.p_purchase_horizon_days,
    sc.next_category,
    sc.next_category_probability
FROM int_users AS u
CROSS JOIN as_of_time AS t
LEFT JOIN behaviour_features AS b ON b.user_id = u.user_id
LEFT JOIN preference_features AS p ON p.user_id = u.user_id
LEFT JOIN rfm_features AS r ON r.user_id = u.user_id
LEFT JOIN sentiment_features AS s ON s.user_id = u.user_id
LEFT JOIN (
    SELECT
        sc.user_id,
        max(sc.score) FILTER (WHERE sc.model = 'purchase_propensity') AS p_purchase_30d,
        max(sc.decile) FILTER (WHERE sc.model = 'purchase_propensity') AS p_purchase_30d_decile,
        max(sc.horizon_days) FILTER (WHERE sc.model = 'purchase_propensity') AS p_purchase_horizon_days,
        max(sc.label) FILTER (WHERE sc.model = 'next_category') AS next_category,
        max(sc.score) FILTER (WHERE sc.model = 'next_category') AS next_category_probability
    FROM user_scores AS sc
    CROSS JOIN as_of_time AS a
    WHERE sc.as_of = a.as_of
    GROUP BY sc.user_id
) AS sc ON sc.user_id = u.user_id
