-- kind: incremental_by_key
-- unique_key: user_id
-- grain: user_id
-- tags: cleaning, users
-- description: Registered users, one row per user: the newest batch's row wins; between rows of one file, the one with the latest signup time, then the first by gender, birth year, city and region (a file's line order is not kept, so send one row per user, or the changes in later files). Personal columns arrive pseudonymised from ingest and stay that way; the profile does not carry them.
-- columns:
--   user_id: pseudonymous user id
--   gender: gender as the shop records it, lower case, with male/man as m and female/woman as f; NULL when unknown
--   birth_year: year of birth; NULL when unknown or outside 1900..2030
--   city: city, trimmed; NULL when unknown
--   region: region or state, trimmed; NULL when unknown
--   signup_ts: when the user registered (shop time); NULL when unknown
--   name: pseudonymised name (a keyed hash, never the real value)
--   email: pseudonymised e-mail address
--   phone: pseudonymised phone number
--   _batch_id: the ingest batch the row came from
WITH ranked AS (
    SELECT
        user_id,
        CASE lower(trim(gender))
            WHEN '' THEN NULL
            WHEN 'male' THEN 'm' WHEN 'man' THEN 'm'
            WHEN 'female' THEN 'f' WHEN 'woman' THEN 'f'
            ELSE lower(trim(gender))
        END AS gender,
        CASE WHEN birth_year BETWEEN 1900 AND 2030 THEN birth_year END AS birth_year,
        nullif(trim(city), '') AS city,
        nullif(trim(region), '') AS region,
        signup_ts,
        name,
        email,
        phone,
        _batch_id,
        row_number() OVER (
            PARTITION BY user_id
            ORDER BY _batch_id DESC, signup_ts DESC, gender, birth_year, city, region, name, email, phone
        ) AS newest
    FROM raw_users
    WHERE user_id IS NOT NULL
)
SELECT user_id, gender, birth_year, city, region, signup_ts, name, email, phone, _batch_id
FROM ranked
WHERE newest = 1
