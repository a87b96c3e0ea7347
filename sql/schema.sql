-- The World Heritage site table the app reads and app/load.py fills.
-- Idempotent: every statement is a no-op when its object already exists, so the loader and the
-- demo apply it on every run.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE IF NOT EXISTS whc_sites (
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

-- Serves the KNN `ORDER BY location <-> point` and the ST_DWithin candidate bound.
CREATE INDEX IF NOT EXISTS whc_sites_location_gist ON whc_sites USING gist (location);

-- Where the rows in whc_sites came from (one row, replaced by every load in the same
-- transaction): the app reports it at /api/meta so a page showing the invented sample says so.
CREATE TABLE IF NOT EXISTS whc_dataset (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    source     text NOT NULL,
    sample     boolean NOT NULL,
    sites      integer NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now()
);
