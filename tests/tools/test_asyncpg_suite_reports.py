"""The asyncpg-suite runner's merge of the child pytest's per-phase reports into one result per
test (tests/asyncpg_suite/__main__.py): a pure function, checked on report sequences as the
child's plugin writes them."""

from __future__ import annotations

from typing import Any

from tests.asyncpg_suite.__main__ import merge_reports

NODE = "tests/test_codecs.py::TestCodecs::test_x"
KEY = "test_codecs.py::TestCodecs::test_x"


def _rec(when: str, outcome: str, message: str = "") -> dict[str, Any]:
    return {"nodeid": NODE, "when": when, "outcome": outcome, "message": message}


def test_a_passing_test_passes() -> None:
    reports = [_rec("setup", "passed"), _rec("call", "passed"), _rec("teardown", "passed")]
    assert merge_reports(reports)[KEY].outcome == "passed"


def test_a_failed_subtest_fails_the_test_reported_passed_after_it() -> None:
    """pytest 9: each failed subTest is a "call" report, then the test's own "passed" one."""
    reports = [
        _rec("setup", "passed"),
        _rec("call", "failed", "AssertionError: subtest 1"),
        _rec("call", "failed", "AssertionError: subtest 2"),
        _rec("call", "passed"),
        _rec("teardown", "passed"),
    ]
    result = merge_reports(reports)[KEY]
    assert (result.outcome, result.message) == ("failed", "AssertionError: subtest 1")


def test_a_failed_teardown_fails_a_passed_test() -> None:
    reports = [_rec("setup", "passed"), _rec("call", "passed"), _rec("teardown", "failed", "x")]
    assert merge_reports(reports)[KEY].outcome == "failed"


def test_a_failed_setup_fails_the_test() -> None:
    reports = [_rec("setup", "failed", "boom"), _rec("teardown", "passed")]
    assert merge_reports(reports)[KEY].outcome == "failed"
