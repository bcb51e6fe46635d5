#!/usr/bin/env python3
"""The long fuzz run of the partitioner and kernels (the CI runs a short one):

    .venv/bin/python tools/fuzz.py --graphs 10000

Every random graph (tests/graph_fuzz.py) must create a session, match the CPU EP within the
BF16 contract, and leave what the provider cannot run to the CPU EP. Prints a summary and
exits non-zero on the first failure, with the seed to reproduce it."""
import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from graph_fuzz import check_graph  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--graphs", type=int, default=10000)
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--precision", default="bf16", choices=("bf16", "bf16x3"), help="PhoenixNPU precision")
    args = ap.parse_args()
    import onnxruntime as ort
    ort.set_default_logger_severity(3)  # one device line per session would drown the report
    t0 = time.time()
    claimed = 0
    ops = Counter()
    for i, seed in enumerate(range(args.start, args.start + args.graphs)):
        try:
            r = check_graph(seed, precision=args.precision)
        except AssertionError as exc:
            print(f"FAILED at seed {seed}: {exc}")
            return 1
        claimed += r["claimed"] > 0
        ops.update(r["desc"].split(" -> "))
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} graphs, {claimed} with nodes on PhoenixNPU, {time.time() - t0:.0f} s", flush=True)
    print(f"fuzz (precision={args.precision}): {args.graphs} graphs passed ({claimed} with nodes on PhoenixNPU, "
          f"{args.graphs - claimed} left wholly to the CPU EP) in {time.time() - t0:.0f} s")
    print("ops generated:", dict(ops.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
