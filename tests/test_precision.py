"""precision=bf16x3: every tensor between kernels a BF16 pair (hi + lo), every matmul
hi*hi + hi*lo + lo*hi on BF16 products with FP32 accumulation (kernels/README.md, "Precision").
Each claimed op and block runs at both precisions against the CPU EP in FP32: BF16x3 must be
within 1e-4 relative L2 (16 significant bits) AND far closer than BF16 on the same graph, so a
path that quietly kept BF16 somewhere fails."""
from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper

import phoenix_npu
from conftest import EP, assert_all_on_npu, make_model, rel_l2, run_both
from test_ops import _attention_block, _erf_pattern

SPLIT_BOUND = 1e-4
WORST: dict[str, tuple[float, float]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    yield
    print("\nrelative L2 error vs CPU EP FP32, precision bf16 -> bf16x3 (largest per graph):")
    for k, (b, s) in sorted(WORST.items()):
        print(f"  {k:24s} {b:.2e} -> {s:.2e}")


def _graphs(rng):
    """name -> (model, feeds). Whisper's ops and blocks, at small but non-trivial sizes."""
    n = helper.make_node
    r = lambda *s: (rng.standard_normal(s) / math.sqrt(s[0])).astype(np.float32)
    x = lambda *s: rng.standard_normal(s).astype(np.float32)
    g = {}
    g["LayerNormalization"] = (make_model(
        [n("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)], [("x", [1, 37, 96])], [("y", [1, 37, 96])],
        {"g": x(96), "b": x(96)}), {"x": x(1, 37, 96) * 3 + 1})
    g["MatMul (weight)"] = (make_model(
        [n("MatMul", ["x", "w"], ["y"])], [("x", [1, 45, 129])], [("y", [1, 45, 67])], {"w": r(129, 67)}),
        {"x": x(1, 45, 129)})
    g["MatMul (K^T view)"] = (make_model(
        [n("Transpose", ["b"], ["bt"], perm=[0, 1, 3, 2]), n("MatMul", ["a", "bt"], ["y"])],
        [("a", [1, 3, 40, 33]), ("b", [1, 3, 50, 33])], [("y", [1, 3, 40, 50])]),
        {"a": x(1, 3, 40, 33), "b": x(1, 3, 50, 33)})
    g["Gemm"] = (make_model(
        [n("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=0.5, beta=2.0)], [("x", [37, 48])], [("y", [37, 20])],
        {"w": x(20, 48), "c": x(20)}), {"x": x(37, 48)})
    g["Softmax"] = (make_model([n("Softmax", ["x"], ["y"], axis=-1)], [("x", [2, 5, 300])], [("y", [2, 5, 300])]),
                    {"x": x(2, 5, 300) * 4})
    erf, consts = _erf_pattern("torch")
    g["GELU (erf pattern)"] = (make_model(erf, [("x", [4, 333])], [("y", [4, 333])], consts), {"x": x(4, 333) * 3})
    g["Add (broadcast)"] = (make_model(
        [n("MatMul", ["x", "w"], ["mm"]), n("Add", ["mm", "o"], ["y"])], [("x", [1, 40, 24]), ("o", [1, 40, 1])],
        [("y", [1, 40, 32])], {"w": x(24, 32)}), {"x": x(1, 40, 24), "o": x(1, 40, 1)})
    g["Div (scalar first)"] = (make_model(
        [n("MatMul", ["x", "w"], ["mm"]), n("Div", ["s", "mm"], ["y"])], [("x", [8, 16])], [("y", [8, 4])],
        {"w": rng.uniform(0.5, 1.5, (16, 4)).astype(np.float32), "s": np.array(3.0, np.float32)}),
        {"x": rng.uniform(0.5, 1.5, (8, 16)).astype(np.float32)})
    g["Conv1d"] = (make_model(
        [n("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 1])], [("x", [1, 20, 61])],
        [("y", [1, 24, 31])], {"w": r(24, 20, 3) / 3, "b": x(24)}), {"x": x(1, 20, 61)})
    g["attention block"] = (_attention_block(50, 64, 4, rng), {"x": x(1, 50, 64)})
    return g


@pytest.fixture(scope="module")
def graphs():
    return _graphs(np.random.default_rng(77))


@pytest.mark.parametrize("name", ["LayerNormalization", "MatMul (weight)", "MatMul (K^T view)", "Gemm", "Softmax",
                                  "GELU (erf pattern)", "Add (broadcast)", "Div (scalar first)", "Conv1d",
                                  "attention block"])
def test_bf16x3_is_fp32_grade(graphs, name):
    model, feeds = graphs[name]
    got_b, want, assign_b, _ = run_both(model, feeds)
    got_s, want_s, assign_s, sess = run_both(model, feeds, precision="bf16x3")
    assert_all_on_npu(assign_b)
    assert_all_on_npu(assign_s)
    err_b, err_s = rel_l2(got_b[0], want[0]), rel_l2(got_s[0], want_s[0])
    WORST[name] = (max(WORST.get(name, (0, 0))[0], err_b), max(WORST.get(name, (0, 0))[1], err_s))
    assert err_s <= SPLIT_BOUND, f"{name}: bf16x3 error {err_s:.2e}"
    assert err_s * 20 <= err_b, f"{name}: bf16x3 {err_s:.2e} is not far below bf16 {err_b:.2e}"


@pytest.mark.parametrize("special", [np.inf, -np.inf, np.nan])
def test_bf16x3_inf_and_nan_propagate_as_on_cpu(special):
    """lo = 0 for Inf / NaN must not turn Inf * (exact weight, lo 0) into NaN: the cross terms
    drop non-finite values (matmul.h)."""
    rng = np.random.default_rng(3)
    n = helper.make_node
    m = make_model([n("MatMul", ["x", "w"], ["h"]), n("Add", ["h", "x2"], ["y"])], [("x", [6, 8]), ("x2", [6, 5])],
                   [("y", [6, 5])], {"w": np.round(rng.standard_normal((8, 5)) * 4).astype(np.float32)})
    x = rng.standard_normal((6, 8)).astype(np.float32)
    x[1, 2] = special
    x[4, :] = special
    x2 = rng.standard_normal((6, 5)).astype(np.float32)
    x2[2, 3] = special
    got, want, assign, _ = run_both(m, {"x": x, "x2": x2}, precision="bf16x3")
    assert_all_on_npu(assign)
    np.testing.assert_array_equal(np.isnan(got[0]), np.isnan(want[0]))
    np.testing.assert_array_equal(np.isposinf(got[0]), np.isposinf(want[0]))
    np.testing.assert_array_equal(np.isneginf(got[0]), np.isneginf(want[0]))
    fin = np.isfinite(want[0])
    assert rel_l2(got[0][fin], want[0][fin]) <= SPLIT_BOUND


@pytest.mark.parametrize("fused", [1, 0])
def test_bf16x3_attention_fused_and_unfused(graphs, fused):
    """At bf16x3 the attention block is one region either way: one fused Attention call (P a
    hi + lo pair, never written out) or MatMul + Softmax + MatMul; both FP32-grade, and the plan
    says which precision it has."""
    model, feeds = graphs["attention block"]
    sess = phoenix_npu.make_session(model, device="emulator", precision="bf16x3", fuse_attention=fused)
    got = sess.run(None, feeds)[0]
    assert phoenix_npu.assignment_summary(sess)[EP]["subgraphs"] == 1
    region = phoenix_npu.counters()["regions"][-1]
    kinds = {k: v["launches"] for k, v in region["kernels"].items()}
    assert kinds == ({"LayerNorm": 1, "MatMul": 4, "Attention": 1} if fused else {"LayerNorm": 1, "MatMul": 6, "Softmax": 1})
    from conftest import cpu_run
    assert rel_l2(got, cpu_run(model, feeds)[0]) <= SPLIT_BOUND
    assert "bf16x3" in region["summary"]
    # activations and weights are 4 bytes per element: twice the BF16 plan's bytes in
    assert region["bytes_in"] == feeds["x"].size * 4


def test_bad_precision_is_a_clear_error():
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [("x", [2, 8])], [("y", [2, 8])])
    with pytest.raises(Exception, match="precision=fp8 is not valid: use bf16 or bf16x3"):
        phoenix_npu.make_session(model, device="emulator", precision="fp8")


def test_bf16x3_on_the_npu_is_refused_with_a_reason():
    """The AIE kernels are BF16: asking for bf16x3 on the NPU says so (it does not run the plan
    on the host behind the user's back)."""
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [("x", [2, 8])], [("y", [2, 8])])
    with pytest.raises(Exception, match="precision=bf16x3 has no NPU kernels"):
        phoenix_npu.make_session(model, device="npu", precision="bf16x3")
