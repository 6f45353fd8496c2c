"""The batch's intake plan: the landing files compared with the ledger, file by file."""

from __future__ import annotations

import pytest

from finops_core.intake import IntakePlan, LandingFile, plan_intake


def landed(name: str, sha256: str = "aa", folder: str = "usage_events_stream") -> LandingFile:
    return LandingFile(path=f"{folder}/{name}", name=name, size=len(sha256), sha256=sha256)


def absorbed(*files: LandingFile) -> list[dict[str, object]]:
    """Ledger rows for the files, as the bronze stage commits them."""
    return [
        {"source_file": f.name, "path": f.path, "size": f.size, "sha256": f.sha256} for f in files
    ]


def test_a_first_run_ingests_every_landing_file_as_a_full_backfill():
    a, b = landed("b.jsonl"), landed("a.jsonl")
    plan = plan_intake([a, b], [])
    assert plan.ingest == (b, a)  # by name
    assert plan.drop == {"a.jsonl", "b.jsonl"}
    assert plan.new == ("a.jsonl", "b.jsonl")
    assert (plan.changed, plan.removed, plan.full) == ((), (), True)
    assert plan.describe() == "full backfill of 2 landing file(s)"


def test_a_landing_the_ledger_mirrors_plans_nothing():
    a, b = landed("a.jsonl", "11"), landed("b.jsonl", "22")
    plan = plan_intake([a, b], absorbed(a, b))
    assert plan == IntakePlan()
    assert plan.empty
    assert plan.describe() == "bronze mirrors the landing: nothing to ingest"


def test_a_new_file_is_ingested_and_nothing_else_is_touched():
    a, b = landed("a.jsonl", "11"), landed("b.jsonl", "22")
    plan = plan_intake([a, b], absorbed(a))
    assert plan.ingest == (b,)
    assert plan.drop == {"b.jsonl"}  # a copy a killed run may have left is replaced
    assert (plan.new, plan.changed, plan.removed, plan.full) == (("b.jsonl",), (), (), False)
    assert plan.describe() == "landing file(s): 1 new"


def test_a_file_whose_content_changed_under_the_same_name_is_ingested_again():
    before, after = landed("a.jsonl", "11"), landed("a.jsonl", "99")
    other = landed("b.jsonl", "22")
    plan = plan_intake([after, other], absorbed(before, other))
    assert plan.ingest == (after,)
    assert plan.drop == {"a.jsonl"}
    assert (plan.new, plan.changed, plan.removed) == ((), ("a.jsonl",), ())
    assert plan.describe() == "landing file(s): 1 changed"


def test_a_file_gone_from_the_landing_is_dropped_from_bronze():
    a, b = landed("a.jsonl", "11"), landed("b.jsonl", "22")
    plan = plan_intake([a], absorbed(a, b))
    assert plan.ingest == ()
    assert plan.drop == {"b.jsonl"}
    assert (plan.new, plan.changed, plan.removed, plan.full) == ((), (), ("b.jsonl",), False)
    assert not plan.empty
    assert plan.describe() == "landing file(s): 1 removed"


def test_new_changed_and_removed_files_are_planned_together():
    kept, changed, gone = landed("k.jsonl", "1"), landed("c.jsonl", "2"), landed("g.jsonl", "3")
    new, rewritten = landed("n.jsonl", "4"), landed("c.jsonl", "5")
    plan = plan_intake([kept, rewritten, new], absorbed(kept, changed, gone))
    assert plan.ingest == (rewritten, new)
    assert plan.drop == {"c.jsonl", "n.jsonl", "g.jsonl"}
    assert (plan.new, plan.changed, plan.removed) == (("n.jsonl",), ("c.jsonl",), ("g.jsonl",))
    assert plan.describe() == "landing file(s): 1 new, 1 changed, 1 removed"


def test_a_forced_full_run_ingests_every_file_and_drops_every_ledger_file():
    a, b, gone = landed("a.jsonl", "11"), landed("b.jsonl", "22"), landed("g.jsonl", "33")
    plan = plan_intake([b, a], absorbed(a, gone), full=True)
    assert plan.ingest == (a, b)
    assert plan.drop == {"a.jsonl", "b.jsonl", "g.jsonl"}
    assert (plan.new, plan.removed, plan.full) == (("b.jsonl",), ("g.jsonl",), True)


def test_an_empty_landing_with_an_empty_ledger_plans_nothing():
    assert plan_intake([], []).empty
    assert plan_intake([], [], full=True).empty


def test_two_landing_files_sharing_a_name_are_refused():
    with pytest.raises(ValueError, match="two landing files share the name 'a.jsonl'"):
        plan_intake([landed("a.jsonl", folder="x"), landed("a.jsonl", folder="y")], [])
