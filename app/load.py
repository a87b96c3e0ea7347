"""`python -m app.load`: replace the site table with a checked copy of the UNESCO list.

Rows go through the driver's COPY into a temporary staging table, and the live table's contents
are replaced from it inside the same transaction: readers keep seeing the old rows until COMMIT,
and any failure (bad data, lost connection, Ctrl-C) rolls back to the old rows. Damaged input
is refused before anything is replaced: a file cut short, a load that would shrink the table by
more than a set fraction (a wrong or partial file), or, in strict mode, any rejected row.
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
from app.sample import sample_rows
from app.settings import Settings, get_settings
from app.sources import (
    FEED_URL,
    Rejected,
    SiteRow,
    SourceError,
    download,
    read_file,
    summarize,
    validate,
)
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
_RECORD_SOURCE = """
INSERT INTO whc_dataset (only_row, source, sample, sites, loaded_at)
VALUES (true, $1, $2, $3, now())
ON CONFLICT (only_row) DO UPDATE
SET source = excluded.source, sample = excluded.sample, sites = excluded.sites,
    loaded_at = excluded.loaded_at
"""
# A new list smaller than the table by more than this is refused unless allowed explicitly: the
# real list only grows (about 20-50 sites a year), so a big drop means a wrong or partial file.
MAX_SHRINK = 0.10
SAMPLE_SOURCE = "the invented sample (app/sample.py)"


class LoadRefused(SourceError):
    """The input was read but is not loaded (shrink guard, strict mode); the table is kept."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load did, for the closing summary."""

    loaded: int
    rejected: list[Rejected]
    before: int
    source: str = ""
    sample: bool = False


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


def check_shrink(before: int, after: int, max_shrink: float | None) -> None:
    """Refuse a load that leaves fewer than (1 - max_shrink) of the rows there were.

    Raises:
        LoadRefused: with the counts and the option that allows it.
    """
    if max_shrink is None or before == 0 or after >= before * (1 - max_shrink):
        return
    raise LoadRefused(
        f"refusing to replace {before} sites with {after} ({1 - after / before:.0%} fewer, "
        f"more than the {max_shrink:.0%} allowed): is this the whole list? The table keeps "
        "its rows; run again with --allow-shrink if the smaller list is right"
    )


async def replace_sites(
    conn: Any,
    sites: Sequence[SiteRow],
    *,
    rows: Iterable[tuple[object, ...]] | None = None,
    progress: TextIO | None = None,
    source: str = "",
    sample: bool = False,
    max_shrink: float | None = None,
) -> int:
    """Swap the table's contents for `sites` in one transaction, then ANALYZE.

    Args:
        rows: the COPY records to send instead of `records(sites)` (tests use it to fail
            half-way through the stream).
        source, sample: recorded in `whc_dataset` with the new rows (for /api/meta).
        max_shrink: refuse when `sites` is smaller than the table by more than this fraction
            (counted inside the transaction); None allows any size.

    Returns:
        The number of rows in the table before the load.

    Raises:
        LoadRefused: the shrink guard refused; nothing changed.
        driver.Error: the load was rolled back and the old rows are still there.
    """
    await apply_schema(conn)
    stream = _Progress(len(sites), progress or sys.stderr).wrap(
        rows if rows is not None else records(sites)
    )
    async with conn.transaction():
        before = int(await conn.fetchval("SELECT count(*) FROM whc_sites"))
        check_shrink(before, len(sites), max_shrink)
        await conn.execute(_CREATE_STAGING)
        await conn.copy_records_to_table(STAGING, records=stream, columns=list(COLUMNS))
        await conn.execute(_REPLACE)
        await conn.execute(_RECORD_SOURCE, source, sample, len(sites))
    # Fresh statistics so the planner keeps choosing the GiST index for the KNN query.
    await conn.execute("ANALYZE whc_sites")
    return before


def read_source(
    path: Path | None, url: str, timeout: float, *, sample: bool = False
) -> tuple[list[SiteRow], list[Rejected]]:
    """Read and check the list: the invented sample, a file when one is given, else the feed."""
    if sample:
        return validate(sample_rows())
    if path is not None:
        return validate(read_file(path))
    log.info("downloading %s", url)
    return validate(_read_xml(download(url, timeout=timeout)))


def describe_source(path: Path | None, url: str, *, sample: bool = False) -> str:
    """The source as recorded in whc_dataset and shown by /api/meta."""
    if sample:
        return SAMPLE_SOURCE
    return str(path) if path is not None else url


async def load(
    settings: Settings,
    path: Path | None,
    url: str = FEED_URL,
    *,
    sample: bool = False,
    fallback_sample: bool = False,
    strict: bool = False,
    max_shrink: float | None = MAX_SHRINK,
) -> LoadResult:
    """Read, check and load the list into the database named by the settings.

    Args:
        sample: load the invented sample (app/sample.py) instead of a file or the feed.
        fallback_sample: with no file, load the sample when the feed cannot be downloaded
            (a demo must start anyway; a given file that is broken is still an error).
        strict: refuse the load when any row is rejected.
        max_shrink: the shrink guard's fraction (None: any size is accepted).

    Raises:
        SourceError: unreadable or truncated input, no valid rows, or a refusal
            (`LoadRefused`); the table is unchanged.
        driver.Error: the database refused or went away; the table is unchanged.
    """
    try:
        sites, rejected = read_source(path, url, settings.download_timeout_s, sample=sample)
    except SourceError as exc:
        if not (fallback_sample and path is None and not sample):
            raise
        log.warning("%s", exc)
        log.warning("loading the invented sample list instead (not UNESCO's list)")
        sample = True
        sites, rejected = read_source(None, url, settings.download_timeout_s, sample=True)
    for bad in rejected:
        log.warning("rejected %s", bad)
    if rejected and strict:
        raise LoadRefused(
            f"strict mode: {len(rejected)} rows rejected ({summarize(rejected)}); "
            "the table was left as it was"
        )
    if not sites:
        raise SourceError("no valid rows: the table was left as it was")
    source = describe_source(path, url, sample=sample)
    conn = await driver.connect(
        settings.database_url,
        ws_proxy=settings.ws_proxy,
        use_secure_websocket=settings.ws_secure,
    )
    try:
        before = await replace_sites(
            conn, sites, source=source, sample=sample, max_shrink=max_shrink
        )
    finally:
        await conn.close()
    return LoadResult(
        loaded=len(sites), rejected=rejected, before=before, source=source, sample=sample
    )


def summary(result: LoadResult) -> str:
    """The closing line: counts, and each kind of rejection with its count."""
    kinds = f" ({summarize(result.rejected)})" if result.rejected else ""
    return (
        f"loaded {result.loaded} sites ({result.before} before), rejected "
        f"{len(result.rejected)} rows{kinds}; table analysed"
    )


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in 0..1 (e.g. 0.1)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.load",
        description="Load the UNESCO World Heritage list into the whc_sites table.",
    )
    parser.add_argument(
        "file", type=Path, nargs="?", default=None,
        help="a saved copy of the XML feed or the 2021-style CSV export (default: WHC_DATA, "
        "else download the feed)",
    )
    parser.add_argument("--file", type=Path, dest="file_option", default=None,
                        help="the same as FILE")
    parser.add_argument(
        "--url", default=FEED_URL, help="the feed to download (default: %(default)s)"
    )
    parser.add_argument(
        "--sample", action="store_true",
        help="load the invented sample list (for trying things out without the real list)",
    )
    parser.add_argument(
        "--fallback-sample", action="store_true",
        help="with no file, load the invented sample when the feed cannot be downloaded",
    )
    parser.add_argument(
        "--strict", action="store_true", help="refuse the load if any row is rejected"
    )
    parser.add_argument(
        "--allow-shrink", action="store_true",
        help="load even if the table would lose more than --max-shrink of its rows",
    )
    parser.add_argument(
        "--max-shrink", type=_fraction, default=MAX_SHRINK, metavar="FRACTION",
        help="the largest drop in row count loaded without --allow-shrink (default: "
        "%(default)s)",
    )
    args = parser.parse_args(argv)
    if args.file is not None and args.file_option is not None:
        parser.error("give the file once: as FILE or as --file")
    if args.sample and (args.file or args.file_option):
        parser.error("--sample loads the invented list: give no file with it")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    path = args.file or args.file_option or (None if args.sample else settings.whc_data)
    max_shrink = None if args.allow_shrink else args.max_shrink
    try:
        result = asyncio.run(
            load(settings, path, args.url, sample=args.sample, strict=args.strict,
                 max_shrink=max_shrink, fallback_sample=args.fallback_sample)
        )
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
    if result.sample:
        log.info("loaded the invented sample, not the real list")
    log.info("%s", summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
