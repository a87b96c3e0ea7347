"""Codecs for the types a server defines at run time (composites, enums, domains, ranges,
multiranges, arrays of them), built from one catalog query, with no I/O here.

Built-in types have fixed OIDs and codecs from the start; a user's types get theirs the first
time a statement's columns or parameters name them: ``INTROSPECT`` reads every type those
OIDs depend on (element, base, subtype, attribute types, recursively) in one round trip, and
``register_types`` turns its rows into codecs on the connection's registry, marked as
derived so that ``reload_schema_state()`` can drop them when the schema changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..record import record_class
from . import scalars as sc
from . import structured as st
from .registry import TypeRegistry

__all__ = ["INTROSPECT", "register_types", "unknown_oids"]

INTROSPECT = """
WITH RECURSIVE wanted(oid) AS (
    SELECT unnest($1::pg_catalog.text::pg_catalog.oid[])
  UNION
    SELECT d.dep FROM wanted w
    JOIN pg_catalog.pg_type t ON t.oid = w.oid
    CROSS JOIN LATERAL (
        SELECT t.typelem UNION ALL SELECT t.typbasetype
        UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid
        UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid
        UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
    ) d(dep)
    WHERE d.dep <> 0
)
SELECT t.oid::pg_catalog.int8, t.typname::pg_catalog.text, n.nspname::pg_catalog.text,
       t.typtype::pg_catalog.text, t.typcategory::pg_catalog.text,
       t.typelem::pg_catalog.int8, t.typdelim::pg_catalog.text, t.typbasetype::pg_catalog.int8,
       coalesce(r.rngsubtype, 0)::pg_catalog.int8, coalesce(mr.rngtypid, 0)::pg_catalog.int8,
       ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum),
       ARRAY(SELECT a.atttypid::pg_catalog.int8 FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum)
FROM wanted w
JOIN pg_catalog.pg_type t ON t.oid = w.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
LEFT JOIN pg_catalog.pg_range mr ON mr.rngmultitypid = t.oid
"""


def unknown_oids(registry: TypeRegistry, type_oids: Sequence[int]) -> list[int]:
    """The OIDs among these that have no codec yet (0, "unspecified", is never one)."""
    return sorted({oid for oid in type_oids if oid and not registry.knows(oid)})


def register_types(registry: TypeRegistry, rows: Sequence[Sequence[Any]]) -> None:
    """Give every type of ``rows`` (``INTROSPECT``'s) that has no codec yet one built from
    its kind; those that remain unknown (an extension's base type) decode as str."""
    by_oid = {int(row[0]): row for row in rows}
    done: set[int] = set()

    def build(oid: int) -> None:
        if registry.knows(oid) or oid in done or oid not in by_oid:
            return
        done.add(oid)
        (_, _name, _schema, kind, category, elem, _delim, base, sub, rng, attnames, atttypes) = (
            by_oid[oid]
        )
        for dep in (elem, base, sub, rng, *atttypes):
            if dep:
                build(int(dep))
        if category == "A" and elem:
            element_delim = by_oid[elem][6] if elem in by_oid else ","
            if not registry.knows(elem):
                registry.register(elem, encoder=None, decoder=sc.decode_text)
                registry.derived.add(elem)
            registry.register(
                elem, encoder=None, decoder=None, array_oid=oid, delimiter=element_delim
            )
        elif kind == "d" and base:
            registry.register(oid, encoder=registry.encoder(base), decoder=registry.decoder(base))
        elif kind == "c":
            names = tuple(attnames)
            registry.register(
                oid,
                encoder=st.composite_encoder(names, [registry.encoder(t) for t in atttypes]),
                decoder=st.composite_decoder(
                    names, [registry.decoder(t) for t in atttypes], record_class(names)
                ),
            )
        elif kind == "r" and sub:
            registry.register(
                oid,
                encoder=st.range_encoder(registry.encoder(sub) or _as_str),
                decoder=st.range_decoder(registry.decoder(sub)),
            )
        elif kind == "m" and rng and by_oid.get(rng):
            sub = by_oid[rng][8]
            registry.register(
                oid,
                encoder=st.multirange_encoder(registry.encoder(sub) or _as_str),
                decoder=st.multirange_decoder(registry.decoder(sub)),
            )
        else:  # enums, an extension's base types, pseudo-types: their text, as asyncpg
            registry.register(oid, encoder=None, decoder=sc.decode_text)
        registry.derived.add(oid)

    for oid in by_oid:
        build(oid)


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
