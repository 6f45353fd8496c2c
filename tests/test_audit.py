"""`finops audit`: the run record as tables, reconciliations recomputed, failures loud."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from entrypoints.cli import main
from finops_core import runs
from finops_core.lake import LakeLayout
from tests.strategies import landing_event, master_csvs, write_landing

# Eight lines: five good events (one repeated exactly), one with an unknown org (quarantined),
# one negative cost within tolerance (flagged), one line that is not JSON (malformed).
_EVENT = landing_event(event_id="evt_a00000000001")


def _line(**changes: object) -> bytes:
    return json.dumps({**_EVENT, **changes}).encode()


EVENT_LINES = [
    _line(),
    _line(event_id="evt_a00000000002", cost_usd_increment=2.5),
    _line(event_id="evt_a00000000003", timestamp="2025-07-04T09:30:00Z", cost_usd_increment=0.75),
    _line(
        event_id="evt_b00000000004",
        org_id="org_bbbb0002",
        resource_id="res_bbbb0002",
        service="storage",
        region="eu-west",
        metric="storage_gb_hours",
        unit="storage_gb_hours",
        cost_usd_increment=3.0,
    ),
    _line(event_id="evt_a00000000001"),  # the first event again: a duplicate
    _line(event_id="evt_z00000000005", org_id="org_zzzz9999"),  # unknown org: quarantined
    _line(event_id="evt_a00000000006", cost_usd_increment=-0.005),  # flagged, kept
    b"not json at all",
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake built by `finops batch --engine memory` over the tiny landing above."""
    root = tmp_path_factory.mktemp("audit") / "lake"
    landing = {
        **master_csvs(),
        "usage_events_stream/events_part_0000.jsonl": b"\n".join(EVENT_LINES) + b"\n",
    }
    write_landing(landing, root / "landing")
    assert main(["batch", "--engine", "memory", "--lake", str(root)]) == 0
    return root


def _record_path(lake: Path) -> Path:
    """The batch's run record (a load adds a record of its own)."""
    (path,) = sorted(LakeLayout(lake).runs.glob("*-batch.json"))
    return path


def test_the_audit_of_a_fresh_batch_passes_and_shows_its_counts(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()

    def row(first: str) -> list[str]:
        (line,) = [line for line in lines if line.startswith(first + " ")]
        return line.split()

    assert "landing_lines=8" in out and "bronze_rows=7" in out and "malformed=1" in out
    assert "silver_rows=5" in out and "quarantined=1" in out and "duplicates=1" in out
    assert row("org_unknown")[1:3] == ["1", "0"]  # quarantined 1, flagged 0
    assert row("cost_negative_within_tolerance")[1:3] == ["0", "1"]
    assert row("malformed_record")[1:3] == ["0", "0"]  # malformed lines are counted by bronze
    assert "FAIL" not in out
    for check in (
        "landing lines = bronze rows + malformed + blank lines",
        "bronze = silver + quarantine + duplicates",
        "silver cost = gold cost (to the cent)",
        "gold keys unique",
        # The three other marts against their sources: rows counted once, each unfiltered sum.
        "revenue rows = invoices",
        "tickets_by_org_date: source rows kept = rows counted",
        "revenue_by_org_month: net_revenue_usd = net_revenue_usd summed over its source rows",
        "genai_tokens_by_org_date: total_tokens = genai_tokens summed over its source rows",
        "cost anomaly rows = gold rows",
    ):
        (line,) = [line for line in lines if line.startswith(check)]
        assert "  PASS  " in line
    # 4 checks of the events' path, 9 of the other marts' sums and counts, revenue rows, and
    # one scored anomaly row per gold row.
    assert "all 15 reconciliations passed" in out


def test_the_json_audit_carries_the_same_numbers(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--lake", str(lake), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["passed"] is True
    checks = {c["name"]: c for c in audit["reconciliations"]}
    assert checks["landing lines = bronze rows + malformed + blank lines"]["left"] == 8
    assert checks["bronze = silver + quarantine + duplicates"]["right"] == 7
    assert checks["silver cost = gold cost (to the cent)"]["left"] == pytest.approx(
        1.25 + 2.5 + 0.75 + 3.0 - 0.005
    )
    rules = {r["rule"]: r for r in audit["rules"]}
    assert rules["org_unknown"]["quarantined"] == 1


def test_a_loaded_sqlite_store_adds_the_serving_check(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch_id = _record_path(lake).stem
    assert not LakeLayout(lake).serving_sqlite.exists()
    assert main(["load", "--engine", "memory", "--lake", str(lake)]) == 0
    assert main(["audit", "--lake", str(lake), "--run", batch_id]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("serving rows = gold rows")]
    assert "PASS" in line and "counted in the SQLite store now" in line
    assert "all 16 reconciliations passed" in out  # the batch's 15 and the serving check

    assert main(["audit", "--lake", str(lake)]) == 0  # the latest run: the load
    out = capsys.readouterr().out
    assert "(load, engine memory" in out
    (line,) = [line for line in out.splitlines() if line.startswith("serving rows = rows loaded")]
    counts = json.loads(_record_path(lake).read_text())["stages"][-1]["counts"]
    gold = sum(counts[ref.name] for ref in runs.SERVED_GOLD_ROWS)
    assert line.split()[5:8] == [str(gold), str(gold), "PASS"]  # every served gold row, once
    assert "all 1 reconciliations passed" in out


def test_the_load_record_is_typed_and_read_back_the_same(lake: Path) -> None:
    from adapters.runlog import JsonRunLog
    from finops_core.runs import RECORD_VERSION, RunRecord

    log = JsonRunLog(LakeLayout(lake).runs)
    batch = log.read(_record_path(lake).stem)
    assert batch is not None and batch.kind == "batch" and batch.engine == "memory"
    raw = json.loads(_record_path(lake).read_text())
    assert raw["version"] == RECORD_VERSION
    assert RunRecord.from_json(raw) == batch
    assert [stage.stage for stage in batch.stages] == [
        "bronze_masters",
        "bronze_events",
        "silver",
        "gold",
    ]
    assert log.run_ids() == sorted(path.stem for path in LakeLayout(lake).runs.glob("*.json"))


def test_a_tampered_count_fails_the_audit_and_shows_both_sides(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "lake"
    (copy / "_runs").mkdir(parents=True)
    record = json.loads(_record_path(lake).read_text())
    for stage in record["stages"]:
        if stage["stage"] == "silver":
            stage["counts"]["silver_rows"] = 4  # one silver row "lost"
    (copy / "_runs" / _record_path(lake).name).write_text(json.dumps(record))

    assert main(["audit", "--lake", str(copy)]) == 1
    captured = capsys.readouterr()
    assert "FAIL bronze = silver + quarantine + duplicates: 7 vs 6" in captured.out
    assert "audit of run" in captured.err and "Traceback" not in captured.err


def test_a_recorded_failure_is_never_upgraded_to_a_pass(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "lake"
    (copy / "_runs").mkdir(parents=True)
    record = json.loads(_record_path(lake).read_text())
    record["reconciliations"][0]["passed"] = False
    (copy / "_runs" / "tampered.json").write_text(json.dumps(record))
    assert main(["audit", "--lake", str(copy), "--run", "tampered"]) == 1
    assert (
        "FAIL landing lines = bronze rows + malformed + blank lines: 8 vs 8"
        in capsys.readouterr().out
    )


def test_without_a_run_record_the_audit_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--lake", str(tmp_path / "empty")]) == 3
    err = capsys.readouterr().err
    assert err.strip() == (
        f"finops: There is no run record in {tmp_path / 'empty' / '_runs'} yet; "
        "run `finops batch` first."
    )


def test_an_unknown_run_id_is_named_with_the_runs_there_are(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--lake", str(lake), "--run", "nope"]) == 3
    err = capsys.readouterr().err
    assert "There is no run 'nope'" in err
    ids = sorted(path.stem for path in LakeLayout(lake).runs.glob("*.json"))
    assert ids and f"the runs there are: {', '.join(ids)}." in err
    assert main(["audit", "--lake", str(lake), "--run", "../../etc/passwd"]) == 3


def test_a_record_written_before_records_were_typed_is_still_audited(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "lake"
    (copy / "_runs").mkdir(parents=True)
    record = json.loads(_record_path(lake).read_text())
    old = {key: record[key] for key in ("run_id", "kind", "engine", "started_at", "stages")}
    old["reconciliations"] = [
        {k: c[k] for k in ("name", "left", "right", "passed", "detail")}
        for c in record["reconciliations"]
    ]
    (copy / "_runs" / "old.json").write_text(json.dumps(old))
    assert main(["audit", "--lake", str(copy), "--run", "old", "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["passed"] is True and audit["run_id"] == record["run_id"]
    assert len(audit["reconciliations"]) == len(record["reconciliations"]) == 15


# -- the whole lake: unfinished runs, the landing file by file -----------------------------------


def _copy(lake: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(lake, copy)
    return copy


def _newest(lake: Path, kind: str) -> dict[str, object]:
    return json.loads(sorted(LakeLayout(lake).runs.glob(f"*-{kind}.json"))[-1].read_text())


def test_a_batch_killed_midway_leaves_an_unfinished_record_that_fails_the_audit_until_a_rerun(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.memory.engine import MemoryEngine

    copy = _copy(lake, tmp_path)

    def killed(self: object, *args: object) -> object:
        raise KeyboardInterrupt  # the run stops before its end, as a kill would stop it

    with monkeypatch.context() as patched:
        patched.setattr(MemoryEngine, "silver", killed)
        assert main(["batch", "--engine", "memory", "--lake", str(copy)]) == 130
    record = _newest(copy, "batch")
    killed_id, started = str(record["run_id"]), str(record["started_at"])
    assert record["finished"] is False and record["stages"] == []
    capsys.readouterr()

    assert main(["audit", "--lake", str(copy)]) == 1
    captured = capsys.readouterr()
    assert f"FAIL run {killed_id} (batch, started {started}): UNFINISHED" in captured.out
    assert f"unfinished run(s) {killed_id} (batch)" in captured.err

    assert main(["batch", "--engine", "memory", "--lake", str(copy)]) == 0
    rerun = _newest(copy, "batch")
    assert rerun["finished"] is True and rerun["run_id"] != killed_id
    capsys.readouterr()
    assert main(["audit", "--lake", str(copy)]) == 0
    out = capsys.readouterr().out
    assert (
        f"ok run {killed_id} (batch, started {started}): killed, superseded by "
        + str(rerun["run_id"])
        in out.splitlines()
    )


def test_an_unfinished_run_is_superseded_only_by_a_later_run_of_its_own_kind(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(lake, tmp_path)
    for finished_load in LakeLayout(copy).runs.glob("*-load.json"):
        finished_load.unlink()  # only the batch's record remains
    batch = json.loads(_record_path(copy).read_text())
    # A load that never finished, started before the (passing) batch of the fixture.
    stale = {**batch, "run_id": "20000101T000000000000Z-load", "kind": "load", "stages": []}
    stale.update(finished=False, reconciliations=[], started_at="2000-01-01T00:00:00+00:00")
    (LakeLayout(copy).runs / "20000101T000000000000Z-load.json").write_text(json.dumps(stale))

    assert main(["audit", "--lake", str(copy), "--json"]) == 1
    audit = json.loads(capsys.readouterr().out)
    assert audit["passed"] is False
    assert audit["unfinished_runs"] == [
        {
            "run_id": "20000101T000000000000Z-load",
            "kind": "load",
            "started_at": "2000-01-01T00:00:00+00:00",
            "superseded_by": None,
            "passed": False,
        }
    ]
    assert main(["load", "--engine", "memory", "--lake", str(copy)]) == 0
    load_id = _newest(copy, "load")["run_id"]
    capsys.readouterr()
    assert main(["audit", "--lake", str(copy), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert [run["superseded_by"] for run in audit["unfinished_runs"]] == [load_id]


def test_a_landing_file_changed_or_added_after_the_batch_is_named_until_a_batch_absorbs_it(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(lake, tmp_path)
    events = LakeLayout(copy).landing_events
    with (events / "events_part_0000.jsonl").open("ab") as handle:
        handle.write(_line(event_id="evt_a00000000007") + b"\n")
    (events / "events_part_0001.jsonl").write_bytes(_line(event_id="evt_a00000000008") + b"\n")

    assert main(["audit", "--lake", str(copy)]) == 1
    captured = capsys.readouterr()
    failures = [line for line in captured.out.splitlines() if line.startswith("FAIL events_")]
    assert failures == [
        "FAIL events_part_0000.jsonl: changed since bronze absorbed it (run `finops batch`)",
        "FAIL events_part_0001.jsonl: not in the ledger: bronze never absorbed it "
        "(run `finops batch`)",
    ]
    assert "2 landing file(s) do not reconcile" in captured.err

    assert main(["batch", "--engine", "memory", "--lake", str(copy)]) == 0
    capsys.readouterr()
    assert main(["audit", "--lake", str(copy)]) == 0
    assert "all 2 landing events files reconcile" in capsys.readouterr().out


def test_bronze_rows_that_differ_from_the_ledger_fail_the_audit_naming_the_file(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.lake.delta import DeltaLake
    from finops_core.tables import BRONZE_EVENTS

    copy = _copy(lake, tmp_path)
    bronze = DeltaLake(LakeLayout(copy))
    rows = bronze.read_table(BRONZE_EVENTS)
    assert len(rows) == 7
    bronze.write_table(BRONZE_EVENTS, rows[1:])  # one bronze row lost
    assert main(["audit", "--lake", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "FAIL events_part_0000.jsonl: bronze holds 6 rows, the ledger 7" in out.splitlines()


def test_landing_and_generate_record_their_runs_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    assert main(["generate", "--lake", str(lake), "--scale", "0.01"]) == 0
    record = _newest(lake, "generate")
    assert record["finished"] is True and record["engine"] == "none"
    stages: list[dict[str, Any]] = record["stages"]  # type: ignore[assignment]
    assert [stage["stage"] for stage in stages] == ["generate"]
    assert stages[0]["counts"]["files"] > 0


def test_a_refused_landing_writer_is_recorded_finished_not_as_a_killed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.runlog import JsonRunLog
    from entrypoints.commands.audit import unfinished_runs
    from finops_core.errors import LandingRefused

    lake = tmp_path / "lake"
    assert main(["generate", "--lake", str(lake), "--scale", "0.01"]) == 0
    assert main(["generate", "--lake", str(lake), "--scale", "0.01"]) == LandingRefused.exit_code
    refused = _newest(lake, "generate")
    stages: list[dict[str, Any]] = refused["stages"]  # type: ignore[assignment]
    assert refused["finished"] is True and stages[0]["skipped"] is True
    assert str(stages[0]["note"]).startswith("refused: ")
    assert unfinished_runs(JsonRunLog(LakeLayout(lake).runs)) == ()


def test_the_audit_help_states_when_an_unfinished_run_does_not_fail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "unless a LATER run of the SAME kind finished and passed" in text
    assert '"killed, superseded by <run id>"' in text
    assert "lines = bronze rows + duplicates + malformed + blank" in text
