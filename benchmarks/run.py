"""The one benchmark command: `python benchmarks/run.py [--quick]` (see benchmarks/README.md).

A script by path, so it puts the repository root on `sys.path` itself: the harness is the
`benchmarks` package, and the resolver config comes from `tests.support.backfill_helpers`.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.harness import main

    sys.exit(main())
