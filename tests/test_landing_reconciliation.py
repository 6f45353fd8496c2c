"""The audit's reconciliation with the landing, file by file (`intake.reconcile_landing`)."""

from __future__ import annotations

from finops_core.intake import LandingFile, reconcile_landing

A = LandingFile("usage_events_stream/a.jsonl", "a.jsonl", 100, "aa")
B = LandingFile("usage_events_stream/b.jsonl", "b.jsonl", 200, "bb")


def _entry(file: LandingFile, **overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "source_file": file.name,
        "size": file.size,
        "sha256": file.sha256,
        "lines": 10,
        "bronze_rows": 7,
        "duplicates": 1,
        "malformed": 2,
        "blank": 0,
    }
    return entry | overrides


def _problems(checks: list) -> dict[str, tuple[str, ...]]:  # type: ignore[type-arg]
    return {check.name: check.problems for check in checks if not check.passed}


def test_files_absorbed_whole_and_balanced_pass() -> None:
    checks = reconcile_landing([A, B], [_entry(A), _entry(B)], {"a.jsonl": 7, "b.jsonl": 7})
    assert [c.name for c in checks] == ["a.jsonl", "b.jsonl"]
    assert all(check.passed for check in checks)


def test_a_file_bronze_never_absorbed_is_named() -> None:
    problems = _problems(reconcile_landing([A, B], [_entry(A)], {"a.jsonl": 7}))
    assert list(problems) == ["b.jsonl"]
    assert "not in the ledger" in problems["b.jsonl"][0]


def test_a_changed_file_is_named_by_its_hash_or_size() -> None:
    changed = LandingFile(A.path, A.name, A.size, "other")
    grown = LandingFile(A.path, A.name, A.size + 1, A.sha256)
    for file in (changed, grown):
        problems = _problems(reconcile_landing([file], [_entry(A)], {"a.jsonl": 7}))
        assert problems == {"a.jsonl": ("changed since bronze absorbed it (run `finops batch`)",)}


def test_a_file_gone_from_the_landing_but_still_in_bronze_fails() -> None:
    problems = _problems(
        reconcile_landing([A], [_entry(A), _entry(B)], {"a.jsonl": 7, "b.jsonl": 7})
    )
    assert list(problems) == ["b.jsonl"]
    assert "not in the landing any more" in problems["b.jsonl"][0]


def test_lines_that_do_not_balance_are_reported_with_each_part() -> None:
    problems = _problems(reconcile_landing([A], [_entry(A, lines=11)], {"a.jsonl": 7}))
    assert problems == {
        "a.jsonl": ("11 lines but 7 bronze_rows + 1 duplicates + 2 malformed + 0 blank",)
    }


def test_bronze_rows_that_differ_from_the_ledger_fail() -> None:
    torn = _problems(reconcile_landing([A], [_entry(A)], {"a.jsonl": 3}))
    assert torn == {"a.jsonl": ("bronze holds 3 rows, the ledger 7",)}
    stray = _problems(reconcile_landing([], [], {"c.jsonl": 5}))
    assert stray["c.jsonl"][-1] == "bronze holds 5 rows of it"
