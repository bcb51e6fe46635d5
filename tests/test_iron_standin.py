"""The NPU designs (kernels/*/aie/design.py) EXECUTED on the IRON stand-in
(kernels/common/aie/iron_standin): every manifest stage runs and its output matches the emulated
device; the stand-in rejects each of the review's blockers B1-B4 (the unfixed lines, put back one
at a time, fail it), DMA limits and data movement errors. What the stand-in cannot show (timing,
locks, back-pressure, real DMA): docs/npu.md, "The IRON stand-in"."""
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from ml_dtypes import bfloat16

import _npu_path  # noqa: F401
from phoenix_npu_tools import npu_model as nm
from phoenix_npu.manifest import ManifestKernel, ManifestStage

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"
sys.path.insert(0, str(KERNELS / "common" / "aie"))
import build_xclbin  # noqa: E402
import iron_standin as S  # noqa: E402
from iron_standin import limits  # noqa: E402


def bf(x):
    return np.asarray(x, np.float32).astype(bfloat16)


def stage(name, *args):
    return ManifestStage(name, "", Path("."), list(args))


def mm_kernel(M, K, N, **kw):
    return ManifestKernel("matmul", f"MatMul {M}x{K}x{N}", [stage("G", "A", "B", "acc"), stage("E")], M=M, K=K, N=N, **kw)


def load(kind, root=KERNELS):
    path = root / build_xclbin.DESIGN_FOLDERS[kind] / "design.py"
    spec = importlib.util.spec_from_file_location(f"standin_test_{kind}_{abs(hash(str(root)))}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def gemm_case(rng, M=256, K=128, N=128):
    k = mm_kernel(M, K, N)
    d = nm.gemm_design("g", M, K, N)
    A, B = bf(rng.standard_normal(M * K)), bf(rng.standard_normal(K * N))
    return k, d, stage("G", "A", "B", "acc"), {"A": A, "B": B}


def epi_case(rng, rows=48, cols=64, residual=False, gelu="none"):
    k = ManifestKernel("matmul", "epi", [], M=rows, K=8, N=cols, bias=True, residual=residual, epilogue=gelu)
    d = nm.rows_design("e", "epilogue", rows, cols, bias=True, residual=residual)
    ins = {"acc": (rng.standard_normal(rows * cols) * 2).astype(np.float32),
           "bias": bf(rng.standard_normal(cols)).astype(np.float32)}
    args = ["acc", "bias"]
    if residual:
        ins["residual"] = bf(rng.standard_normal(rows * cols))
        args.append("residual")
    return k, d, stage("E", *args, "C"), ins


def epi_want(k, ins, rows, cols):
    v = ins["acc"].reshape(rows, cols).astype(np.float32) + ins["bias"]
    if k.residual:
        v = v.astype(np.float64) + ins["residual"].astype(np.float64).reshape(rows, cols)
    return bf(v)


def test_limits_agree_with_the_planner():
    """The stand-in keeps its own npu1 limits (it checks the planner's designs); they must agree."""
    npu = nm.NPU1()
    assert (limits.L1_BYTES, limits.MEMTILE_BYTES, limits.SHIM_BDS, limits.MEMTILE_BDS) == \
        (npu.l1_bytes, npu.memtile_bytes, npu.shim_bds, npu.memtile_bds)
    assert (limits.SHIM_MM2S, limits.SHIM_S2MM, limits.CORE_S2MM, limits.CORE_MM2S) == \
        (npu.shim_mm2s, npu.shim_s2mm, npu.core_s2mm, npu.core_mm2s)
    assert (limits.MEMTILE_MM2S, limits.MEMTILE_S2MM, limits.QUEUE_DEPTH) == \
        (npu.memtile_mm2s, npu.memtile_s2mm, npu.dma_queue_depth)
    assert (limits.WRAP_MAX, limits.REPEAT_MAX, limits.DMA_GRANULE, limits.DEFAULT_STACK) == \
        (npu.d0_d1_wrap_max, npu.repeat_max, npu.dma_granule, npu.default_stack)


def test_peano_flags_let_aiecc_measure_stacks():
    """aiecc's post-link stack check needs each kernel's frame recorded (review M3)."""
    for flag in ("-ffunction-sections", "-fdata-sections", "-fstack-size-section"):
        assert flag in build_xclbin.PEANO_FLAGS


def test_gemm_moves_the_right_data():
    rng = np.random.default_rng(1)
    k, d, st, ins = gemm_case(rng, M=300, K=128, N=160)   # overlapping tail row and column blocks
    out, rep = S.run_stage(load("gemm"), k, d, st, ins)
    exact = ins["A"].astype(np.float64).reshape(300, 128) @ ins["B"].astype(np.float64).reshape(128, 160)
    np.testing.assert_allclose(out["acc"].reshape(300, 160), exact, rtol=0, atol=1e-4)
    assert rep["kernel_calls"] > 0 and rep["task_groups"] == len(d.params["row_starts"])


@pytest.mark.parametrize("residual", [False, True])
def test_epilogue_moves_the_right_data(residual):
    rng = np.random.default_rng(2)
    k, d, st, ins = epi_case(rng, residual=residual)
    out, _ = S.run_stage(load("epilogue"), k, d, st, ins)
    assert (out["C"].astype(np.float32) == epi_want(k, ins, 48, 64).reshape(-1).astype(np.float32)).all()


def test_a_wrong_transfer_is_a_wrong_output():
    """The comparison has teeth: one acc transfer started a row late gives a wrong C."""
    rng = np.random.default_rng(3)
    k, d, st, ins = epi_case(rng)
    t = next(t for t in d.transfers if t.buffer == "acc" and t.column == 1)
    t.offset += d.params["cols"]
    out, _ = S.run_stage(load("epilogue"), k, d, st, ins)
    assert (out["C"].astype(np.float32) != epi_want(k, ins, 48, 64).reshape(-1).astype(np.float32)).any()


def test_dma_limits_are_enforced():
    rng = np.random.default_rng(4)
    k, d, st, ins = gemm_case(rng, M=1536, K=64)
    d.open_groups = 5                      # five row blocks' tasks in flight: A's queue on shim 0 overflows
    with pytest.raises(S.DmaLimit, match="queued > 4"):
        S.run_stage(load("gemm"), k, d, st, ins)
    k, d, st, ins = epi_case(rng)
    t = next(t for t in d.transfers if t.buffer == "acc")
    t.sizes, t.strides = [1, t.sizes[1], 1, t.sizes[2] * t.sizes[3]], [0, t.strides[1], 0, 1]  # inner 1024+ elements
    if t.sizes[3] <= limits.WRAP_MAX:
        t.sizes[3], t.sizes[2] = 2048, 1
    with pytest.raises(S.DmaLimit):
        S.run_stage(load("epilogue"), k, d, st, ins)


# --- B1-B4: each unfixed line, put back alone, is rejected ------------------------------------------
def _mutated(tmp_path, rel, old, new):
    """A copy of kernels/ (designs and common/aie) with `old` replaced by `new` in `rel`."""
    dst = tmp_path / "kernels"
    shutil.copytree(KERNELS, dst, ignore=shutil.ignore_patterns("build", "tests", "*.cc", "*.h", "bench"))
    f = dst / rel
    text = f.read_text()
    assert text.count(old) == 1, f"{rel} no longer contains the fixed line: update this regression test"
    f.write_text(text.replace(old, new))
    return dst


B1 = ("common/aie/iron_common.py",
      "            if t.group not in groups:\n                groups[t.group] = TaskGroup()\n            tg = groups[t.group]\n",
      "            tg = groups.setdefault(t.group, TaskGroup())\n")
B2 = ("matmul/aie/gemm/design.py",
      'matmul = Kernel("matmul_bf16_f32", objects[0], [a_ty, b_ty, c_ty])\n    zero = Kernel("zero_f32", objects[0], [c_ty])',
      'matmul = Kernel("matmul_bf16_f32", objects[0], [vec(m * k, bfloat16), vec(k * n, bfloat16), vec(m * n, np.float32)])\n'
      '    zero = Kernel("zero_f32", objects[0], [vec(m * n, np.float32)])')
B3 = ("common/aie/iron_common.py",
      'x = next(stream_of(t) for t in design.transfers if t.direction == "mm2s" and t.channel == 0)',
      'x = next(t.buffer for t in design.transfers if t.direction == "mm2s" and t.channel == 0)')
B4 = ("matmul/aie/epilogue/design.py",
      "            else:\n                epi_k(xe, bias_buf, ye)\n",
      "            else:\n                epi_k(xe, bias_buf, xe, ye)\n")
B4_DECL = ("matmul/aie/epilogue/design.py", "if has_side else [l1_in, row_ty, l1_out])",
           "if has_side else [l1_in, row_ty, vec(cols, bfloat16), l1_out])")


def test_b1_unfinished_task_groups_are_rejected(tmp_path):
    rng = np.random.default_rng(5)
    k, d, st, ins = epi_case(rng)
    S.run_stage(load("epilogue"), k, d, st, ins)               # fixed: runs
    root = _mutated(tmp_path, *B1)
    with pytest.raises(S.UnfinishedTaskGroup, match="unfinished task group"):
        S.run_stage(load("epilogue", root), k, d, st, ins)
    k, d, st, ins = gemm_case(rng)
    with pytest.raises(S.UnfinishedTaskGroup):
        S.run_stage(load("gemm", root), k, d, st, ins)


def test_b2_gemm_kernel_declared_1d_is_rejected(tmp_path):
    rng = np.random.default_rng(6)
    k, d, st, ins = gemm_case(rng)
    root = _mutated(tmp_path, *B2)
    with pytest.raises(S.KernelTypeMismatch, match=r"zero_f32 operand 0: operand type mismatch: expected 2048 float32, "
                                                   r"but provided 64x32 float32"):
        S.run_stage(load("gemm", root), k, d, st, ins)


def test_b3_epilogue_stream_named_after_bias_is_rejected(tmp_path):
    rng = np.random.default_rng(7)
    k, d, st, ins = epi_case(rng)
    root = _mutated(tmp_path, *B3)
    with pytest.raises(S.UnresolvedFifo, match="acc_l2_0"):
        S.run_stage(load("epilogue", root), k, d, st, ins)


def test_b4_fp32_object_as_bf16_residual_is_rejected(tmp_path):
    rng = np.random.default_rng(8)
    k, d, st, ins = epi_case(rng, residual=False)
    root = _mutated(tmp_path, *B4)
    (root / B4_DECL[0]).write_text((root / B4_DECL[0]).read_text().replace(B4_DECL[1], B4_DECL[2]))
    with pytest.raises(S.KernelTypeMismatch, match="phoenix_epilogue operand 2: operand type mismatch: expected 64 bfloat16, "
                                                   "but provided 64 float32"):
        S.run_stage(load("epilogue", root), k, d, st, ins)


# --- every manifest stage against the emulated device ---------------------------------------------
def _manifest_kernels():
    from phoenix_npu.manifest import load_manifest
    return load_manifest(KERNELS / "manifest.json", check_artifacts=False).kernels


@pytest.mark.timeout(900)
def test_every_manifest_stage_matches_the_emulated_device():
    from phoenix_npu_tools.npu_simulate import TOLERANCE_ULP, simulate_kernel
    results = [r for k in _manifest_kernels() for r in simulate_kernel(k, k.stages, KERNELS, seed=11)]
    names = {s.kernel_name for k in _manifest_kernels() for s in k.stages}
    assert {r.stage for r in results} == names and len(names) == 11
    for r in results:
        assert r.executed, f"{r.stage}: {r.error}"
        assert r.bad == 0, f"{r.stage}: {r.bad} elements off {r.against} (max {r.max_ulp} ulp, {r.max_abs:.3g} abs)"
        if r.max_ulp >= 0:
            assert r.max_ulp <= 64 and r.max_abs < 0.1    # a data movement error is O(1)
        assert r.report["tasks"] > 0 and r.report["kernel_calls"] > 0
    print("\n" + "\n".join(f"{r.stage:34s} max abs {r.max_abs:.3e} max ulp {r.max_ulp} vs {r.against}" for r in results))
    assert TOLERANCE_ULP == 2


@pytest.mark.timeout(900)
def test_plan_simulate_cli(tmp_path):
    import subprocess
    r = subprocess.run([sys.executable, "-m", "phoenix_npu.cli", "plan", "--model", "base", "--simulate"], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("PHX_")]
    assert len(lines) == 11 and all(" yes " in ln for ln in lines), r.stdout
    assert "iron_standin" in r.stdout and "11 of 11 stages executed" in r.stdout
    r = subprocess.run([sys.executable, "-m", "phoenix_npu.cli", "plan", "--simulate", "--kernels", str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                                      "PHOENIX_NPU_KERNELS": ""})
    assert r.returncode == 2 and "source tree" in r.stdout, r.stdout   # no designs found: said, not guessed
