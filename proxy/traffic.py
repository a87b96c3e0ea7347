"""LOG_TRAFFIC: sizes and Postgres message types, never payload bytes (passwords live there).

Postgres frames ("Message Formats" in the PostgreSQL docs) are a 1-byte type and a 4-byte
length; the client's first messages (StartupMessage, SSLRequest, CancelRequest) have no type
byte. After an accepted SSLRequest the stream is TLS and is logged as opaque.
"""

from __future__ import annotations

import logging

_UNTAGGED = {
    196608: "StartupMessage",
    80877103: "SSLRequest",
    80877104: "GSSENCRequest",
    80877102: "CancelRequest",
}
_NEGOTIATE = {80877103, 80877104}


class _Framer:
    """Walks message boundaries across chunk splits, keeping at most a header's worth of bytes."""

    def __init__(self, tagged: bool) -> None:
        self.tagged = tagged
        self.head = b""
        self.skip = 0
        self.opaque = False
        self.negotiating = False  # sent SSLRequest/GSSENCRequest, awaiting 'S' / 'N'

    def feed(self, data: bytes) -> list[str]:
        names: list[str] = []
        i, n = 0, len(data)
        while i < n and not self.opaque:
            if self.skip:
                step = min(self.skip, n - i)
                i += step
                self.skip -= step
                continue
            if self.negotiating:  # bytes before the server's answer: a pipelined TLS hello
                self.opaque = True
                names.append("TLS")
                break
            need = 5 if self.tagged else 8
            take = min(need - len(self.head), n - i)
            self.head += data[i : i + take]
            i += take
            if len(self.head) < need:
                break
            names.append(self._message())
        return names

    def _message(self) -> str:
        head, self.head = self.head, b""
        if self.tagged:
            tag, length = chr(head[0]), int.from_bytes(head[1:5], "big")
            if length < 4 or not tag.isprintable():
                self.opaque = True
                return "?"
            self.skip = length - 4
            return tag
        length, code = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:8], "big")
        name = _UNTAGGED.get(code)
        if name is None or not 8 <= length <= 10_000:
            self.opaque = True
            return "?"
        self.skip = length - 8
        if code in _NEGOTIATE:
            self.negotiating = True
        elif name == "StartupMessage":
            self.tagged = True
        return name


def _summary(names: list[str]) -> str:
    """Run-length: 'T D*1200 C Z' reads better than twelve hundred Ds."""
    out: list[str] = []
    for name in names:
        if out and (out[-1] == name or out[-1].startswith(name + "*")):
            count = int(out[-1].split("*")[1]) + 1 if "*" in out[-1] else 2
            out[-1] = f"{name}*{count}"
        else:
            out.append(name)
    return " ".join(out)


class TrafficLog:
    """One per relay; both directions share it because the server's 'S' ends client framing."""

    def __init__(self, conn_id: int, logger: logging.Logger) -> None:
        self.conn_id = conn_id
        self.logger = logger
        self.client = _Framer(tagged=False)
        self.server = _Framer(tagged=True)

    def from_client(self, data: bytes) -> None:
        names = self.client.feed(data)
        self._log("ws->tcp", data, names, self.client.opaque)

    def from_server(self, data: bytes) -> None:
        if self.client.negotiating and data:
            self.client.negotiating = False
            if data[:1] in (b"S", b"G"):
                self.client.opaque = self.server.opaque = True
                self._log("tcp->ws", data, ["SSLResponse", "TLS"], True)
                return
            names = ["SSLResponse", *self.server.feed(data[1:])]
        else:
            names = self.server.feed(data)
        self._log("tcp->ws", data, names, self.server.opaque)

    def _log(self, direction: str, data: bytes, names: list[str], opaque: bool) -> None:
        kinds = _summary(names) if names else ("opaque" if opaque else "(continued)")
        self.logger.info("conn %d %s %d bytes: %s", self.conn_id, direction, len(data), kinds)
