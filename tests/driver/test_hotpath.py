"""The per-query fast paths give exactly what the general path gives.

``PGProtocol.read_result()`` finishes an extended query in one pass when its whole result is
in the input; whatever the input (split anywhere, notices or errors in the middle, a second
operation behind), the rows, the tag and the core's state must be those of ``next_event()``.
"""

from __future__ import annotations

import decimal
import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driver.codecs import TypeRegistry, default_registry
from driver.errors import InterfaceError, ProtocolError
from driver.protocol import NEED_DATA, PGProtocol, State
from driver.protocol import messages as m
from driver.query import _INFER_ON_SERVER, decode, encode
from driver.statement import Statement
from tests.driver import fakes as f

Rows = list[tuple[bytes | None, ...]]

BIND = f.msg(b"2")
PARSE = f.msg(b"1")
CLOSE = f.msg(b"3")
SUSPENDED = f.msg(b"s")
ROW_LIST = [f.data_row(b"%d" % i, None, "é".encode() * i, b"") for i in range(12)]
ROWS = b"".join(ROW_LIST)
EXPECTED_ROWS = [(b"%d" % i, None, "é".encode() * i, b"") for i in range(12)]

REPLIES = {
    "rows": BIND + ROWS + f.command_complete("SELECT 12") + f.ready(),
    "no rows": BIND + f.command_complete("UPDATE 0") + f.ready("T"),
    "suspended": BIND + ROW_LIST[0] + SUSPENDED + f.ready(),
    "close first": CLOSE + BIND + ROWS + f.command_complete("SELECT 12") + f.ready("E"),
    "fresh": PARSE
    + f.msg(b"t", b"\0\0")
    + f.row_description(("a", 23), ("b", 25), ("c", 25), ("d", 25))
    + BIND
    + ROWS
    + f.command_complete("SELECT 12")
    + f.ready(),
    "notice inside": BIND
    + b"".join(ROW_LIST[:5])
    + f.notice("hi")
    + b"".join(ROW_LIST[5:])
    + f.command_complete("SELECT 12")
    + f.ready(),
    "error": BIND + b"".join(ROW_LIST[:3]) + f.error() + f.ready(),
    "empty query": BIND + f.msg(b"I") + f.ready(),
    "status after": BIND
    + f.command_complete("SELECT 0")
    + f.param_status("TimeZone", "UTC")
    + f.ready(),
    "next op behind": BIND
    + ROWS
    + f.command_complete("SELECT 12")
    + f.ready()
    + BIND
    + f.command_complete("SELECT 0")
    + f.ready("T"),
}


# What query.exchange ignores, and read_result() skips without an event.
_SKIPPED = (m.ParseComplete, m.BindComplete, m.CloseComplete, m.PortalSuspended)


def _core(ops: int = 1) -> PGProtocol:
    proto = f.started()
    for _ in range(ops):
        proto.send_execute("s", [b"1", None])
    proto.data_to_send()
    return proto


def _outcome(proto: PGProtocol, chunks: list[bytes], fast: bool) -> tuple[object, ...]:
    """Drive one operation as query.exchange does (``fast``), or with next_event()
    alone; then report everything observable, the rest of the input included."""
    rows: Rows = []
    tag, error, kinds = "", None, []
    feed = iter(chunks)
    while True:
        if fast:
            done = proto.read_result(rows)
            if done is not None:
                tag = done
                break
        event = proto.next_event()
        if event is NEED_DATA:
            proto.receive_data(next(feed))
            continue
        if isinstance(event, m.DataRow):
            rows.append(event.values)
        elif isinstance(event, m.CommandComplete):
            tag = event.tag
        elif isinstance(event, m.ErrorResponse):
            error = event.fields["M"]
        elif isinstance(event, m.ReadyForQuery):
            break
        elif type(event) not in _SKIPPED:
            kinds.append(type(event).__name__)
    for chunk in feed:
        proto.receive_data(chunk)
    rest = f.events(proto)
    state = (proto.state, proto.transaction_status, proto.pending)
    return rows, tag, error, kinds, rest, state


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [
        c for c in (data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)) if c
    ]


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_whole_reply_same_as_the_general_path(name: str) -> None:
    ops = 2 if name == "next op behind" else 1
    reply = REPLIES[name]
    assert _outcome(_core(ops), [reply], True) == _outcome(_core(ops), [reply], False)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(REPLIES)), st.lists(st.integers(0, 10_000), max_size=6))
def test_any_split_same_as_the_general_path(name: str, cuts: list[int]) -> None:
    ops = 2 if name == "next op behind" else 1
    chunks = _chunks(REPLIES[name], cuts)
    assert _outcome(_core(ops), chunks, True) == _outcome(_core(ops), chunks, False)


def test_whole_reply_is_one_call() -> None:
    proto = _core()
    proto.receive_data(REPLIES["rows"])
    rows: Rows = []
    assert proto.read_result(rows) == "SELECT 12"
    assert rows == EXPECTED_ROWS
    assert proto.state is State.READY and proto.pending == 0
    assert proto.next_event() is NEED_DATA


def test_suspended_portal_gives_an_empty_tag() -> None:
    proto = _core()
    proto.receive_data(BIND + f.data_row(b"1") + SUSPENDED + f.ready("T"))
    rows: Rows = []
    assert proto.read_result(rows) == ""
    assert rows == [(b"1",)] and proto.transaction_status == "T"


def test_result_not_all_here_pops_only_rows() -> None:
    proto = _core()
    proto.receive_data(BIND + ROWS)
    rows: Rows = []
    assert proto.read_result(rows) is None
    assert rows == []  # BindComplete first: left for next_event(), which counts it
    assert isinstance(proto.next_event(), m.BindComplete)
    assert proto.read_result(rows) is None
    assert rows == EXPECTED_ROWS
    proto.receive_data(f.command_complete("SELECT 12"))
    assert proto.read_result(rows) is None  # CommandComplete without its ReadyForQuery
    proto.receive_data(f.ready())
    assert proto.read_result(rows) == "SELECT 12"  # both popped together, once both are here
    assert rows == EXPECTED_ROWS and proto.state is State.READY


def test_not_busy_or_failed_reads_nothing() -> None:
    proto = f.started()
    proto.receive_data(REPLIES["rows"])
    assert proto.read_result([]) is None
    with pytest.raises(ProtocolError):
        proto.next_event()  # BindComplete with nothing pending


@pytest.mark.parametrize(
    "bad",
    [
        f.msg(b"D", b"\0\1\0\0\0\x09ab"),  # says 9 bytes, has 2
        f.msg(b"D", b"\0\2\0\0\0\x01a"),  # two values announced, one there
        f.msg(b"C", b"SELECT 1"),  # unterminated tag
        f.msg(b"C", b"\xff\0"),  # not UTF-8
        f.msg(b"Z", b"X"),  # unknown transaction status
        f.msg(b"s", b"x"),  # PortalSuspended with a body
    ],
)
def test_malformed_reply_raises_as_the_general_path_does(bad: bytes) -> None:
    reply = BIND + f.data_row(b"1") + bad + f.command_complete("SELECT 1") + f.ready()
    proto = _core()
    proto.receive_data(reply)
    with pytest.raises(ProtocolError):
        _outcome(proto, [], True)
    with pytest.raises(ProtocolError):
        proto.next_event()
    assert proto.state is State.FAILED


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    proto = _core()
    proto.receive_data(BIND + b"D" + data + f.ready())
    try:
        _outcome(proto, [], True)
    except (ProtocolError, InterfaceError, StopIteration):
        pass


_values = st.lists(st.none() | st.binary(max_size=20), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(_values, max_size=12), st.lists(st.integers(0, 10_000), max_size=4))
def test_rows_of_any_widths_and_nulls_read_whole_or_split(
    values: list[list[bytes | None]], cuts: list[int]
) -> None:
    """Rows are read by readers made per width (up to 32 values) and by the general loop
    (0 or more than 32): any mix of widths, NULLs and empty values, split anywhere."""
    reply = BIND + b"".join(f.data_row(*v) for v in values) + f.command_complete("X") + f.ready()
    expected = [tuple(v) for v in values]
    for chunks in ([reply], _chunks(reply, cuts)):
        for fast in (True, False):
            rows = _outcome(_core(), chunks, fast)[0]
            assert rows == expected
    proto = _core()
    proto.receive_data(BIND)
    proto.next_event()
    proto.receive_data(b"".join(f.data_row(*v) for v in values))
    rows = []
    proto.read_rows(rows)
    assert rows == expected


@pytest.mark.parametrize("width", [1, 4, 32, 33])
def test_a_short_value_list_in_a_row_is_a_protocol_error(width: int) -> None:
    row = f.data_row(*[b"ab"] * width)
    bad = row[:1] + (int.from_bytes(row[1:5], "big") + 3).to_bytes(4, "big") + row[5:] + b"xyz"
    proto = _core()
    proto.receive_data(BIND + f.data_row(*[b"ok"] * width) + bad + f.command_complete("X"))
    proto.next_event()
    with pytest.raises(ProtocolError):
        proto.read_rows([])
    assert proto.state is State.FAILED


# ---- parameters: the quick encoding of str, int and float -----------------------------------


def _general(
    reg: TypeRegistry, args: tuple[object, ...]
) -> tuple[tuple[int, ...], list[bytes | None]]:
    """query.encode's general path, value by value through the registry."""
    types, values = [], []
    for value in args:
        oid, data = reg.encode(value, 0)
        types.append(0 if oid in _INFER_ON_SERVER else oid)
        values.append(data)
    return tuple(types), values


class _Color(enum.IntEnum):
    RED = 1


class _Text(str):
    pass


ARGS = [
    (),
    ("a", "é", ""),
    (1, -(2**63), 2**63 - 1, 0),
    (2**63, 1),  # numeric
    (-(2**63) - 1,),
    (1.5, -0.0, 1e300, 5e-324),
    (float("nan"), 1.0),
    (float("inf"), float("-inf")),
    (True, 1),
    (None, 1.0),
    (_Color.RED, "x"),
    (_Text("sub"), 2),
    (decimal.Decimal("1.5"), 1),
    ("x", 1, 2.5, None, b"\x00"),
]


@pytest.mark.parametrize("args", ARGS, ids=repr)
def test_quick_encoding_is_the_general_one(args: tuple[object, ...]) -> None:
    codecs = default_registry.copy()
    assert encode(codecs, args) == _general(codecs, args)


def test_a_str_that_is_not_utf8_is_refused_as_before() -> None:
    with pytest.raises(InterfaceError, match=r"invalid input for query argument \$2"):
        encode(default_registry.copy(), ("ok", "\ud800"))


def test_a_registered_python_type_overrides_the_quick_encoding() -> None:
    codecs = default_registry.copy()
    codecs.register(1700, encoder=lambda v: f"{v:.1f}", decoder=None, python_type=float)
    assert encode(codecs, (1.25, 3)) == ((1700, 0), [b"1.2", b"3"])
    assert default_registry.untyped.get(float) is not None  # the copy only


# ---- Bind + Execute + Sync in one piece --------------------------------------------------------


@pytest.mark.parametrize(
    "values", [[], [b"1"], [None], [b"", None, b"x" * 70_000], [b"\0\xff", b"2"] * 40]
)
@pytest.mark.parametrize("statement", ["", "_drv_s1", "é"])
@pytest.mark.parametrize("max_rows", [0, 1])
def test_bind_execute_sync_is_the_three_messages(
    values: list[bytes | None], statement: str, max_rows: int
) -> None:
    expected = m.bind("", statement, values) + m.execute("", max_rows) + m.SYNC
    assert m.bind_execute_sync(statement, values, max_rows) == expected


def test_one_statement_executed_with_other_values_and_lengths() -> None:
    """The cached parts depend on the value count only: NULLs, lengths and counts vary."""
    proto = f.started()
    for values in ([b"1", b"22"], [None, b"333"], [b"", None], [b"4"], [None, None, None]):
        proto.send_execute("s1", values)
        expected = m.bind("", "s1", values) + m.execute("", 0) + m.SYNC
        assert proto.data_to_send() == expected
        proto.receive_data(BIND + f.command_complete("SELECT 0") + f.ready())
        assert proto.read_result([]) == "SELECT 0"
    proto.send_execute("s1", [b"1"], max_rows=1)
    assert proto.data_to_send() == m.bind("", "s1", [b"1"]) + m.execute("", 1) + m.SYNC


def test_execute_while_an_operation_is_in_flight_queues_behind_it() -> None:
    proto = _core()  # one execute pending: BUSY
    proto.send_execute("s2", [None])
    assert proto.pending == 2
    assert proto.data_to_send() == m.bind("", "s2", [None]) + m.execute("", 0) + m.SYNC


# ---- decoding rows ---------------------------------------------------------------------------


def _stmt(oids: list[int]) -> Statement:
    stmt = Statement("s", "select", ())
    fields = tuple(m.Field(f"c{i}", 0, 0, oid, -1, -1, 0) for i, oid in enumerate(oids))
    stmt.set_fields(fields, default_registry.decoder)
    return stmt


def _by_columns(stmt: Statement, raw: list[tuple[bytes | None, ...]]) -> list[tuple[object, ...]]:
    return [
        tuple(None if v is None else d(v) for d, v in zip(stmt.decoders, row, strict=True))
        for row in raw
    ]


_cells = st.one_of(st.none(), st.integers(-(2**40), 2**40).map(lambda i: b"%d" % i))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.lists(st.tuples(*[_cells] * n), max_size=6)))
def test_rows_of_any_width_decode_as_column_by_column(raw: list[tuple[bytes | None, ...]]) -> None:
    n = len(raw[0]) if raw else 3
    stmt = _stmt([20] * n)
    rows = decode(stmt, raw)
    assert [tuple(r) for r in rows] == _by_columns(stmt, raw)
    assert all(type(r) is stmt.record_cls for r in rows)
    if rows:
        assert rows[0]["c0"] == rows[0][0]


@pytest.mark.parametrize("n", [1, 4, 32, 33])
@pytest.mark.parametrize("bad", [-1, 1])
def test_a_row_of_another_width_is_reported_as_such(n: int, bad: int) -> None:
    # the width error wins over the decode error
    raw: list[tuple[bytes | None, ...]] = [(b"1",) * n, (b"x",) * (n + bad)]
    with pytest.raises(InterfaceError, match=f"does not have the {n} values"):
        decode(_stmt([23] * n), raw)


@pytest.mark.parametrize("n", [1, 4, 33])
def test_a_value_that_does_not_decode_is_reported_as_such(n: int) -> None:
    raw: list[tuple[bytes | None, ...]] = [(b"1",) * n, (b"1",) * (n - 1) + (b"x",)]
    with pytest.raises(InterfaceError, match="cannot decode a result value"):
        decode(_stmt([23] * n), raw)


def test_mixed_types_and_nulls_decode() -> None:
    stmt = _stmt([23, 25, 701, 16, 17436])
    raw: list[tuple[bytes | None, ...]] = [
        (b"7", "é".encode(), b"1.5", b"t", b"Natural"),
        (None, None, b"NaN", None, None),
    ]
    rows = decode(stmt, raw)
    assert rows[0] == (7, "é", 1.5, True, "Natural")
    assert rows[1][:2] == (None, None) and rows[1][2] != rows[1][2]
    assert rows[1]["c4"] is None


def test_no_columns_and_no_description() -> None:
    assert decode(_stmt([]), [(), ()]) == [(), ()]
    with pytest.raises(InterfaceError, match="does not have the 0 values"):
        decode(_stmt([]), [(b"1",)])
    with pytest.raises(InterfaceError, match="no row description"):
        decode(Statement("s", "select", ()), [(b"1",)])


def test_rows_before_something_else_are_popped_by_the_fast_path() -> None:
    """A notice between the rows: the rows before it are popped at once (as read_rows() does),
    the notice is left for next_event(), then the rest finishes in one call."""
    proto = _core()
    head = b"".join(ROW_LIST[:5])
    proto.receive_data(BIND)
    assert isinstance(proto.next_event(), m.BindComplete)
    proto.receive_data(head + f.notice("hi") + b"".join(ROW_LIST[5:]) + f.command_complete("S"))
    proto.receive_data(f.ready())
    rows: Rows = []
    assert proto.read_result(rows) is None
    assert rows == EXPECTED_ROWS[:5]
    assert isinstance(proto.next_event(), m.NoticeResponse)
    assert proto.read_result(rows) == "S"
    assert rows == EXPECTED_ROWS


# ---- COPY TO STDOUT: read_copy_data() ----------------------------------------------------

COPY_ROWS = [b"%d\trow %d\n" % (i, i) for i in range(20)]
COPY_REPLIES = {
    "rows": b"".join(f.msg(b"d", r) for r in COPY_ROWS),
    "empty payloads": f.msg(b"d") + f.msg(b"d", b"x") + f.msg(b"d"),
    "notice inside": b"".join(f.msg(b"d", r) for r in COPY_ROWS[:7])
    + f.notice("hi")
    + b"".join(f.msg(b"d", r) for r in COPY_ROWS[7:]),
    "error inside": b"".join(f.msg(b"d", r) for r in COPY_ROWS[:3]) + f.error(),
    "nothing": b"",
}


def _copy_core() -> PGProtocol:
    proto = f.started()
    proto.send_query("copy t to stdout")
    proto.data_to_send()
    return proto


def _copy_outcome(chunks: list[bytes], fast: bool) -> tuple[object, ...]:
    """Drive a COPY TO STDOUT as copy._copy_out does (``fast``), or with next_event() alone."""
    proto = _copy_core()
    payloads: list[bytes] = []
    kinds: list[str] = []
    feed = iter(chunks)
    while True:
        if fast:
            proto.read_copy_data(payloads)
        event = proto.next_event()
        if event is NEED_DATA:
            proto.receive_data(next(feed))
            continue
        if isinstance(event, m.CopyData):
            payloads.append(event.data)
        elif isinstance(event, m.ReadyForQuery):
            break
        else:
            kinds.append(type(event).__name__)
    return payloads, kinds, proto.state, proto.pending


def _copy_reply(name: str) -> bytes:
    end = f.msg(b"c") + f.command_complete("COPY 20")
    if name == "error inside":
        end = b""
    return f.msg(b"H", b"\0\0\0") + COPY_REPLIES[name] + end + f.ready()


@pytest.mark.parametrize("name", sorted(COPY_REPLIES))
def test_copy_data_fast_path_same_as_the_general_path(name: str) -> None:
    reply = _copy_reply(name)
    assert _copy_outcome([reply], True) == _copy_outcome([reply], False)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(COPY_REPLIES)), st.lists(st.integers(0, 10_000), max_size=6))
def test_copy_data_split_anywhere_same_as_the_general_path(name: str, cuts: list[int]) -> None:
    chunks = _chunks(_copy_reply(name), cuts)
    assert _copy_outcome(chunks, True) == _copy_outcome(chunks, False)


def test_copy_data_is_read_in_one_call_and_only_in_copy_out() -> None:
    proto = _copy_core()
    rows = b"".join(f.msg(b"d", r) for r in COPY_ROWS)
    proto.receive_data(f.msg(b"H", b"\0\0\0") + rows)
    payloads: list[bytes] = []
    proto.read_copy_data(payloads)
    assert payloads == []  # not in COPY_OUT yet: CopyOutResponse is next_event()'s
    assert isinstance(proto.next_event(), m.CopyOutResponse)
    proto.read_copy_data(payloads)
    assert payloads == COPY_ROWS
    assert proto.next_event() is NEED_DATA


@pytest.mark.parametrize("length", [0, 3, (1 << 30) + 2000])
def test_an_impossible_copy_data_length_is_a_protocol_error(length: int) -> None:
    proto = _copy_core()
    proto.receive_data(f.msg(b"H", b"\0\0\0"))
    proto.next_event()
    proto.receive_data(f.msg(b"d", b"ok") + b"d" + length.to_bytes(4, "big") + b"x" * 8)
    payloads: list[bytes] = []
    with pytest.raises(ProtocolError):
        proto.read_copy_data(payloads)
    assert payloads == [b"ok"] and proto.state is State.FAILED
    with pytest.raises(ProtocolError):
        proto.next_event()


# ---- executemany(): rows encoded per parameter, Bind + Execute per row, the reply skipped ----

MANY_VALUES = [[], [b"1"], [None], [b"", None, b"x" * 70_000], [b"\0\xff", b"2"] * 40]


@pytest.mark.parametrize("values", MANY_VALUES)
@pytest.mark.parametrize("statement", ["", "_drv_s1", "é"])
def test_bind_execute_and_its_executor_are_the_two_messages(
    values: list[bytes | None], statement: str
) -> None:
    expected = m.bind("", statement, values) + m.execute("", 0)
    assert m.bind_execute(statement, values) == expected
    assert m.bind_executor(statement, len(values))(values) == expected
    assert m.bind_executor(statement, len(values) + 1)(values) == expected  # another width


def test_bind_with_result_formats_is_spelled_out() -> None:
    assert m.bind("p", "", [b"7"], [1, 0]) == (b"B\0\0\0\x16p\0\0\0\0\0\1\0\0\0\x017\0\2\0\1\0\0")


@pytest.mark.parametrize("args", ARGS, ids=repr)
@pytest.mark.parametrize("typed", [False, True])
def test_param_encoders_give_what_encode_gives(args: tuple[object, ...], typed: bool) -> None:
    """executemany()'s per-parameter encoders: the bytes of encode(), for inferred (OID 0)
    and for declared parameter types."""
    codecs = default_registry.copy()
    oids = [codecs.encode(a, 0)[0] if typed else 0 for a in args]
    for value, oid in zip(args, oids, strict=True):
        if value is not None:
            assert codecs.param_encoder(oid)(value) == codecs.encode(value, oid)[1]


def test_row_encoders_of_any_width() -> None:
    from driver.query import _row_encoder

    for n in (1, 2, 7, 32):
        row = [None if i % 3 == 0 else i for i in range(n)]
        encoders = [lambda v: str(v).encode()] * n
        expected = [None if v is None else str(v).encode() for v in row]
        assert _row_encoder(n)(row, encoders) == expected
        with pytest.raises(ValueError):
            _row_encoder(n)([*row, 1], encoders)


def _many_core() -> PGProtocol:
    proto = f.started()
    proto.send_execute_many("s", [[b"1"], [b"2"], [b"3"]])
    proto.data_to_send()
    return proto


PAIR = BIND + f.command_complete("INSERT 0 1")
MANY_REPLIES = {
    "pairs": PAIR * 3 + f.ready(),
    "returning rows": (BIND + f.data_row(b"1") + f.command_complete("INSERT 0 1")) * 3 + f.ready(),
    "error": PAIR + BIND + f.error() + f.ready("E"),
    "notice": PAIR + f.notice("hi") + PAIR * 2 + f.ready(),
    "non-ascii tag": PAIR + BIND + f.command_complete("INSÉRT") + PAIR + f.ready(),
    "unterminated tag": PAIR + BIND + f.msg(b"C", b"INSERT 0 1") + f.ready(),
    "bind with a body": PAIR + f.msg(b"2", b"x") + f.ready(),
}


def _many_outcome(chunks: list[bytes], fast: bool) -> tuple[object, ...]:
    proto = _many_core()
    kinds: list[str] = []
    feed = iter(chunks)
    try:
        while True:
            if fast:
                proto.skip_command_results()
            event = proto.next_event()
            if event is NEED_DATA:
                proto.receive_data(next(feed))
                continue
            if isinstance(event, m.ReadyForQuery):
                break
            if not isinstance(event, m.BindComplete | m.CommandComplete):
                kinds.append(type(event).__name__)
    except ProtocolError as exc:
        kinds.append(f"ProtocolError: {exc}")
    return kinds, proto.state, proto.pending


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(MANY_REPLIES)), st.lists(st.integers(0, 10_000), max_size=5))
def test_skipping_command_results_is_the_general_path(name: str, cuts: list[int]) -> None:
    """What the skip drops is what executemany() ignores; anything else, malformed or not,
    reaches next_event() as before."""
    for chunks in ([MANY_REPLIES[name]], _chunks(MANY_REPLIES[name], cuts)):
        assert _many_outcome(chunks, True) == _many_outcome(chunks, False)


def test_command_results_are_skipped_in_one_call() -> None:
    proto = _many_core()
    proto.receive_data(PAIR * 3)
    assert proto.skip_command_results() == 3
    assert proto.next_event() is NEED_DATA
    proto.receive_data(f.ready())
    assert isinstance(proto.next_event(), m.ReadyForQuery)
    assert proto.skip_command_results() == 0  # READY: nothing to skip
