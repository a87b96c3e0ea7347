"""Record: a tuple that also answers by column name."""

from __future__ import annotations

import pickle

import asyncpg
import pytest

from driver import Record
from driver.record import check_record_class, record_class


def test_record_access() -> None:
    r: Record = record_class(("id", "name"))((1, "x"))
    assert isinstance(r, Record) and isinstance(r, tuple)
    assert (r[0], r["name"], r[-1], r[:1]) == (1, "x", "x", (1,))
    assert len(r) == 2 and list(r) == [1, "x"]
    assert dict(r) == {"id": 1, "name": "x"}
    assert list(r.keys()) == ["id", "name"] and list(r.values()) == [1, "x"]
    assert list(r.items()) == [("id", 1), ("name", "x")]
    assert r.get("name") == "x" and r.get("nope", 5) == 5
    assert "id" in r and "nope" not in r
    assert repr(r) == "<Record id=1 name='x'>"
    with pytest.raises(KeyError):
        r["nope"]
    past_the_end = 5
    with pytest.raises(IndexError):
        r[past_the_end]
    assert r == (1, "x")  # last: mypy narrows `r` to a plain tuple after it


def test_one_class_per_shape_and_duplicate_names() -> None:
    assert record_class(("a",)) is record_class(("a",))
    r = record_class(("a", "a"))((1, 2))
    assert r["a"] == 2 and tuple(r) == (1, 2)  # asyncpg's rule: the last of a name wins
    assert list(r.items()) == [("a", 1), ("a", 2)]
    assert repr(record_class(())(())) == "<Record>"


def test_record_classes_follow_asyncpg_rules() -> None:
    class Mine(Record):
        pass

    with pytest.raises(TypeError, match="cannot create") as mine:
        Record()
    with pytest.raises(TypeError, match="cannot create") as theirs:
        asyncpg.Record()
    # asyncpg's message, naming this class instead of asyncpg's
    where = "asyncpg.protocol.record.Record"
    assert str(mine.value) == str(theirs.value).replace(where, "driver.record.Record")
    with pytest.raises(TypeError, match="cannot create"):
        Mine((1,))
    row = record_class(("x",), Mine)((5,))
    assert isinstance(row, Mine) and repr(row) == str(row) == "<Mine x=5>"
    assert record_class(("x",), Mine) is record_class(("x",), Mine)
    assert check_record_class(Mine) is Mine and check_record_class(Record) is Record
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(row)
