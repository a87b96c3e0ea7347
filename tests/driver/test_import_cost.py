"""What ``import driver`` loads: only what every connection needs (cold starts, Pyodide).

Speed itself is measured, not asserted (timings are too noisy for a test); what is asserted
is that the optional parts stay out until used.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from driver.protocol import messages as m

# Loaded on first use only: the pool, SCRAM (hashlib's OpenSSL load, secrets, random), TLS,
# the transports themselves, and anything of websockets.
NOT_ON_IMPORT = (
    "driver.pool",
    "driver.poolslots",
    "driver.poolproxy",
    "driver.auth.scram",
    "driver.auth.pbkdf2",
    "hashlib",
    "secrets",
    "driver.tlsconfig",
    "driver.tlsconnect",
    "driver.transport.tls",
    "driver.transport.tcp",
    "driver.transport.websocket",
    "websockets",
)


def _loaded_after(code: str) -> set[str]:
    script = f"import json, sys; {code}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_import_driver_leaves_optional_parts_unloaded() -> None:
    loaded = _loaded_after("import driver")
    assert "driver.connection" in loaded  # the check sees the driver's own modules
    assert sorted(loaded & set(NOT_ON_IMPORT)) == []


def test_pool_loads_on_first_use() -> None:
    loaded = _loaded_after(
        "import driver; from driver import Pool; "
        "assert driver.create_pool.__module__ == 'driver.pool' and Pool.__module__ == 'driver.pool'"
    )
    assert {"driver.pool", "driver.poolslots", "driver.poolproxy"} <= loaded


def test_unknown_attribute_still_raises() -> None:
    import driver

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        driver.nope  # noqa: B018


def test_backend_messages_behave_as_frozen_dataclasses_did() -> None:
    # Hand-written slotted classes replaced @dataclass(frozen=True, slots=True): same values.
    row = m.DataRow((b"1", None))
    assert row == m.DataRow(values=(b"1", None))
    assert row != m.DataRow((b"2", None))
    assert hash(row) == hash(m.DataRow((b"1", None)))
    assert repr(row) == "DataRow(values=(b'1', None))"
    # the same fields in another message type are a different message
    assert m.CopyInResponse(0, (0,)) != m.CopyOutResponse(0, (0,))
    assert m.ParseComplete() == m.ParseComplete() and m.ParseComplete() != m.BindComplete()
    assert repr(m.NoData()) == "NoData()"
    field = m.Field("a", 1, 2, 23, 4, -1, 0)
    assert repr(field) == (
        "Field(name='a', table_oid=1, column=2, type_oid=23, type_size=4, type_modifier=-1, "
        "format=0)"
    )
    with pytest.raises(AttributeError):
        row.values = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        m.ReadyForQuery("I").extra = 1  # type: ignore[attr-defined]
    match m.BackendKeyData(7, 9):
        case m.BackendKeyData(pid, key):
            assert (pid, key) == (7, 9)
        case _:
            pytest.fail("positional match failed")
