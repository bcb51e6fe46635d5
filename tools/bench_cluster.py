#!/usr/bin/env python3
"""Batch transcription throughput: files per minute in one process and with N local Ray
workers (threads per worker = cores / N, so the cores are not oversubscribed).

    python tools/bench_cluster.py --model tiny.en --workers 1 2 --copies 2

The archive is the clips of shared/speech, copied `--copies` times (as different files).
Each configuration transcribes it into a fresh output folder; the figures are the wall time
from the call to the last result (Ray start and model loads included) and the throughput
after the first result (steady state)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

try:
    import phoenix_npu  # noqa: F401
except ImportError:  # a source tree without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))


def main() -> int:
    from phoenix_npu.whisper.batch import transcribe_batch
    from phoenix_npu.whisper.export import ensure_exported
    from phoenix_npu_tools.wer import default_speech_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--device", default="emulator")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="local Ray workers per run")
    ap.add_argument("--single", action="store_true", help="also one run without Ray (this process)")
    ap.add_argument("--copies", type=int, default=2, help="copies of the clip set in the archive")
    ap.add_argument("--json", default=None, help="write the figures here too")
    args = ap.parse_args()

    model = str(ensure_exported(args.model))
    clips = sorted(default_speech_dir().glob("*.wav"))
    work = Path(tempfile.mkdtemp(prefix="phoenix-bench-cluster-"))
    archive = work / "archive"
    for k in range(args.copies):
        (archive / f"copy{k}").mkdir(parents=True)
        for c in clips:
            shutil.copy(c, archive / f"copy{k}" / c.name)
    n = len(clips) * args.copies
    cores = len(os.sched_getaffinity(0))
    configs = ([None] if args.single else []) + [f"local:{w}" for w in args.workers]
    rows = []
    try:
        for cluster in configs:
            runs, first = [], None
            t0 = time.monotonic()
            for r in transcribe_batch([archive], model, output=work / f"out-{cluster or 'single'}", device=args.device,
                                      cluster=cluster, progress=False, run=runs):
                assert not r.get("error"), r
                first = first or time.monotonic()
            t1 = time.monotonic()
            s = runs[0].summary()
            row = {"cluster": cluster or "none (one process)", "workers": s.get("workers", 1),
                   "threads_per_worker": s.get("threads_per_worker", cores), "files": n,
                   "audio_seconds": s["audio_seconds_done"], "wall_s": round(t1 - t0, 1),
                   "files_per_min": round(n / (t1 - t0) * 60, 1),
                   "steady_files_per_min": round((n - 1) / (t1 - first) * 60, 1),
                   "rtf": round((t1 - t0) / s["audio_seconds_done"], 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{n} files, {rows[0]['audio_seconds']:.1f} s of audio, {args.model}, device {args.device}, "
          f"{cores} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print("| run | workers x threads | wall (s) | files/min | steady files/min | RTF |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cluster']} | {r['workers']} x {r['threads_per_worker']} | {r['wall_s']} | {r['files_per_min']} | "
              f"{r['steady_files_per_min']} | {r['rtf']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
