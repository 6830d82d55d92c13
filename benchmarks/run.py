"""`make bench`: run every benchmark in turn (each writes its section of docs/benchmarks.md)."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

# Every benchmarks/bench_*.py with a main(); pass names (e.g. bench_nlu) to run a few.
BENCHMARKS = sorted(f"benchmarks.{p.stem}" for p in Path(__file__).parent.glob("bench_*.py"))


def main(names: list[str]) -> None:
    for name in [f"benchmarks.{n}" for n in names] or BENCHMARKS:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        importlib.import_module(name).main()
        print(f"== {name} done in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
