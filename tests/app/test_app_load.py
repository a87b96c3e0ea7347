"""The loader against the real database through the proxy: both formats, the CLI, rejected
rows, re-runs, downloads, and loads that fail half-way leaving the old rows in place."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import driver
from app.load import records, replace_sites
from app.sample import sample_csv as sample_bytes
from app.sample import sample_rows
from app.sources import SiteRow, read_file, validate
from tests.app.conftest import DB, ROOT, SAMPLE_XML
from tests.app.test_app_sources import feed_server  # noqa: F401  (fixture)


def run_loader(db: DB, *args: str, whc_data: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db.dsn(), "WS_PROXY": db.ws_proxy, "WS_SECURE": "false"}
    env.pop("WHC_DATA", None)
    if whc_data is not None:
        env["WHC_DATA"] = whc_data
    return subprocess.run(
        [sys.executable, "-m", "app.load", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )


def count(db: DB) -> int:
    return int(db.psql("SELECT count(*) FROM whc_sites"))


def test_cli_loads_the_csv_and_reports_counts(scratch_db: DB, sample_csv: Path) -> None:
    """The README's form, `python -m app.load FILE`, on the invented list in CSV form."""
    expected = len(validate(read_file(sample_csv))[0])
    r = run_loader(scratch_db, str(sample_csv))
    assert r.returncode == 0, r.stderr
    assert f"loaded {expected} sites (0 before), rejected 0 rows" in r.stderr
    assert "loading [" not in r.stderr  # no progress bar when stderr is not a terminal
    assert count(scratch_db) == expected
    # ANALYZE ran, so the planner has statistics for the new rows
    assert scratch_db.psql(
        "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'whc_sites'"
    ) == "t"
    assert scratch_db.psql("SELECT source || '|' || sample || '|' || sites FROM whc_dataset") == (
        f"{sample_csv}|false|{expected}"
    )
    # running it again is safe and replaces rather than appends; --file is the same as FILE
    r = run_loader(scratch_db, "--file", str(sample_csv))
    assert r.returncode == 0, r.stderr
    assert f"loaded {expected} sites ({expected} before)" in r.stderr
    assert count(scratch_db) == expected
    r = run_loader(scratch_db, str(sample_csv), "--file", str(sample_csv))
    assert r.returncode == 2 and "give the file once" in r.stderr


def test_cli_loads_the_invented_sample(scratch_db: DB) -> None:
    r = run_loader(scratch_db, "--sample")
    assert r.returncode == 0, r.stderr
    assert "loaded the invented sample, not the real list" in r.stderr
    assert scratch_db.psql("SELECT sample FROM whc_dataset") == "t"
    assert count(scratch_db) == len(sample_rows())


def test_cli_loads_the_real_export(scratch_db: DB, whc_csv: Path) -> None:
    expected = len(validate(read_file(whc_csv))[0])
    r = run_loader(scratch_db, str(whc_csv))
    assert r.returncode == 0, r.stderr
    assert f"loaded {expected} sites (0 before), rejected 0 rows" in r.stderr
    assert "loading [" not in r.stderr  # no progress bar when stderr is not a terminal
    assert count(scratch_db) == expected
    # ANALYZE ran, so the planner has statistics for the new rows
    assert scratch_db.psql(
        "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'whc_sites'"
    ) == "t"
    row = scratch_db.psql(
        "SELECT name_en, round(ST_Y(location::geometry)::numeric, 4), "
        "round(ST_X(location::geometry)::numeric, 4) FROM whc_sites WHERE id_no = 447"
    )
    assert row.startswith("Uluru-Kata Tjuta National Park|")

    # running it again is safe and replaces rather than appends
    r = run_loader(scratch_db, whc_data=str(whc_csv))
    assert r.returncode == 0, r.stderr
    assert f"loaded {expected} sites ({expected} before)" in r.stderr
    assert count(scratch_db) == expected


def test_cli_loads_saved_xml_and_lists_rejected_rows(scratch_db: DB) -> None:
    r = run_loader(scratch_db, "--file", str(SAMPLE_XML))
    assert r.returncode == 0, r.stderr
    assert "loaded 4 sites (0 before), rejected 2 rows (1 bad latitude, 1 bad category)" in r.stderr
    assert "rejected row 5 (id_no 90005): latitude '95.0' is outside -90..90" in r.stderr
    assert "rejected row 6 (id_no 90006): category 'Imaginary'" in r.stderr
    assert scratch_db.psql(
        "SELECT id_no || ':' || name_en || ':' || danger || ':' || transboundary "
        "FROM whc_sites ORDER BY id_no LIMIT 2"
    ).splitlines() == ["90001:Old Town of Examplia:false:false", "90002:Sample Gorge:true:true"]


def test_cli_downloads_the_feed(scratch_db: DB, feed_server: str) -> None:  # noqa: F811
    r = run_loader(scratch_db, "--url", feed_server + "/en/list/xml/")
    assert r.returncode == 0, r.stderr
    assert "downloading http://127.0.0.1" in r.stderr
    assert count(scratch_db) == 4


def test_refused_download_exits_with_instructions(scratch_db: DB, feed_server: str) -> None:  # noqa: F811
    r = run_loader(scratch_db, "--url", feed_server + "/blocked/")
    assert r.returncode == 2
    assert "HTTP 403" in r.stderr and "python -m app.load whc-sites.xml" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_database_exits_cleanly(scratch_db: DB, sample_csv: Path) -> None:
    env_db = DB(scratch_db.pg, "127.0.0.1:9/v2", scratch_db.name)  # nothing listens on port 9
    r = run_loader(env_db, "--file", str(sample_csv))
    assert r.returncode == 1
    assert "load failed, the table keeps its previous rows" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture
async def loaded_sample(scratch_db: DB) -> list[SiteRow]:
    sites, _ = validate(read_file(SAMPLE_XML))
    conn = await scratch_db.connect()
    try:
        await replace_sites(conn, sites)
    finally:
        await conn.close()
    return sites


def _names(db: DB) -> list[str]:
    return db.psql("SELECT name_en FROM whc_sites ORDER BY id_no").splitlines()


async def test_stream_failing_half_way_keeps_old_rows(
    scratch_db: DB, loaded_sample: list[SiteRow], sample_csv: Path
) -> None:
    before = _names(scratch_db)
    sites, _ = validate(read_file(sample_csv))
    seen_during_load: list[int] = []

    def rows() -> Iterator[tuple[object, ...]]:
        for i, rec in enumerate(records(sites)):
            if i == len(sites) // 2:
                # another session still sees exactly the old table in the middle of the load
                seen_during_load.append(count(scratch_db))
                raise RuntimeError("source broke half-way")
            yield rec

    conn = await scratch_db.connect()
    try:
        with pytest.raises((RuntimeError, driver.Error)):
            await replace_sites(conn, sites, rows=rows())
    finally:
        await conn.close()
    assert seen_during_load == [len(before)]
    assert _names(scratch_db) == before


async def test_row_refused_by_the_database_rolls_back(
    scratch_db: DB, loaded_sample: list[SiteRow], sample_csv: Path
) -> None:
    before = _names(scratch_db)
    sites, _ = validate(read_file(sample_csv))
    # bypass validation: a year the table's CHECK refuses, near the end of the stream
    sites[-3] = dataclasses.replace(sites[-3], date_inscribed=1850)
    conn = await scratch_db.connect()
    try:
        with pytest.raises(driver.PostgresError) as info:
            await replace_sites(conn, sites)
        assert info.value.sqlstate == "23514"  # check_violation
    finally:
        await conn.close()
    assert _names(scratch_db) == before


async def test_connection_killed_mid_copy_keeps_old_rows(
    scratch_db: DB, loaded_sample: list[SiteRow], sample_csv: Path
) -> None:
    before = _names(scratch_db)
    sites, _ = validate(read_file(sample_csv))

    def rows() -> Iterator[tuple[object, ...]]:
        for i, rec in enumerate(records(sites)):
            if i == len(sites) // 2:
                scratch_db.psql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{scratch_db.name}' AND usename = 'scram_user'"
                )
            yield rec

    conn = await scratch_db.connect()
    try:
        with pytest.raises(driver.Error):
            await replace_sites(conn, sites, rows=rows())
    finally:
        await conn.close()
    assert _names(scratch_db) == before


# -- damaged input (issue 18): refused, and the old table kept ----------------------------


@pytest.fixture
def loaded_full(scratch_db: DB, sample_csv: Path) -> int:
    """The scratch table holding the whole invented list; returns its row count."""
    r = run_loader(scratch_db, str(sample_csv))
    assert r.returncode == 0, r.stderr
    return count(scratch_db)


def _fingerprint(db: DB) -> str:
    return db.psql("SELECT count(*) || ':' || md5(string_agg(id_no::text || name_en, ',' "
                   "ORDER BY id_no)) FROM whc_sites")


def _cut_inside_quoted_field(data: bytes) -> bytes:
    middle = data.index(b'"<p>An invented', len(data) // 2)
    return data[: middle + 20]


@pytest.mark.parametrize(
    ("name", "damage", "words"),
    [
        ("mid-row.csv", lambda d: d[: d.index(b"\r\n", len(d) // 2) + 30], "fields"),
        ("in-quotes.csv", _cut_inside_quoted_field, "inside a quoted field"),
        ("no-final-newline.csv", lambda d: d.rstrip(b"\r\n"), "no line break"),
        ("cut.xml", lambda d: d[: len(d) // 2], "ends mid-record"),
    ],
)
def test_truncated_files_are_refused(
    scratch_db: DB, loaded_full: int, tmp_path: Path, name: str, damage: Any, words: str
) -> None:
    before = _fingerprint(scratch_db)
    source = SAMPLE_XML.read_bytes() if name.endswith(".xml") else sample_bytes()
    bad = tmp_path / name
    bad.write_bytes(damage(source))
    r = run_loader(scratch_db, str(bad), "--allow-shrink")
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr
    assert _fingerprint(scratch_db) == before


def test_a_load_that_shrinks_the_table_is_refused_unless_allowed(
    scratch_db: DB, loaded_full: int, tmp_path: Path
) -> None:
    before = _fingerprint(scratch_db)
    lines = sample_bytes().split(b"\r\n")
    keep = int(loaded_full * 0.85)  # 15% fewer rows: more than the default 10%
    small = tmp_path / "small.csv"
    small.write_bytes(b"\r\n".join(lines[: keep + 1]) + b"\r\n")
    r = run_loader(scratch_db, str(small))
    assert r.returncode == 2
    assert f"refusing to replace {loaded_full} sites with {keep}" in r.stderr
    assert "--allow-shrink" in r.stderr
    assert _fingerprint(scratch_db) == before
    r = run_loader(scratch_db, str(small), "--max-shrink", "0.2")
    assert r.returncode == 0, r.stderr
    assert count(scratch_db) == keep
    # a 3-row file (issue 18's "wrong file") against it: refused, then allowed explicitly
    three = tmp_path / "three.csv"
    three.write_bytes(b"\r\n".join(lines[:4]) + b"\r\n")
    r = run_loader(scratch_db, str(three))
    assert r.returncode == 2 and "with 3 (" in r.stderr
    assert count(scratch_db) == keep
    r = run_loader(scratch_db, str(three), "--allow-shrink")
    assert r.returncode == 0, r.stderr
    assert count(scratch_db) == 3


def test_strict_mode_refuses_any_rejected_row(
    scratch_db: DB, loaded_full: int, tmp_path: Path
) -> None:
    before = _fingerprint(scratch_db)
    rows = sample_rows()
    # two kinds of damage in otherwise good rows: an unknown category, a repeated id_no (twice)
    rows[4] = {**rows[4], "category": "Imaginary"}
    rows[7:7] = [rows[6], rows[6]]
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    bad = tmp_path / "bad-rows.csv"
    bad.write_text(out.getvalue(), encoding="utf-8")
    r = run_loader(scratch_db, str(bad), "--strict")
    assert r.returncode == 2
    assert "strict mode: 3 rows rejected (2 duplicate id_no, 1 bad category)" in r.stderr
    assert _fingerprint(scratch_db) == before
    r = run_loader(scratch_db, str(bad))
    assert r.returncode == 0, r.stderr
    assert "rejected 3 rows (2 duplicate id_no, 1 bad category)" in r.stderr
