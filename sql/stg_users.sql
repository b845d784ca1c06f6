-- kind: incremental_by_key
-- unique_key: user_id
-- grain: user_id
-- tags: cleaning, users
-- description: Registered users, one row per user: each column is the newest value the shop sent for it, so a later file (or a later line of one file) that sends a user's city alone changes the city and keeps the rest; an empty value never erases a known one. Newest: the later file, then the later line of a file (rows loaded before lines were kept: the latest signup time, then the first by values). Personal columns arrive pseudonymised from ingest and stay that way; the profile does not carry them.
-- columns:
--   user_id: the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)
--   gender: gender as the shop records it, lower case, with male/man (and the same in Spanish, Portuguese, German, French, Italian, Polish, Indonesian, Turkish, Vietnamese, Thai, Russian, Chinese, Japanese and Korean, and the salutations Mr and Herr) and ISO 5218's 1 as m, female/woman (likewise, w, Mrs, Ms, Mme and Frau) and 2 as f, any other value as sent (lower case: x, d, diverse); NULL when unknown (0 or 9)
--   birth_year: year of birth; NULL when unknown or outside 1900..2030
--   city: city, trimmed; NULL when unknown
--   region: region or state, trimmed; NULL when unknown
--   signup_ts: when the user registered (shop time); NULL when unknown
--   name: pseudonymised name (a keyed hash, never the real value)
--   email: pseudonymised e-mail address
--   phone: pseudonymised phone number
--   _batch_id: the newest ingest batch with a row of the user
WITH cleaned AS (
    SELECT
        user_id,
        CASE lower(trim(gender))
            WHEN '' THEN NULL
            WHEN 'male' THEN 'm' WHEN 'man' THEN 'm'
            WHEN 'female' THEN 'f' WHEN 'woman' THEN 'f'
            -- the same in the languages shop exports are written in, and salutations (Shopware's
            -- Herr and Frau): an audience on gender = 'f' must not miss a Frau or a 여성
            WHEN 'masculino' THEN 'm' WHEN 'hombre' THEN 'm' WHEN 'homem' THEN 'm'
            WHEN 'männlich' THEN 'm' WHEN 'mann' THEN 'm' WHEN 'herr' THEN 'm'
            WHEN 'homme' THEN 'm' WHEN 'masculin' THEN 'm' WHEN 'uomo' THEN 'm'
            WHEN 'maschio' THEN 'm' WHEN 'mężczyzna' THEN 'm' WHEN 'pria' THEN 'm'
            WHEN 'laki-laki' THEN 'm' WHEN 'mr' THEN 'm' WHEN 'mr.' THEN 'm'
            WHEN '男' THEN 'm' WHEN '男性' THEN 'm' WHEN '남' THEN 'm' WHEN '남성' THEN 'm'
            WHEN 'feminino' THEN 'f' WHEN 'mujer' THEN 'f' WHEN 'mulher' THEN 'f'
            WHEN 'weiblich' THEN 'f' WHEN 'frau' THEN 'f' WHEN 'femme' THEN 'f'
            WHEN 'féminin' THEN 'f' WHEN 'donna' THEN 'f' WHEN 'femmina' THEN 'f'
            WHEN 'kobieta' THEN 'f' WHEN 'wanita' THEN 'f' WHEN 'perempuan' THEN 'f'
            WHEN 'mrs' THEN 'f' WHEN 'mrs.' THEN 'f' WHEN 'ms' THEN 'f' WHEN 'ms.' THEN 'f'
            WHEN '女' THEN 'f' WHEN '女性' THEN 'f' WHEN '여' THEN 'f' WHEN '여성' THEN 'f'
            WHEN 'femenino' THEN 'f' WHEN 'maschile' THEN 'm' WHEN 'femminile' THEN 'f'
            WHEN 'w' THEN 'f' WHEN 'mme' THEN 'f' WHEN 'mme.' THEN 'f' WHEN 'erkek' THEN 'm'
            WHEN 'kadın' THEN 'f' WHEN 'kadin' THEN 'f' WHEN 'nam' THEN 'm' WHEN 'nữ' THEN 'f' WHEN 'ชาย' THEN 'm'
            WHEN 'หญิง' THEN 'f' WHEN 'мужской' THEN 'm' WHEN 'женский' THEN 'f'
            -- ISO/IEC 5218 codes, as PrestaShop's id_gender: 1 male, 2 female, 0 and 9 unknown
            WHEN '1' THEN 'm' WHEN '2' THEN 'f' WHEN '0' THEN NULL WHEN '9' THEN NULL
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
        _record
    FROM raw_users
    WHERE user_id IS NOT NULL
),

merged AS (
    -- per column, the newest value sent: rows newest first, the first value that is not NULL
    SELECT
        user_id,
        first_value(gender IGNORE NULLS) OVER newest_first AS gender,
        first_value(birth_year IGNORE NULLS) OVER newest_first AS birth_year,
        first_value(city IGNORE NULLS) OVER newest_first AS city,
        first_value(region IGNORE NULLS) OVER newest_first AS region,
        first_value(signup_ts IGNORE NULLS) OVER newest_first AS signup_ts,
        first_value(name IGNORE NULLS) OVER newest_first AS name,
        first_value(email IGNORE NULLS) OVER newest_first AS email,
        first_value(phone IGNORE NULLS) OVER newest_first AS phone,
        _batch_id,
        row_number() OVER newest_first AS newest
    FROM cleaned
    WINDOW newest_first AS (
        PARTITION BY user_id
        ORDER BY
            _batch_id DESC, _record DESC NULLS LAST,
            signup_ts DESC, gender, birth_year, city, region, name, email, phone
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    )
)

SELECT user_id, gender, birth_year, city, region, signup_ts, name, email, phone, _batch_id
FROM merged
WHERE newest = 1
