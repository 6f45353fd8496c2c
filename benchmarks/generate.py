"""Benchmark `finops generate`: events per second and peak memory at scale 1 and scale 100.

Each run happens in a child process so its peak resident memory (ru_maxrss) is its own; the
landing goes to a temporary folder that is deleted afterwards. Usage:

    .venv/bin/python benchmarks/generate.py [--scales 1 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys
from pathlib import Path
from adapters.landing.generator import generate
result = generate(Path(sys.argv[1]), seed=int(sys.argv[2]), scale=float(sys.argv[3]))
print(result.events)
"""
PEAK_LIMIT_MB = 300.0


def run_once(scale: float, seed: int) -> tuple[int, float, float]:
    """Generate one landing in a child process; returns (events, seconds, peak RSS in MB)."""
    with tempfile.TemporaryDirectory(prefix="finops-bench-") as lake:
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", CHILD, lake, str(seed), str(scale)],
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
    # Children are waited for one at a time, so RUSAGE_CHILDREN's max is this child's peak
    # as long as scales run in increasing order.
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return int(child.stdout.strip().splitlines()[-1]), seconds, peak_kb / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 100.0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    worst = 0.0
    for scale in sorted(args.scales):
        events, seconds, peak_mb = run_once(scale, args.seed)
        worst = max(worst, peak_mb)
        print(
            f"scale={scale:g} events={events} seconds={seconds:.1f} "
            f"events_per_s={events / seconds:.0f} peak_rss_mb={peak_mb:.1f}",
            flush=True,
        )
    print(f"peak under {PEAK_LIMIT_MB:.0f} MB: {'yes' if worst < PEAK_LIMIT_MB else 'NO'}")
    return 0 if worst < PEAK_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
