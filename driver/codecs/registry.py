"""TypeRegistry: which codec handles which type OID, and which OID a bare Python value gets."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from ..types import Range
from . import datetimes as dt
from . import geometry as geo
from . import oids
from . import scalars as sc
from . import structured as st
from .arrays import (
    CodecError,
    Decoder,
    TextEncoder,
    array_decoder,
    array_encoder,
    format_array,
    takes_sequences,
)

Encoder = Callable[[Any], bytes | str]
# value -> (OID to declare, text); used when the parameter's type is not known yet
Inferrer = Callable[[Any], tuple[int, str]]

_INT8_MIN, _INT8_MAX = -(2**63), 2**63 - 1
_NUMBERS = {oids.INT8, oids.FLOAT8, oids.NUMERIC}


class TypeRegistry:
    """Text-format codecs keyed by type OID; each connection works on its own copy().

    Decoders are looked up once per result column (`decoder(oid)`), so the per-row cost is just
    calling them. Unknown OIDs decode as str, which costs no catalog round trip.
    """

    __slots__ = (
        "_array_of",
        "_decoders",
        "_delimiters",
        "_encoders",
        "_inferrers",
        "custom",
        "derived",
        "untyped",
    )

    def __init__(self) -> None:
        self._decoders: dict[int, Decoder] = {}
        self._encoders: dict[int, TextEncoder] = {}
        self._inferrers: dict[type, Inferrer] = {}
        self._array_of: dict[int, int] = {}
        self._delimiters: dict[int, str] = {}  # element OID -> typdelim, when not ','
        # Exact Python type -> its text, for the bare values whose parameter type is left for
        # the server to infer (str, and int/float: see ExtendedQuery._encode): the common
        # parameters in one call each. None means "not this value": take encode().
        self.untyped: dict[type, Callable[[Any], bytes | None]] = {}
        # OIDs whose codecs came from introspecting the catalog (dropped by drop_derived()),
        # and those the user set with set_type_codec() (kept)
        self.derived: set[int] = set()
        self.custom: set[int] = set()

    def copy(self) -> TypeRegistry:
        """A registry whose register() calls leave this one untouched."""
        new = TypeRegistry()
        new._decoders = dict(self._decoders)
        new._encoders = dict(self._encoders)
        new._inferrers = dict(self._inferrers)
        new._array_of = dict(self._array_of)
        new._delimiters = dict(self._delimiters)
        new.untyped = dict(self.untyped)
        new.derived = set(self.derived)
        new.custom = set(self.custom)
        return new

    def knows(self, oid: int) -> bool:
        """Whether `oid` has a decoder of its own (else it decodes as str until introspected)."""
        return oid in self._decoders

    def encoder(self, oid: int) -> TextEncoder | None:
        """The text encoder of `oid`, None when values of it are sent as str."""
        return self._encoders.get(oid)

    def array_of(self, oid: int) -> int | None:
        return self._array_of.get(oid)

    def forget(self, oids_: set[int]) -> None:
        """Drop the codecs of these OIDs (arrays included): they decode as str again."""
        for oid in oids_:
            self._decoders.pop(oid, None)
            self._encoders.pop(oid, None)
            self._delimiters.pop(oid, None)
            array = self._array_of.pop(oid, None)
            if array is not None and array not in self.custom:
                self._decoders.pop(array, None)
                self._encoders.pop(array, None)
        for klass, infer in list(self._inferrers.items()):
            if getattr(infer, "oid", None) in oids_:
                del self._inferrers[klass]

    def drop_derived(self) -> None:
        """Forget what introspection taught (reload_schema_state(): types may have changed)."""
        self.forget(self.derived - self.custom)
        self.derived.clear()

    def decoder(self, oid: int) -> Decoder:
        """Text-format decoder for a column type OID; unknown OIDs decode as UTF-8 str.

        Call it once per column and keep the result: the callable takes the column's bytes (never
        None; NULLs are the caller's to skip) and may raise CodecError or ValueError.
        """
        return self._decoders.get(oid, sc.decode_text)

    def encode(self, value: object, oid: int = 0) -> tuple[int, bytes | None]:
        """Python value -> (type OID to declare in Parse, text-format bytes; None for NULL).

        With oid=0 the OID comes from the Python type, and 0 (let the server infer) for str,
        None, empty or all-None lists and lists of str. With a known parameter OID the value is
        converted by that type's encoder, which refuses Python types asyncpg refuses (a str
        for an integer, say); a type without an encoder takes a str as is.

        Raises:
            TypeError: no codec knows this Python type (or it does not fit the parameter type).
            CodecError: the value has no representation in the type (e.g. a signaling NaN).
        """
        if value is None:
            return oid, None
        if oid:
            encode = self._encoders.get(oid)
            if encode is not None:
                if encode is _encode_text and type(value) is str:  # the common case, no call
                    return oid, value.encode()
                return oid, encode(value).encode()
            if isinstance(value, str):
                return oid, value.encode()
            return oid, self._infer(value)[1].encode()
        inferred, text = self._infer(value)
        return inferred, text.encode()

    def param_encoder(self, oid: int) -> Callable[[Any], bytes]:
        """``encode(value, oid)[1]`` for values that are not None, as one function picked once
        per parameter: the per-value cost of a batch of rows (executemany) is then one call.
        """
        untyped, infer = self.untyped, self._infer
        if oid:
            encode = self._encoders.get(oid)
            if encode is not None:
                return lambda value: encode(value).encode()
            return lambda value: (
                value.encode() if isinstance(value, str) else infer(value)[1].encode()
            )

        def encode_inferred(value: Any) -> bytes:
            quick = untyped.get(type(value))
            data = None if quick is None else quick(value)
            return infer(value)[1].encode() if data is None else data

        return encode_inferred

    def param_text_encoder(self, oid: int) -> Callable[[Any], str | bytes]:
        """param_encoder(oid), or where the type's encoder gives text, that encoder itself: its
        str is sent as UTF-8 by the caller (the C loop of executemany(), which spares a call
        per value; driver/_speedups.c bind_row)."""
        encode = self._encoders.get(oid) if oid else None
        return self.param_encoder(oid) if encode is None else encode

    def register(
        self,
        oid: int,
        *,
        encoder: Encoder | None,
        decoder: Decoder | None,
        array_oid: int | None = None,
        python_type: type | None = None,
        delimiter: str | None = None,
    ) -> None:
        """Add or override the text-format codec of `oid` and of its array type.

        A None encoder or decoder leaves that direction as it was. The array type is `array_oid`
        or the one already known for `oid`, and its codec is rebuilt from the element's.
        `python_type` makes bare values of that type (and lists of them) infer `oid` (and the
        array type). `delimiter` is the element type's pg_type.typdelim (':' for PostGIS
        geometry, ',' for nearly all else); None keeps the one already known.
        """
        array_oid = array_oid or self._array_of.get(oid)
        if array_oid:
            self._array_of[oid] = array_oid
        if delimiter is None:
            delimiter = self._delimiters.get(oid, ",")
        if delimiter != ",":
            self._delimiters[oid] = delimiter
        else:
            self._delimiters.pop(oid, None)
        if decoder is not None:
            self._decoders[oid] = decoder
        if array_oid:
            self._decoders[array_oid] = array_decoder(self.decoder(oid), delimiter)
        text_encoder: TextEncoder | None = None
        if encoder is not None:
            text_encoder = _as_text(encoder)
            self._encoders[oid] = text_encoder
        else:
            text_encoder = self._encoders.get(oid)
        if array_oid and text_encoder is not None:
            self._encoders[array_oid] = array_encoder(text_encoder, delimiter)
        if python_type is not None:
            if text_encoder is None:
                raise ValueError("python_type needs an encoder for the type")
            self._inferrers[python_type] = _fixed(oid, text_encoder)
            self.untyped.pop(python_type, None)  # its values now infer `oid`

    # -- inference for parameters of unknown type ----------------------------------------------

    def _infer(self, value: Any) -> tuple[int, str]:
        infer = self._inferrers.get(type(value))
        if infer is None:
            infer = self._inferrer_for(value)
        return infer(value)

    def _inferrer_for(self, value: Any) -> Inferrer:
        if isinstance(value, list | tuple):
            return self._infer_array
        for klass in type(value).__mro__[1:]:
            infer = self._inferrers.get(klass)
            if infer is not None:
                return infer
        raise TypeError(
            f"cannot encode a {type(value).__name__} as a query parameter; "
            "register a codec for it with set_type_codec()"
        )

    def _infer_range(self, value: Any) -> tuple[int, str]:
        """A Range's text, its type left for the server to infer (OID 0): a Range of ints
        fits int4range, int8range and any user range over integers alike."""
        return 0, st.range_encoder(lambda item: self._infer(item)[1])(value)

    def _infer_array(self, value: Any) -> tuple[int, str]:
        """Infer the array type from the elements: one element type gives its array, mixed
        numbers widen to float8 or numeric, anything else (or only str/None) gives 0."""
        found: set[int] = set()

        def element(item: Any) -> str:
            elem_oid, text = self._infer(item)
            found.add(elem_oid)
            return text

        text = format_array(value, element)
        if len(found) == 1:
            elem = found.pop()
        elif found and found <= _NUMBERS:
            # integer text is valid float8 and numeric input, float text is valid numeric input
            elem = oids.FLOAT8 if found == {oids.INT8, oids.FLOAT8} else oids.NUMERIC
        else:
            elem = 0
        delimiter = self._delimiters.get(elem)
        if delimiter is not None:
            text = format_array(value, lambda item: self._infer(item)[1], delimiter)
        return self._array_of.get(elem, 0), text


_encode_text = sc.encode_text
# The built-in encoders, which return str already: registered as they are, not wrapped by
# _as_text (one call per value fewer on every typed parameter).
_STR_ENCODERS: set[Callable[[Any], Any]] = set()


def _as_text(encoder: Encoder) -> TextEncoder:
    if encoder in _STR_ENCODERS:
        return encoder  # type: ignore[return-value]  # a built-in: returns str

    def encode(value: Any) -> str:
        out = encoder(value)
        return out.decode() if isinstance(out, bytes | bytearray) else out

    if getattr(encoder, "takes_sequences", False):
        takes_sequences(encode)
    return encode


def _fixed(oid: int, encode: TextEncoder) -> Inferrer:
    def infer(value: Any) -> tuple[int, str]:
        return oid, encode(value)

    infer.oid = oid  # type: ignore[attr-defined]  # read by TypeRegistry.forget()
    return infer


def _infer_int(value: Any) -> tuple[int, str]:
    number = int(value)
    oid = oids.INT8 if _INT8_MIN <= number <= _INT8_MAX else oids.NUMERIC
    return oid, str(number)


def _infer_datetime(value: Any) -> tuple[int, str]:
    oid = oids.TIMESTAMP if value.tzinfo is None else oids.TIMESTAMPTZ
    return oid, dt.encode_timestamp(value)


def _infer_time(value: Any) -> tuple[int, str]:
    return (oids.TIME if value.tzinfo is None else oids.TIMETZ), value.isoformat()


def _infer_str(value: Any) -> tuple[int, str]:
    return 0, str.__str__(value)


def _float_text(value: float) -> bytes | None:
    """A finite float's text, as _fixed(FLOAT8, encode_float) gives it; None for the others."""
    return repr(value).encode() if value - value == 0.0 else None


def _int_text(value: int) -> bytes | None:
    """An int8's text, as _infer_int gives it; None for the integers that infer numeric."""
    return str(value).encode() if _INT8_MIN <= value <= _INT8_MAX else None


def _build_default() -> TypeRegistry:
    reg = TypeRegistry()
    decoders: dict[int, Decoder] = {
        oids.BOOL: sc.decode_bool,
        oids.INT2: int,
        oids.INT4: int,
        oids.INT8: int,
        oids.OID: int,
        oids.XID: int,
        oids.XID8: int,
        oids.CID: int,
        oids.FLOAT4: sc.decode_float4,
        oids.FLOAT8: float,
        oids.NUMERIC: sc.decode_numeric,
        oids.TEXT: sc.decode_text,
        oids.VARCHAR: sc.decode_text,
        oids.BPCHAR: sc.decode_text,
        oids.NAME: sc.decode_text,
        oids.CHAR: sc.decode_char,
        oids.BYTEA: sc.decode_bytea,
        oids.DATE: dt.decode_date,
        oids.TIME: dt.decode_time,
        oids.TIMETZ: dt.decode_timetz,
        oids.TIMESTAMP: dt.decode_timestamp,
        oids.TIMESTAMPTZ: dt.decode_timestamptz,
        oids.INTERVAL: dt.decode_interval,
        oids.UUID: sc.decode_uuid,
        oids.JSON: sc.decode_json,
        oids.JSONB: sc.decode_json,
        oids.INET: sc.decode_inet,
        oids.CIDR: sc.decode_cidr,
        oids.INT2VECTOR: sc.decode_int_vector,
        oids.OIDVECTOR: sc.decode_int_vector,
        oids.PG_LSN: sc.decode_pg_lsn,
        oids.TXID_SNAPSHOT: sc.decode_snapshot,
        oids.PG_SNAPSHOT: sc.decode_snapshot,
    }
    encoders: dict[int, TextEncoder] = {
        oids.BOOL: sc.encode_bool,
        oids.INT2: sc.encode_int2,
        oids.INT4: sc.encode_int4,
        oids.INT8: sc.encode_int8,
        oids.OID: sc.encode_uint32,
        oids.XID: sc.encode_int,
        oids.XID8: sc.encode_int,
        oids.CID: sc.encode_int,
        oids.FLOAT4: sc.encode_float4,
        oids.FLOAT8: sc.encode_float,
        oids.NUMERIC: sc.encode_numeric,
        oids.TEXT: sc.encode_text,
        oids.VARCHAR: sc.encode_text,
        oids.BPCHAR: sc.encode_text,
        oids.NAME: sc.encode_text,
        oids.CHAR: sc.encode_char,
        oids.BYTEA: sc.encode_bytea,
        oids.DATE: dt.encode_date,
        oids.TIME: dt.encode_time,
        oids.TIMETZ: dt.encode_time,
        oids.TIMESTAMP: dt.encode_timestamp,
        oids.TIMESTAMPTZ: dt.encode_timestamp,
        oids.INTERVAL: dt.encode_interval,
        oids.UUID: sc.encode_uuid,
        oids.JSON: sc.encode_json,
        oids.JSONB: sc.encode_json,
        oids.INET: sc.encode_str,
        oids.CIDR: sc.encode_str,
        oids.INT2VECTOR: sc.encode_int_vector,
        oids.OIDVECTOR: sc.encode_int_vector,
        oids.PG_LSN: sc.encode_pg_lsn,
        oids.TXID_SNAPSHOT: sc.encode_snapshot,
        oids.PG_SNAPSHOT: sc.encode_snapshot,
    }
    _STR_ENCODERS.update(encoders.values())
    _STR_ENCODERS.update(encode for _, encode, _, _ in geo.DECODERS.values())
    _STR_ENCODERS.add(sc.encode_tid)
    for oid, decode in decoders.items():
        reg.register(oid, encoder=encoders.get(oid), decoder=decode, array_oid=oids.ARRAY_OF[oid])
    reg._encoders.update(encoders)  # these return str already: no _as_text() call per value
    for oid, array_oid in oids.TEXT_LIKE_ARRAYS.items():
        reg.register(oid, encoder=None, decoder=sc.decode_text, array_oid=array_oid)
    for oid, (decode, encode, array_oid, delim) in geo.DECODERS.items():
        reg.register(oid, encoder=encode, decoder=decode, array_oid=array_oid, delimiter=delim)
    reg.register(oids.TID, encoder=sc.encode_tid, decoder=sc.decode_tid, array_oid=1010)
    reg.register(oids.VOID, encoder=None, decoder=sc.decode_void)
    reg.register(
        oids.RECORD, encoder=st.refuse_anonymous_record, decoder=st.decode_anonymous_record,
        array_oid=oids.RECORD_ARRAY,
    )  # fmt: skip
    for rng, (elem, array_oid, multi, multi_array) in oids.RANGES.items():
        element_decoder, element_encoder = reg.decoder(elem), reg._encoders[elem]
        reg.register(
            rng, encoder=st.range_encoder(element_encoder),
            decoder=st.range_decoder(element_decoder), array_oid=array_oid,
        )  # fmt: skip
        reg.register(
            multi, encoder=st.multirange_encoder(element_encoder),
            decoder=st.multirange_decoder(element_decoder), array_oid=multi_array,
        )  # fmt: skip
    # the other text-like types have no encoder: encode() sends a str as is and anything else
    # by its Python type
    reg._inferrers.update(_default_inferrers())
    for klass, oid in geo.INFERRED.items():
        reg._inferrers[klass] = _fixed(oid, geo.ENCODERS[oid])
    reg._inferrers[Range] = reg._infer_range
    reg.untyped.update({str: str.encode, int: _int_text, float: _float_text})
    return reg


def _default_inferrers() -> dict[type, Inferrer]:
    fixed: list[tuple[type, int, TextEncoder]] = [
        (bool, oids.BOOL, sc.encode_bool),
        (float, oids.FLOAT8, sc.encode_float),
        (Decimal, oids.NUMERIC, sc.encode_numeric),
        (bytes, oids.BYTEA, sc.encode_bytea),
        (bytearray, oids.BYTEA, sc.encode_bytea),
        (memoryview, oids.BYTEA, sc.encode_bytea),
        (date, oids.DATE, dt.encode_date),
        (timedelta, oids.INTERVAL, dt.encode_interval),
        (uuid.UUID, oids.UUID, sc.encode_str),
        (dict, oids.JSONB, sc.encode_json),
        (ipaddress.IPv4Address, oids.INET, sc.encode_str),
        (ipaddress.IPv6Address, oids.INET, sc.encode_str),
        (ipaddress.IPv4Interface, oids.INET, sc.encode_str),
        (ipaddress.IPv6Interface, oids.INET, sc.encode_str),
        (ipaddress.IPv4Network, oids.CIDR, sc.encode_str),
        (ipaddress.IPv6Network, oids.CIDR, sc.encode_str),
    ]
    table: dict[type, Inferrer] = {t: _fixed(oid, enc) for t, oid, enc in fixed}
    table.update({int: _infer_int, datetime: _infer_datetime, time: _infer_time, str: _infer_str})
    return table


default_registry = _build_default()

__all__ = ["CodecError", "Encoder", "TypeRegistry", "default_registry"]
