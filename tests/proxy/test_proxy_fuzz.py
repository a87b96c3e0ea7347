"""Fuzz target: the relay's client-frame fast path (proxy.frames.next_frame) against the
`websockets` library's own parser (Frame.parse, server side: masked frames required).

Whatever the bytes, the fast path may only relay or answer a frame exactly as websockets
would parse it (same kind, same payload, same length consumed), may only wait for more bytes
when websockets would too, and may decline (hand over to websockets) anything else, but never
a whole masked final binary frame within max_size: that is the case it exists for.

The suite runs a bounded number of examples (a few seconds). Longer on demand:

    FUZZ_EXAMPLES=200000 .venv/bin/python -m pytest tests/proxy/test_proxy_fuzz.py -q --timeout 0

(40,000 examples take about five minutes on a loaded two-core machine.)
"""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from websockets.utils import apply_mask

from proxy.frames import CONTROL, DATA, NEED_DATA, OTHER, next_frame

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1500"))
# Found by a longer run: a 1-byte ping header with max_size=0 made the fast path wait for the
# payload while websockets refuses the frame from its header alone.

_NEED = "need"
_ERROR = "error"


def websockets_parse(data: bytes, max_size: int | None) -> tuple[str, Frame | None, int]:
    """(outcome, frame, bytes consumed) from websockets' server-side frame parser."""
    reader = StreamReader()
    reader.feed_data(data)
    gen = Frame.parse(reader.read_exact, mask=True, max_size=max_size, extensions=None)
    try:
        next(gen)
    except StopIteration as stop:
        frame: Frame = stop.value
        return "frame", frame, len(data) - len(reader.buffer)
    except (ProtocolError, PayloadTooBig):
        return _ERROR, None, 0
    return _NEED, None, 0


@st.composite
def client_frames(draw: st.DrawFn) -> bytes:
    """Frames near the fast path's decisions: every first byte that matters, the three length
    encodings (also non-minimal ones), lengths around max_size, masked or not, cut anywhere."""
    b0 = draw(
        st.one_of(
            st.sampled_from([0x82, 0x89, 0x8A, 0x81, 0x80, 0x88, 0x02, 0xC2, 0xA2, 0x92, 0x8B]),
            st.integers(0, 255),
        )
    )
    masked = draw(st.integers(0, 9)) > 0  # mostly masked, as clients must
    n = draw(st.one_of(st.integers(0, 140), st.integers(0, 70000), st.sampled_from([1 << 62])))
    encoding = draw(st.sampled_from(["short", "16", "64"]))
    if encoding == "short" and n < 126:
        head = struct.pack("!BB", b0, (0x80 if masked else 0) | n)
    elif encoding != "64" and n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if masked else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if masked else 0) | 127, n)
    mask = draw(st.binary(min_size=4, max_size=4)) if masked else b""
    body_len = min(n, 300) if n > 70000 else n
    payload = (
        draw(st.binary(min_size=body_len, max_size=body_len))
        if body_len < 300
        else (bytes(range(256)) * 300)[:body_len]
    )
    frame = head + mask + (apply_mask(payload, mask) if masked else payload)
    cut = draw(st.integers(0, len(frame)))
    frame = frame[:cut] if draw(st.integers(0, 3)) == 0 else frame
    return frame + draw(st.binary(max_size=8))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 1500,  # the suite's run is the same every time
)
@example(data=b"\x89\x81", max_size=0, offset=0)
@given(
    data=st.one_of(client_frames(), st.binary(max_size=40)),
    max_size=st.sampled_from([None, 0, 16, 125, 126, 65535, 65536, 1 << 20]),
    offset=st.integers(0, 3),
)
def test_fast_path_agrees_with_websockets(data: bytes, max_size: int | None, offset: int) -> None:
    buf = b"\xff" * offset + data  # next_frame is called at any position of its buffer
    kind, start, end = next_frame(memoryview(buf), offset, max_size)
    outcome, frame, used = websockets_parse(data, max_size)
    if kind in (DATA, CONTROL):
        assert outcome == "frame" and frame is not None, (kind, outcome)
        assert frame.fin and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
        expected = (Opcode.BINARY,) if kind == DATA else (Opcode.PING, Opcode.PONG)
        assert frame.opcode in expected
        assert end - offset == used
        mask = buf[start - 4 : start]
        assert apply_mask(buf[start:end], mask) == frame.data
    elif kind == NEED_DATA:
        assert outcome == _NEED, (outcome, frame)
        assert (start, end) == (0, 0)
    else:
        assert kind == OTHER and (start, end) == (0, 0)
        # Declining is always safe (websockets takes over), except for the frame the fast
        # path exists for.
        if outcome == "frame":
            assert frame is not None
            assert not (
                frame.opcode is Opcode.BINARY
                and frame.fin
                and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            ), frame


def test_the_fuzz_target_sees_every_outcome() -> None:
    """The comparison above means something only if both parsers reach each outcome."""
    cases = {
        DATA: b"\x82\x83" + b"\x01\x02\x03\x04" + apply_mask(b"abc", b"\x01\x02\x03\x04"),
        CONTROL: b"\x89\x80" + b"\0\0\0\0",
        NEED_DATA: b"\x82\xfe\x01",
        OTHER: b"\x82\x03abc",  # unmasked: websockets refuses it
    }
    outcomes = {DATA: "frame", CONTROL: "frame", NEED_DATA: _NEED, OTHER: _ERROR}
    for kind, raw in cases.items():
        assert next_frame(memoryview(raw), 0, 1 << 20)[0] == kind
        assert websockets_parse(raw, 1 << 20)[0] == outcomes[kind]
