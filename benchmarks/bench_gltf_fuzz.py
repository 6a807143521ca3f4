"""Long glTF fuzz run: the suite's fuzz (``tests/host/gltf_fuzz.py``) with many more cases.

    python3 benchmarks/bench_gltf_fuzz.py [--cases 5000] [--seed 1] [--save DIR]

Hostile ``.gltf`` and ``.glb`` files go through ``load_model_bytes`` (and ``Scene.add_model``
when they load) in capped child processes (``RLIMIT_AS``: their size after imports plus
``--headroom-mib``), one per batch. Prints how many cases it tried, the outcomes by type, the
peak resident set size of a batch process and any failure (a crash, a hang, a MemoryError, an
exception other than ModelError, a refusal that left the scene changed). Exit status 1 on a
failure; ``--save`` writes the failed cases there to reproduce.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.host.gltf_fuzz import (
    FUZZ_MAX_DECODED_BYTES,
    FUZZ_MAX_FILE_BYTES,
    FUZZ_MAX_TRIANGLES,
    HEADROOM_BYTES,
    Report,
    draw_cases,
    run_cases,
    save_failures,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=500, help="cases per child process")
    parser.add_argument("--batch-timeout", type=float, default=600.0,
                        help="seconds a batch may take before its running case counts as a hang")
    parser.add_argument("--headroom-mib", type=int, default=HEADROOM_BYTES >> 20,
                        help="address space a child may use beyond its size after imports")
    parser.add_argument("--save", type=Path, help="write failed cases to this folder")
    args = parser.parse_args()

    started = time.monotonic()
    cases = draw_cases(args.cases, args.seed)
    drawn = time.monotonic()
    print(f"glTF fuzz: {len(cases)} cases drawn in {drawn - started:.1f} s (seed {args.seed}); "
          f"budgets: {FUZZ_MAX_DECODED_BYTES >> 20} MiB decoded, {FUZZ_MAX_TRIANGLES} "
          f"triangles, {FUZZ_MAX_FILE_BYTES >> 20} MiB file", flush=True)

    def progress(report: Report) -> None:
        print(f"  ... {report.tried}/{len(cases)} tried, {len(report.failures)} failures",
              flush=True)

    report = run_cases(cases, batch_size=args.batch_size, batch_timeout=args.batch_timeout,
                       headroom_bytes=args.headroom_mib << 20, progress=progress)
    elapsed = time.monotonic() - drawn
    print(f"glTF fuzz: {report.tried} cases tried in {elapsed:.1f} s")
    print("  outcomes:")
    for outcome, n in sorted(report.outcomes.items(), key=lambda kv: -kv[1]):
        print(f"    {outcome}: {n}")
    print(f"  peak RSS of a batch process: {report.peak_rss_mb:.0f} MiB (after imports "
          f"{report.base_rss_mb:.0f} MiB, address-space cap {report.cap_mb:.0f} MiB), reached in "
          f"{report.peak_case}")
    if report.unnamed:
        print(f"  refused only by the loader's safety net (no message naming the problem): "
              f"{dict(report.unnamed)}")
    for failure in report.failures:
        print(f"  FAILURE: {failure}")
    if report.failures and args.save is not None:
        save_failures(report, args.save)
        print(f"  failed cases written to {args.save}")
    print(f"FIGURE gltf_fuzz_cases={report.tried} peak_rss_mb={report.peak_rss_mb:.0f}")
    failed = bool(report.failures) or report.tried != len(cases)
    print("verdict:", "FAIL" if failed else "ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
