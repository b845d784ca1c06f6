-- How the profile's SQL reads the names a shop sends: categories, brands and search queries.
-- One definition each, called by the models that compare or group them (stg_items,
-- int_user_interests, rec_user_item_day) and by models/next_category.toml's labels. Ingest has
-- already trimmed the ends of every value and made blank ones NULL.

-- A category path as dotted lower-case levels: levels sent as `a > b`, `a>b`, `a / b` or `a/b`
-- become `a.b` (helper-89: `Women / Dresses` and `women/dresses` were two categories); empty
-- levels and separators at the ends go (`/shoes`, `a // b`). A `/` in a path with `>` is part of
-- a name, spaces around it gone (Naver's 디지털/가전>음향기기 has two levels). Turkish ı is i, so
-- KADIN and Kadın are one name. NULL when nothing is left. (The patterns are constants: DuckDB
-- compiles a computed one for every row.)
CREATE MACRO category_levels(path) AS nullif(
    replace(
        CASE
            WHEN contains(path, '>') THEN trim(
                regexp_replace(
                    regexp_replace(lower(trim(path)), '[\s\x{00A0}]*/[\s\x{00A0}]*', '/', 'g'),
                    '[\s\x{00A0}>]*>[\s\x{00A0}>]*', '.', 'g'
                ),
                '.'
            )
            WHEN contains(path, '/') THEN trim(
                regexp_replace(lower(trim(path)), '[\s\x{00A0}/]*/[\s\x{00A0}/]*', '.', 'g'),
                '.'
            )
            ELSE lower(trim(path))
        END,
        'ı', 'i'
    ),
    ''
);

-- A brand or a search query as compared: lower case, trimmed, Turkish ı as i; NULL when blank.
CREATE MACRO name_key(name) AS nullif(replace(lower(trim(name)), 'ı', 'i'), '');
