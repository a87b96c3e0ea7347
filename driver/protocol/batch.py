"""The frontend messages of a batch: several statements sent in one flight ("Pipelining" in
the Extended Query section of the PostgreSQL docs)."""

from __future__ import annotations

from collections.abc import Sequence

from . import messages as m

__all__ = ["batch_messages"]


def batch_messages(
    statements: Sequence[tuple[str, Sequence[int], Sequence[bytes | None]]],
    *,
    before: str | None = None,
    after: str | None = None,
    sync_each: bool = False,
    then: str | None = None,
) -> tuple[list[bytes], int]:
    """Unnamed Parse + Bind + Describe(portal) + Execute per statement, results in text.

    Args:
        statements: (sql, parameter type OIDs, encoded values) each.
        before, after: parameterless commands run first and last in the same Sync group
            (BEGIN, SAVEPOINT / RELEASE SAVEPOINT): an error anywhere makes the server skip
            the rest of the group, these included.
        sync_each: a Sync after every statement, so each is its own implicit transaction
            and an error skips only the rest of its own statement.
        then: a simple Query after the last Sync. COMMIT there ends the block either way:
            the server turns it into ROLLBACK when the block failed, so no second round trip
            is needed to leave an aborted transaction.

    Returns:
        The messages, and how many ReadyForQuery the server will send for them.
    """
    parts: list[bytes] = []
    syncs = 0
    describe, execute = m.describe(b"P", ""), m.execute("", 0)
    if before is not None:
        parts += (m.parse("", before), m.bind("", "", ()), execute)
    for sql, oids, values in statements:
        parts += (m.parse("", sql, oids), m.bind("", "", values), describe, execute)
        if sync_each:
            parts.append(m.SYNC)
            syncs += 1
    if after is not None:
        parts += (m.parse("", after), m.bind("", "", ()), execute)
    if not sync_each or not statements:
        parts.append(m.SYNC)
        syncs += 1
    if then is not None:
        parts.append(m.query(then))
        syncs += 1
    return parts, syncs
