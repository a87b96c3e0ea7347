"""Reading the UNESCO World Heritage list (XML feed, saved XML, 2021-style CSV) into checked rows.

Nothing here touches the database: the loader (app/load.py) gets a list of `SiteRow`s that are
already valid for the table's constraints, plus a list of rejected rows with reasons to show the
operator.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

FEED_URL = "https://whc.unesco.org/en/list/xml/"
# The feed is served to browsers; a script's default User-Agent is often refused.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36 pgws-whc-loader/0.1"
)
CATEGORIES = ("Cultural", "Natural", "Mixed")
FIRST_INSCRIPTION_YEAR = 1978
MAX_TEXT = 4000

# Field names of the XML feed mapped to the CSV export's names, which the rest of the code uses.
_XML_NAMES = {
    "id_number": "id_no",
    "site": "name_en",
    "states": "states_name_en",
    "region": "region_en",
    "short_description": "short_description_en",
}


class SourceError(Exception):
    """The list could not be read at all (as opposed to single bad rows)."""


@dataclass(frozen=True, slots=True)
class SiteRow:
    """One valid site, typed as the `whc_sites` columns (coordinates as plain numbers)."""

    id_no: int
    name_en: str
    category: str
    states_name_en: str
    iso_code: str
    region_en: str
    date_inscribed: int
    danger: bool
    transboundary: bool
    short_description_en: str
    longitude: float
    latitude: float


class TruncatedError(SourceError):
    """The file ends in the middle of a record: a partial download or copy, never loaded."""


class RowError(ValueError):
    """One row breaks one rule; `kind` names the rule for the load's summary."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row left out of the load, with where it was and why, for the operator's report.

    `kind` is a short name of the broken rule (`bad latitude`, `duplicate id_no`, ...) so that
    the summary can count rejections by kind.
    """

    position: int
    id_no: str
    reason: str
    kind: str = "invalid row"

    def __str__(self) -> str:
        return f"row {self.position} (id_no {self.id_no or '?'}): {self.reason}"


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(value: str) -> str:
    """Strip the HTML markup UNESCO puts in text fields (`Ulu<U>r</U>u`, `<p>…</p>`).

    The page escapes everything it shows, so storing plain text keeps markup from ever being
    interpreted and keeps names searchable.
    """
    if "<" not in value and "&" not in value:
        return " ".join(value.split())
    parser = _TextOnly()
    parser.feed(value)
    parser.close()
    return " ".join("".join(parser.parts).split())


def read_csv(data: bytes) -> Iterator[dict[str, str]]:
    """Rows of the 2021-style CSV export (UTF-8, optional BOM), keyed by its header.

    Raises:
        TruncatedError: the file stops inside a quoted field, its last row has fewer fields
            than the header, or it has no line break after its last row (the export always
            ends with one). Such a file is a partial download or copy: loading the rows
            before the cut would silently drop the rest of the list.
        SourceError: not UTF-8, or not the export at all.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"the CSV is not UTF-8: {exc}") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or "id_no" not in header:
            raise SourceError("the CSV has no id_no column: is this the UNESCO export?")
        rows = [row for row in reader if row not in ([], [""])]  # blank lines are not rows
    except csv.Error as exc:
        line = reader.line_num
        if "unexpected end of data" in str(exc):
            raise TruncatedError(
                f"the CSV ends inside a quoted field (line {line}): the file is cut short; "
                "download or copy it again"
            ) from exc
        raise SourceError(f"the CSV cannot be parsed at line {line}: {exc}") from exc
    if rows and len(rows[-1]) < len(header):
        raise TruncatedError(
            f"the CSV's last row (line {reader.line_num}) has {len(rows[-1])} of "
            f"{len(header)} fields: the file is cut short; download or copy it again"
        )
    if rows and not text.endswith(("\n", "\r")):
        raise TruncatedError(
            "the CSV has no line break after its last row, so that row may be cut short; "
            "download or copy the file again (or, if it is complete, add a final line break)"
        )
    for row in rows:
        yield dict(zip(header, row, strict=False))


def read_xml(data: bytes) -> Iterator[dict[str, str]]:
    """Rows of the published XML feed (`<query><row><id_number>…</row>…</query>`)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        if "no element found" in str(exc) or "unclosed token" in str(exc):
            raise TruncatedError(
                f"the XML cannot be parsed: it ends mid-record ({exc}); the file is cut "
                "short: download or save it again"
            ) from exc
        raise SourceError(f"the XML cannot be parsed: {exc}") from exc
    rows = root.findall("row")
    if not rows:
        raise SourceError(f"the XML has no <row> elements under <{root.tag}>")
    for row in rows:
        out: dict[str, str] = {}
        for child in row:
            out[_XML_NAMES.get(child.tag, child.tag)] = "".join(child.itertext())
        yield out


def read_file(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a saved XML feed or CSV export, told apart by content, not by file name."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
    head = data[:200].lstrip(b"\xef\xbb\xbf \t\r\n")
    return read_xml(data) if head.startswith(b"<") else read_csv(data)


def download(url: str = FEED_URL, *, timeout: float = 60.0) -> bytes:
    """Fetch the XML feed like a browser would.

    Raises:
        SourceError: with instructions for saving the file by hand, because UNESCO's site may
            refuse scripts whatever they send.
    """
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            reason: object = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", None) or exc
        raise SourceError(
            f"could not download {url}: {reason}.\n"
            f"The site may refuse scripts. Open {url} in a web browser, save the page "
            "(Ctrl-S) as whc-sites.xml, then run:\n"
            "    python -m app.load whc-sites.xml\n"
            "or set WHC_DATA to the saved XML or to a CSV export of the list."
        ) from exc


def _flag(value: str) -> bool:
    v = value.strip().lower()
    return bool(v) and v not in {"0", "n", "no", "false"}


def _number(value: str, name: str, low: float, high: float) -> float:
    try:
        x = float(value)
    except ValueError:
        raise RowError(f"bad {name}", f"{name} {value!r} is not a number") from None
    if not math.isfinite(x) or not low <= x <= high:
        raise RowError(f"bad {name}", f"{name} {value!r} is outside {low:g}..{high:g}")
    return x


def _check(raw: Mapping[str, str], last_year: int) -> SiteRow:
    id_text = raw.get("id_no", "").strip()
    if not id_text.isdigit() or int(id_text) <= 0:
        raise RowError("bad id_no", f"id_no {id_text!r} is not a positive whole number")
    name = plain_text(raw.get("name_en", ""))
    if not name:
        raise RowError("empty name", "name_en is empty")
    category = raw.get("category", "").strip().capitalize()
    if category not in CATEGORIES:
        raise RowError(
            "bad category", f"category {raw.get('category', '')!r} is not one of {CATEGORIES}"
        )
    year_text = raw.get("date_inscribed", "").strip()
    if not year_text.isdigit() or not FIRST_INSCRIPTION_YEAR <= int(year_text) <= last_year:
        raise RowError(
            "bad date_inscribed",
            f"date_inscribed {year_text!r} is not a year in {FIRST_INSCRIPTION_YEAR}..{last_year}",
        )
    texts = {
        k: plain_text(raw.get(k, ""))
        for k in ("states_name_en", "iso_code", "region_en", "short_description_en")
    }
    for k, v in (("name_en", name), *texts.items()):
        if len(v) > MAX_TEXT:
            raise RowError("text too long", f"{k} is longer than {MAX_TEXT} characters")
    return SiteRow(
        id_no=int(id_text),
        name_en=name,
        category=category,
        states_name_en=texts["states_name_en"],
        iso_code=texts["iso_code"].lower(),
        region_en=texts["region_en"],
        date_inscribed=int(year_text),
        danger=_flag(raw.get("danger", "")),
        transboundary=_flag(raw.get("transboundary", "")),
        short_description_en=texts["short_description_en"],
        longitude=_number(raw.get("longitude", "").strip(), "longitude", -180, 180),
        latitude=_number(raw.get("latitude", "").strip(), "latitude", -90, 90),
    )


def summarize(rejected: Iterable[Rejected]) -> str:
    """`2 bad latitude, 1 duplicate id_no`: rejections counted by kind, most frequent first."""
    counts = Counter(r.kind for r in rejected)
    return ", ".join(f"{n} {kind}" for kind, n in counts.most_common())


def validate(rows: Iterable[Mapping[str, str]]) -> tuple[list[SiteRow], list[Rejected]]:
    """Check every row; keep the good ones and say why each bad one was left out.

    Returns:
        The valid rows in input order and the rejected rows (position is 1-based, header not
        counted). A duplicate id_no keeps the first occurrence.
    """
    last_year = dt.date.today().year + 1
    good: list[SiteRow] = []
    bad: list[Rejected] = []
    seen: dict[int, int] = {}
    for position, raw in enumerate(rows, start=1):
        try:
            site = _check(raw, last_year)
        except RowError as exc:
            bad.append(Rejected(position, raw.get("id_no", "").strip()[:20], str(exc), exc.kind))
            continue
        if site.id_no in seen:
            bad.append(
                Rejected(
                    position, str(site.id_no), f"duplicate of row {seen[site.id_no]}",
                    "duplicate id_no",
                )
            )
            continue
        seen[site.id_no] = position
        good.append(site)
    return good, bad
