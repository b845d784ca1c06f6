-- What an event says about a user's interest in an item, category or brand, by its type: a view
-- 1, a fav 2, a cart 3, a purchase 5; a search (and anything else) 0. One scale for the
-- profile's affinities (int_user_interests) and the recommendations' popularity and interest
-- (rec_item_popularity, user_recommendations).
CREATE MACRO action_weight(event_type) AS CASE event_type
    WHEN 'view' THEN 1.0
    WHEN 'fav' THEN 2.0
    WHEN 'cart' THEN 3.0
    WHEN 'purchase' THEN 5.0
    ELSE 0.0
END;

-- A user-day with an item counts once, by its deepest action (a purchase over a cart over a fav
-- over a view), so one account's many lines weigh as one shopper's day.
CREATE MACRO deepest_action_weight(purchases, carts, favs, views) AS CASE
    WHEN purchases > 0 THEN action_weight('purchase')
    WHEN carts > 0 THEN action_weight('cart')
    WHEN favs > 0 THEN action_weight('fav')
    WHEN views > 0 THEN action_weight('view')
    ELSE 0.0
END;
