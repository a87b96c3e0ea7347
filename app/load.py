"""`python -m app.load`: replace the site table with a checked copy of the UNESCO list.

Rows go through the driver's COPY into a temporary staging table, and the live table's contents
are replaced from it inside the same transaction: readers keep seeing the old rows until COMMIT,
and any failure (bad data, lost connection, Ctrl-C) rolls back to the old rows.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import driver
from app.settings import Settings, get_settings
from app.sources import FEED_URL, Rejected, SiteRow, SourceError, download, read_file, validate
from app.sources import read_xml as _read_xml

log = logging.getLogger(__name__)

SCHEMA_SQL = Path(__file__).resolve().parent.parent / "sql" / "schema.sql"
STAGING = "whc_sites_staging"
COLUMNS = (
    "id_no", "name_en", "category", "states_name_en", "iso_code", "region_en",
    "date_inscribed", "danger", "transboundary", "short_description_en", "longitude", "latitude",
)
# Plain column types only, so COPY needs no PostGIS codec; the point is built in SQL below.
_CREATE_STAGING = f"""
CREATE TEMPORARY TABLE {STAGING} (
    id_no integer, name_en text, category text, states_name_en text, iso_code text,
    region_en text, date_inscribed smallint, danger boolean, transboundary boolean,
    short_description_en text, longitude double precision, latitude double precision
) ON COMMIT DROP
"""
# DELETE (not TRUNCATE) so that readers with an older snapshot still see every old row.
_REPLACE = f"""
DELETE FROM whc_sites;
INSERT INTO whc_sites (id_no, name_en, category, states_name_en, iso_code, region_en,
                       date_inscribed, danger, transboundary, short_description_en, location)
SELECT id_no, name_en, category, states_name_en, iso_code, region_en, date_inscribed, danger,
       transboundary, short_description_en,
       ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography
FROM {STAGING};
"""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load did, for the closing summary."""

    loaded: int
    rejected: list[Rejected]
    before: int


def schema_sql() -> str:
    return SCHEMA_SQL.read_text(encoding="utf-8")


async def apply_schema(conn: Any) -> None:
    """Create the table and index if missing (the script is idempotent)."""
    await conn.execute(schema_sql())


class _Progress:
    """A one-line progress bar on a terminal; silent when stderr is a file or a pipe."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream, self.done = total, stream, 0
        self.enabled = stream.isatty() and total > 0

    def wrap(self, rows: Iterable[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
        for row in rows:
            self.done += 1
            if self.enabled and (self.done % 50 == 0 or self.done == self.total):
                width = 30
                filled = width * self.done // self.total
                self.stream.write(
                    f"\rloading [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                )
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()
            yield row


def records(sites: Iterable[SiteRow]) -> Iterator[tuple[object, ...]]:
    for s in sites:
        yield tuple(getattr(s, c) for c in COLUMNS)


async def replace_sites(
    conn: Any,
    sites: Sequence[SiteRow],
    *,
    rows: Iterable[tuple[object, ...]] | None = None,
    progress: TextIO | None = None,
) -> int:
    """Swap the table's contents for `sites` in one transaction, then ANALYZE.

    Args:
        rows: the COPY records to send instead of `records(sites)` (tests use it to fail
            half-way through the stream).

    Returns:
        The number of rows in the table before the load.

    Raises:
        driver.Error: the load was rolled back and the old rows are still there.
    """
    await apply_schema(conn)
    before = int(await conn.fetchval("SELECT count(*) FROM whc_sites"))
    stream = _Progress(len(sites), progress or sys.stderr).wrap(
        rows if rows is not None else records(sites)
    )
    async with conn.transaction():
        await conn.execute(_CREATE_STAGING)
        await conn.copy_records_to_table(STAGING, records=stream, columns=list(COLUMNS))
        await conn.execute(_REPLACE)
    # Fresh statistics so the planner keeps choosing the GiST index for the KNN query.
    await conn.execute("ANALYZE whc_sites")
    return before


def read_source(
    path: Path | None, url: str, timeout: float
) -> tuple[list[SiteRow], list[Rejected]]:
    """Read and check the list from a file when one is given, else download the feed."""
    if path is not None:
        return validate(read_file(path))
    log.info("downloading %s", url)
    return validate(_read_xml(download(url, timeout=timeout)))


async def load(settings: Settings, path: Path | None, url: str = FEED_URL) -> LoadResult:
    """Read, check and load the list into the database named by the settings."""
    sites, rejected = read_source(path, url, settings.download_timeout_s)
    for bad in rejected:
        log.warning("rejected %s", bad)
    if not sites:
        raise SourceError("no valid rows: the table was left as it was")
    conn = await driver.connect(
        settings.database_url,
        ws_proxy=settings.ws_proxy,
        use_secure_websocket=settings.ws_secure,
    )
    try:
        before = await replace_sites(conn, sites)
    finally:
        await conn.close()
    return LoadResult(loaded=len(sites), rejected=rejected, before=before)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.load",
        description="Load the UNESCO World Heritage list into the whc_sites table.",
    )
    parser.add_argument(
        "--file", type=Path, default=None,
        help="a saved copy of the XML feed or the 2021-style CSV export (default: WHC_DATA, "
        "else download the feed)",
    )
    parser.add_argument(
        "--url", default=FEED_URL, help="the feed to download (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    path = args.file or settings.whc_data
    try:
        result = asyncio.run(load(settings, path, args.url))
    except SourceError as exc:
        log.error("%s", exc)
        return 2
    except (driver.Error, OSError, TimeoutError) as exc:
        log.error("load failed, the table keeps its previous rows: %s", exc)
        return 1
    except Exception as exc:  # a bug or a foreign error: still one clear line, then details
        log.error("load failed, the table keeps its previous rows: %r", exc)
        log.debug("details", exc_info=exc)
        return 1
    log.info(
        "loaded %d sites (%d before), rejected %d rows; table analysed",
        result.loaded, result.before, len(result.rejected),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
