-- Sample data of the SPEC cases in PostgreSQL: `users` (source) and `processed_users` (target).
-- Usage: psql "$POSTGRESQL_URL" -v ON_ERROR_STOP=1 -v rows=1000000 -f postgres.sql
-- Deterministic: row n always has the same values. A third of the users are active, a third
-- inactive, a third draft.
\if :{?rows}
\else
\set rows 10000
\endif

DROP TABLE IF EXISTS processed_users;
DROP TABLE IF EXISTS users;

CREATE TABLE users (
    id         bigint PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL,
    age        integer NOT NULL,
    status     text NOT NULL,
    score      numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL
);

INSERT INTO users (id, name, email, age, status, score, created_at)
SELECT n,
       'User ' || n,
       'user' || n || '@example.com',
       18 + (n * 7) % 60,
       (ARRAY['active', 'inactive', 'draft'])[1 + n % 3],
       ((n * 37) % 10000) / 100.0,
       timestamptz '2024-01-01 00:00:00+00' + n * interval '1 minute'
FROM generate_series(1, :rows) AS n;

CREATE TABLE processed_users (
    id           bigint PRIMARY KEY,
    full_name    text NOT NULL,
    email        text NOT NULL,
    age          integer NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

ANALYZE users;
