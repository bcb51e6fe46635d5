#!/usr/bin/env python3
"""The long fuzz run of the partitioner, compiler and kernels (the CI runs a short one):

    .venv/bin/python tools/fuzz.py --graphs 10000          # chains (tests/graph_fuzz.py)
    .venv/bin/python tools/fuzz.py --dag --graphs 10000    # DAGs (tests/dag_fuzz.py)

Every random graph must create a session, match the CPU EP within the BF16 sensitivity bound
(the same NaN and Inf positions), and leave what the provider cannot run to the CPU EP; a
malformed DAG must fail with an error where the CPU EP does. Graphs run in worker processes,
so a crash, a sanitizer report or a hang is recorded with its seed and the run goes on.
Prints each failure as it happens, a summary by failure class at the end, and exits non-zero
if anything failed. Each DAG runs the configuration its seed draws (precision, fuse_attention,
threads) unless --precision / --fuse-attention pin it.

Under the sanitizers (after scripts/sanitize.sh has built build/sanitize):

    LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)" \\
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 \\
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 PHOENIX_SANITIZED=1 \\
    PHOENIX_NPU_LIBRARY=$PWD/build/sanitize/libphoenix_npu_ep.so \\
    .venv/bin/python tools/fuzz.py --dag --graphs 300
"""
import argparse
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))


def worker(args):
    """Reads seeds from stdin, writes one JSON line per seed."""
    import onnxruntime as ort
    ort.set_default_logger_severity(4)  # the CPU EP logs every failed Reshape of a malformed model
    from dag_fuzz import GeneratorError, check_dag, random_dag
    from graph_fuzz import check_graph

    for line in sys.stdin:
        seed = int(line)
        out = {"seed": seed}
        try:
            if args.dag:
                r = check_dag(seed, precision=args.precision, fuse_attention=args.fuse_attention)
            else:
                r = check_graph(seed, precision=args.precision or "bf16")
            out.update(ok=True, result=r)
        except AssertionError as exc:
            out.update(ok=False, kind="mismatch", message=str(exc))
        except GeneratorError as exc:
            out.update(ok=False, kind="generator", message=str(exc))
        except Exception as exc:  # noqa: BLE001 - a failed session or run on a valid model
            out.update(ok=False, kind="error", message=f"{type(exc).__name__}: {exc}",
                       trace=traceback.format_exc(limit=3))
        if args.dag and not out["ok"]:
            out["known"] = random_dag(seed).known
        print(json.dumps(out, default=str), flush=True)


class Worker:
    """One worker process; restarted after a crash or a hang."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = None
        self.err = tempfile.TemporaryFile()

    def start(self):
        self.err.seek(0)
        self.err.truncate()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.lines), daemon=True).start()

    @staticmethod
    def _read(proc, lines):
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def stderr_report(self, since):
        """What the dead worker wrote: from the first sanitizer line if there is one."""
        self.err.seek(since)
        text = self.err.read().decode(errors="replace")
        m = re.search(r"^.*(ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer).*$", text, re.M)
        return text[m.start():m.start() + 4000] if m else text[-4000:]

    def run(self, seed, timeout):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        since = self.err.seek(0, os.SEEK_END)
        self.proc.stdin.write(f"{seed}\n")
        self.proc.stdin.flush()
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return {"seed": seed, "ok": False, "kind": "hang", "message": f"no result after {timeout} s"}
        if line is None:  # the worker died
            code = self.proc.wait()
            report = self.stderr_report(since)
            self.proc = None
            kind = "sanitizer" if ("Sanitizer" in report or "runtime error:" in report) else "crash"
            return {"seed": seed, "ok": False, "kind": kind, "message": f"exit code {code}", "stderr": report}
        return json.loads(line)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


def failure_class(r):
    """Failures grouped by kind and message with the numbers taken out."""
    msg = r.get("message", "")
    if r["kind"] == "sanitizer":
        m = re.search(r"(ERROR: AddressSanitizer: [\w-]+|runtime error: [^\n]*)", r.get("stderr", ""))
        where = re.search(r"#\d+ 0x[0-9a-f]+ in (\S+)", r.get("stderr", ""))
        msg = (m.group(1) if m else msg) + (f" in {where.group(1)}" if where else "")
    msg = msg.splitlines()[0] if msg else ""
    msg = msg.split("Status Message:")[-1]
    msg = re.sub(r"seed \d+ \([^)]*\)", "", msg)
    msg = re.sub(r"\bat \{[^}]*\}|output \w+|'[^']*'|PhoenixNPUExecutionProvider_[\d_]+", "", msg)
    msg = re.sub(r"-?\b\d+(\.\d+)?(e[+-]?\d+)?", "#", msg)
    msg = re.sub(r"\{[^}]*\}", "{}", msg)
    known = r.get("known")
    tag = "" if known is None else f"[can trigger {', '.join(known)}] " if known else "[NEW: no known trigger] "
    return f"{tag}{r['kind']}: {msg.strip()[:160]}"


def save_case(seed, directory, dag):
    """The failing model and its feeds, to write a reproducer from."""
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    if dag:
        from dag_fuzz import random_dag
        case = random_dag(seed)
        model, feeds = case.model, case.feeds
    else:
        from graph_fuzz import random_graph
        model, feed, _ = random_graph(seed)
        feeds = [feed]
    (directory / f"{seed}.onnx").write_bytes(model)
    for i, f in enumerate(feeds):
        np.savez(directory / f"{seed}_feeds{i}.npz", **f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dag", action="store_true", help="random DAGs (tests/dag_fuzz.py) instead of chains")
    ap.add_argument("--graphs", type=int, default=10000)
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--precision", choices=("bf16", "bf16x3"), help="PhoenixNPU precision (chains: default bf16; "
                    "DAGs: default drawn per seed)")
    ap.add_argument("--fuse-attention", type=int, choices=(0, 1), help="DAGs: pin fuse_attention")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per graph before it counts as a hang")
    ap.add_argument("--save", type=Path, help="write each failing model and its feeds here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    argv = [sys.executable, __file__, "--worker"] + (["--dag"] if args.dag else [])
    if args.precision:
        argv += ["--precision", args.precision]
    if args.fuse_attention is not None:
        argv += ["--fuse-attention", str(args.fuse_attention)]
    seeds = queue.Queue()
    for s in range(args.start, args.start + args.graphs):
        seeds.put(s)
    results, lock = [], threading.Lock()
    t0 = time.time()

    def drive():
        w = Worker(argv)
        while True:
            try:
                seed = seeds.get_nowait()
            except queue.Empty:
                break
            r = w.run(seed, args.timeout)
            if args.dag and not r["ok"] and "known" not in r:  # the worker died: say what the DAG holds
                from dag_fuzz import random_dag
                r["known"] = random_dag(seed).known
            with lock:
                results.append(r)
                if not r["ok"]:
                    print(f"FAILED seed {seed} [{r['kind']}]: {r.get('message', '')}", flush=True)
                    if r.get("known") == []:
                        print("  (none of the known issue-11 triggers: something new)", flush=True)
                    if r.get("stderr"):
                        print("  " + "\n  ".join(r["stderr"].strip().splitlines()[:8]), flush=True)
                    if args.save:
                        save_case(seed, args.save, args.dag)
                if len(results) % 500 == 0:
                    bad = sum(not x["ok"] for x in results)
                    print(f"{len(results)} graphs, {bad} failed, {time.time() - t0:.0f} s", flush=True)
        w.stop()

    threads = [threading.Thread(target=drive) for _ in range(max(args.jobs, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    ok = [r for r in results if r["ok"]]
    failed = [r for r in results if not r["ok"]]
    claimed = sum(r["result"]["claimed"] > 0 for r in ok)
    mode = "DAGs" if args.dag else "graphs"
    print(f"fuzz ({mode}, seeds {args.start}..{args.start + args.graphs - 1}): {len(ok)} passed, {len(failed)} failed "
          f"in {time.time() - t0:.0f} s; {claimed} of the passed had nodes on PhoenixNPU")
    blocks = Counter()
    for r in ok:
        blocks.update(r["result"]["desc"].replace(" -> ", " ").split())
    print("generated:", dict(blocks.most_common()))
    if args.dag:
        print("configurations passed:", dict(Counter(r["result"]["config"] for r in ok).most_common()))
        print("PhoenixNPU kernels run (DAGs):", dict(Counter(k for r in ok for k in r["result"]["kernels"]).most_common()))
    classes = defaultdict(list)
    for r in failed:
        classes[failure_class(r)].append(r["seed"])
    for cls, s in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        print(f"{len(s):6d}  {cls}\n        seeds: {' '.join(map(str, sorted(s)[:12]))}{' ...' if len(s) > 12 else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
