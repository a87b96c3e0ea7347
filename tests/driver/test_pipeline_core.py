"""Pipelined start-up in the sans-I/O core: what goes out before the server asks, when the
first query may join it, and what a wrong prediction does (no network)."""

from __future__ import annotations

import pytest
from scramp import ScramMechanism

from driver.auth.exchange import Mispredicted
from driver.errors import InterfaceError
from driver.protocol import PGProtocol, State
from driver.protocol import messages as m
from tests.driver import fakes as f


def _scram_server(password: str = "pencil") -> object:
    mech = ScramMechanism()
    salt, stored, server_key, iterations = mech.make_auth_info(password, iteration_count=4096)
    return mech.make_server(lambda _user: (salt, stored, server_key, iterations))


def _learned() -> tuple[list[tuple[str, tuple[str, ...]]], object]:
    seen: list[tuple[str, tuple[str, ...]]] = []
    return seen, lambda method, mechanisms: seen.append((method, mechanisms))


def test_scram_client_first_rides_the_startup_and_the_query_rides_client_final() -> None:
    server = _scram_server()
    seen, learn = _learned()
    proto = PGProtocol("user", "db", "pencil", predict="scram-sha-256", learn=learn)  # type: ignore[arg-type]
    first = f.split_frontend(proto.data_to_send())
    assert [t for t, _ in first] == [b"", b"p"]
    assert first[1][1].startswith(b"SCRAM-SHA-256\0")
    assert not proto.startup_queued
    with pytest.raises(InterfaceError, match="still starting up"):
        proto.send_query("select 1")  # the server-first message is not here yet
    server.set_client_first(first[1][1][len(b"SCRAM-SHA-256\0") + 4 :].decode())  # type: ignore[attr-defined]
    reply = f.auth(10, b"SCRAM-SHA-256\0\0") + f.auth(11, server.get_server_first().encode())  # type: ignore[attr-defined]
    assert f.events(proto, reply) == []
    assert proto.startup_queued and seen == [("scram-sha-256", ("SCRAM-SHA-256",))]
    proto.send_query("select 1")  # queued behind client-final: one flight
    out = f.split_frontend(proto.data_to_send())
    assert [t for t, _ in out] == [b"p", b"Q"]
    server.set_client_final(out[0][1].decode())  # type: ignore[attr-defined]
    tail = f.auth(12, server.get_server_final().encode()) + f.STARTUP_DONE  # type: ignore[attr-defined]
    result = f.row_description(("x", 23)) + f.data_row(b"1") + f.command_complete("SELECT 1")
    evs = f.events(proto, tail + result + f.ready())
    assert evs[0] == m.ReadyForQuery("I")  # the start-up's, consumed before the query's
    assert isinstance(evs[1], m.RowDescription) and evs[2] == m.DataRow((b"1",))
    assert evs[-1] == m.ReadyForQuery("I") and proto.state is State.READY
    assert proto.auth_method == "scram-sha-256"


def test_trust_prediction_lets_the_query_ride_the_startup_message() -> None:
    proto = PGProtocol("u", "db", None, predict="none")
    assert proto.startup_queued
    proto.send_query("select 1")
    assert f.tags(proto.data_to_send()) == [b"", b"Q"]
    evs = f.events(proto, f.STARTUP_DONE + f.command_complete("SELECT 1") + f.ready())
    assert evs == [m.ReadyForQuery("I"), m.CommandComplete("SELECT 1"), m.ReadyForQuery("I")]


@pytest.mark.parametrize(("reply", "method"), [
    (f.auth(5, b"salt"), "md5"),
    (f.auth(3), "password"),
    (f.AUTH_OK, "none"),
])
def test_a_server_asking_otherwise_than_predicted_is_a_mispredict(reply: bytes,
                                                                  method: str) -> None:
    seen, learn = _learned()
    proto = PGProtocol("u", "db", "pw", predict="scram-sha-256", learn=learn)  # type: ignore[arg-type]
    proto.data_to_send()
    with pytest.raises(Mispredicted) as info:
        f.events(proto, reply)
    assert info.value.method == method and seen == [(method, ())]
    assert "SCRAM client-first" in str(info.value)
    assert proto.state is State.FAILED and proto.data_to_send() == b""  # nothing more leaves


def test_plus_predicted_but_not_offered_is_a_mispredict_naming_the_mechanisms() -> None:
    proto = PGProtocol("u", "db", "pw", predict="scram-sha-256", channel_binding=b"cb" * 16)
    [_, (_, body)] = f.split_frontend(proto.data_to_send())
    assert body.startswith(b"SCRAM-SHA-256-PLUS\0")
    with pytest.raises(Mispredicted) as info:
        f.events(proto, f.auth(10, b"SCRAM-SHA-256\0\0"))
    assert info.value.mechanisms == ("SCRAM-SHA-256",)
    # knowing the list, the next attempt predicts the plain mechanism
    again = PGProtocol("u", "db", "pw", predict="scram-sha-256", channel_binding=b"cb" * 16,
                       mechanisms=info.value.mechanisms)
    [_, (_, body)] = f.split_frontend(again.data_to_send())
    assert body.startswith(b"SCRAM-SHA-256\0")
    assert f.events(again, f.auth(10, b"SCRAM-SHA-256\0\0")) == []  # accepted as predicted


def test_predicted_password_is_not_resent_and_a_wrong_method_is_caught() -> None:
    proto = PGProtocol("u", "db", "pw", predict="password")
    assert f.tags(proto.data_to_send()) == [b"", b"p"] and proto.startup_queued
    proto.send_query("select 1")
    f.events(proto, f.auth(3))
    assert f.tags(proto.data_to_send()) == [b"Q"]
    other = PGProtocol("u", "db", "pw", predict="password")
    other.data_to_send()
    with pytest.raises(Mispredicted, match="cleartext password had already been sent"):
        f.events(other, f.auth(10, b"SCRAM-SHA-256\0\0"))


def test_a_query_queued_behind_a_trust_prediction_cannot_answer_a_request() -> None:
    proto = PGProtocol("u", "db", "pw", predict="none")
    proto.data_to_send()
    proto.send_query("select 1")
    proto.data_to_send()
    with pytest.raises(Mispredicted, match="the first query had already been sent"):
        f.events(proto, f.auth(5, b"salt"))
    nopw = PGProtocol("bob", "db", None)
    nopw.send_query("select 1")
    with pytest.raises(InterfaceError, match="none was given"):  # the real cause, not a guess
        f.events(nopw, f.auth(3))


def test_without_a_prediction_the_answer_is_still_one_flight_with_the_query() -> None:
    proto = PGProtocol("user", "db", "pw")
    assert f.tags(proto.data_to_send()) == [b""] and not proto.startup_queued
    f.events(proto, f.auth(5, b"salt"))
    assert proto.startup_queued and proto.auth_method == "md5"
    proto.send_query("select 1")
    assert f.tags(proto.data_to_send()) == [b"p", b"Q"]


def test_a_startup_error_drops_the_queued_query_and_closes() -> None:
    proto = PGProtocol("u", "db", "pw", predict="password")
    proto.send_query("select 1")
    proto.data_to_send()
    [ev] = f.events(proto, f.auth(3) + f.error("28P01", "password authentication failed",
                                                "FATAL"))  # fmt: skip
    assert isinstance(ev, m.ErrorResponse) and ev.fields["C"] == "28P01"
    assert proto.state is State.CLOSED and proto.pending == 0


def test_guard_refusing_early_passwords_keeps_it_back() -> None:
    class Guard:
        def on_request(self, code: int) -> None:
            pass

        def choose_mechanism(self, mechanisms: object) -> tuple[str, bytes | None]:
            return "SCRAM-SHA-256", None

        def on_ok(self) -> None:
            pass

        def may_send_password_early(self) -> bool:
            return False

    proto = PGProtocol("u", "db", "pw", predict="password", guard=Guard())
    assert f.tags(proto.data_to_send()) == [b""] and not proto.startup_queued
