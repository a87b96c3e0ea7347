"""Text-format type codecs: PostgreSQL text output <-> Python values, keyed by type OID.

The connection layer asks `default_registry.copy()` for a per-connection registry, looks up one
decoder per result column with `decoder(oid)`, and encodes parameters with `encode(value, oid)`.
`register()` is what `Connection.set_type_codec()` uses to add or override a type.
"""

from __future__ import annotations

from .arrays import CodecError, format_array, parse_array
from .registry import Encoder, TypeRegistry, default_registry

__all__ = [
    "CodecError",
    "Encoder",
    "TypeRegistry",
    "default_registry",
    "format_array",
    "parse_array",
]
