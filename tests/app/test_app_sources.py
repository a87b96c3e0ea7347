"""Reading and checking the UNESCO list: both formats, bad rows, HTML, and the download."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import sample
from app.sources import (
    USER_AGENT,
    SourceError,
    TruncatedError,
    download,
    plain_text,
    read_csv,
    read_file,
    read_xml,
    summarize,
    validate,
)
from tests.app.conftest import SAMPLE_XML


def test_invented_sample_reads_back_whole_with_its_special_cases(sample_csv: Path) -> None:
    """The sample round-trips through the CSV reader, is the same on every run, and holds
    the cases nearest-neighbour answers get wrong first."""
    sites, rejected = validate(read_file(sample_csv))
    assert rejected == [] and len(sites) == len(sample.sample_rows()) > 1000
    assert sample.sample_csv() == sample_csv.read_bytes()  # deterministic
    by_id = {s.id_no: s for s in sites}
    assert (by_id[1].latitude, by_id[1].longitude) == (0.0, 0.0)
    assert by_id[2].latitude == 90.0 and by_id[3].latitude == -90.0
    assert {by_id[12].longitude, by_id[13].longitude} == {180.0, -180.0}
    assert len({(by_id[i].latitude, by_id[i].longitude) for i in (30, 31, 32)}) == 1
    assert not any("<" in s.short_description_en for s in sites)
    for lat, lon in sample.CLUSTERS:
        near = [s for s in sites if abs(s.latitude - lat) < 0.3 and abs(s.longitude - lon) < 0.3]
        assert len(near) >= sample.CLUSTER_SIZE


def test_shared_csv_reads_every_row_without_rejections(whc_csv: Path) -> None:
    sites, rejected = validate(read_file(whc_csv))
    assert rejected == []
    assert len(sites) > 1000
    assert len({s.id_no for s in sites}) == len(sites)
    assert {s.category for s in sites} == {"Cultural", "Natural", "Mixed"}
    assert all(-90 <= s.latitude <= 90 and -180 <= s.longitude <= 180 for s in sites)
    # HTML in the export's text fields never reaches the table
    assert not any("<" in s.name_en or "<" in s.short_description_en for s in sites)


def test_xml_sample_maps_feed_names_and_rejects_bad_rows() -> None:
    sites, rejected = validate(read_file(SAMPLE_XML))
    assert [s.id_no for s in sites] == [90001, 90002, 90003, 90004]
    first = sites[0]
    assert first.name_en == "Old Town of Examplia"
    assert first.short_description_en == "An invented walled harbour town & its quays."
    assert (first.latitude, first.longitude, first.date_inscribed) == (10.5, 20.25, 1991)
    assert (first.danger, first.transboundary) == (False, False)
    assert (sites[1].danger, sites[1].transboundary) == (True, True)
    assert sites[1].states_name_en == "Examplia,Testland"
    reasons = {r.id_no: r.reason for r in rejected}
    assert set(reasons) == {"90005", "90006"}
    assert "latitude" in reasons["90005"] and "95.0" in reasons["90005"]
    assert "category" in reasons["90006"]
    assert "row 5" in str(rejected[0])
    assert [r.kind for r in rejected] == ["bad latitude", "bad category"]
    assert summarize(rejected) == "1 bad latitude, 1 bad category"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id_no": "abc"}, "id_no"),
        ({"id_no": "-3"}, "id_no"),
        ({"name_en": "<p> </p>"}, "name_en is empty"),
        ({"category": ""}, "category"),
        ({"date_inscribed": "1850"}, "date_inscribed"),
        ({"date_inscribed": ""}, "date_inscribed"),
        ({"latitude": "nan"}, "latitude"),
        ({"longitude": "inf"}, "longitude"),
        ({"longitude": "180.5"}, "longitude"),
        ({"latitude": "north"}, "not a number"),
        ({"name_en": "x" * 5000}, "longer than"),
    ],
)
def test_each_bad_field_is_rejected_with_its_reason(change: dict[str, str], reason: str) -> None:
    row = {
        "id_no": "7", "name_en": "Good", "category": "Natural", "date_inscribed": "1990",
        "latitude": "1.5", "longitude": "2.5",
    }
    sites, rejected = validate([row, {**row, "id_no": "8", **change}])
    assert [s.id_no for s in sites] == [7]
    assert len(rejected) == 1 and reason in rejected[0].reason
    assert rejected[0].position == 2


def test_duplicate_id_keeps_the_first_row() -> None:
    row = {"id_no": "7", "name_en": "A", "category": "Mixed", "date_inscribed": "1990",
           "latitude": "1", "longitude": "2"}
    sites, rejected = validate([row, {**row, "name_en": "B"}])
    assert [s.name_en for s in sites] == ["A"]
    assert rejected[0].reason == "duplicate of row 1"


def test_plain_text_strips_markup_and_entities() -> None:
    assert plain_text("Ulu<U>r</U>u-Kata Tju<U>t</U>a") == "Uluru-Kata Tjuta"
    assert plain_text("<p>Caf&eacute;\n  &amp; <b>bar</b></p>") == "Café & bar"
    assert plain_text("  plain   text ") == "plain text"


def test_csv_with_bom_and_wrong_files_are_told_apart(tmp_path: Path) -> None:
    good = "\ufeffid_no,name_en,category,date_inscribed,latitude,longitude\n1,A,Cultural,1990,1,2\n"
    rows = list(read_csv(good.encode()))
    assert rows == [{"id_no": "1", "name_en": "A", "category": "Cultural",
                     "date_inscribed": "1990", "latitude": "1", "longitude": "2"}]
    with pytest.raises(SourceError, match="no id_no column"):
        list(read_csv(b"a,b\n1,2\n"))
    with pytest.raises(SourceError, match="not UTF-8"):
        list(read_csv(b"id_no\n\xff\xfe\n"))
    with pytest.raises(TruncatedError, match="ends mid-record"):
        list(read_xml(b"<query><row>"))
    with pytest.raises(SourceError, match="cannot be parsed"):
        list(read_xml(b"<query><row></query>"))
    with pytest.raises(TruncatedError, match="2 of 6 fields"):
        list(read_csv(good.encode() + b"3,B\n"[:-1]))
    assert list(read_csv(good.encode() + b"\n\n")) == rows  # blank lines are not rows
    with pytest.raises(SourceError, match="no <row>"):
        list(read_xml(b"<html><body>Access denied</body></html>"))
    with pytest.raises(SourceError, match="cannot read"):
        read_file(tmp_path / "missing.xml")


class _FeedHandler(http.server.BaseHTTPRequestHandler):
    seen_agents: list[str] = []

    def do_GET(self) -> None:
        self.seen_agents.append(self.headers.get("User-Agent", ""))
        if self.path == "/en/list/xml/":
            body = SAMPLE_XML.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(403, "scripts not welcome")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[str]:
    """A loopback HTTP server playing whc.unesco.org: the feed, or 403 for other paths."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FeedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_download_sends_a_browser_user_agent(feed_server: str) -> None:
    _FeedHandler.seen_agents.clear()
    data = download(feed_server + "/en/list/xml/", timeout=10)
    assert data == SAMPLE_XML.read_bytes()
    assert _FeedHandler.seen_agents == [USER_AGENT]
    assert "Mozilla/5.0" in USER_AGENT


def test_refused_download_explains_how_to_save_the_file(feed_server: str) -> None:
    with pytest.raises(SourceError) as info:
        download(feed_server + "/refused/", timeout=10)
    message = str(info.value)
    assert "Forbidden" in message or "403" in message
    assert "web browser" in message and "app.load whc-sites.xml" in message
    assert "WHC_DATA" in message


def test_entities_are_decoded_once_only() -> None:
    assert plain_text("&amp;lt;b&amp;gt;") == "&lt;b&gt;"


def test_progress_bar_only_on_a_terminal() -> None:
    import io

    from app.load import _Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    rows = [(i,) for i in range(120)]
    tty = Terminal()
    assert list(_Progress(120, tty).wrap(rows)) == rows
    out = tty.getvalue()
    assert "\rloading [" in out and out.endswith("] 120/120\n")
    assert "#" * 30 in out.splitlines()[-1]
    pipe = io.StringIO()
    assert list(_Progress(120, pipe).wrap(rows)) == rows
    assert pipe.getvalue() == ""
