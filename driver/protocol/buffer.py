"""Framing of backend input: a 1-byte tag and a 4-byte length, over arbitrary chunks."""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct
from struct import error as StructError
from typing import Any

from .. import speedups
from ..errors import ProtocolError

__all__ = ["MAX_MESSAGE", "ReceiveBuffer"]

_HEADER = Struct("!cI")
_LEN = Struct("!I")
_H = Struct("!H")
_i = Struct("!i")
_DATA_ROW_HEADER = Struct("!IH")
# ParseComplete, BindComplete, CloseComplete: bodiless, and nothing for the caller to see.
_NO_OPS = (b"1\0\0\0\4", b"2\0\0\0\4", b"3\0\0\0\4")
_SUSPENDED = b"s\0\0\0\4"
_BIND_COMPLETE = b"2\0\0\0\4"
_READY = b"Z\0\0\0\5"
_STATUS = {73: "I", 84: "T", 69: "E"}
# The server never sends a message this large (1 GB is its own limit on field values).
MAX_MESSAGE = (1 << 30) + 1024
# Leftovers above this size grow in place (bytearray) instead of being re-concatenated,
# so a huge message arriving in many chunks costs linear, not quadratic, copying.
_GROW_IN_PLACE = 1 << 16


class ReceiveBuffer:
    """Accumulates bytes and cuts them into (tag, body) pairs.

    ``next_message()`` returns None while a message is incomplete: "need more" is a value.
    The common case, a whole response in one read, keeps the received ``bytes`` as they are
    and slices messages (and DataRow values) straight out of them.
    """

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf: bytes | bytearray = b""
        self._pos = 0

    def feed(self, data: bytes) -> None:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            self._buf, self._pos = bytes(data), 0
        elif isinstance(buf, bytearray):
            buf += data
        elif len(buf) - pos + len(data) > _GROW_IN_PLACE:
            grown = bytearray(buf[pos:])
            grown += data
            self._buf, self._pos = grown, 0
        else:
            self._buf, self._pos = buf[pos:] + data, 0

    def __len__(self) -> int:
        return len(self._buf) - self._pos

    def _complete(self) -> int:
        """End offset of the message at the head, or 0 if it is not all here yet."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 5:
            return 0
        tag, length = _HEADER.unpack_from(buf, pos)
        if length < 4 or length > MAX_MESSAGE:
            raise ProtocolError(f"invalid length {length} for message type {tag!r}")
        end = pos + 1 + length
        if len(buf) < end:
            return 0
        if isinstance(buf, bytearray):  # settle back to immutable bytes for slicing
            self._buf, self._pos = bytes(buf[pos:]), 0
            end -= pos
        return int(end)

    def _head(self, tag: int, least: int) -> tuple[bytes, int] | None:
        """The input as bytes and the head's offset, if a message of ``tag`` is there with
        at least ``least`` bytes (a whole one, if the input is still a bytearray)."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < least or buf[pos] != tag:
            return None
        if type(buf) is not bytes:
            if not self._complete():
                return None
            buf, pos = self._buf, self._pos
            if not isinstance(buf, bytes):  # never: _complete() settled it to bytes
                return None
        return buf, pos

    def next_message(self) -> tuple[bytes, bytes] | None:
        """Pop one message.

        Returns:
            ``(tag, body)`` without the length word, or None if more bytes are needed.

        Raises:
            ProtocolError: the length word is impossible (< 4 or absurdly large).
        """
        buf, pos = self._buf, self._pos
        if type(buf) is bytes and len(buf) - pos >= 5:  # the common case, inline
            tag, length = _HEADER.unpack_from(buf, pos)
            end = pos + 1 + length
            if 4 <= length <= MAX_MESSAGE and end <= len(buf):
                self._pos = end
                return tag, buf[pos + 5 : end]  # slices of bytes are bytes already
        end = self._complete()
        if not end:
            return None
        buf, pos = self._buf, self._pos
        self._pos = end
        return bytes(buf[pos : pos + 1]), bytes(buf[pos + 5 : end])

    def read_data_rows(self, rows: list[tuple[bytes | None, ...]]) -> None:
        """Pop every complete DataRow at the head, appending each one's values to ``rows``.

        This is the per-row hot path: one call for a whole batch, values sliced from the
        input once, no intermediate body copy and no message object. It stops at the first
        message that is not a complete DataRow.

        Raises:
            ProtocolError: a DataRow is malformed.
        """
        head = self._head(68, 7)  # 68 == ord("D"): most calls stop right here
        if head is None:
            return
        buf, pos = head
        try:
            pos = _read_rows(buf, pos, rows)
        except ProtocolError:
            raise
        except ValueError as exc:  # the C loop's: the same words as _rows's ProtocolError
            raise ProtocolError(str(exc)) from None
        except Exception as exc:  # struct.error when a length word runs off the end
            raise ProtocolError(f"malformed DataRow: {exc}") from exc
        finally:
            self._pos = pos

    def read_copy_data(self, chunks: list[bytes]) -> None:
        """Pop every complete CopyData at the head, appending each one's payload to ``chunks``.

        COPY TO STDOUT sends a CopyData per row: this reads a whole input's worth in one
        call, payloads sliced from the input, with no message object (a tenth of the cost
        of ``next_message()`` and an event per row). It stops at anything else.

        Raises:
            ProtocolError: a CopyData's length word is impossible.
        """
        head = self._head(100, 5)  # 100 == ord("d")
        if head is None:
            return
        buf, pos = head
        size_buf = len(buf)
        unpack = _LEN.unpack_from
        add = chunks.append
        while size_buf - pos >= 5 and buf[pos] == 100:
            end = pos + 1 + unpack(buf, pos + 1)[0]
            if end > size_buf or end < pos + 5:
                if end < pos + 5 or end - pos > MAX_MESSAGE:
                    self._pos = pos
                    raise ProtocolError(f"invalid length {end - pos - 1} for a CopyData")
                break
            add(buf[pos + 5 : end])
            pos = end
        self._pos = pos

    def skip_command_results(self) -> int:
        """Pop the BindComplete and CommandComplete messages at the head; return how many
        CommandComplete (rows done) were among them.

        They are executemany()'s reply, a pair per row, and it keeps nothing of them. Only
        well-formed ones are popped (a CommandComplete's tag NUL-terminated ASCII): it stops
        at anything else, incomplete or malformed, for ``next_message()`` to handle or report.
        """
        buf, pos = self._buf, self._pos
        if type(buf) is not bytes:
            if not self._complete():
                return 0
            buf, pos = self._buf, self._pos
            if not isinstance(buf, bytes):  # never: _complete() settled it to bytes
                return 0
        size_buf, count = len(buf), 0
        unpack = _LEN.unpack_from
        while size_buf - pos >= 5:
            if buf.startswith(_BIND_COMPLETE, pos):
                pos += 5
            elif buf[pos] == 67:  # 67 == ord("C")
                end = pos + 1 + unpack(buf, pos + 1)[0]
                if end > size_buf or buf[end - 1] != 0 or not buf[pos + 5 : end].isascii():
                    break
                pos = end
                count += 1
            else:
                break
        self._pos = pos
        return count

    def read_result(self, rows: list[tuple[bytes | None, ...]]) -> tuple[str, str] | None:
        """Pop the rest of an extended query's result, if all of it is here.

        The common case of a short result in one read, in one pass: ParseComplete,
        BindComplete and CloseComplete are skipped, DataRows' values appended to ``rows``,
        then the CommandComplete (or PortalSuspended) and the ReadyForQuery after it popped.

        Returns:
            ``(command tag, ReadyForQuery status)``, the tag "" after PortalSuspended; or
            None when anything else comes first or the result is not all here. Then nothing
            is popped, except DataRows at the head (as ``read_data_rows()`` pops them).

        Raises:
            ProtocolError: a DataRow at the head is malformed.
        """
        buf, start = self._buf, self._pos
        size_buf = len(buf)
        if type(buf) is not bytes or size_buf - start < 11:
            return None
        body = start
        while buf.startswith(_NO_OPS, body):
            body += 5
        # A response ends with its ReadyForQuery: if the input does not, it is not all here.
        if buf.startswith(_READY, size_buf - 6):
            pos, first = body, len(rows)
            tag: str | None = None
            status: str | None = None
            try:
                if buf[pos] == 68:  # 68 == ord("D")
                    pos = _read_rows(buf, pos, rows)
                end = pos + 5
                if buf[pos] == 67:  # 67 == ord("C"): CommandComplete
                    end = pos + 1 + _LEN.unpack_from(buf, pos + 1)[0]
                    if buf[end - 1] == 0 and end <= size_buf:
                        tag = buf[pos + 5 : buf.index(0, pos + 5)].decode()
                elif buf.startswith(_SUSPENDED, pos):
                    tag = ""
                if tag is not None and buf.startswith(_READY, end):
                    status = _STATUS.get(buf[end + 5])
            except (ProtocolError, IndexError, ValueError, UnicodeDecodeError, StructError):
                status = None  # malformed or cut short: the general path reports it
            if status is not None and tag is not None:
                self._pos = end + 6
                return tag, status
            del rows[first:]
        if body == start:
            self.read_data_rows(rows)
        return None


def _read_rows(buf: bytes, pos: int, rows: list[Row]) -> int:
    """_rows(), by the C loop where it is loaded (driver/speedups.py: same rows, and the
    same errors as ValueError)."""
    read = speedups.read_rows
    return _rows(buf, pos, len(buf), rows.append) if read is None else read(buf, pos, rows)


def _rows(buf: bytes, pos: int, size_buf: int, add_row: Callable[[Row], None]) -> int:
    """Append the values of the complete DataRows at ``pos``; return where they end.

    Raises:
        ProtocolError: a DataRow's values do not add up to its length (and struct.error when
            a length word runs off the end: the caller wraps it).
    """
    header = _DATA_ROW_HEADER.unpack_from
    unpack = _i.unpack_from
    while size_buf - pos >= 7 and buf[pos] == 68:  # 68 == ord("D")
        length, n = header(buf, pos + 1)
        if 0 < n <= _UNROLLED and size_buf - pos >= 11:
            read = _readers.get(n) or _row_reader(n)
            after = read(buf, pos, size_buf, add_row)
            if after != pos:
                pos = after
                continue
        end = pos + 1 + length
        if end > size_buf:
            if length > MAX_MESSAGE:
                raise ProtocolError(f"invalid length {length} for a DataRow")
            break
        values: list[bytes | None] = [None] * n  # NULLs are left as they are
        p = pos + 7
        for k in range(n):
            (size,) = unpack(buf, p)
            p += 4
            if size >= 0:
                values[k] = buf[p : p + size]
                p += size
            elif size != -1:
                raise ProtocolError(f"DataRow value length {size}: only -1 (NULL) is negative")
        if p != end:
            raise ProtocolError("DataRow length does not match its values")
        add_row(tuple(values))
        pos = end
    return pos


Row = tuple[bytes | None, ...]
RowReader = Callable[[bytes, int, int, Callable[[Row], None]], int]
_UNROLLED = 32  # rows of up to this many values are read by a reader made for their width
_readers: dict[int, RowReader] = {}
_ROW_START = Struct("!IHi")  # DataRow length, value count, first value's length


def _bad_length(size: int) -> ProtocolError:
    return ProtocolError(f"DataRow value length {size}: only -1 (NULL) is negative")


def _row_reader(n: int) -> RowReader:
    """A reader of consecutive complete DataRows of ``n`` values, its loop over the values
    unrolled: per value, one length word read and one slice, with no list to fill and turn
    into a tuple (a third faster than the loop over ``range(n)`` on a 4-column row).
    It stops at anything else: another message, another width, a row not all here.
    """
    body = []
    for i in range(n):
        if i:
            body += ["s = unpack(buf, p)[0]", "p += 4"]
        body += ["if s >= 0:", "    q = p + s", f"    v{i} = buf[p:q]", "    p = q",
                 "elif s == -1:", f"    v{i} = None", "else:", "    raise bad(s)"]  # fmt: skip
    values = "".join(f"v{i}, " for i in range(n))
    source = "\n".join(
        [
            "def read(buf, pos, size_buf, add_row, header=header, unpack=unpack, bad=bad):",
            "    while size_buf - pos >= 11 and buf[pos] == 68:",
            "        length, k, s = header(buf, pos + 1)",
            "        end = pos + 1 + length",
            f"        if k != {n} or end > size_buf:",
            "            break",
            "        p = pos + 11",
            *("        " + line for line in body),
            "        if p != end:",
            "            raise ProtocolError('DataRow length does not match its values')",
            f"        add_row(({values}))",
            "        pos = end",
            "    return pos",
        ]
    )
    namespace: dict[str, Any] = {"header": _ROW_START.unpack_from, "unpack": _i.unpack_from,
                                 "ProtocolError": ProtocolError, "bad": _bad_length}  # fmt: skip
    exec(source, namespace)  # the source is built above from n alone
    read: RowReader = namespace["read"]
    _readers[n] = read
    return read
