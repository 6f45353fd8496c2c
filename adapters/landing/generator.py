"""A synthetic `<lake>/landing/` with the challenge dataset's files, formats and quirks.

Deterministic for (seed, scale, dirty rate). Events follow the real generating structure: every
UTC day 60 % of the resources are active and each emits exactly 3 events; events are then spread
over files of 360 lines so that each file is a random sample of the whole period, shuffled inside.

Memory stays bounded whatever the scale: events are produced one day at a time, appended to a
few bucket files on disk, and a second pass splits each bucket into its event files and shuffles
them. Only the resource table and one day's events are ever held.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from adapters.landing.manifest import swap_into_place, write_manifest
from adapters.landing.synthetic_ids import IdSpace
from adapters.landing.synthetic_masters import Masters, Resource, write_masters
from finops_core.catalogue import UNIT_BY_METRIC
from finops_core.contracts import (
    EVENT_KEYS_V1,
    EVENT_KEYS_V2,
    EVENT_KEYS_V2_GENAI,
    EVENTS_DIRECTORY,
)
from finops_core.errors import LandingRefused

FIRST_DAY = dt.date(2025, 7, 3)
DAYS = 60
LAST_V1_DAY = dt.date(2025, 7, 17)
ACTIVE_SHARE = 0.6
EVENTS_PER_ACTIVE_RESOURCE = 3
LINES_PER_FILE = 360
FILES_PER_BUCKET = 64

# The draw order of metrics (and their weights) is the generator's; their units are the core's.
METRICS = ("requests", "storage_gb_hours", "cpu_hours")
METRIC_WEIGHTS = (45, 30, 25)
UNITS = UNIT_BY_METRIC
COST_RATES = {
    "compute": 0.08,
    "analytics": 0.07,
    "database": 0.05,
    "genai": 0.12,
    "storage": 0.02,
    "networking": 0.01,
}
SPIKE_RATE, SPIKE_FACTOR, SIGN_FLIP_RATE = 0.004, 20.0, 0.005
VALUE_NULL_RATE, VALUE_STRING_RATE, UNIT_NULL_RATE = 0.02, 0.03, 0.048
CARBON_PER_UNIT = 0.0002

# Dirty injections applied to single clean events, in this order of the dirt draw.
EVENT_DIRT = (
    "not_json",
    "truncated",
    "invalid_utf8",
    "wrong_type_cost",
    "unknown_schema_version",
    "unknown_org",
    "duplicate_event_id",
)

Progress = Callable[[int, int], None]


@attrs.frozen
class GenerationResult:
    landing: Path
    files: int
    bytes: int
    events: int
    seconds: float
    injected: dict[str, Any] | None

    def summary(self) -> str:
        dirt = ""
        if self.injected is not None:
            dirt = f", {sum(self.injected['counts'].values())} dirty records"
        return (
            f"generated {self.events} events and {self.files} files ({self.bytes} bytes){dirt} "
            f"into {self.landing} in {self.seconds:.2f} s"
        )


@attrs.frozen
class EventLayout:
    """How many events a scale produces and how they are cut into files."""

    resources: int
    active_per_day: int
    events: int
    files: int

    @classmethod
    def for_resources(cls, resources: int) -> EventLayout:
        active = max(1, round(resources * ACTIVE_SHARE))
        events = active * EVENTS_PER_ACTIVE_RESOURCE * DAYS
        return cls(resources, active, events, math.ceil(events / LINES_PER_FILE))

    def capacity(self, file_index: int) -> int:
        if file_index < self.files - 1:
            return LINES_PER_FILE
        return self.events - LINES_PER_FILE * (self.files - 1)


def generate(
    lake: Path,
    seed: int = 1,
    scale: float = 1.0,
    dirty_rate: float = 0.0,
    replace: bool = False,
    progress: Progress | None = None,
) -> GenerationResult:
    """Write a synthetic landing into `<lake>/landing/` (staged, then renamed into place)."""
    if scale <= 0:
        raise LandingRefused(f"scale {scale} is not positive: pass --scale 1 for the real size")
    if not 0 <= dirty_rate < 1 / len(EVENT_DIRT):
        raise LandingRefused(
            f"dirty rate {dirty_rate} is outside [0, {1 / len(EVENT_DIRT):.3f}): "
            "pass e.g. --dirty 0.01"
        )
    started = time.perf_counter()
    landing = lake / "landing"
    if landing.exists() and not replace:
        raise LandingRefused(
            f"{landing} already exists: pass --replace to overwrite it, or choose another --lake"
        )
    lake.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".landing-staging-", dir=lake))
    try:
        staging.chmod(0o755)
        masters = write_masters(staging, seed, scale, dirty_rate)
        writer = _EventWriter(staging, masters, seed, dirty_rate, progress)
        counts = writer.write()
        injected = None
        if dirty_rate > 0:
            counts["csv_missing_field"] = masters.users_missing_field
            injected = _injected_report(seed, scale, dirty_rate, counts, writer.lines_written)
            _write_json(staging / "_injected.json", injected)
        _write_json(
            staging / "_generated.json", {"seed": seed, "scale": scale, "dirty": dirty_rate}
        )
        manifest = write_manifest(
            staging, {"source": "generator", "seed": seed, "scale": scale, "dirty": dirty_rate}
        )
        swap_into_place(staging, landing, lake)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return GenerationResult(
        landing=landing,
        files=manifest["file_count"],
        bytes=manifest["total_bytes"],
        events=writer.lines_written,
        seconds=time.perf_counter() - started,
        injected=injected,
    )


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _injected_report(
    seed: int, scale: float, rate: float, counts: dict[str, int], lines: int
) -> dict[str, Any]:
    ordered = {name: counts.get(name, 0) for name in (*EVENT_DIRT[:-1], "duplicate_event_id")}
    ordered["empty_file"] = counts.get("empty_file", 0)
    ordered["csv_missing_field"] = counts.get("csv_missing_field", 0)
    return {
        "seed": seed,
        "scale": scale,
        "rate": rate,
        "counts": ordered,
        "landing_event_lines": lines,
        "expected": {
            "malformed_record": ordered["not_json"]
            + ordered["truncated"]
            + ordered["invalid_utf8"],
            "duplicates": ordered["duplicate_event_id"],
        },
    }


def _event_file_name(index: int) -> str:
    return f"events_part_{index:04d}.jsonl"


class _EventWriter:
    """Pass 1: events day by day into buckets; pass 2: buckets into shuffled event files."""

    def __init__(
        self,
        landing: Path,
        masters: Masters,
        seed: int,
        dirty_rate: float,
        progress: Progress | None,
    ) -> None:
        self.directory = landing / EVENTS_DIRECTORY
        self.buckets = landing / ".buckets"
        self.masters = masters
        self.seed = seed
        self.dirty_rate = dirty_rate
        self.progress = progress
        self.layout = EventLayout.for_resources(len(masters.resources))
        self.ids = IdSpace("evt_", 12, str(seed))
        self.rng = random.Random(f"{seed}:events")
        self.slots = random.Random(f"{seed}:slots")
        self.dirt = random.Random(f"{seed}:event-dirt")
        self.counts: dict[str, int] = dict.fromkeys(EVENT_DIRT, 0)
        self.remaining = [self.layout.capacity(k) for k in range(self.layout.files)]
        self.remaining_total = self.layout.events
        self.lines_written = 0
        self.unknown_orgs = 0

    def write(self) -> dict[str, int]:
        self.directory.mkdir(parents=True)
        self.buckets.mkdir()
        produced = 0
        for day_number in range(DAYS):
            day = FIRST_DAY + dt.timedelta(days=day_number)
            lines = self._day_lines(day, produced)
            produced += self.layout.active_per_day * EVENTS_PER_ACTIVE_RESOURCE
            self._append_to_buckets(lines)
            if self.progress is not None:
                self.progress(produced, self.layout.events)
        self._split_buckets()
        shutil.rmtree(self.buckets)
        counts = dict(self.counts)
        if self.dirty_rate > 0:
            (self.directory / _event_file_name(self.layout.files)).touch()
            counts["empty_file"] = 1
        return counts

    # -- pass 1 -----------------------------------------------------------------------------

    def _day_lines(self, day: dt.date, first_index: int) -> list[tuple[int, bytes]]:
        """Every event of one UTC day, each paired with the event file it belongs to."""
        rng = self.rng
        resources = self.masters.resources
        active = rng.sample(range(len(resources)), self.layout.active_per_day)
        files = self._draw_files(len(active) * EVENTS_PER_ACTIVE_RESOURCE)
        day_text = day.isoformat()
        keys_plain = EVENT_KEYS_V1 if day <= LAST_V1_DAY else EVENT_KEYS_V2
        out: list[tuple[int, bytes]] = []
        index = first_index
        for position in active:
            resource = resources[position]
            keys = (
                EVENT_KEYS_V2_GENAI
                if keys_plain is EVENT_KEYS_V2 and resource.service == "genai"
                else keys_plain
            )
            for _ in range(EVENTS_PER_ACTIVE_RESOURCE):
                record = self._event(rng, resource, day_text, index, keys)
                file_index = files[index - first_index]
                out.extend(self._lines(record, file_index))
                index += 1
        return out

    def _draw_files(self, count: int) -> list[int]:
        """Assign `count` events to event-file slots, uniformly among the slots still free.

        Equivalent to cutting a global random permutation of all events into files, without
        holding it: sample positions among the remaining slots, map them to files, shuffle.
        """
        positions = sorted(self.slots.sample(range(self.remaining_total), count))
        chosen: list[int] = []
        file_index, boundary = 0, self.remaining[0]
        for position in positions:
            while position >= boundary:
                file_index += 1
                boundary += self.remaining[file_index]
            chosen.append(file_index)
        for file_index in chosen:
            self.remaining[file_index] -= 1
        self.remaining_total -= count
        self.slots.shuffle(chosen)
        return chosen

    def _event(
        self,
        rng: random.Random,
        resource: Resource,
        day_text: str,
        index: int,
        keys: tuple[str, ...],
    ) -> dict[str, Any]:
        metric = rng.choices(METRICS, weights=METRIC_WEIGHTS)[0]
        minute = rng.randrange(1440)
        if metric == "requests":
            true_value = float(max(0, round(rng.gauss(120.0, 10.954))))
        elif metric == "cpu_hours":
            true_value = round(max(0.0, rng.gauss(1.8, 1.5)), 4)
        else:
            true_value = round(max(0.0, rng.gauss(10.0, 8.0)), 4)
        # Cost comes from the true value, before the feed nulls or stringifies it.
        cost = true_value * COST_RATES[resource.service] * rng.gauss(1.0, 0.15)
        if rng.random() < SPIKE_RATE:
            cost *= SPIKE_FACTOR
        if rng.random() < SIGN_FLIP_RATE:
            cost = -cost
        presented = rng.random()
        value: float | str | None = true_value
        if presented < VALUE_NULL_RATE:
            value = None
        elif presented < VALUE_NULL_RATE + VALUE_STRING_RATE:
            value = str(true_value)
        fields: dict[str, Any] = {
            "event_id": self.ids(index),
            "timestamp": f"{day_text}T{minute // 60:02d}:{minute % 60:02d}:00Z",
            "org_id": resource.org_id,
            "resource_id": resource.resource_id,
            "service": resource.service,
            "region": resource.region,
            "metric": metric,
            "value": value,
            "unit": None if rng.random() < UNIT_NULL_RATE else UNITS[metric],
            "cost_usd_increment": round(cost, 4),
            "schema_version": 1 if keys is EVENT_KEYS_V1 else 2,
        }
        if keys is not EVENT_KEYS_V1:
            numeric = float(value) if value is not None else 0.0
            fields["carbon_kg"] = round(numeric * CARBON_PER_UNIT, 6) if numeric else 0
        if keys is EVENT_KEYS_V2_GENAI:
            fields["genai_tokens"] = int(abs(rng.gauss(800.0, 450.0)))
        return {key: fields[key] for key in keys}

    def _lines(self, record: dict[str, Any], file_index: int) -> list[tuple[int, bytes]]:
        """The line(s) one event contributes; with a dirty rate, maybe one injected defect."""
        if self.dirty_rate <= 0:
            return [(file_index, json.dumps(record).encode())]
        draw = self.dirt.random()
        kind = int(draw / self.dirty_rate)
        cost = record["cost_usd_increment"]
        clean = (
            isinstance(record["value"], float)
            and cost >= 0
            and math.copysign(1.0, cost) > 0
            and record["unit"] is not None
        )
        if kind >= len(EVENT_DIRT) or not clean:
            return [(file_index, json.dumps(record).encode())]
        name = EVENT_DIRT[kind]
        if name == "duplicate_event_id" and self.layout.files < 2:
            return [(file_index, json.dumps(record).encode())]
        self.counts[name] += 1
        if name == "not_json":
            return [(file_index, f"<<corrupted record {record['event_id']}>>".encode())]
        line = json.dumps(record).encode()
        if name == "truncated":
            return [(file_index, line[: len(line) // 2])]
        if name == "invalid_utf8":
            return [(file_index, line.replace(b'"region": "', b'"region": "\xff\xfe', 1))]
        if name == "wrong_type_cost":
            return [(file_index, json.dumps({**record, "cost_usd_increment": "abc"}).encode())]
        if name == "unknown_schema_version":
            return [(file_index, json.dumps({**record, "schema_version": 3}).encode())]
        if name == "unknown_org":
            # Ids past the last real org's index are never issued to a customer.
            stranger = self.masters.org_space(len(self.masters.org_ids) + self.unknown_orgs)
            self.unknown_orgs += 1
            return [(file_index, json.dumps({**record, "org_id": stranger}).encode())]
        other = (file_index + 1 + self.dirt.randrange(self.layout.files - 1)) % self.layout.files
        return [(file_index, line), (other, line)]

    def _append_to_buckets(self, lines: list[tuple[int, bytes]]) -> None:
        grouped: dict[int, list[bytes]] = {}
        for file_index, line in lines:
            grouped.setdefault(file_index // FILES_PER_BUCKET, []).append(
                b"%d\t%s\n" % (file_index, line)
            )
        for bucket, chunk in grouped.items():
            with (self.buckets / f"{bucket:06d}").open("ab") as handle:
                handle.writelines(chunk)
        self.lines_written += len(lines)

    # -- pass 2 -----------------------------------------------------------------------------

    def _split_buckets(self) -> None:
        for bucket in range(math.ceil(self.layout.files / FILES_PER_BUCKET)):
            path = self.buckets / f"{bucket:06d}"
            by_file: dict[int, list[bytes]] = {}
            if path.exists():
                with path.open("rb") as handle:
                    for raw in handle:
                        file_text, _, line = raw.partition(b"\t")
                        by_file.setdefault(int(file_text), []).append(line)
                path.unlink()  # keeps disk use near one copy of the events
            shuffler = random.Random(f"{self.seed}:shuffle:{bucket}")
            first = bucket * FILES_PER_BUCKET
            for file_index in range(first, min(first + FILES_PER_BUCKET, self.layout.files)):
                lines = by_file.get(file_index, [])
                shuffler.shuffle(lines)
                (self.directory / _event_file_name(file_index)).write_bytes(b"".join(lines))
