"""Symbolic dims (issue 13): nodes whose batch or sequence dims are only known at run time are
claimed; each new set of input shapes gets its own plan, built on first use and kept in a small
least-recently-used cache; weights are uploaded once per region."""
from __future__ import annotations

import gc
import subprocess
import sys
import threading

import numpy as np
import pytest
from onnx import TensorProto, helper

import phoenix_npu
from conftest import CPU, EP, assert_all_on_npu, cpu_run, make_model, npu_session, rel_l2

n = helper.make_node


def _region(sess_counters_before=None):
    return phoenix_npu.counters()["regions"][-1]


@pytest.fixture(scope="module")
def block_model():
    """LayerNorm -> attention (heads via Reshape 0/-1 + Transpose) -> out projection + residual,
    batch and sequence symbolic."""
    rng = np.random.default_rng(5)
    D, H = 32, 4
    w = lambda *s: (rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32)
    nodes = [
        n("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1),
        n("MatMul", ["ln", "wq"], ["q0"]), n("Add", ["q0", "bq"], ["q"]),
        n("MatMul", ["ln", "wk"], ["k"]), n("MatMul", ["ln", "wv"], ["v"]),
        n("Reshape", ["q", "heads"], ["qh"]), n("Transpose", ["qh"], ["qt"], perm=[0, 2, 1, 3]),
        n("Reshape", ["k", "heads"], ["kh"]), n("Transpose", ["kh"], ["kt"], perm=[0, 2, 3, 1]),
        n("Reshape", ["v", "heads"], ["vh"]), n("Transpose", ["vh"], ["vt"], perm=[0, 2, 1, 3]),
        n("MatMul", ["qt", "kt"], ["s"]), n("Mul", ["s", "scale"], ["ss"]), n("Softmax", ["ss"], ["p"], axis=-1),
        n("MatMul", ["p", "vt"], ["o"]), n("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
        n("Reshape", ["ot", "merge"], ["om"]), n("MatMul", ["om", "wo"], ["po"]), n("Add", ["po", "x"], ["y"]),
    ]
    inits = {"g": (1 + rng.standard_normal(D) / 10).astype(np.float32), "b": (rng.standard_normal(D) / 10).astype(np.float32),
             "wq": w(D, D), "wk": w(D, D), "wv": w(D, D), "wo": w(D, D), "bq": (rng.standard_normal(D) / 10).astype(np.float32),
             "heads": np.array([0, -1, H, D // H], np.int64), "merge": np.array([0, 0, D], np.int64),
             "scale": np.array((D // H) ** -0.5, np.float32)}
    return make_model(nodes, [("x", ["batch", "seq", D])], [("y", ["batch", "seq", D])], inits)


def test_symbolic_batch_and_sequence_are_claimed_in_one_region(block_model):
    sess = npu_session(block_model)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    assert phoenix_npu.assignment_summary(sess)[EP]["subgraphs"] == 1


@pytest.mark.parametrize("precision", ["bf16", "bf16x3"])
def test_every_shape_matches_the_cpu_ep(block_model, precision):
    sess = npu_session(block_model, precision=precision)
    rng = np.random.default_rng(0)
    for batch, seq in [(1, 7), (3, 7), (2, 1), (4, 33), (7, 5), (1, 7)]:
        x = rng.standard_normal((batch, seq, 32)).astype(np.float32)
        got = sess.run(None, {"x": x})[0]
        want = cpu_run(block_model, {"x": x})[0]
        assert got.shape == want.shape
        assert rel_l2(got, want) < (1e-2 if precision == "bf16" else 1e-4), (batch, seq)


def test_plans_are_built_once_per_shape_and_weights_once(block_model):
    sess = npu_session(block_model)
    rng = np.random.default_rng(1)
    xs = {s: rng.standard_normal((2, s, 32)).astype(np.float32) for s in (4, 9)}
    sess.run(None, {"x": xs[4]})
    first = _region()
    assert first["plans_built"] == 1 and first["plans"] == 1
    weights = first["weight_bytes_uploaded"]
    sess.run(None, {"x": xs[9]})
    sess.run(None, {"x": xs[4]})
    sess.run(None, {"x": xs[9]})
    r = _region()
    assert r["plans_built"] == 2 and r["plan_cache_hits"] == 2 and r["plans"] == 2
    # a new plan may add small FP32 parameter vectors only if they differ: here they do not
    assert r["weight_bytes_uploaded"] == weights
    allocations = r["device_allocations"]
    for _ in range(5):
        sess.run(None, {"x": xs[4]})
    r2 = _region()
    assert r2["device_allocations"] == allocations and r2["weight_bytes_uploaded"] == weights
    assert r2["transfers_in"] - r["transfers_in"] == 5 and r2["transfers_out"] - r["transfers_out"] == 5


def test_cache_evicts_least_recently_used_and_memory_stays_flat(block_model):
    sess = npu_session(block_model, max_plans=3)
    rng = np.random.default_rng(2)

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    for cycle in range(6):
        for seq in range(1, 9):  # 8 shapes through a cache of 3
            x = rng.standard_normal((1, seq, 32)).astype(np.float32)
            sess.run(None, {"x": x})
        if cycle == 1:
            gc.collect()
            before = rss()
    gc.collect()
    growth = rss() - before
    r = _region()
    assert r["plans"] <= 3
    assert r["plan_evictions"] == r["plans_built"] - r["plans"]
    assert r["plans_built"] == 6 * 8
    assert growth < 4 * 2**20, f"RSS grew {growth / 2**20:.1f} MiB while cycling shapes"


def test_threads_running_different_shapes_on_one_session(block_model):
    sess = npu_session(block_model, max_plans=4)
    rng = np.random.default_rng(3)
    shapes = [(1, 3), (2, 5), (1, 8), (3, 2), (1, 3), (2, 5), (4, 1), (1, 9)]  # 7 distinct, cache of 4
    xs = [rng.standard_normal((b, s, 32)).astype(np.float32) for b, s in shapes]
    expected = [sess.run(None, {"x": x})[0] for x in xs]
    errors = []

    def worker(i):
        try:
            for _ in range(15):
                y = sess.run(None, {"x": xs[i]})[0]
                if not np.array_equal(y, expected[i]):
                    errors.append(f"thread {i}: result differs")
                    return
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a run hung"
    assert not errors, errors


def test_conv_with_a_symbolic_length(rng):
    m = make_model([n("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3], pads=[1, 1], strides=[2]),
                    n("Gelu", ["c"], ["y"])],
                   [("x", ["batch", 8, "frames"])], [("y", ["batch", 16, "positions"])],
                   {"w": (rng.standard_normal((16, 8, 3)) / 5).astype(np.float32),
                    "b": rng.standard_normal(16).astype(np.float32)}, opset=20)
    sess = npu_session(m)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    for batch, frames in [(1, 20), (3, 7), (2, 64)]:
        x = rng.standard_normal((batch, 8, frames)).astype(np.float32)
        got, want = sess.run(None, {"x": x})[0], cpu_run(m, {"x": x})[0]
        assert got.shape == want.shape and rel_l2(got, want) < 1e-2


def test_gemm_with_an_activation_c_that_broadcasts_at_run_time(rng):
    """Gemm C an activation [1, N] for a [batch, N] output (ORT's MatMulAddFusion writes one from
    MatMul + Add): a full-size residual only when batch is 1. It was claimed (the dims may be
    equal) and every run with batch > 1 failed ("not a full-size residual", DAG fuzz seed 1310);
    the CPU EP broadcasts it. Now it stays with the CPU EP unless C surely has the output's shape."""
    m = make_model([n("Gemm", ["x", "w", "c"], ["g"]), n("Softmax", ["g"], ["y"], axis=-1)],
                   [("x", ["batch", 8]), ("c", [1, 16])], [("y", ["batch", 16])],
                   {"w": rng.standard_normal((8, 16)).astype(np.float32)})
    sess = npu_session(m)
    for batch in (1, 4):
        feeds = {"x": rng.standard_normal((batch, 8)).astype(np.float32),
                 "c": rng.standard_normal((1, 16)).astype(np.float32)}
        assert rel_l2(sess.run(None, feeds)[0], cpu_run(m, feeds)[0]) < 1e-2
    full = make_model([n("Gemm", ["x", "w", "c"], ["g"]), n("Softmax", ["g"], ["y"], axis=-1)],
                      [("x", ["batch", 8]), ("c", ["batch", 16])], [("y", ["batch", 16])],
                      {"w": rng.standard_normal((8, 16)).astype(np.float32)})
    sess = npu_session(full)  # the same symbol: surely full-size, still claimed
    assert "Gemm" in " ".join(phoenix_npu.assignment(sess).get(EP, []))
    feeds = {"x": rng.standard_normal((3, 8)).astype(np.float32), "c": rng.standard_normal((3, 16)).astype(np.float32)}
    assert rel_l2(sess.run(None, feeds)[0], cpu_run(full, feeds)[0]) < 1e-2


def test_reshape_that_does_not_fit_the_run_shape_is_a_clear_error(rng):
    """[batch, seq, 8] -> [0, -1, 3]: claimed (the counts can match), but a run whose element
    count is not a multiple of 3 must fail as the CPU EP does, not return numbers."""
    m = make_model([n("MatMul", ["x", "w"], ["m"]), n("Reshape", ["m", "t"], ["r"]), n("Softmax", ["r"], ["y"], axis=-1)],
                   [("x", ["batch", "seq", 8])], [("y", ["batch", "len", 3])],
                   {"w": rng.standard_normal((8, 9)).astype(np.float32), "t": np.array([0, -1, 3], np.int64)})
    sess = npu_session(m)
    x = rng.standard_normal((2, 4, 8)).astype(np.float32)
    assert rel_l2(sess.run(None, {"x": x})[0], cpu_run(m, {"x": x})[0]) < 1e-2
    m2 = make_model([n("MatMul", ["x", "w"], ["m"]), n("Reshape", ["m", "t"], ["r"]), n("Softmax", ["r"], ["y"], axis=-1)],
                    [("x", ["batch", "seq", 8])], [("y", ["batch", "len", 4])],
                    {"w": rng.standard_normal((8, 6)).astype(np.float32), "t": np.array([0, -1, 4], np.int64)})
    sess2 = npu_session(m2)
    x = rng.standard_normal((1, 3, 8)).astype(np.float32)  # 18 elements per batch: not a multiple of 4
    with pytest.raises(Exception, match="(?i)reshape"):
        sess2.run(None, {"x": x})
    with pytest.raises(Exception, match="(?i)reshape"):
        cpu_run(m2, {"x": x})


def test_a_session_that_gets_fewer_nodes_than_it_supports_says_why(tmp_path, rng):
    """One WARNING names how many nodes were taken and the first reason per op type."""
    m = make_model([n("Softmax", ["x"], ["s"], axis=0), n("MatMul", ["s", "w"], ["m"]), n("Softmax", ["m"], ["y"], axis=0)],
                   [("x", ["n", 4])], [("y", ["n", 4])], {"w": np.eye(4, dtype=np.float32)})
    path = tmp_path / "m.onnx"
    path.write_bytes(m)
    code = ("import onnxruntime as ort, phoenix_npu\n"
            f"ort.InferenceSession({str(path)!r}, providers=[('{EP}', {{'device': 'emulator'}}), 'CPUExecutionProvider'])\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "PhoenixNPU took 1 of 3" in res.stderr
    assert "Softmax x2: Softmax over an axis other than the last" in res.stderr


def test_capability_report_lists_every_node_with_its_reason(block_model, rng):
    m = make_model([n("MatMul", ["x", "w"], ["m"]), n("Relu", ["m"], ["y"])], [("x", [2, 4])], [("y", [2, 4])],
                   {"w": rng.standard_normal((4, 4)).astype(np.float32)})
    npu_session(m)
    report = phoenix_npu.capability_reports()[-1]
    ops = {node["op"]: node for node in report["per_node"]}
    assert ops["MatMul"]["region"] == 0 and ops["MatMul"]["reason"] == ""
    assert ops["Relu"]["region"] == -1 and "not supported" in ops["Relu"]["reason"]
    assert report["claimed"] == 1 and report["nodes"] == 2


def _shape_chain_model(rng, shape_also_output=False):
    """Optimum's way of following a symbolic batch: Shape -> Gather -> Unsqueeze -> Concat gives
    the Reshape target [batch, -1, heads, head_dim]."""
    i64 = lambda v: np.array(v, np.int64)
    nodes = [n("MatMul", ["x", "w"], ["q"]),
             n("Shape", ["x"], ["shp"]), n("Gather", ["shp", "zero"], ["b"], axis=0),
             n("Unsqueeze", ["b", "axes0"], ["b1"]), n("Concat", ["b1", "rest"], ["target"], axis=0),
             n("Reshape", ["q", "target"], ["qh"]), n("Transpose", ["qh"], ["qt"], perm=[0, 2, 1, 3]),
             n("Softmax", ["qt"], ["y"], axis=-1)]
    outputs = [("y", ["batch", 4, "seq", 8])]
    if shape_also_output:
        outputs.append(("target", [4], 7))  # TensorProto.INT64
    return make_model(nodes, [("x", ["batch", "seq", 32])], outputs,
                      {"w": (rng.standard_normal((32, 32)) / 6).astype(np.float32), "zero": i64(0),
                       "axes0": i64([0]), "rest": i64([-1, 4, 8])})


def _unoptimised():
    """ORT's own ReshapeFusion turns the chain into a constant [0, -1, 4, 8]; without graph
    optimisation (or where it does not apply) the provider evaluates the chain itself."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return so


@pytest.mark.parametrize("optimised", [True, False])
def test_shape_arithmetic_is_evaluated_by_the_provider(rng, optimised):
    m = _shape_chain_model(rng)
    sess = npu_session(m) if optimised else npu_session(m, sess_options=_unoptimised())
    assign = phoenix_npu.assignment(sess)
    assert_all_on_npu(assign)
    if not optimised:
        assert {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"} <= set(assign[EP])
    for batch, seq in [(1, 5), (3, 2), (2, 11)]:
        x = rng.standard_normal((batch, seq, 32)).astype(np.float32)
        got, want = sess.run(None, {"x": x})[0], cpu_run(m, {"x": x})[0]
        assert got.shape == want.shape == (batch, 4, seq, 8)
        assert rel_l2(got, want) < 1e-2


def test_shape_value_used_outside_stays_on_cpu(rng):
    """An integer result the graph outputs cannot come from the provider (its regions give float
    tensors only): that node stays on the CPU EP, with the reason, and results are still right."""
    m = _shape_chain_model(rng, shape_also_output=True)
    sess = npu_session(m, sess_options=_unoptimised())
    assign = phoenix_npu.assignment(sess)
    assert "Concat" in assign.get(CPU, []), assign
    reasons = {node["op"]: node["reason"] for node in phoenix_npu.capability_reports()[-1]["per_node"]}
    assert "used outside" in reasons["Concat"]
    x = rng.standard_normal((2, 3, 32)).astype(np.float32)
    got, want = sess.run(None, {"x": x}), cpu_run(m, {"x": x})
    assert rel_l2(got[0], want[0]) < 1e-2
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("case", ["matmul_batch", "layernorm_rows", "attention_keys", "matmul_k"])
def test_a_symbolic_dim_fed_zero_gives_what_the_cpu_ep_gives(case, rng):
    """Found by the DAG fuzzer (F6): an empty run must give the CPU EP's (empty or zero) result."""
    if case == "matmul_batch":
        m = make_model([n("MatMul", ["x", "w"], ["y"])], [("x", ["batch", 7, 8])], [("y", ["batch", 7, 4])],
                       {"w": rng.standard_normal((8, 4)).astype(np.float32)})
        feeds = {"x": np.zeros((0, 7, 8), np.float32)}
    elif case == "layernorm_rows":
        m = make_model([n("LayerNormalization", ["x", "g"], ["y"], axis=-1)], [("x", ["seq", 8])], [("y", ["seq", 8])],
                       {"g": np.ones(8, np.float32)})
        feeds = {"x": np.zeros((0, 8), np.float32)}
    elif case == "attention_keys":  # zero keys: softmax over nothing, P V = 0
        m = make_model([n("Transpose", ["k"], ["kt"], perm=[1, 0]), n("MatMul", ["q", "kt"], ["s"]),
                        n("Softmax", ["s"], ["p"], axis=-1), n("MatMul", ["p", "v"], ["y"])],
                       [("q", [3, 4]), ("k", ["keys", 4]), ("v", ["keys", 5])], [("y", [3, 5])])
        feeds = {"q": rng.standard_normal((3, 4)).astype(np.float32), "k": np.zeros((0, 4), np.float32),
                 "v": np.zeros((0, 5), np.float32)}
    else:  # reduction over zero elements: zeros plus the bias
        m = make_model([n("MatMul", ["a", "b"], ["mm"]), n("Add", ["mm", "c"], ["y"])],
                       [("a", [3, "k"]), ("b", ["k", 4])], [("y", [3, 4])], {"c": np.arange(4, dtype=np.float32)})
        feeds = {"a": np.zeros((3, 0), np.float32), "b": np.zeros((0, 4), np.float32)}
    sess = npu_session(m)
    assert phoenix_npu.assignment(sess).get(EP)
    got, want = sess.run(None, feeds), cpu_run(m, feeds)
    for g_, w_ in zip(got, want):
        assert g_.shape == w_.shape
        np.testing.assert_array_equal(np.isnan(g_), np.isnan(w_))
        np.testing.assert_allclose(g_, w_, atol=1e-6)


def _token_decoder_model(rng):
    """A decoder step in miniature: token ids pick rows of an embedding table, then a MatMul."""
    return make_model([n("Gather", ["table", "ids"], ["h"], axis=0), n("MatMul", ["h", "w"], ["m"]),
                       n("Softmax", ["m"], ["y"], axis=-1)],
                      [("ids", ["batch", "seq"], 7)], [("y", ["batch", "seq", 8])],
                      {"table": rng.standard_normal((50, 8)).astype(np.float32),
                       "w": (rng.standard_normal((8, 8)) / 3).astype(np.float32)})


def test_token_decoder_graphs_are_left_to_the_cpu_ep_unless_asked(rng):
    """Per-token decoder steps were measured slower on the provider (docs/benchmarks.md, "The decoder"): a
    graph that looks token ids up is declined with its reason; claim_decoders=1 takes it."""
    m = _token_decoder_model(rng)
    ids = rng.integers(0, 50, (2, 3)).astype(np.int64)
    declined = npu_session(m)
    assert EP not in phoenix_npu.assignment(declined)
    report = phoenix_npu.capability_reports()[-1]
    assert report["claimed"] == 0
    assert all("token decoder" in node["reason"] and "claim_decoders=1" in node["reason"] for node in report["per_node"])
    taken = npu_session(m, claim_decoders="1")
    assert {"MatMul", "Softmax"} <= set(phoenix_npu.assignment(taken)[EP])
    assert rel_l2(taken.run(None, {"ids": ids})[0], cpu_run(m, {"ids": ids})[0]) < 1e-2
    with pytest.raises(Exception, match="claim_decoders"):
        npu_session(m, claim_decoders="yes")


# ---- shape arithmetic in every integer width, as the CPU EP computes it ---------------------------

_INT_TYPES = {"int8": (TensorProto.INT8, 8), "uint8": (TensorProto.UINT8, 8), "int16": (TensorProto.INT16, 16),
              "uint16": (TensorProto.UINT16, 16), "int32": (TensorProto.INT32, 32), "uint32": (TensorProto.UINT32, 32)}


def _reshape_by(rng, chain, inits, first):
    """x [batch, 5, 32] -> MatMul -> Reshape to [first, -1, 4, 8] -> Softmax, where `chain` computes
    `first` (an int64 [1]) from the batch (Shape -> Gather -> "b", int64 scalar)."""
    nodes = ([n("MatMul", ["x", "w"], ["q"]), n("Shape", ["x"], ["shp"]), n("Gather", ["shp", "zero"], ["b"], axis=0)] +
             chain + [n("Unsqueeze", [first, "axes0"], ["t0"]), n("Concat", ["t0", "rest"], ["target"], axis=0),
                      n("Reshape", ["q", "target"], ["qh"]), n("Softmax", ["qh"], ["y"], axis=-1)])
    inits = dict(inits, w=(rng.standard_normal((32, 32)) / 6).astype(np.float32), zero=np.array(0, np.int64),
                 axes0=np.array([0], np.int64), rest=np.array([-1, 4, 8], np.int64))
    return make_model(nodes, [("x", ["batch", 5, 32])], [("y", ["o0", "o1", "o2", "o3"])], inits)


def _wrap_cases():
    """(id, chain, initializers, output of the chain): each gives 2 in the CPU EP and 10 without the
    type's wrap-around, both valid Reshape dims: (2, 5, 4, 8) against (10, 1, 4, 8)."""
    cases = []
    for name, (t, bits) in _INT_TYPES.items():
        m = 1 << bits  # b * m * 21/32 wraps to m * 5/16; / (m/8) gives 2, unwrapped 10
        cases.append((f"cast-{name}", [n("Mul", ["b", "k"], ["v"]), n("Cast", ["v"], ["vt"], to=t),
                                      n("Cast", ["vt"], ["v64"], to=TensorProto.INT64), n("Div", ["v64", "d"], ["f"])],
                      {"k": np.array(m * 21 // 32, np.int64), "d": np.array(m // 8, np.int64)}))
    # int32 arithmetic wraps: 2 * 163840 * 16384 = 5 * 2^30 -> 2^30 in int32; / 2^29 gives 2, unwrapped 10
    cases.append(("int32-mul-wraps", [n("Cast", ["b"], ["b32"], to=TensorProto.INT32), n("Mul", ["b32", "k"], ["v"]),
                                      n("Mul", ["v", "k2"], ["v2"]), n("Div", ["v2", "d"], ["f32"]),
                                      n("Cast", ["f32"], ["f"], to=TensorProto.INT64)],
                  {"k": np.array(163840, np.int32), "k2": np.array(16384, np.int32), "d": np.array(1 << 29, np.int32)}))
    return cases


@pytest.mark.parametrize("chain,inits", [c[1:] for c in _wrap_cases()], ids=[c[0] for c in _wrap_cases()])
def test_shape_arithmetic_wraps_as_the_cpu_ep(rng, chain, inits):
    """Narrowing Casts wrap (static_cast, as the CPU EP's Cast) and int32 arithmetic overflows:
    the provider evaluates the chain in its type, so the Reshape gives the CPU EP's shape."""
    m = _reshape_by(rng, chain, inits, "f")
    sess = npu_session(m, sess_options=_unoptimised())
    assert_all_on_npu(phoenix_npu.assignment(sess))
    x = rng.standard_normal((2, 5, 32)).astype(np.float32)
    got, want = sess.run(None, {"x": x})[0], cpu_run(m, {"x": x})[0]
    assert got.shape == want.shape == (2, 5, 4, 8)
    assert rel_l2(got, want) < 1e-2


@pytest.mark.parametrize("case", ["int64-beyond-2^40", "uint64-of-negative", "negative-beyond-2^40", "div-by-zero"])
def test_shape_values_the_provider_cannot_hold_are_left_to_the_cpu_ep(rng, case):
    """Values at or beyond 2^40 (below -2^40 a shape value would read as a symbol) are not
    evaluated: the nodes that need them stay on the CPU EP, and the result is the CPU EP's."""
    if case == "int64-beyond-2^40":  # 2^41 * b / 2^41 = b: fine in int64, beyond what the provider holds
        chain, inits = [n("Mul", ["b", "k"], ["v"]), n("Div", ["v", "k"], ["f"])], {"k": np.array(1 << 41, np.int64)}
    elif case == "uint64-of-negative":  # (b - 3) as uint64 is 2^64 - 1, back in int64 -1 again, + 3 = b
        chain = [n("Sub", ["b", "three"], ["v"]), n("Cast", ["v"], ["u"], to=TensorProto.UINT64),
                 n("Cast", ["u"], ["s"], to=TensorProto.INT64), n("Add", ["s", "three"], ["f"])]
        inits = {"three": np.array(3, np.int64)}
    elif case == "negative-beyond-2^40":  # -2^41 / -2^40 = 2 (a constant that would read as a symbol)
        chain, inits = [n("Div", ["k", "k2"], ["f"])], {"k": np.array(-(1 << 41), np.int64), "k2": np.array(-(1 << 40), np.int64)}
    else:  # Div by zero traps in the CPU EP: never claimed (the CPU EP's own behaviour applies)
        chain, inits = [n("Mul", ["b", "z"], ["v"]), n("Div", ["b", "v"], ["f"])], {"z": np.array(0, np.int64)}
    m = _reshape_by(rng, chain, inits, "f")
    sess = npu_session(m, sess_options=_unoptimised())
    assert "Reshape" in phoenix_npu.assignment(sess).get(CPU, []), phoenix_npu.assignment(sess)
    if case == "div-by-zero":
        return
    x = rng.standard_normal((2, 5, 32)).astype(np.float32)
    got, want = sess.run(None, {"x": x})[0], cpu_run(m, {"x": x})[0]
    assert got.shape == want.shape
    assert rel_l2(got, want) < 1e-2
