-- The World Heritage site table the app reads and app/load.py fills.
-- Idempotent: every object is created only when the catalogs lack it, so the loader and the
-- demo apply it on every run. The checks are written out (not `IF NOT EXISTS`) because
-- `CREATE ... IF NOT EXISTS` sends a NOTICE ("already exists, skipping") on every run after the
-- first, which the driver logs: a repeated run is silent this way.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'postgis') THEN
        CREATE EXTENSION postgis;
    END IF;

    IF to_regclass('whc_sites') IS NULL THEN
        CREATE TABLE whc_sites (
            id_no           integer PRIMARY KEY CHECK (id_no > 0),
            name_en         text NOT NULL CHECK (name_en <> ''),
            category        text NOT NULL CHECK (category IN ('Cultural', 'Natural', 'Mixed')),
            states_name_en  text NOT NULL DEFAULT '',
            iso_code        text NOT NULL DEFAULT '',
            region_en       text NOT NULL DEFAULT '',
            date_inscribed  smallint NOT NULL CHECK (date_inscribed BETWEEN 1978 AND 2100),
            danger          boolean NOT NULL DEFAULT false,
            transboundary   boolean NOT NULL DEFAULT false,
            short_description_en text NOT NULL DEFAULT '',
            location        geography(Point, 4326) NOT NULL
        );
    END IF;

    -- Serves the KNN `ORDER BY location <-> point` and the ST_DWithin candidate bound.
    IF to_regclass('whc_sites_location_gist') IS NULL THEN
        CREATE INDEX whc_sites_location_gist ON whc_sites USING gist (location);
    END IF;

    -- Where the rows in whc_sites came from (one row, replaced by every load in the same
    -- transaction): the app reports it at /api/meta so a page showing the invented sample says
    -- so.
    IF to_regclass('whc_dataset') IS NULL THEN
        CREATE TABLE whc_dataset (
            only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            source     text NOT NULL,
            sample     boolean NOT NULL,
            sites      integer NOT NULL,
            loaded_at  timestamptz NOT NULL DEFAULT now()
        );
    END IF;
END
$$;
