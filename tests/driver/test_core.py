"""PGProtocol with no event loop: startup, authentication, pipelining, errors, COPY."""

from __future__ import annotations

import hashlib
import struct

import pytest
from scramp import ScramMechanism

from driver.errors import InterfaceError, ProtocolError
from driver.protocol import NEED_DATA, PGProtocol, State
from driver.protocol import messages as m
from tests.driver import fakes as f


def test_startup_message_carries_user_database_and_fixed_styles() -> None:
    proto = PGProtocol("alice", "shop", None, {"application_name": "t"})
    [(tag, body)] = f.split_frontend(proto.data_to_send())
    assert tag == b""
    fields = body[4:].split(b"\0")
    params = dict(zip(fields[0:-2:2], fields[1:-2:2], strict=True))
    assert params[b"user"] == b"alice" and params[b"database"] == b"shop"
    assert params[b"DateStyle"] == b"ISO" and params[b"application_name"] == b"t"
    assert proto.state is State.STARTUP


def test_trust_startup_reaches_ready_and_records_server_facts() -> None:
    proto = PGProtocol("u", "db")
    proto.data_to_send()
    assert proto.next_event() is NEED_DATA
    evs = f.events(proto, f.STARTUP_DONE)
    assert evs == [m.ReadyForQuery("I")]
    assert proto.state is State.READY
    assert proto.parameters == {"server_version": "15.0"}
    assert (proto.backend_pid, proto.backend_key) == (42, 7)


def test_startup_survives_one_byte_at_a_time() -> None:
    proto = PGProtocol("u", "db")
    seen = []
    for i in range(len(f.STARTUP_DONE)):
        seen += f.events(proto, f.STARTUP_DONE[i : i + 1])
    assert seen == [m.ReadyForQuery("I")]


def test_cleartext_password_is_sent_when_asked() -> None:
    proto = PGProtocol("u", "db", "secret")
    proto.data_to_send()
    assert f.events(proto, f.auth(3)) == []
    [(tag, body)] = f.split_frontend(proto.data_to_send())
    assert (tag, body) == (b"p", b"secret\0")


def test_md5_answer_matches_the_documented_formula() -> None:
    proto = PGProtocol("user", "db", "pw")
    proto.data_to_send()
    f.events(proto, f.auth(5, b"abcd"))
    [(_, body)] = f.split_frontend(proto.data_to_send())
    inner = hashlib.md5(b"pwuser").hexdigest().encode()
    assert body == b"md5" + hashlib.md5(inner + b"abcd").hexdigest().encode() + b"\0"


def test_scram_exchange_against_scramp_server() -> None:
    mech = ScramMechanism()
    salt, stored, server_key, iterations = mech.make_auth_info("pencil", iteration_count=4096)
    server = mech.make_server(lambda _user: (salt, stored, server_key, iterations))
    proto = PGProtocol("user", "db", "pencil")
    proto.data_to_send()
    f.events(proto, f.auth(10, b"SCRAM-SHA-256\0\0"))
    [(tag, body)] = f.split_frontend(proto.data_to_send())
    assert tag == b"p" and body.startswith(b"SCRAM-SHA-256\0")
    server.set_client_first(body[len(b"SCRAM-SHA-256\0") + 4 :].decode())
    f.events(proto, f.auth(11, server.get_server_first().encode()))
    [(tag, body)] = f.split_frontend(proto.data_to_send())
    server.set_client_final(body.decode())  # raises if the proof is wrong
    evs = f.events(proto, f.auth(12, server.get_server_final().encode()) + f.STARTUP_DONE)
    assert evs == [m.ReadyForQuery("I")]


def test_scram_with_forged_server_signature_fails() -> None:
    mech = ScramMechanism()
    salt, stored, server_key, iterations = mech.make_auth_info("pencil", iteration_count=4096)
    server = mech.make_server(lambda _user: (salt, stored, server_key, iterations))
    proto = PGProtocol("user", "db", "pencil")
    proto.data_to_send()
    f.events(proto, f.auth(10, b"SCRAM-SHA-256\0\0"))
    body = f.split_frontend(proto.data_to_send())[0][1]
    server.set_client_first(body[len(b"SCRAM-SHA-256\0") + 4 :].decode())
    f.events(proto, f.auth(11, server.get_server_first().encode()))
    proto.data_to_send()
    with pytest.raises(ProtocolError, match="SCRAM"):
        f.events(proto, f.auth(12, b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
    assert proto.state is State.FAILED


def test_authentication_ok_before_scram_proof_is_refused() -> None:
    proto = PGProtocol("user", "db", "pencil")
    proto.data_to_send()
    f.events(proto, f.auth(10, b"SCRAM-SHA-256\0\0"))
    with pytest.raises(ProtocolError, match="SCRAM"):
        f.events(proto, f.AUTH_OK)


def test_pipelined_password_goes_out_with_startup_and_is_not_repeated() -> None:
    proto = PGProtocol("u", "db", "pw", pipeline_password=True)
    assert f.tags(proto.data_to_send()) == [b"", b"p"]
    evs = f.events(proto, f.auth(3) + f.STARTUP_DONE)
    assert evs == [m.ReadyForQuery("I")]
    assert proto.data_to_send() == b""


@pytest.mark.parametrize(("code", "name"), [(7, "GSSAPI"), (9, "SSPI"), (2, "Kerberos")])
def test_unsupported_auth_method_is_a_clear_interface_error(code: int, name: str) -> None:
    proto = PGProtocol("u", "db", "pw")
    proto.data_to_send()
    with pytest.raises(InterfaceError, match=name):
        f.events(proto, f.auth(code))
    with pytest.raises(InterfaceError):
        proto.next_event()  # FAILED is sticky


def test_password_request_without_password() -> None:
    proto = PGProtocol("bob", "db")
    proto.data_to_send()
    with pytest.raises(InterfaceError, match=r"'bob'.*none was given"):
        f.events(proto, f.auth(3))


def test_startup_error_is_reported_and_closes() -> None:
    proto = PGProtocol("u", "db", "pw")
    proto.data_to_send()
    [ev] = f.events(proto, f.error("28P01", "password authentication failed", "FATAL"))
    assert isinstance(ev, m.ErrorResponse) and ev.fields["C"] == "28P01"
    assert proto.state is State.CLOSED


def test_guard_is_consulted_for_each_step() -> None:
    calls: list[object] = []

    class Guard:
        def on_request(self, code: int) -> None:
            calls.append(code)

        def choose_mechanism(self, mechanisms: object) -> tuple[str, bytes | None]:
            raise AssertionError("not SASL")

        def on_ok(self) -> None:
            calls.append("ok")

        def may_send_password_early(self) -> bool:
            return True

    proto = PGProtocol("u", "db", "pw", guard=Guard())
    proto.data_to_send()
    f.events(proto, f.auth(3) + f.STARTUP_DONE)
    assert calls == [3, "ok"]


def test_pipelined_operations_each_end_with_their_own_ready() -> None:
    proto = f.started()
    proto.send_query("select 1")
    proto.send_query("select nope")
    proto.send_query("select 3")
    assert f.tags(proto.data_to_send()) == [b"Q", b"Q", b"Q"]
    assert proto.pending == 3 and proto.state is State.BUSY
    one = f.row_description(("a", 23)) + f.data_row(b"1") + f.command_complete("SELECT 1")
    reply = one + f.ready() + f.error("42703", "no column") + f.ready() + one + f.ready()
    evs = f.events(proto, reply)
    kinds = [type(e).__name__ for e in evs]
    assert kinds == [
        "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery",
        "ErrorResponse", "ReadyForQuery",
        "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery",
    ]  # fmt: skip
    # mypy still holds proto.state narrowed to BUSY by an assert above
    assert proto.pending == 0 and proto.state is State.READY  # type: ignore[comparison-overlap]


def test_error_is_held_until_ready_and_leftovers_are_discarded() -> None:
    proto = f.started()
    proto.send_execute_many("s", [[b"1"], [b"2"]])
    proto.data_to_send()
    first = f.events(proto, f.msg(b"2") + f.command_complete("INSERT 0 1") + f.error())
    assert [type(e) for e in first] == [m.BindComplete, m.CommandComplete]
    evs = f.events(proto, f.msg(b"2") + f.ready("E"))
    assert [type(e) for e in evs] == [m.ErrorResponse, m.ReadyForQuery]
    assert proto.transaction_status == "E"


def test_notices_pass_through_in_any_state() -> None:
    proto = f.started()
    proto.send_query("select 1")
    proto.data_to_send()
    evs = f.events(proto, f.notice("hello") + f.command_complete("SELECT 0") + f.ready())
    assert isinstance(evs[0], m.NoticeResponse) and evs[0].fields["M"] == "hello"


def test_fatal_error_closes_without_waiting_for_ready() -> None:
    proto = f.started()
    proto.send_query("select 1")
    proto.data_to_send()
    [ev] = f.events(proto, f.error("57P01", "terminating", "FATAL"))
    assert isinstance(ev, m.ErrorResponse) and proto.state is State.CLOSED
    with pytest.raises(InterfaceError, match="closed"):
        proto.send_query("select 2")


def test_copy_in_then_done() -> None:
    proto = f.started()
    proto.send_query("copy t from stdin")
    proto.data_to_send()
    [ev] = f.events(proto, f.msg(b"G", b"\0\0\1\0\0"))
    assert ev == m.CopyInResponse(0, (0,)) and proto.state is State.COPY_IN
    with pytest.raises(InterfaceError, match="COPY"):
        proto.send_query("select 1")
    proto.send_copy_data(b"1\n")
    proto.send_copy_done()
    assert f.tags(proto.data_to_send()) == [b"d", b"c"]
    evs = f.events(proto, f.command_complete("COPY 1") + f.ready())
    assert evs == [m.CommandComplete("COPY 1"), m.ReadyForQuery("I")]


def test_copy_in_error_makes_later_copy_data_harmless() -> None:
    proto = f.started()
    proto.send_query("copy t from stdin")
    proto.data_to_send()
    f.events(proto, f.msg(b"G", b"\0\0\0"))
    assert f.events(proto, f.error("22P02", "bad input")) == []
    proto.send_copy_data(b"more\n")  # the server drops these after its error
    proto.send_copy_done()
    evs = f.events(proto, f.ready())
    assert [type(e) for e in evs] == [m.ErrorResponse, m.ReadyForQuery]


def test_copy_out_flow() -> None:
    proto = f.started()
    proto.send_query("copy t to stdout")
    proto.data_to_send()
    reply = f.msg(b"H", b"\0\0\0") + f.msg(b"d", b"a\n") + f.msg(b"c")
    reply += f.command_complete("COPY 1")
    evs = f.events(proto, reply + f.ready())
    assert [type(e) for e in evs] == [
        m.CopyOutResponse,
        m.CopyData,
        m.CopyDone,
        m.CommandComplete,
        m.ReadyForQuery,
    ]
    assert proto.state is State.READY


def test_garbage_moves_to_failed_and_every_later_call_raises() -> None:
    proto = f.started()
    proto.send_query("select 1")
    proto.data_to_send()
    with pytest.raises(ProtocolError):
        f.events(proto, b"\x00\x00\x00\x00\x01")
    assert proto.state is State.FAILED
    with pytest.raises(ProtocolError):
        proto.next_event()
    with pytest.raises(ProtocolError):
        proto.send_query("select 1")


def test_ready_with_nothing_pending_is_a_protocol_error() -> None:
    proto = f.started()
    with pytest.raises(ProtocolError, match="no operation pending"):
        f.events(proto, f.ready())


def test_data_row_before_any_operation_is_a_protocol_error() -> None:
    proto = f.started()
    with pytest.raises(ProtocolError, match="DataRow"):
        f.events(proto, f.data_row(b"1"))


def test_close_statement_rides_with_next_operation() -> None:
    proto = f.started()
    proto.send_close_statement("s1")
    proto.send_execute("s2", [b"1"])
    assert f.tags(proto.data_to_send()) == [b"C", b"B", b"E", b"S"]
    assert proto.pending == 1


def test_prepare_execute_is_one_flight() -> None:
    proto = f.started()
    proto.send_prepare_execute("s1", "select $1", [23], [b"5"], max_rows=1)
    sent = f.split_frontend(proto.data_to_send())
    assert [t for t, _ in sent] == [b"P", b"D", b"B", b"E", b"S"]
    assert sent[0][1] == b"s1\0select $1\0" + struct.pack("!hI", 1, 23)
    assert sent[3][1] == b"\0" + struct.pack("!I", 1)


def test_terminate_is_sent_once_and_closes() -> None:
    proto = f.started()
    proto.send_terminate()
    assert proto.data_to_send() == b"X\0\0\0\4"
    proto.send_terminate()
    assert proto.data_to_send() == b""
    assert proto.state is State.CLOSED


def test_eof_closes() -> None:
    proto = f.started()
    proto.receive_data(b"")
    assert proto.state is State.CLOSED


def test_pipelined_password_waits_when_the_guard_says_no() -> None:
    class Guard:
        def on_request(self, code: int) -> None:
            pass

        def choose_mechanism(self, mechanisms: object) -> tuple[str, bytes | None]:
            raise AssertionError("not SASL")

        def on_ok(self) -> None:
            pass

        def may_send_password_early(self) -> bool:
            return False

    proto = PGProtocol("u", "db", "pw", pipeline_password=True, guard=Guard())
    assert f.tags(proto.data_to_send()) == [b""]
    f.events(proto, f.auth(3))
    assert f.tags(proto.data_to_send()) == [b"p"]
