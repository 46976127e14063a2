-- The analyst views live in schema echain; role echain_reader may read them and nothing else.
-- Roles are shared by every database of the server, so another database may create it at the
-- same moment; a migrating user without CREATEROLE gets a notice, not a failure.
CREATE SCHEMA IF NOT EXISTS echain;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'echain_reader') THEN
        CREATE ROLE echain_reader NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot create role echain_reader (needs CREATEROLE); create it and re-run migrate to grant it the echain views';
END
$$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'echain_reader') THEN
        GRANT USAGE ON SCHEMA echain TO echain_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA echain TO echain_reader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA echain GRANT SELECT ON TABLES TO echain_reader;
    END IF;
END
$$;
