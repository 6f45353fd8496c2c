"""The seven master CSVs of a synthetic landing, shaped like the challenge dataset.

Counts scale with the generator's scale; each quirk the real files show (null shares, outliers,
credit notes, tag lists with commas...) is placed on an exact, scaled number of rows chosen at
random, so a scale-1 landing has the real dataset's counts. Rows are streamed to disk.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from adapters.landing.synthetic_ids import IdSpace
from finops_core.contracts import (
    BILLING_MONTHLY,
    CUSTOMERS_ORGS,
    MARKETING_TOUCHES,
    NPS_SURVEYS,
    RESOURCES,
    SUPPORT_TICKETS,
    USERS,
    SourceContract,
)

SERVICES = ("compute", "database", "storage", "networking", "analytics", "genai")
SERVICE_WEIGHTS = (116, 68, 71, 64, 42, 39)
REGIONS = ("us-east", "us-west", "eu-west", "eu-central", "sa-east", "ap-south", "ap-northeast")
INDUSTRIES = (
    "Education",
    "Media",
    "Manufacturing",
    "E-commerce",
    "Retail",
    "Healthcare",
    "Energy",
    "Fintech",
    "Gaming",
    "Government",
)
NAME_PREFIXES = (
    "Gamma",
    "Zenith",
    "Nimbus",
    "Omega",
    "Vertex",
    "Delta",
    "Nova",
    "Alpha",
    "Beta",
    "Apex",
)
NAME_SUFFIXES = ("Cloud", "Labs", "Tech", "Data", "Digital", "AI")
PLAN_TIERS = (("free", 8), ("standard", 41), ("pro", 21), ("enterprise", 10))
LIFECYCLE = (("active", 54), ("at_risk", 11), ("churned", 6), ("prospect", 6), ("lead", 3))
MARKETING_SOURCES = ("partner", "event", "organic", "ads", "referral")
SALES_REPS = ("rep_a", "rep_b", "rep_c", "rep_d", "rep_e")
ROLES = (
    ("data_engineer", 201),
    ("devops", 162),
    ("developer", 130),
    ("analyst", 113),
    ("ml_engineer", 105),
    ("admin", 89),
)
STATES = (("running", 242), ("stopped", 119), ("terminated", 39))
TAG_CHOICES = (
    ("env", ("dev", "prod")),
    ("team", ("ml", "core")),
    ("costcenter", ("alpha", "beta")),
    ("backup", ("daily",)),
    ("pii", ("true",)),
)
TICKET_CATEGORIES = (
    "performance",
    "security",
    "availability",
    "usability",
    "integration",
    "billing",
)
SEVERITIES = (("low", 412), ("medium", 328), ("high", 204), ("critical", 56))
CSAT_IN_RANGE = ((1.0, 45), (2.0, 127), (3.0, 242), (4.0, 197), (5.0, 95))
CSAT_OUTLIERS = ((0.0, 11), (6.0, 28), (7.0, 1))
CAMPAIGNS = (
    "security_week",
    "webinar_finops",
    "upgrade_enterprise",
    "genai_launch",
    "upgrade_pro",
    "welcome",
)
CHANNELS = ("ads", "email", "in_app", "event")
NPS_COMMENTS = (
    "Complex billing",
    "Love genAI features",
    "Missing features",
    "Stable but slow",
    "Great support",
    "Too expensive",
)
BILLING_MONTHS = (dt.date(2025, 6, 1), dt.date(2025, 7, 1), dt.date(2025, 8, 1))
CURRENCIES = (("USD", 160), ("ARS", 51), ("EUR", 29))
FX_RANGES = {"USD": (0.85, 1.12), "ARS": (0.00133, 0.00162), "EUR": (0.998, 1.198)}
TAX_RATE = 0.21


def scaled(base: int, scale: float) -> int:
    """A real-dataset count at this scale: rounded, and at least 1 when the base is positive."""
    return max(1, round(base * scale)) if base > 0 else 0


@attrs.frozen
class ScaledCounts:
    orgs: int
    users: int
    resources: int
    tickets: int
    touches: int
    nps_orgs: int
    nps_rows: int

    @classmethod
    def at(cls, scale: float) -> ScaledCounts:
        nps_orgs = min(scaled(60, scale), scaled(80, scale))
        return cls(
            orgs=scaled(80, scale),
            users=scaled(800, scale),
            resources=scaled(400, scale),
            tickets=scaled(1000, scale),
            touches=scaled(1500, scale),
            nps_orgs=nps_orgs,
            nps_rows=min(scaled(92, scale), 2 * nps_orgs),
        )


@attrs.frozen
class Resource:
    resource_id: str
    org_id: str
    service: str
    region: str


@attrs.frozen
class Masters:
    """What the event generator needs from the masters."""

    org_ids: tuple[str, ...]
    resources: tuple[Resource, ...]
    org_space: IdSpace
    rows: dict[str, int]
    users_missing_field: int


def _date_between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in pairs], weights=[weight for _, weight in pairs])[0]


def _pick(rng: random.Random, population: int, count: int) -> set[int]:
    """`count` distinct row numbers out of `population` (clamped)."""
    return set(rng.sample(range(population), min(count, population)))


def _quirk(rng: random.Random, population: int, real_count: int, real_population: int) -> set[int]:
    """The rows carrying a quirk: the real share of rows, as an exact count at this size."""
    return _pick(rng, population, round(population * real_count / real_population))


class _CsvFile:
    """A landing CSV written like the real ones: header, `\\n`, minimal RFC 4180 quoting."""

    def __init__(self, landing: Path, contract: SourceContract) -> None:
        self._handle: IO[str] = (landing / contract.file_pattern).open(
            "w", encoding="utf-8", newline=""
        )
        self._writer = csv.writer(self._handle, lineterminator="\n")
        self._writer.writerow(contract.column_names)
        self.rows = 0

    def write(self, row: Sequence[object]) -> None:
        self._writer.writerow(row)
        self.rows += 1

    def close(self) -> None:
        self._handle.close()


def _write(landing: Path, contract: SourceContract, fill: Callable[[_CsvFile], None]) -> int:
    target = _CsvFile(landing, contract)
    try:
        fill(target)
    finally:
        target.close()
    return target.rows


def write_masters(landing: Path, seed: int, scale: float, dirty_rate: float = 0.0) -> Masters:
    """Write the seven CSVs into `landing` and return the ids the events refer to."""
    counts = ScaledCounts.at(scale)
    spaces = {
        prefix: IdSpace(prefix, 8, str(seed))
        for prefix in ("org_", "user_", "res_", "tkt_", "mkt_", "inv_")
    }
    org_ids = tuple(spaces["org_"](index) for index in range(counts.orgs))
    rows: dict[str, int] = {}

    rows[CUSTOMERS_ORGS.name] = _write(
        landing, CUSTOMERS_ORGS, lambda out: _orgs(out, random.Random(f"{seed}:orgs"), org_ids)
    )
    missing: list[int] = []
    rows[USERS.name] = _write(
        landing,
        USERS,
        lambda out: missing.append(
            _users(
                out,
                random.Random(f"{seed}:users"),
                random.Random(f"{seed}:users-dirt"),
                spaces["user_"],
                org_ids,
                counts.users,
                dirty_rate,
            )
        ),
    )
    resources: list[Resource] = []
    rows[RESOURCES.name] = _write(
        landing,
        RESOURCES,
        lambda out: resources.extend(
            _resources(
                out, random.Random(f"{seed}:resources"), spaces["res_"], org_ids, counts.resources
            )
        ),
    )
    rows[SUPPORT_TICKETS.name] = _write(
        landing,
        SUPPORT_TICKETS,
        lambda out: _tickets(
            out, random.Random(f"{seed}:tickets"), spaces["tkt_"], org_ids, counts.tickets
        ),
    )
    rows[MARKETING_TOUCHES.name] = _write(
        landing,
        MARKETING_TOUCHES,
        lambda out: _touches(
            out, random.Random(f"{seed}:touches"), spaces["mkt_"], org_ids, counts.touches
        ),
    )
    rows[NPS_SURVEYS.name] = _write(
        landing,
        NPS_SURVEYS,
        lambda out: _nps(
            out, random.Random(f"{seed}:nps"), org_ids, counts.nps_orgs, counts.nps_rows
        ),
    )
    rows[BILLING_MONTHLY.name] = _write(
        landing,
        BILLING_MONTHLY,
        lambda out: _billing(out, random.Random(f"{seed}:billing"), spaces["inv_"], org_ids),
    )
    return Masters(
        org_ids=org_ids,
        resources=tuple(resources),
        org_space=spaces["org_"],
        rows=rows,
        users_missing_field=missing[0] if missing else 0,
    )


def _orgs(out: _CsvFile, rng: random.Random, org_ids: Sequence[str]) -> None:
    n = len(org_ids)
    null_nps = _quirk(rng, n, 11, 80)
    over_range = rng.sample(
        sorted(set(range(n)) - null_nps), min(scaled(1, n / 80), n - len(null_nps))
    )
    disagree = _quirk(rng, n, 25, 80)
    for index, org_id in enumerate(org_ids):
        plan = _weighted(rng, PLAN_TIERS)
        is_enterprise = plan == "enterprise"
        if index in disagree:
            is_enterprise = not is_enterprise
        nps: float | None = float(max(-100, min(100, round(rng.gauss(18, 22)))))
        if index in null_nps:
            nps = None
        elif index in over_range:
            nps = 101.0
        out.write(
            (
                org_id,
                f"{rng.choice(NAME_PREFIXES)} {rng.choice(NAME_SUFFIXES)} {index}",
                rng.choice(INDUSTRIES),
                rng.choice(REGIONS),
                plan,
                is_enterprise,
                _date_between(rng, dt.date(2025, 5, 4), dt.date(2025, 7, 2)).isoformat(),
                rng.choice(SALES_REPS),
                _weighted(rng, LIFECYCLE),
                rng.choice(MARKETING_SOURCES),
                nps,
            )
        )


def _users(
    out: _CsvFile,
    rng: random.Random,
    dirt: random.Random,
    space: IdSpace,
    org_ids: Sequence[str],
    n: int,
    dirty_rate: float,
) -> int:
    """Write users; with a dirty rate, some rows lose their last field. Returns how many."""
    null_login = _quirk(rng, n, 139, 800)
    early_login = _quirk(rng, n, 232, 800) - null_login
    last_day = dt.date(2025, 8, 31)
    shortened = 0
    for index in range(n):
        user_id = space(index)
        created = _date_between(rng, dt.date(2025, 5, 4), dt.date(2025, 8, 11))
        last_login: str | None = None
        if index in early_login:
            last_login = (created - dt.timedelta(days=rng.randint(1, 85))).isoformat()
        elif index not in null_login:
            last_login = _date_between(rng, created, last_day).isoformat()
        row = (
            user_id,
            rng.choice(org_ids),
            f"{user_id}@example.com",
            _weighted(rng, ROLES),
            rng.random() < 0.91,
            created.isoformat(),
            last_login,
        )
        # The last row always ends the file, so a dirty landing shortens at least one row.
        if dirty_rate > 0 and (dirt.random() < dirty_rate or (index == n - 1 and not shortened)):
            out.write(row[:-1])
            shortened += 1
        else:
            out.write(row)
    return shortened


def _tags(rng: random.Random, size: int) -> str:
    chosen = rng.sample(TAG_CHOICES, size)
    return json.dumps([f"{key}:{rng.choice(values)}" for key, values in chosen])


def _resources(
    out: _CsvFile, rng: random.Random, space: IdSpace, org_ids: Sequence[str], n: int
) -> list[Resource]:
    null_tags = _quirk(rng, n, 83, 400)
    tagged = sorted(set(range(n)) - null_tags)
    several = set(rng.sample(tagged, round(len(tagged) * 211 / 317)))
    resources = []
    for index in range(n):
        resource = Resource(
            resource_id=space(index),
            org_id=rng.choice(org_ids),
            service=rng.choices(SERVICES, weights=SERVICE_WEIGHTS)[0],
            region=rng.choice(REGIONS),
        )
        tags: str | None = None
        if index in several:
            tags = _tags(rng, rng.choice((2, 3, 3)))
        elif index not in null_tags:
            tags = _tags(rng, 1)
        out.write(
            (
                resource.resource_id,
                resource.org_id,
                resource.service,
                resource.region,
                _date_between(rng, dt.date(2025, 5, 4), dt.date(2025, 8, 21)).isoformat(),
                _weighted(rng, STATES),
                tags,
            )
        )
        resources.append(resource)
    return resources


def _tickets(
    out: _CsvFile, rng: random.Random, space: IdSpace, org_ids: Sequence[str], n: int
) -> None:
    still_open = _quirk(rng, n, 240, 1000)
    null_csat = _quirk(rng, n, 254, 1000)
    outliers = rng.sample(
        sorted(set(range(n)) - null_csat), min(round(n * 40 / 1000), n - len(null_csat))
    )
    outlier_set = set(outliers)
    for index in range(n):
        created = _date_between(rng, dt.date(2025, 5, 9), dt.date(2025, 8, 31))
        resolved = None
        if index not in still_open:
            resolved = (created + dt.timedelta(days=int(rng.expovariate(1 / 4.5)))).isoformat()
        csat: float | None = None
        if index in outlier_set:
            csat = _weighted(rng, CSAT_OUTLIERS)
        elif index not in null_csat:
            csat = _weighted(rng, CSAT_IN_RANGE)
        out.write(
            (
                space(index),
                rng.choice(org_ids),
                rng.choice(TICKET_CATEGORIES),
                _weighted(rng, SEVERITIES),
                created.isoformat(),
                resolved,
                csat,
                rng.random() < 0.095,
            )
        )


def _touches(
    out: _CsvFile, rng: random.Random, space: IdSpace, org_ids: Sequence[str], n: int
) -> None:
    for index in range(n):
        out.write(
            (
                space(index),
                rng.choice(org_ids),
                rng.choice(CAMPAIGNS),
                rng.choice(CHANNELS),
                _date_between(rng, dt.date(2025, 5, 4), dt.date(2025, 8, 31)).isoformat(),
                rng.random() < 0.30,
                rng.random() < 0.096,
            )
        )


def _nps(
    out: _CsvFile, rng: random.Random, org_ids: Sequence[str], n_orgs: int, n_rows: int
) -> None:
    surveyed = set(rng.sample(range(len(org_ids)), n_orgs))
    twice = set(rng.sample(sorted(surveyed), n_rows - n_orgs))
    null_score = _quirk(rng, n_rows, 19, 92)
    null_comment = _quirk(rng, n_rows, 10, 92)
    row = 0
    for index, org_id in enumerate(org_ids):  # in the customers file's order, dates ascending
        if index not in surveyed:
            continue
        dates = rng.sample(
            range((dt.date(2025, 8, 31) - dt.date(2025, 5, 24)).days + 1),
            2 if index in twice else 1,
        )
        for offset in sorted(dates):
            score = (
                None if row in null_score else float(max(-100, min(100, round(rng.gauss(26, 16)))))
            )
            out.write(
                (
                    org_id,
                    (dt.date(2025, 5, 24) + dt.timedelta(days=offset)).isoformat(),
                    score,
                    None if row in null_comment else rng.choice(NPS_COMMENTS),
                )
            )
            row += 1


def _fx(rng: random.Random, currency: str) -> float:
    low, high = FX_RANGES[currency]
    rate = round(rng.uniform(low, high), 5)
    return rate if rate != 1.0 else 1.00001  # USD rows never carry exactly 1.0


def _billing(out: _CsvFile, rng: random.Random, space: IdSpace, org_ids: Sequence[str]) -> None:
    n = len(org_ids) * len(BILLING_MONTHS)
    null_credits = _quirk(rng, n, 137, 240)
    credit_notes = _quirk(rng, n, 13, 240)
    row = 0
    for org_id in org_ids:
        for month in BILLING_MONTHS:
            subtotal = round(abs(rng.gauss(750, 480)) + 10, 2)
            if row in credit_notes:
                subtotal = -subtotal
            credits = None if row in null_credits else round(min(80.0, rng.expovariate(1 / 19)), 2)
            currency = _weighted(rng, CURRENCIES)
            out.write(
                (
                    space(row),
                    org_id,
                    month.isoformat(),
                    subtotal,
                    credits,
                    round(TAX_RATE * abs(subtotal), 2),
                    currency,
                    _fx(rng, currency),
                )
            )
            row += 1
