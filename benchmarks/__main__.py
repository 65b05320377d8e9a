"""Run every benchmark in turn: ``python -m benchmarks`` (``make bench``).

Each module prints its own table of ratios against a baseline measured in the same run; the
figures, with the command for each, are kept in docs/benchmarks.md.
"""

from __future__ import annotations

import importlib
import sys
import time

MODULES = ("bench_payloads", "bench_signing", "bench_transport", "bench_memory", "bench_stores")


def main() -> int:
    failed = []
    for name in MODULES:
        print(f"\n=== benchmarks.{name}", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{name}")
        saved = sys.argv
        sys.argv = [name]
        try:
            code = module.main()
        finally:
            sys.argv = saved
        if code:
            failed.append(name)
        print(f"--- {name}: {time.perf_counter() - started:.1f} s", flush=True)
    if failed:
        print(f"\nbelow target: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
