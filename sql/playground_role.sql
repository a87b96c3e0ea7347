-- The role the /playground page connects as, from visitors' browsers, through the proxy.
-- Its password reaches every visitor (it is in the page's config), so what protects the
-- database is this role's grants and limits, enforced by Postgres itself:
--   * SELECT on whc_sites and nothing else of ours (PostGIS's spatial_ref_sys and the system
--     catalogs stay readable, as for any role);
--   * read-only transactions by default, short statement / lock / idle timeouts, a small
--     work_mem and temp_file_limit, and a connection cap.
-- Run after sql/schema.sql, as a superuser (temp_file_limit is a superuser setting).
-- Idempotent. Change the password in production with ALTER ROLE if you like; it stays public.
-- On PostgreSQL 15+ ordinary roles cannot create objects in schema public; on older servers run
-- REVOKE CREATE ON SCHEMA public FROM PUBLIC as well.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'playground') THEN
        CREATE ROLE playground LOGIN PASSWORD 'playground';
    END IF;
END
$$;

ALTER ROLE playground NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS
    CONNECTION LIMIT 20;
ALTER ROLE playground SET default_transaction_read_only = on;
ALTER ROLE playground SET statement_timeout = '2s';
ALTER ROLE playground SET lock_timeout = '1s';
ALTER ROLE playground SET idle_in_transaction_session_timeout = '10s';
ALTER ROLE playground SET idle_session_timeout = '5min';
ALTER ROLE playground SET work_mem = '4MB';
ALTER ROLE playground SET temp_file_limit = '16MB';

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM playground;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM playground;
GRANT USAGE ON SCHEMA public TO playground;
GRANT SELECT ON whc_sites TO playground;
