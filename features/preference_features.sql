-- kind: table
-- grain: user_id
-- tags: preference, features
-- description: Preferences as of the build's as-of, one row per user of int_users: the top 3 categories and brands by time-decayed affinity (weights and half-life are set in int_user_interests: view 1, fav 2, cart 3, purchase 5, half-life 30 days), each top category's share of the user's spend, and the price band the user shops in. Users without item events get NULL tops, shares, price and price band; categories_engaged and brands_engaged count the categories and brands of any event, searches included (0 without any).
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   as_of: the as-of time these features are stated at (shop time), the same as user_profile.as_of
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
WITH as_of AS (
    SELECT CAST(as_of AS DATE) AS as_of_day FROM as_of_time
),

aged AS (
    -- Scores are stated at int_user_interests' reference day; one factor ages them to the as-of.
    SELECT
        i.*,
        power(0.5, date_diff('day', i.reference_day, a.as_of_day) / i.half_life_days) AS to_as_of
    FROM int_user_interests AS i
    CROSS JOIN as_of AS a
),

prices AS (
    SELECT
        user_id,
        avg_price_viewed,
        CASE
            WHEN percent_rank() OVER (ORDER BY avg_price_viewed) < 1.0 / 3 THEN 'budget'
            WHEN percent_rank() OVER (ORDER BY avg_price_viewed) < 2.0 / 3 THEN 'mid'
            ELSE 'premium'
        END AS price_band
    FROM (
        -- the sum rounded first: summed in parallel, its last bits vary from build to build, and
        -- an unrounded mean could land on either side of a 6th-decimal rounding step
        SELECT user_id, round(round(price_sum, 6) / priced_events, 6) AS avg_price_viewed
        FROM int_user_lifetime
        WHERE priced_events > 0
    ) AS p
)

SELECT
    u.user_id,
    t.as_of,
    i.top_category_1,
    round(i.top_category_1_score * i.to_as_of, greatest(9, 8 - CAST(floor(log10(nullif(i.top_category_1_score * i.to_as_of, 0))) AS INTEGER))) AS top_category_1_affinity,
    i.top_category_2,
    round(i.top_category_2_score * i.to_as_of, greatest(9, 8 - CAST(floor(log10(nullif(i.top_category_2_score * i.to_as_of, 0))) AS INTEGER))) AS top_category_2_affinity,
    i.top_category_3,
    round(i.top_category_3_score * i.to_as_of, greatest(9, 8 - CAST(floor(log10(nullif(i.top_category_3_score * i.to_as_of, 0))) AS INTEGER))) AS top_category_3_affinity,
    -- a category's spend and the total are summed in different orders: float rounding can put
    -- a share that is really 1 a hair above it (seen at 100M events), so cap it there (least() would
    -- turn a NULL share into 1)
    CASE WHEN i.spend > 0 AND i.top_category_1_spend >= i.spend THEN 1.0 ELSE i.top_category_1_spend / nullif(i.spend, 0) END
        AS top_category_1_spend_share,
    CASE WHEN i.spend > 0 AND i.top_category_2_spend >= i.spend THEN 1.0 ELSE i.top_category_2_spend / nullif(i.spend, 0) END
        AS top_category_2_spend_share,
    CASE WHEN i.spend > 0 AND i.top_category_3_spend >= i.spend THEN 1.0 ELSE i.top_category_3_spend / nullif(i.spend, 0) END
        AS top_category_3_spend_share,
    i.top_brand_1,
    round(i.top_brand_1_score * i.to_as_of, greatest(9, 8 - CAST(floor(log10(nullif(i.top_brand_1_score * i.to_as_of, 0))) AS INTEGER))) AS top_brand_1_affinity,
    i.top_brand_2,
    round(i.top_brand_2_score * i.to_as_of, greatest(9, 8 - CAST(floor(log10(nullif(i.top_brand_2_score * i.to_as_of, 0))) AS INTEGER))) AS top_brand_2_affinity,
    i.top_brand_3,
    round(i.top_brand_3_score * i.to_as_of, greatest(9, 8 - CAST(floor(log10(nullif(i.top_brand_3_score * i.to_as_of, 0))) AS INTEGER))) AS top_brand_3_affinity,
    coalesce(i.categories_engaged, 0) AS categories_engaged,
    coalesce(i.brands_engaged, 0) AS brands_engaged,
    p.avg_price_viewed,
    p.price_band
FROM int_users AS u
CROSS JOIN as_of_time AS t
LEFT JOIN aged AS i ON i.user_id = u.user_id
LEFT JOIN prices AS p ON p.user_id = u.user_id
