"""`make bench`: run every benchmark, each in its own process, and print their figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = 0
    for path in sorted(HERE.glob("bench_*.py")):
        module = f"tests.benchmarks.{path.stem}"
        print(f"\n=== {module}", flush=True)
        failed += (
            subprocess.run([sys.executable, "-m", module], cwd=HERE.parents[1]).returncode != 0
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
