"""The kernels' ISA paths (issue 22), at the provider level: PHOENIX_KERNEL_ISA forces a path (the
values rank portable < avx2 < avx_vnni < avx512_bf16 < avx512_vnni; a value caps the kernels at
that path), the library reports the path that ran, and Whisper's ops and blocks, and a quantized
(QDQ) block, give the same results on every path this CPU can execute, as the kernels' numerics
notes say:
- the AVX2 bodies, and every INT8 body (exact integer sums), are bit-identical to the portable
  reference (kernels/*/README.md);
- the AVX-512 BF16 MatMul adds products in pairs (vdpbf16ps), so it is within the FP32 summation
  bound of the reference, not bit-identical: after the rounding of each output that is at most
  one ulp on the few outputs whose FP32 sums round apart.
Each path runs in its own process (the choice is made once per process)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import rel_l2

TESTS = Path(__file__).resolve().parent
PATHS = ("portable", "avx2", "avx_vnni", "avx512_bf16", "avx512_vnni")

# What each path needs from the CPU (/proc/cpuinfo flag names), beyond baseline x86-64.
_AVX2 = {"avx2", "fma", "f16c"}
_AVX512 = _AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq"}
NEEDS = {"portable": set(), "avx2": _AVX2, "avx_vnni": _AVX2 | {"avx_vnni"},
         "avx512_bf16": _AVX512 | {"avx512_bf16"}, "avx512_vnni": _AVX512 | {"avx512_vnni"}}
# Paths whose every kernel is bit-identical to the portable reference.
EXACT = {"portable", "avx2", "avx_vnni"}


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _env(isa: str) -> dict:
    env = dict(os.environ, PHOENIX_KERNEL_ISA=isa)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _kernel_isa(isa: str) -> str:
    out = subprocess.run([sys.executable, "-c", "import phoenix_npu; print(phoenix_npu.measure_peak()['kernel_isa'])"],
                         env=_env(isa), capture_output=True, text=True, timeout=300, check=True)
    return out.stdout.strip()


EXECUTABLE = [p for p in PATHS if NEEDS[p] <= _cpu_flags()]


@pytest.mark.parametrize("isa", PATHS)
def test_forced_path_is_the_one_that_runs(isa):
    """A path the CPU has runs when asked for; one it lacks falls back to a lesser path, never to
    a greater one, and the library says which ran."""
    ran = _kernel_isa(isa)
    if isa in EXECUTABLE:
        assert ran == isa
    else:
        assert ran in EXECUTABLE and PATHS.index(ran) < PATHS.index(isa), (isa, ran)


# Runs every graph of test_precision, and the QDQ block (INT8 MatMuls at bf16), on the provider
# in this process and saves the outputs.
_RUNNER = r"""
import sys, numpy as np
from test_precision import _graphs
import phoenix_npu
out = {}
for precision in ("bf16", "bf16x3"):
    graphs = _graphs(np.random.default_rng(7))
    graphs["QDQ block"] = (open(sys.argv[2], "rb").read(), dict(np.load(sys.argv[3])))
    for name, (model, feeds) in graphs.items():
        sess = phoenix_npu.make_session(model, device="emulator", precision=precision)
        for i, y in enumerate(sess.run(None, feeds)):
            out[f"{precision}|{name}|{i}"] = y
np.savez(sys.argv[1], **out)
"""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    from test_qdq import _feeds, _quantize

    d = tmp_path_factory.mktemp("isa")
    rng = np.random.default_rng(11)
    qdq, shape = _quantize(d, rng)
    (d / "qdq.onnx").write_bytes(qdq)
    np.savez(d / "qdq_feeds.npz", **_feeds(shape, rng))
    got = {}
    for isa in EXECUTABLE:
        path = d / f"{isa}.npz"
        subprocess.run([sys.executable, "-c", _RUNNER, str(path), str(d / "qdq.onnx"), str(d / "qdq_feeds.npz")],
                       env=_env(isa), check=True, timeout=900)
        with np.load(path) as z:
            got[isa] = {k: z[k] for k in z.files}
    return got


@pytest.mark.parametrize("isa", sorted(EXACT - {"portable"}, key=PATHS.index))
def test_exact_paths_are_bit_identical_to_the_reference(outputs, isa):
    if isa not in outputs:
        pytest.skip(f"this CPU cannot run the {isa} path ({', '.join(sorted(NEEDS[isa] - _cpu_flags()))} missing)")
    ref, fast = outputs["portable"], outputs[isa]
    assert ref.keys() == fast.keys() and len(ref) >= 22  # 11 graphs x 2 precisions
    differ = [k for k in ref if not np.array_equal(ref[k], fast[k], equal_nan=True)]
    assert not differ, differ


@pytest.mark.parametrize("isa", ["avx512_bf16", "avx512_vnni"])
def test_avx512_paths_within_one_rounding_of_the_reference(outputs, isa):
    if isa not in outputs:
        pytest.skip(f"this CPU cannot run the {isa} path ({', '.join(sorted(NEEDS[isa] - _cpu_flags()))} missing): "
                    "not covered here")
    ref, fast = outputs["portable"], outputs[isa]
    assert ref.keys() == fast.keys()
    worst = {}
    for k in ref:
        a, b = ref[k], fast[k]
        assert np.array_equal(np.isnan(a), np.isnan(b)), k
        # The FP32 sums differ by far less than the stored type's rounding, so outputs differ by
        # one rounding where the two sums round apart. One ulp is at most 2^-8 relative for BF16
        # (8 significant bits) and 2^-16 for a BF16 pair (16); a few outputs of a graph may round
        # apart, and one more kernel downstream may carry such a difference: one ulp of relative
        # L2 bounds a graph.
        bound = 2.0 ** -8 if k.startswith("bf16|") else 2.0 ** -16
        worst[k] = rel_l2(np.nan_to_num(b), np.nan_to_num(a))
        assert worst[k] <= bound, (k, worst[k], bound)
    print("\nAVX-512 vs portable, rel. L2 (largest):", json.dumps(dict(sorted(worst.items(), key=lambda kv: -kv[1])[:3])))


def test_int8_bodies_change_no_bit(outputs):
    """avx512_vnni differs from avx512_bf16 only in the INT8 MatMul's body (vpdpbusd zmm against
    ymm / vpmaddwd), whose sums are exact: every output, the QDQ block's included, is the same."""
    if not {"avx512_bf16", "avx512_vnni"} <= outputs.keys():
        pytest.skip("this CPU cannot run both AVX-512 paths: not covered here")
    a, b = outputs["avx512_bf16"], outputs["avx512_vnni"]
    differ = [k for k in a if not np.array_equal(a[k], b[k], equal_nan=True)]
    assert not differ, differ
