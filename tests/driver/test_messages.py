"""Wire vocabulary: exact bytes of frontend messages, parsing of backend ones, and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driver.errors import InterfaceError, ProtocolError
from driver.protocol import NEED_DATA
from driver.protocol import messages as m
from driver.protocol.buffer import ReceiveBuffer
from tests.driver import fakes as f

GOLDEN_FRONTEND = [
    (m.query("select 1"), b"Q\0\0\0\x0dselect 1\0"),
    (m.parse("s", "select $1", [23]), b"P\0\0\0\x16s\0select $1\0\0\1\0\0\0\x17"),
    (m.bind("", "s", [b"42", None]), b"B\0\0\0\x17\0s\0\0\0\0\2\0\0\0\x0242\xff\xff\xff\xff\0\0"),
    (m.describe(b"S", "s"), b"D\0\0\0\x07Ss\0"),
    (m.execute("", 1), b"E\0\0\0\x09\0\0\0\0\1"),
    (m.close(b"S", "s"), b"C\0\0\0\x07Ss\0"),
    (m.SYNC, b"S\0\0\0\4"),
    (m.TERMINATE, b"X\0\0\0\4"),
    (m.copy_data(b"ab"), b"d\0\0\0\x06ab"),
    (m.COPY_DONE, b"c\0\0\0\4"),
    (m.copy_fail("no"), b"f\0\0\0\x07no\0"),
    (m.password_message(b"pw"), b"p\0\0\0\x07pw\0"),
    (m.sasl_initial_response("M", b"xy"), b"p\0\0\0\x0cM\0\0\0\0\2xy"),
    (m.SSL_REQUEST, b"\0\0\0\x08\x04\xd2\x16\x2f"),
    (m.cancel_request(1, 2), b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\1\0\0\0\2"),
    (
        m.startup_message({"user": "u"}),
        b"\0\0\0\x10\0\3\0\0user\0u\0\0",
    ),
]


@pytest.mark.parametrize(("encoded", "expected"), GOLDEN_FRONTEND)
def test_frontend_golden_bytes(encoded: bytes, expected: bytes) -> None:
    assert encoded == expected


def test_nul_in_sql_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        m.query("select '\0'")


GOLDEN_BACKEND = [
    (f.AUTH_OK, m.AuthenticationOk()),
    (f.auth(5, b"salt"), m.AuthenticationMD5Password(b"salt")),
    (f.auth(10, b"SCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0\0"),
     m.AuthenticationSASL(("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"))),
    (f.auth(7), m.AuthenticationOther(7)),
    (f.param_status("TimeZone", "UTC"), m.ParameterStatus("TimeZone", "UTC")),
    (f.backend_key(5, -3), m.BackendKeyData(5, -3)),
    (f.ready("T"), m.ReadyForQuery("T")),
    (f.data_row(b"1", None, b""), m.DataRow((b"1", None, b""))),
    (f.command_complete("INSERT 0 1"), m.CommandComplete("INSERT 0 1")),
    (f.msg(b"I"), m.EmptyQueryResponse()),
    (f.msg(b"t", b"\0\2\0\0\0\x17\0\0\0\x19"), m.ParameterDescription((23, 25))),
    (f.msg(b"A", b"\0\0\0\1ch\0hi\0"), m.NotificationResponse(1, "ch", "hi")),
    (f.msg(b"n"), m.NoData()),
    (f.msg(b"s"), m.PortalSuspended()),
]  # fmt: skip


@pytest.mark.parametrize(("data", "expected"), GOLDEN_BACKEND)
def test_backend_golden_messages(data: bytes, expected: m.BackendMessage) -> None:
    buf = ReceiveBuffer()
    buf.feed(data)
    frame = buf.next_message()
    assert frame is not None
    assert m.parse_message(*frame) == expected
    assert buf.next_message() is None


def test_row_description_fields() -> None:
    buf = ReceiveBuffer()
    buf.feed(f.row_description(("id", 23), ("name", 25)))
    frame = buf.next_message()
    assert frame is not None
    msg = m.parse_message(*frame)
    assert isinstance(msg, m.RowDescription)
    assert [(c.name, c.type_oid) for c in msg.fields] == [("id", 23), ("name", 25)]


def test_error_fields() -> None:
    msg = m.parse_message(b"E", f.error("23505", "dup")[5:])
    assert isinstance(msg, m.ErrorResponse)
    assert msg.fields["C"] == "23505" and msg.fields["M"] == "dup"


STREAM = (
    f.STARTUP_DONE[: -len(f.ready())]
    + f.row_description(("a", 23), ("b", 25))
    + b"".join(f.data_row(str(i).encode(), None if i % 3 else b"x" * i) for i in range(20))
    + f.command_complete("SELECT 20")
    + f.notice("careful")
    + f.error("42P01", "missing")
    + f.ready()
)


def _parse_all(chunks: list[bytes]) -> list[m.BackendMessage]:
    buf = ReceiveBuffer()
    out = []
    for chunk in chunks:
        buf.feed(chunk)
        while (frame := buf.next_message()) is not None:
            out.append(m.parse_message(*frame))
    return out


EXPECTED = _parse_all([STREAM])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(STREAM)), max_size=40))
def test_any_split_parses_to_the_same_messages(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert _parse_all(chunks) == EXPECTED


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    try:
        _parse_all([data])
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(b"RSKZTDCIEN12snt3dGHAcv"), st.binary(max_size=60))
def test_random_bodies_for_known_tags_raise_only_protocol_error(tag: int, body: bytes) -> None:
    try:
        m.parse_message(bytes([tag]), body)
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_core_fed_random_bytes_raises_only_driver_errors(data: bytes) -> None:
    from driver.errors import InterfaceError

    proto = f.started()
    proto.send_query("select 1")
    proto.data_to_send()
    try:
        f.events(proto, data)
    except (ProtocolError, InterfaceError):
        pass


ROWS_REPLY = (
    f.msg(b"2")
    + b"".join(f.data_row(b"%d" % i, None, b"x" * (i * 7)) for i in range(30))
    + f.command_complete("SELECT 30")
    + f.ready()
)


def _core_rows(chunks: list[bytes]) -> tuple[list[tuple[bytes | None, ...]], list[str]]:
    """Drive a core the way the connection does: read_rows() first, then next_event()."""
    proto = f.started()
    proto.send_execute("s", [])
    proto.data_to_send()
    rows: list[tuple[bytes | None, ...]] = []
    kinds: list[str] = []
    for chunk in chunks:
        proto.receive_data(chunk)
        while True:
            proto.read_rows(rows)
            event = proto.next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, m.DataRow):
                rows.append(event.values)
            else:
                kinds.append(type(event).__name__)
    return rows, kinds


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(ROWS_REPLY)), max_size=30))
def test_read_rows_fast_path_matches_any_split(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [
        ROWS_REPLY[a:b] for a, b in zip([0, *points], [*points, len(ROWS_REPLY)], strict=True)
    ]
    rows, kinds = _core_rows([c for c in chunks if c])
    assert rows == [(b"%d" % i, None, b"x" * (i * 7)) for i in range(30)]
    assert kinds == ["BindComplete", "CommandComplete", "ReadyForQuery"]


def test_big_value_in_many_chunks_grows_in_place() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    reply = f.msg(b"2") + f.data_row(value) + f.command_complete("SELECT 1") + f.ready()
    chunks = [reply[i : i + 1000] for i in range(0, len(reply), 1000)]
    rows, _ = _core_rows(chunks)
    assert rows == [(value,)]


def test_malformed_data_row_on_the_fast_path_is_a_protocol_error() -> None:
    proto = f.started()
    proto.send_execute("s", [])
    proto.data_to_send()
    proto.receive_data(f.msg(b"D", b"\0\1\0\0\0\x09ab"))  # says 9 bytes, has 2
    with pytest.raises(ProtocolError):
        proto.read_rows([])
    with pytest.raises(ProtocolError):
        proto.next_event()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_read_rows_on_random_bytes_raises_only_protocol_error(data: bytes) -> None:
    proto = f.started()
    proto.send_execute("s", [])
    proto.data_to_send()
    proto.receive_data(b"D" + data)
    try:
        proto.read_rows([])
        while proto.next_event() is not NEED_DATA:
            proto.read_rows([])
    except (ProtocolError, InterfaceError):
        pass


def test_message_construction_by_position_and_keyword() -> None:
    """@message builds __init__ from the declared fields: the same value either way, and a
    TypeError (as a dataclass gives) for a wrong call."""
    assert m.Field("a", 1, 2, 23, 4, -1, 0) == m.Field(
        "a", 1, 2, 23, 4, type_modifier=-1, format=0
    )
    assert m.BackendKeyData(1, 2) == m.BackendKeyData(key=2, pid=1)
    assert m.CopyData(b"x").data == b"x" and m.CopyData.__slots__ == ()
    assert m.CopyInResponse.__match_args__ == ("format", "column_formats")
    with pytest.raises(TypeError, match="missing"):
        m.BackendKeyData(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected"):
        m.ReadyForQuery(state="I")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        m.NotificationResponse(1, "c", "p", "extra")  # type: ignore[call-arg]
