-- The demo database, made once, on the first start (postgres-demo runs it as the superuser with
-- psql, ON_ERROR_STOP, into a cluster that only becomes the real one when this has succeeded).
--   shop.landing.customers   500 synthetic customers with the demo churn model's eight features
--   shop.scores              where jobs write their scores
--   role modelyard           reads landing, writes scores; its password is set at every start

CREATE ROLE modelyard LOGIN;
CREATE DATABASE shop;
REVOKE ALL ON DATABASE shop FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE shop TO modelyard;

\connect shop
BEGIN;

CREATE SCHEMA landing;
COMMENT ON SCHEMA landing IS 'Source tables: modelyard reads them';
GRANT USAGE ON SCHEMA landing TO modelyard;
ALTER DEFAULT PRIVILEGES IN SCHEMA landing GRANT SELECT ON TABLES TO modelyard;

CREATE SCHEMA scores;
COMMENT ON SCHEMA scores IS 'Scores: modelyard creates its tables here and writes them';
GRANT USAGE, CREATE ON SCHEMA scores TO modelyard;
ALTER DEFAULT PRIVILEGES IN SCHEMA scores GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO modelyard;

-- The features of the demo model (src/modelyard/demo.py, NUMERIC + CATEGORICAL), as float8 where
-- the model takes floats: numeric would reach Arrow as strings.
CREATE TABLE landing.customers (
    id bigint PRIMARY KEY,
    tenure_months integer NOT NULL,
    monthly_charges double precision NOT NULL,
    support_calls integer NOT NULL,
    data_usage_gb double precision NOT NULL,
    plan text NOT NULL,
    contract text NOT NULL,
    payment_method text NOT NULL,
    region text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE landing.customers IS 'Demo customers to score with the churn model (synthetic)';

-- Roughly the distributions of demo.customers(): the same rows on every first start (setseed);
-- updated_at spread over the last week, for reads of what changed since a time.
SELECT setseed(0.11);
INSERT INTO landing.customers
    (id, tenure_months, monthly_charges, support_calls, data_usage_gb, plan, contract, payment_method,
     region, updated_at)
SELECT
    id,
    floor(tenure * 73)::integer,
    round(greatest(15, least(150, 65 + 25 * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2)))::numeric, 2)::float8,
    floor(-ln(1 - calls) * 1.5)::integer,
    round((-8 * ln(1 - g1) - 8 * ln(1 - g2))::numeric, 1)::float8,
    CASE WHEN plan < 0.5 THEN 'basic' WHEN plan < 0.8 THEN 'standard' ELSE 'premium' END,
    CASE WHEN contract < 0.55 THEN 'month-to-month' WHEN contract < 0.8 THEN 'one-year' ELSE 'two-year' END,
    (ARRAY['card', 'bank-transfer', 'invoice', 'wallet'])[1 + floor(payment * 4)::integer],
    (ARRAY['north', 'south', 'east', 'west'])[1 + floor(region * 4)::integer],
    date_trunc('second', now() - age * interval '7 days')
FROM (
    SELECT id, random() AS tenure, random() AS u1, random() AS u2, random() AS calls, random() AS g1,
           random() AS g2, random() AS plan, random() AS contract, random() AS payment,
           random() AS region, random() AS age
    FROM generate_series(1, 500) AS id
) AS draws;
ANALYZE landing.customers;

COMMIT;
