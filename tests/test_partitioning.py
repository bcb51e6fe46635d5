"""What the provider must NOT claim stays on the CPU EP, with correct results; regions are
formed without cycles; special values propagate as on the CPU EP."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import phoenix_npu
from conftest import CPU, EP, assert_all_on_npu, cpu_run, make_model, npu_session, rel_l2, run_both


def _on_cpu(assign, *op_names):
    cpu = " ".join(assign.get(CPU, []))
    return all(name in cpu for name in op_names)


def test_softmax_on_another_axis_stays_on_cpu(rng):
    m = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [("x", [2, 5, 7])], [("y", [2, 5, 7])])
    x = rng.standard_normal((2, 5, 7)).astype(np.float32)
    got, want, assign, _ = run_both(m, {"x": x})
    assert not assign.get(EP)
    np.testing.assert_array_equal(got[0], want[0])


def test_int64_matmul_stays_on_cpu(rng):
    m = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])],
                   [("a", [3, 4], TensorProto.INT64), ("b", [4, 2], TensorProto.INT64)], [("y", [3, 2], TensorProto.INT64)])
    a = rng.integers(-5, 5, (3, 4)).astype(np.int64)
    b = rng.integers(-5, 5, (4, 2)).astype(np.int64)
    got, want, assign, _ = run_both(m, {"a": a, "b": b})
    assert not assign.get(EP)
    np.testing.assert_array_equal(got[0], a @ b)


def test_layernorm_over_two_axes_stays_on_cpu(rng):
    m = make_model([helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=1)],
                   [("x", [2, 4, 8])], [("y", [2, 4, 8])],
                   {"g": np.ones((4, 8), np.float32), "b": np.zeros((4, 8), np.float32)})
    x = rng.standard_normal((2, 4, 8)).astype(np.float32)
    got, want, assign, _ = run_both(m, {"x": x})
    assert not assign.get(EP)
    np.testing.assert_array_equal(got[0], want[0])


def test_symbolic_dims_are_claimed_and_specialised_per_shape(rng):
    """A dimension only known at run time (a decoder's sequence length) no longer keeps the nodes
    off the provider: a plan is built for each length (tests/test_dynamic_shapes.py has more)."""
    m = make_model([helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Softmax", ["mm"], ["y"], axis=-1)],
                   [("x", [1, "seq", 16])], [("y", [1, "seq", 8])], {"w": rng.standard_normal((16, 8)).astype(np.float32)})
    sess = npu_session(m)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    for seq in (1, 3, 17):
        x = rng.standard_normal((1, seq, 16)).astype(np.float32)
        assert rel_l2(sess.run(None, {"x": x})[0], cpu_run(m, {"x": x})[0]) < 1e-2


def test_symbolic_reduction_axes_are_specialised_too(rng):
    """Softmax over a symbolic axis and a MatMul reducing over it: every dim is concrete when a
    plan is built, so these run on the provider as well (self-attention over a sequence)."""
    m = make_model([helper.make_node("Softmax", ["x"], ["s"], axis=-1), helper.make_node("MatMul", ["s", "x"], ["y"])],
                   [("x", ["n", "n"])], [("y", ["n", "n"])])
    sess = npu_session(m)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    for size in (5, 1, 40):
        x = rng.standard_normal((size, size)).astype(np.float32)
        assert rel_l2(sess.run(None, {"x": x})[0], cpu_run(m, {"x": x})[0]) < 1e-2


def test_free_dimension_override_makes_it_static(rng):
    m = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", ["batch", 4, 16])], [("y", ["batch", 4, 8])],
                   {"w": rng.standard_normal((16, 8)).astype(np.float32)})
    sess = npu_session(m, free_dims={"batch": 1})
    assert_all_on_npu(phoenix_npu.assignment(sess))


def test_glue_only_graph_is_left_to_cpu(rng):
    """Reshape/Transpose/Add alone would only add BF16 rounding: not claimed."""
    m = make_model([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]), helper.make_node("Add", ["t", "t"], ["y"])],
                   [("x", [3, 5])], [("y", [5, 3])])
    x = rng.standard_normal((3, 5)).astype(np.float32)
    got, want, assign, _ = run_both(m, {"x": x})
    assert not assign.get(EP)
    np.testing.assert_array_equal(got[0], want[0])


def test_unsupported_node_splits_regions_without_a_cycle(rng):
    """MatMul -> Relu (CPU) -> MatMul, with a side path MatMul -> Add joining both: fusing the
    two MatMuls into one region would create a cycle through Relu, so they must be split,
    and the results must still be right."""
    n = helper.make_node
    m = make_model([n("MatMul", ["x", "w1"], ["a"]), n("Relu", ["a"], ["r"]), n("MatMul", ["r", "w2"], ["b"]),
                    n("Add", ["a", "b"], ["y"])],
                   [("x", [4, 8])], [("y", [4, 8])],
                   {"w1": rng.standard_normal((8, 8)).astype(np.float32), "w2": rng.standard_normal((8, 8)).astype(np.float32)})
    x = rng.standard_normal((4, 8)).astype(np.float32)
    got, want, assign, sess = run_both(m, {"x": x})
    assert _on_cpu(assign, "Relu")
    # ORT fuses the second MatMul and the Add into a Gemm with an activation C (a residual)
    assert phoenix_npu.assignment_summary(sess)[EP] == {"nodes": 2, "subgraphs": 2}
    assert rel_l2(got[0], want[0]) <= 1e-2


def test_nan_and_inf_propagate_like_cpu(rng):
    """A NaN or Inf in one row of the input affects the same outputs as on the CPU EP."""
    T, D = 6, 32
    n = helper.make_node
    m = make_model([n("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1), n("MatMul", ["ln", "w"], ["mm"]),
                    n("Softmax", ["mm"], ["y"], axis=-1)],
                   [("x", [T, D])], [("y", [T, 8])],
                   {"g": np.ones(D, np.float32), "b": np.zeros(D, np.float32),
                    "w": rng.standard_normal((D, 8)).astype(np.float32)})
    x = rng.standard_normal((T, D)).astype(np.float32)
    x[1, 3] = np.nan
    x[3, 0] = np.inf
    x[4, 5] = -np.inf
    got, want, assign, _ = run_both(m, {"x": x})
    assert_all_on_npu(assign)
    np.testing.assert_array_equal(np.isnan(got[0]), np.isnan(want[0]))
    finite = np.isfinite(want[0])
    assert rel_l2(got[0][finite], want[0][finite]) <= 1e-2


@pytest.mark.parametrize("op", ["MatMul", "Softmax"])
def test_special_values_elementwise(rng, op):
    """Inf in a MatMul input gives Inf/NaN where the CPU EP does; Softmax of a row holding
    +Inf is NaN on both; a row of -Inf except one finite value is one-hot on both."""
    if op == "MatMul":
        m = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", [4, 3]), ("b", [3, 2])], [("y", [4, 2])])
        a = rng.standard_normal((4, 3)).astype(np.float32)
        b = np.abs(rng.standard_normal((3, 2))).astype(np.float32) + 0.5
        a[0, 0] = np.inf
        a[1, 1] = np.nan
        feeds = {"a": a, "b": b}
    else:
        m = make_model([helper.make_node("Softmax", ["a"], ["y"], axis=-1)], [("a", [3, 4])], [("y", [3, 4])])
        a = rng.standard_normal((3, 4)).astype(np.float32)
        a[0, 2] = np.inf
        a[1] = [-np.inf, -np.inf, 0.5, -np.inf]
        feeds = {"a": a}
    got, want, assign, _ = run_both(m, feeds)
    assert_all_on_npu(assign)
    np.testing.assert_array_equal(np.isnan(got[0]), np.isnan(want[0]))
    np.testing.assert_array_equal(np.isposinf(got[0]), np.isposinf(want[0]))
    finite = np.isfinite(want[0])
    np.testing.assert_allclose(got[0][finite], want[0][finite], rtol=2e-2, atol=1e-2)


@pytest.mark.parametrize("form", ["erf", "tanh"])
def test_gelu_pattern_with_a_dynamic_dim_runs_at_every_length(rng, form):
    """Found with Optimum's decoder: a GELU pattern whose input has a dynamic sequence length
    was once claimed and then failed to compile. With shape-specialised plans it is claimed and
    right at every length."""
    from test_ops import _erf_pattern, _tanh_pattern
    nodes, consts = _erf_pattern("torch") if form == "erf" else _tanh_pattern("mul")
    m = make_model(nodes, [("x", [1, "seq", 8])], [("y", [1, "seq", 8])], consts)
    sess = npu_session(m)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    for seq in (5, 1, 12):
        x = rng.standard_normal((1, seq, 8)).astype(np.float32)
        assert rel_l2(sess.run(None, {"x": x})[0], cpu_run(m, {"x": x})[0]) < 1e-2
