-- The k nearest sites to a point ($1 longitude, $2 latitude, $3 k), nearest first.
-- `<->` on geography is the sphere distance in metres and is answered by the GiST index
-- (index-ordered scan, no sort node); there is deliberately no second sort key, which would
-- force a full sort. app/sites.py holds the same query plus the cell-radius candidate bound.
SELECT id_no, name_en, category, states_name_en, iso_code, date_inscribed,
       ST_Y(location::geometry) AS latitude,
       ST_X(location::geometry) AS longitude,
       location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography AS distance
FROM whc_sites
ORDER BY location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography
LIMIT $3;
