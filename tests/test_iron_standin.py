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


# --- The INT8 MatMul's stages (kernels/matmul_int8/aie; docs/npu.md 2d) --------------------------------
def int8_kernel(M, K, N, **kw):
    return ManifestKernel("matmul_int8", f"INT8 {M}x{K}x{N}", [], M=M, K=K, N=N, dtype="int8", **kw)


def test_int8_gemm_sums_exactly_with_tail_blocks():
    rng = np.random.default_rng(21)
    M, K, N = 300, 128, 272                              # overlapping last row and column blocks
    d = nm.gemm_design("g8", M, K, N, dtype="i8")
    assert (d.params["m"], d.params["n"]) == (64, 64) and d.dtypes == {"qa": "int8", "B": "int8", "acc": "int32"}
    qa = rng.integers(-128, 128, M * K).astype(np.int8)
    B = rng.integers(-128, 128, K * N).astype(np.int8)
    qa[:K], B[::N] = -128, -128                          # the largest products
    out, rep = S.run_stage(load("gemm_i8"), int8_kernel(M, K, N), d, stage("G8", "qa", "B", "acc"), {"qa": qa, "B": B})
    exact = qa.astype(np.int64).reshape(M, K) @ B.astype(np.int64).reshape(K, N)
    assert out["acc"].dtype == np.int32 and (out["acc"].reshape(M, N) == exact).all()
    assert rep["kernel_calls"] > 0


@pytest.mark.parametrize("signed", [False, True])
def test_int8_quantize_gives_ort_integers_shifted(signed):
    """NaN, infinities, the clamps and exact half-quanta included (round half to even)."""
    from phoenix_npu_tools.npu_simulate import int8_stage_params
    rng = np.random.default_rng(22)
    M, K = 160, 64
    sa, za = np.float32(0.0625), (0 if signed else 131)   # a power of two: the half-quanta are exact in BF16
    x = rng.standard_normal(M * K).astype(np.float32) * 3
    x[:8] = [np.nan, np.inf, -np.inf, 1e30, -1e30, 0.5 * sa, 2.5 * sa, -1.5 * sa]
    qparams, _ = int8_stage_params(float(sa), za, signed, np.zeros((1, 1), np.int8), [1.0], None)
    d = nm.rows_design("q", "quantize", M, K)
    out, _ = S.run_stage(load("quantize"), int8_kernel(M, K, 16), d, stage("Q", "A", "qparams", "qa"),
                         {"A": bf(x), "qparams": qparams})
    v = bf(x).astype(np.float32) / sa
    lo, hi = (-128 - za, 127 - za) if signed else (-za, 255 - za)
    v = np.where(v > lo, v, lo)
    v = np.where(v < hi, v, hi)
    want = np.rint(v).astype(np.int32) + za - (0 if signed else 128)
    assert (out["qa"].astype(np.int32) == want).all()
    assert out["qa"][0] == lo + za - (0 if signed else 128)      # NaN -> qmin
    shift = za - (0 if signed else 128)
    assert [want[5], want[6], want[7]] == [0 + shift, 2 + shift, -2 + shift]   # half to even: 0.5, 2.5, -1.5


ALL_BF16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(bfloat16).astype(np.float32)
# Power of two (every tie exact), 1/3, scales of calibrated Whisper activations, a large and a tiny one,
# 1.5 * 2^-100 (r near the 2^100 bound) and 1e-40 (subnormal: r = Inf, every lane divided)
QUANT_SCALES = [0.0625, 0.1, 1 / 3, 0.02, 0.0123457, 0.037, 3.1e-5, 7.0, 1e-30, 1.5 * 2.0 ** -100, 1e-40]


def ort_quantize(x, sa, za, signed):
    """ONNX Runtime's CPU QuantizeLinear (per tensor) on x: the integers the contract's step 1 defines."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    qt = TensorProto.INT8 if signed else TensorProto.UINT8
    g = helper.make_graph([helper.make_node("QuantizeLinear", ["a", "s", "z"], ["q"])], "q",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [x.size])],
                          [helper.make_tensor_value_info("q", qt, [x.size])],
                          [numpy_helper.from_array(np.array(sa, np.float32), "s"),
                           numpy_helper.from_array(np.array(za, np.int8 if signed else np.uint8), "z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"a": x})[0].astype(np.int32)


@pytest.mark.parametrize("sa", QUANT_SCALES)
def test_int8_quantize_vector_algorithm_is_ort_on_every_bf16(sa):
    """quantize.cc's vector algorithm (x * RN(1/sa) in three BF16 MACs, magic-add rounding, the
    near-half-integer and NaN / Inf lanes divided) gives ORT's QuantizeLinear integers on every BF16
    value (NaN, Inf, subnormals, both clamps, every exact half-quantum of the power-of-two scale),
    for uint8 and int8 activations, whatever the accumulator's FP32 rounding: to nearest even, toward
    zero, or flushing subnormals (the proof in quantize.cc's header covers each)."""
    ref = S.reference
    for za, signed in [(131, False), (0, True), (-3, True)]:
        c_a = 0 if signed else 128
        qmin, qmax = (-128, 127) if signed else (0, 255)
        want = ort_quantize(ALL_BF16, sa, za, signed) - c_a
        for acc in ("rne", "rz", "ftz"):
            got, n_div = ref.quantize_vector(ALL_BF16, sa, qmin - za, qmax - za, za - c_a, acc=acc)
            assert (got.astype(np.int32) == want).all(), (sa, za, acc)
            assert n_div >= 256          # at least the NaN / Inf patterns are divided
            if sa > 1e-39:
                assert n_div < 65536 // 100, (sa, n_div)   # the vector result stands almost everywhere


def test_int8_quantize_fixup_has_teeth():
    """Without the divided lanes the vector result is NOT ORT's: at sa = 7 with a rounding-to-nearest
    accumulator, and at several scales with a truncating one (so the tests above can fail)."""
    ref = S.reference
    want = ort_quantize(ALL_BF16, 7.0, 0, True)
    nofix, _ = ref.quantize_vector(ALL_BF16, 7.0, -128, 127, 0, acc="rne", fixup=False)
    assert (nofix.astype(np.int32) != want).sum() > 0
    bad = 0
    for sa in (0.0625, 0.1, 1 / 3):
        want = ort_quantize(ALL_BF16, sa, 0, True)
        nofix, _ = ref.quantize_vector(ALL_BF16, sa, -128, 127, 0, acc="rz", fixup=False)
        bad += int((nofix.astype(np.int32) != want).sum())
    assert bad > 100


def zp_kernel(M, K, N, residual):
    st = [stage("Q8Z", "A", "qparams", "qa"), stage("MM8Z", "qa", "B", "acc"),
          stage("EPI8Z", "acc", "colparams", *(["residual"] if residual else []), "C")]
    return ManifestKernel("matmul_int8", f"INT8 {M}x{K}x{N} weight-zp", st, M=M, K=K, N=N, dtype="int8", bias=True,
                          residual=residual, weight_zero_points=True)


@pytest.mark.parametrize("residual", [False, True])
def test_int8_weight_zero_points_run_on_the_npu_stages(residual):
    """Weights with per-channel zero points (docs/npu.md 2d): the quantize stage writes [qa'' | qa''],
    the INT8 GEMM on K' = 2K against B' = [qb; -zb] sums exactly, the epilogue's corr carries
    -K zb da: C equals the emulated MatMulInt8 of the QDQ graph with those zero points bit for bit
    (uint8 activations without a residual, int8 with one)."""
    from phoenix_npu_tools.npu_simulate import simulate_kernel
    k = zp_kernel(128, 64, 128, residual)
    designs = nm.designs_for(k)
    assert designs[0].params["dup"] == 2 and designs[0].buffers["qa"] == (128 * 128, 1)
    assert designs[1].params["K"] == 128 and designs[1].buffers["B"] == (128 * 128, 1)
    res = simulate_kernel(k, k.stages, KERNELS, seed=5)
    assert [r.error for r in res] == ["", "", ""] and len(res) == 3, res
    assert all(r.executed and r.bad == 0 and r.max_abs == 0 for r in res), res
    assert "[qb; -zb]" in res[1].against


def test_int8_weight_zero_points_comparison_has_teeth(monkeypatch):
    """B' without its -zb half (the GEMM summing qa'' qb only): C is not the emulated MatMulInt8."""
    from phoenix_npu_tools import npu_simulate
    real = npu_simulate.zero_point_weights
    monkeypatch.setattr(npu_simulate, "zero_point_weights",
                        lambda B, zb: np.concatenate([B, np.zeros_like(real(B, zb)[B.shape[0]:])]))
    res = npu_simulate.simulate_kernel(zp_kernel(128, 64, 128, False), zp_kernel(128, 64, 128, False).stages,
                                       KERNELS, seed=5)
    assert res[2].bad > 0


def test_int8_epilogue_column_parameters_lead_the_rows():
    """A wrong column-parameter row order (s_ab read as corr) is a wrong C: the comparison has teeth."""
    from phoenix_npu_tools.npu_simulate import int8_stage_params
    rng = np.random.default_rng(23)
    rows, K, cols = 40, 32, 64
    B = rng.integers(-128, 128, (K, cols)).astype(np.int8)
    sb = rng.uniform(1e-3, 2e-3, cols).astype(np.float32)
    bias = bf(rng.standard_normal(cols)).astype(np.float32)
    _, colparams = int8_stage_params(0.02, 128, False, B, sb, bias)
    acc = rng.integers(-20000, 20000, rows * cols).astype(np.int32)
    res = bf(rng.standard_normal(rows * cols))
    k = int8_kernel(rows, K, cols, bias=True, residual=True)
    d = nm.rows_design("e8", "epilogue_i8", rows, cols, bias=True, residual=True)
    st = stage("E8", "acc", "colparams", "residual", "C")
    out, _ = S.run_stage(load("epilogue_i8"), k, d, st, {"acc": acc, "colparams": colparams, "residual": res})
    cp = colparams.reshape(3, 4, cols)[:, 0]
    s = (acc.reshape(rows, cols).astype(np.int64) + cp[0]).astype(np.int32)
    v = s.astype(np.float32) * cp[1].view(np.float32) + cp[2].view(np.float32)
    want = bf(v + res.astype(np.float32).reshape(rows, cols))
    assert (out["C"].view(np.uint16) == want.reshape(-1).view(np.uint16)).all()
    swapped = colparams.reshape(3, -1)[[1, 0, 2]].reshape(-1).copy()
    bad, _ = S.run_stage(load("epilogue_i8"), k, d, st, {"acc": acc, "colparams": swapped, "residual": res})
    assert (bad["C"].view(np.uint16) != want.reshape(-1).view(np.uint16)).mean() > 0.5


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
B2 = ("common/aie/iron_common.py",   # whole_array_gemm, which the BF16 and INT8 GEMM designs share
      'matmul = Kernel(kernel_names[0], obj, [a_ty, b_ty, c_ty])\n    zero = Kernel(kernel_names[1], obj, [c_ty])',
      'matmul = Kernel(kernel_names[0], obj, [vec(m * k, in_dtype), vec(k * n, in_dtype), vec(m * n, out_dtype)])\n'
      '    zero = Kernel(kernel_names[1], obj, [vec(m * n, out_dtype)])')
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
    assert {r.stage for r in results} == names and len(names) == 23   # 7 BF16 kernels (11 stages), 4 INT8 (3 each)
    for r in results:
        assert r.executed, f"{r.stage}: {r.error}"
        assert r.bad == 0, f"{r.stage}: {r.bad} elements off {r.against} (max {r.max_ulp} ulp, {r.max_abs:.3g} abs)"
        if r.max_ulp >= 0:
            assert r.max_ulp <= 64 and r.max_abs < 0.1    # a data movement error is O(1)
        assert r.report["tasks"] > 0 and r.report["kernel_calls"] > 0
        if r.stage.startswith(("PHX_Q8_", "PHX_MM8_")):   # integers: exactly ORT's QuantizeLinear / the exact sum
            assert r.max_abs == 0, r
        if r.stage.startswith("PHX_EPI8_") and "gelu" not in r.stage:   # every step an exact IEEE operation
            assert r.max_ulp == 0 and r.max_abs == 0, r
    print("\n" + "\n".join(f"{r.stage:34s} max abs {r.max_abs:.3e} max ulp {r.max_ulp} vs {r.against}" for r in results))
    assert TOLERANCE_ULP == 2


@pytest.mark.timeout(900)
def test_plan_simulate_cli(tmp_path):
    import subprocess
    r = subprocess.run([sys.executable, "-m", "phoenix_npu.cli", "plan", "--model", "base", "--simulate"], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("PHX_")]
    assert len(lines) == 23 and all(" yes " in ln for ln in lines), r.stdout
    assert "iron_standin" in r.stdout and "23 of 23 stages executed" in r.stdout
    r = subprocess.run([sys.executable, "-m", "phoenix_npu.cli", "plan", "--simulate", "--kernels", str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                                      "PHOENIX_NPU_KERNELS": ""})
    assert r.returncode == 2 and "source tree" in r.stdout, r.stdout   # no designs found: said, not guessed
