"""`finops generate`: a synthetic landing with the real dataset's shape.

Deterministic, with countable dirt.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from adapters.landing.generator import generate
from adapters.landing.profile import profile_landing
from finops_core.contracts import (
    ALL_SOURCES,
    CUSTOMERS_ORGS,
    EVENT_KEYS_V1,
    EVENT_KEYS_V2,
    EVENT_KEYS_V2_GENAI,
    EVENTS_DIRECTORY,
    MASTER_SOURCES,
    USERS,
)
from finops_core.errors import LandingRefused


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("generated")
    generate(lake, seed=1, scale=1.0)
    return lake / "landing"


@pytest.fixture(scope="module")
def profiles(generated: Path, real_landing: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    return profile_landing(real_landing), profile_landing(generated)


def _digest(landing: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(landing.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(landing).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_generated_row_counts_match_the_real_dataset_exactly(profiles: tuple) -> None:
    real, synthetic = profiles
    assert synthetic["rows"] == real["rows"]
    assert synthetic["rows"]["usage_events"] == 43_200
    assert [s["rows"] for s in synthetic["masters"].values()] == [80, 800, 400, 1000, 1500, 92, 240]


def test_generated_headers_follow_the_contracts(generated: Path) -> None:
    for contract in MASTER_SOURCES:
        with (generated / contract.file_pattern).open(encoding="utf-8", newline="") as handle:
            assert tuple(next(csv.reader(handle))) == contract.column_names


def test_generated_events_have_the_real_per_day_structure(profiles: tuple) -> None:
    real, synthetic = profiles
    for profile in (real, synthetic):
        events = profile["events"]
        assert events["days"] == 60
        assert (events["first_day"], events["last_day"]) == ("2025-07-03", "2025-08-31")
        assert events["events_per_day"]["top"] == {"720": 60}
        assert events["active_resources_per_day"]["top"] == {"240": 60}
        assert events["events_per_active_resource_day"]["top"] == {"3": 14_400}
        assert events["lines_per_file"]["top"] == {"360": 120}
        assert events["files"] == 120


def test_generated_key_orders_per_schema_version_are_the_real_ones(profiles: tuple) -> None:
    real, synthetic = profiles
    assert synthetic["events"]["schema_versions"] == real["events"]["schema_versions"]
    assert synthetic["events"]["schema_versions"] == {"1": 10_800, "2": 32_400}
    for profile in profiles:
        orders = profile["events"]["key_orders"]
        assert set(orders["1"]) == {",".join(EVENT_KEYS_V1)}
        assert set(orders["2"]) == {",".join(EVENT_KEYS_V2), ",".join(EVENT_KEYS_V2_GENAI)}
    # genai share of v2 events: within 2 percentage points of the real 9.7 %.
    real_genai = real["events"]["key_orders"]["2"][",".join(EVENT_KEYS_V2_GENAI)] / 32_400
    synthetic_genai = synthetic["events"]["key_orders"]["2"][",".join(EVENT_KEYS_V2_GENAI)] / 32_400
    assert abs(real_genai - synthetic_genai) < 0.02


@pytest.mark.parametrize(
    ("quirk", "tolerance"),
    [
        ("value_null_share", 0.005),
        ("value_string_share", 0.006),
        ("unit_null_share", 0.008),
        ("cost_negative_share", 0.0015),
        ("spike_share", 0.0015),
    ],
)
def test_generated_quirk_rates_are_within_tolerance_of_the_real_ones(
    profiles: tuple, quirk: str, tolerance: float
) -> None:
    real, synthetic = profiles
    assert abs(real["quirks"][quirk] - synthetic["quirks"][quirk]) <= tolerance


def test_generated_master_quirk_counts_equal_the_real_ones(profiles: tuple) -> None:
    real, synthetic = profiles
    for quirk in (
        "org_nps_null", "org_nps_out_of_range", "survey_nps_null", "csat_null",
        "csat_out_of_range", "tickets_open", "credits_null", "negative_subtotals",
        "tags_null", "tags_with_commas", "last_login_null",
    ):  # fmt: skip
        assert synthetic["quirks"][quirk] == real["quirks"][quirk], quirk


def test_generated_values_and_costs_per_metric_are_within_ten_percent(profiles: tuple) -> None:
    real, synthetic = profiles
    for metric in ("requests", "cpu_hours", "storage_gb_hours"):
        for stat in ("mean", "std", "p50"):
            want = real["events"]["value"][metric][stat]
            assert synthetic["events"]["value"][metric][stat] == pytest.approx(want, rel=0.10)
        want_cost = real["events"]["cost_by_metric"][metric]["mean"]
        assert synthetic["events"]["cost_by_metric"][metric]["mean"] == pytest.approx(
            want_cost, rel=0.10
        )
    assert synthetic["events"]["cost"]["p99"] == pytest.approx(
        real["events"]["cost"]["p99"], rel=0.10
    )
    assert synthetic["events"]["genai_tokens"]["mean"] == pytest.approx(
        real["events"]["genai_tokens"]["mean"], rel=0.10
    )


def test_generated_ids_have_the_real_shape_and_never_repeat(generated: Path) -> None:
    event_ids = []
    for path in sorted((generated / EVENTS_DIRECTORY).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            event_ids.append(json.loads(line)["event_id"])
    assert len(set(event_ids)) == len(event_ids) == 43_200
    assert all(len(e) == 16 and e.startswith("evt_") and e[4:].isalnum() for e in event_ids)
    with (generated / CUSTOMERS_ORGS.file_pattern).open(encoding="utf-8") as handle:
        org_ids = [row["org_id"] for row in csv.DictReader(handle)]
    assert len(set(org_ids)) == 80 and all(len(o) == 12 and o.islower() for o in org_ids)


def test_generated_files_are_each_a_sample_of_the_whole_period(generated: Path) -> None:
    for path in sorted((generated / EVENTS_DIRECTORY).glob("*.jsonl"))[:10]:
        days = [json.loads(line)["timestamp"][:10] for line in path.open(encoding="utf-8")]
        assert len(set(days)) >= 50  # the real files cover 59 or 60 of the 60 days
        assert days != sorted(days)


def test_generated_tags_json_rows_parse_with_the_csv_module(generated: Path) -> None:
    with (generated / "resources.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert all(len(row) == 7 for row in rows)
    tags = [json.loads(row[6]) for row in rows if row[6]]
    assert sum(len(t) > 1 for t in tags) == 211
    raw = (generated / "resources.csv").read_text(encoding="utf-8")
    assert '"[""' in raw and "\r" not in raw


def test_generation_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=5, scale=0.05)
    generate(tmp_path / "b", seed=5, scale=0.05)
    generate(tmp_path / "c", seed=6, scale=0.05)
    a, b, c = (_digest(tmp_path / name / "landing") for name in "abc")
    assert a == b
    assert a != c


def test_generating_over_an_existing_landing_needs_replace(tmp_path: Path) -> None:
    generate(tmp_path, seed=1, scale=0.02)
    with pytest.raises(LandingRefused, match="--replace"):
        generate(tmp_path, seed=2, scale=0.02)
    generate(tmp_path, seed=2, scale=0.02, replace=True)
    assert json.loads((tmp_path / "landing" / "_generated.json").read_text())["seed"] == 2


def test_fractional_scales_round_counts_sensibly(tmp_path: Path) -> None:
    generate(tmp_path, seed=3, scale=0.1)
    profile = profile_landing(tmp_path / "landing")
    assert profile["rows"] == {
        "customers_orgs": 8, "users": 80, "resources": 40, "support_tickets": 100,
        "marketing_touches": 150, "nps_surveys": 9, "billing_monthly": 24, "usage_events": 4_320,
    }  # fmt: skip
    assert profile["events"]["lines_per_file"]["top"] == {"360": 12}
    assert profile["events"]["active_resources_per_day"]["top"] == {"24": 60}


def _independent_dirt_count(landing: Path) -> dict[str, int]:
    """Count each defect straight from the files, without the generator's help."""
    with (landing / CUSTOMERS_ORGS.file_pattern).open(encoding="utf-8") as handle:
        known_orgs = {row["org_id"] for row in csv.DictReader(handle)}
    counts: Counter[str] = Counter()
    seen_ids: Counter[str] = Counter()
    files = sorted((landing / EVENTS_DIRECTORY).glob("*.jsonl"))
    for path in files:
        data = path.read_bytes()
        if not data:
            counts["empty_file"] += 1
        for raw in data.splitlines():
            counts["lines"] += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                counts["invalid_utf8"] += 1
                continue
            try:
                record = json.loads(text)
            except ValueError:
                counts["truncated" if text.startswith("{") else "not_json"] += 1
                continue
            seen_ids[record["event_id"]] += 1
            counts["wrong_type_cost"] += isinstance(record["cost_usd_increment"], str)
            counts["unknown_schema_version"] += record["schema_version"] == 3
            counts["unknown_org"] += record["org_id"] not in known_orgs
    counts["duplicate_event_id"] = sum(n - 1 for n in seen_ids.values())
    with (landing / USERS.file_pattern).open(encoding="utf-8", newline="") as handle:
        counts["csv_missing_field"] = sum(
            len(row) < len(USERS.column_names) for row in list(csv.reader(handle))[1:]
        )
    return dict(counts)


def test_a_dirty_landing_reports_exactly_the_defects_it_contains(tmp_path: Path) -> None:
    generate(tmp_path, seed=11, scale=0.5, dirty_rate=0.01)
    landing = tmp_path / "landing"
    report = json.loads((landing / "_injected.json").read_text())
    found = _independent_dirt_count(landing)

    assert {k: found.get(k, 0) for k in report["counts"]} == report["counts"]
    assert report["landing_event_lines"] == found["lines"] == 21_600 + found["duplicate_event_id"]
    assert report["expected"] == {
        "malformed_record": found["not_json"] + found["truncated"] + found["invalid_utf8"],
        "duplicates": found["duplicate_event_id"],
    }
    assert (report["seed"], report["scale"], report["rate"]) == (11, 0.5, 0.01)
    # About 1 % of the 21,600 events per kind (only clean events are eligible).
    for kind in ("not_json", "truncated", "invalid_utf8", "wrong_type_cost", "unknown_org"):
        assert 100 <= report["counts"][kind] <= 260, kind
    assert report["counts"]["empty_file"] == 1 and report["counts"]["csv_missing_field"] >= 1


def _event_lines(landing: Path) -> list[bytes]:
    return [
        line
        for path in sorted((landing / EVENTS_DIRECTORY).glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def test_a_dirty_landing_differs_from_the_clean_one_only_by_its_injections(tmp_path: Path) -> None:
    generate(tmp_path / "clean", seed=4, scale=0.1)
    generate(tmp_path / "dirty", seed=4, scale=0.1, dirty_rate=0.02)
    clean_dir, dirty_dir = tmp_path / "clean" / "landing", tmp_path / "dirty" / "landing"
    counts = json.loads((dirty_dir / "_injected.json").read_text())["counts"]
    clean, dirty = set(_event_lines(clean_dir)), _event_lines(dirty_dir)

    altered = sum(
        counts[k]
        for k in counts
        if k not in ("duplicate_event_id", "empty_file", "csv_missing_field")
    )
    assert sum(line not in clean for line in dirty) == altered
    assert len(clean - set(dirty)) == altered
    assert len(dirty) - len(set(dirty)) == counts["duplicate_event_id"]
    for contract in MASTER_SOURCES:
        if contract is not USERS:
            assert (dirty_dir / contract.file_pattern).read_bytes() == (
                clean_dir / contract.file_pattern
            ).read_bytes()
    manifest = json.loads((dirty_dir / "_manifest.json").read_text())
    paths = {entry["path"] for entry in manifest["files"]}
    assert {c.file_pattern for c in ALL_SOURCES[:-1]} <= paths
    assert "_injected.json" not in paths


def test_the_generator_draws_exactly_the_metrics_the_catalogue_knows() -> None:
    from adapters.landing import generator
    from finops_core.catalogue import UNIT_BY_METRIC

    assert sorted(generator.METRICS) == sorted(UNIT_BY_METRIC)
    assert len(generator.METRIC_WEIGHTS) == len(generator.METRICS)
