-- The services' PostgreSQL roles (README, "Security"): each service migrates and runs as
-- its own role, which owns its own schema and has no rights on the others'. The
-- superuser of the compose file (POSTGRES_USER) stays for the operator; no service uses it.
--
-- The postgres image runs this file once, at the first start of an empty data directory
-- (/docker-entrypoint-initdb.d: psql -v ON_ERROR_STOP=1 as POSTGRES_USER on POSTGRES_DB);
-- deploy/compose's tests run it the same way. It is idempotent. The passwords come from
-- the container's environment (\getenv, psql 15 or newer); a missing one stops the
-- script, and the container, with an error.
--
-- A role gets LOGIN and its schema (created here, owned by it: its migrations create its
-- tables, outbox and idempotency record in it). It gets nothing on the database beyond
-- what every role has (CONNECT, TEMP), and so no CREATE to make other schemas, and no USAGE
-- on the other services' schemas.

-- order: schema orders
\getenv order_password ORDER_DB_PASSWORD
SELECT 'CREATE ROLE order_svc' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'order_svc') \gexec
ALTER ROLE order_svc WITH LOGIN PASSWORD :'order_password';
CREATE SCHEMA IF NOT EXISTS orders AUTHORIZATION order_svc;
ALTER SCHEMA orders OWNER TO order_svc;
REVOKE ALL ON SCHEMA orders FROM PUBLIC;

-- inventory: schema inventory
\getenv inventory_password INVENTORY_DB_PASSWORD
SELECT 'CREATE ROLE inventory_svc' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inventory_svc') \gexec
ALTER ROLE inventory_svc WITH LOGIN PASSWORD :'inventory_password';
CREATE SCHEMA IF NOT EXISTS inventory AUTHORIZATION inventory_svc;
ALTER SCHEMA inventory OWNER TO inventory_svc;
REVOKE ALL ON SCHEMA inventory FROM PUBLIC;

-- (loudly new service adds a service's role above this line)
