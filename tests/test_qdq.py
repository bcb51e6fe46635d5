"""Quantized (QDQ) models (issue 15): QuantizeLinear / DequantizeLinear around MatMul / Gemm, as
ORT's static quantizer writes them (and AMD Quark, in the same QDQ format). Every claimed pattern
is compared with the CPU EP running the same QDQ model. At bf16 the linear layers run as INT8
MatMuls (kernels/matmul_int8); at bf16x3 they run dequantized, FP32-grade.

The reference is the CPU EP with graph optimisation off, which computes the QDQ model as ONNX
defines it. With its optimisations on, ORT's CPU EP replaces the Q/DQ pairs by its own quantized
kernels (QLinearMatMul and friends), whose results may differ from that definition, by an
amount that depends on the CPU (about 4 % relative L2 in these blocks on an AVX2-only Zen 3,
0 on a Zen 4): an implementation detail of ORT, so no test here asserts it. Tolerance: a BF16 activation sits in the
neighbouring quantum of the FP32 one with probability about |x| 2^-9 / quantum, so each
quantization step turns BF16 rounding into whole quanta; 2e-2 relative L2 over a block of two
quantized layers (measured 1.0-1.2e-2)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

import phoenix_npu
from conftest import CPU, EP, assert_all_on_npu, cpu_run, npu_session, rel_l2

n = helper.make_node
D, FF = 32, 64


def _float_block(path, rng, gemm=False, act_matmul=False):
    """LayerNorm -> Q/K projections -> Q K^T (optional) -> FFN with GELU -> residual: the linear
    layers of an encoder block, in float, for the quantizer."""
    w = lambda *s: numpy_helper.from_array((rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32))
    inits = {"g": numpy_helper.from_array(np.ones(D, np.float32)), "b1": numpy_helper.from_array(rng.standard_normal(FF).astype(np.float32) / 10)}
    nodes = [n("LayerNormalization", ["x", "g"], ["ln"], axis=-1)]
    if gemm:  # Linear exported as Gemm(transB=1) over 2-D rows: weights [out, in]
        inits["w1"] = w(FF, D)
        inits["w2"] = w(D, FF)
        nodes += [n("Gemm", ["ln", "w1", "b1"], ["h"], transB=1), n("Gelu", ["h"], ["a"]),
                  n("Gemm", ["a", "w2"], ["f"], transB=1), n("Add", ["f", "x"], ["y"])]
        inp, outs = [("x", [9, D])], [("y", [9, D])]
    else:
        inits["w1"] = w(D, FF)
        inits["w2"] = w(FF, D)
        nodes += [n("MatMul", ["ln", "w1"], ["h0"]), n("Add", ["h0", "b1"], ["h"]), n("Gelu", ["h"], ["a"]),
                  n("MatMul", ["a", "w2"], ["f"]), n("Add", ["f", "x"], ["y"])]
        inp, outs = [("x", ["batch", 9, D])], [("y", ["batch", 9, D])]
        if act_matmul:
            inits["wq"] = w(D, D)
            nodes += [n("MatMul", ["ln", "wq"], ["q"]), n("Transpose", ["ln"], ["lt"], perm=[0, 2, 1]),
                      n("MatMul", ["q", "lt"], ["s"])]
            outs.append(("s", ["batch", 9, 9]))
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info(a, TensorProto.FLOAT, s) for a, s in inp],
                              [helper.make_tensor_value_info(a, TensorProto.FLOAT, s) for a, s in outs],
                              [_named(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.save(model, path)
    return inp[0][1]


def _named(tensor, name):
    tensor.name = name
    return tensor


class _Calibration(CalibrationDataReader):
    def __init__(self, shape, rng):
        concrete = [2 if isinstance(d, str) else d for d in shape]
        self._it = iter([{"x": rng.standard_normal(concrete).astype(np.float32)} for _ in range(6)])

    def get_next(self):
        return next(self._it, None)


def _quantize(tmp_path, rng, *, signed=False, per_channel=True, ops=("MatMul", "Gemm"), **block):
    f, q = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    shape = _float_block(str(f), rng, **block)
    quantize_static(str(f), str(q), _Calibration(shape, rng), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QInt8 if signed else QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=list(ops) if ops else None,
                    extra_options={"ActivationSymmetric": signed})
    return q.read_bytes(), shape


def _reference(model, feeds):
    """The QDQ model as ONNX defines it: ORT's CPU EP without its graph optimisations."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, so, providers=[CPU]).run(None, feeds)


QDQ_TOLERANCE = 2e-2


def _kernels():
    return phoenix_npu.counters()["regions"][-1]["kernels"]


def _feeds(shape, rng, batch=3):
    concrete = [batch if isinstance(d, str) else d for d in shape]
    return {"x": rng.standard_normal(concrete).astype(np.float32)}


@pytest.mark.parametrize("signed", [False, True], ids=["uint8-activations", "int8-symmetric"])
@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
def test_quantized_linear_layers_run_as_int8(tmp_path, rng, signed, per_channel):
    model, shape = _quantize(tmp_path, rng, signed=signed, per_channel=per_channel)
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load_from_string(model).graph.node)
    sess = npu_session(model)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    feeds = _feeds(shape, rng)
    got, want = sess.run(None, feeds)[0], _reference(model, feeds)[0]
    kinds = _kernels()
    assert kinds.get("MatMulInt8", {}).get("launches") == 2, kinds
    assert "MatMul" not in kinds, kinds
    assert rel_l2(got, want) < QDQ_TOLERANCE


def test_gemm_with_transposed_int8_weights(tmp_path, rng):
    model, shape = _quantize(tmp_path, rng, gemm=True)
    sess = npu_session(model)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    feeds = _feeds(shape, rng)
    assert rel_l2(sess.run(None, feeds)[0], _reference(model, feeds)[0]) < QDQ_TOLERANCE
    assert _kernels().get("MatMulInt8", {}).get("launches") == 2


def test_activation_times_activation_quantized(tmp_path, rng):
    model, shape = _quantize(tmp_path, rng, act_matmul=True)
    sess = npu_session(model)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    feeds = _feeds(shape, rng)
    got, want = sess.run(None, feeds), _reference(model, feeds)
    for g_, w_ in zip(got, want):
        assert rel_l2(g_, w_) < QDQ_TOLERANCE
    assert _kernels().get("MatMulInt8Activations", {}).get("launches") == 1, _kernels()


def test_every_op_quantized(tmp_path, rng):
    """The quantizer's default: Q/DQ around every op it knows (LayerNorm, Add, Gelu...): the pairs
    no INT8 MatMul can absorb become FakeQuant calls, the constants it dequantizes fold."""
    model, shape = _quantize(tmp_path, rng, ops=None)
    sess = npu_session(model)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    feeds = _feeds(shape, rng)
    assert rel_l2(sess.run(None, feeds)[0], _reference(model, feeds)[0]) < QDQ_TOLERANCE
    assert "MatMulInt8" in _kernels()


def test_bf16x3_runs_the_dequantized_model(tmp_path, rng):
    model, shape = _quantize(tmp_path, rng)
    sess = npu_session(model, precision="bf16x3")
    assert_all_on_npu(phoenix_npu.assignment(sess))
    feeds = _feeds(shape, rng)
    assert rel_l2(sess.run(None, feeds)[0], _reference(model, feeds)[0]) < QDQ_TOLERANCE
    kinds = _kernels()
    assert "MatMulInt8" not in kinds and "FakeQuant" in kinds, kinds


def test_quantized_value_read_outside_stays_on_cpu(rng):
    """A QuantizeLinear whose int8 output is a model output cannot run inside a region."""
    w = np.eye(4, dtype=np.float32)
    graph = helper.make_graph(
        [n("QuantizeLinear", ["x", "s", "z"], ["q"]), n("DequantizeLinear", ["q", "s", "z"], ["d"]), n("MatMul", ["d", "w"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4]), helper.make_tensor_value_info("q", TensorProto.UINT8, [2, 4])],
        [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(128, np.uint8), "z"),
         numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    data = model.SerializeToString()
    sess = npu_session(data)
    assert "QuantizeLinear" in phoenix_npu.assignment(sess).get(CPU, [])
    x = rng.standard_normal((2, 4)).astype(np.float32)
    got, want = sess.run(None, {"x": x}), _reference(data, {"x": x})
    np.testing.assert_array_equal(got[1], want[1])
    assert rel_l2(got[0], want[0]) < QDQ_TOLERANCE


# ---- views of a fake-quantized value (Transpose / Reshape after DequantizeLinear) -----------------

def _qdq_view_model(views, reader="Softmax"):
    """x -> QuantizeLinear -> DequantizeLinear -> views -> reader: with a coarse scale the
    quantization changes the values by far more than BF16 rounding, so a view that drops it shows."""
    nodes = [n("QuantizeLinear", ["x", "s", "z"], ["q"]), n("DequantizeLinear", ["q", "s", "z"], ["v0"])]
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "s"), numpy_helper.from_array(np.array(3, np.int8), "z")]
    shape = np.zeros((2, 6, 8))
    for i, (op, arg) in enumerate(views):
        shape = shape.transpose(arg) if op == "Transpose" else shape.reshape(arg)
        if op == "Transpose":
            nodes.append(n("Transpose", [f"v{i}"], [f"v{i + 1}"], perm=arg))
        else:
            inits.append(numpy_helper.from_array(np.array(arg, np.int64), f"shape{i}"))
            nodes.append(n("Reshape", [f"v{i}", f"shape{i}"], [f"v{i + 1}"]))
    last = f"v{len(views)}"
    if reader == "Softmax":
        nodes.append(n("Softmax", [last], ["y"], axis=-1))
    else:  # a float MatMul (its weight is not quantized: no INT8 kernel can absorb the quantization)
        inits.append(numpy_helper.from_array(np.linspace(-1, 1, shape.shape[-1] * 5, dtype=np.float32).reshape(-1, 5), "w"))
        nodes.append(n("MatMul", [last, "w"], ["y"]))
    graph = helper.make_graph(nodes, "views", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model.SerializeToString()


@pytest.mark.parametrize("precision", ["bf16", "bf16x3"])
@pytest.mark.parametrize("views", [
    [("Transpose", [0, 2, 1])],
    [("Reshape", [2, 48])],
    [("Transpose", [0, 2, 1]), ("Reshape", [16, 6])],  # the Reshape of a transposed view needs a copy
    [("Transpose", [1, 0, 2]), ("Reshape", [12, 8])],
    [("Transpose", [0, 2, 1]), ("Reshape", [16, 6]), ("Transpose", [1, 0]), ("Reshape", [6, 16])],
], ids=["transpose", "reshape", "transpose-reshape-copy", "transpose-reshape-copy-2", "view-chain"])
@pytest.mark.parametrize("reader", ["Softmax", "MatMul"])
def test_views_keep_the_pending_quantization(rng, views, precision, reader):
    """bf16x3 computes the quantized model FP32-grade (3e-6 measured); bf16 within the QDQ
    tolerance (BF16 rounding moves inputs across quantization steps). Without the quantization the
    errors were 0.06-0.22."""
    model = _qdq_view_model(views, reader)
    sess = npu_session(model, precision=precision)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    x = rng.standard_normal((2, 6, 8)).astype(np.float32)
    got, want = sess.run(None, {"x": x})[0], _reference(model, {"x": x})[0]
    assert rel_l2(got, want) < (QDQ_TOLERANCE if precision == "bf16" else 1e-5), rel_l2(got, want)
    assert "FakeQuant" in _kernels(), _kernels()


def _float_stem(path, rng, C=8, D=16, L=24):
    """Whisper's stem (Conv -> GELU -> Conv stride 2 -> GELU -> Transpose -> Add positions) then
    a LayerNorm, in float, for the quantizer."""
    w = lambda *s: numpy_helper.from_array((rng.standard_normal(s) / np.sqrt(s[1] * s[2])).astype(np.float32))
    inits = {"w1": w(D, C, 3), "b1": numpy_helper.from_array(rng.standard_normal(D).astype(np.float32) / 10),
             "w2": w(D, D, 3), "b2": numpy_helper.from_array(rng.standard_normal(D).astype(np.float32) / 10),
             "pos": numpy_helper.from_array(rng.standard_normal((L // 2, D)).astype(np.float32)),
             "g": numpy_helper.from_array(np.ones(D, np.float32))}
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3], pads=[1, 1]), n("Gelu", ["c1"], ["g1"]),
             n("Conv", ["g1", "w2", "b2"], ["c2"], kernel_shape=[3], pads=[1, 1], strides=[2]), n("Gelu", ["c2"], ["g2"]),
             n("Transpose", ["g2"], ["t"], perm=[0, 2, 1]), n("Add", ["t", "pos"], ["h"]),
             n("LayerNormalization", ["h", "g"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "stem", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, L])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, L // 2, D])],
                              [_named(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.save(model, path)
    return [1, C, L]


def test_stem_quantized_by_quantize_static_all_ops(tmp_path, rng):
    """ORT's quantize_static with every op type puts Q/DQ before the Transpose: the view must keep
    the fake quantization (bf16x3: the provider's own error is far below the quantization's)."""
    f, q = tmp_path / "stem.onnx", tmp_path / "stem_qdq.onnx"
    shape = _float_stem(str(f), rng)
    quantize_static(str(f), str(q), _Calibration(shape, rng), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    model = q.read_bytes()
    ops = [nd.op_type for nd in onnx.load_from_string(model).graph.node]
    assert ops.index("DequantizeLinear") < ops.index("Transpose")
    sess = npu_session(model, precision="bf16x3")
    assert_all_on_npu(phoenix_npu.assignment(sess))
    feeds = {"x": rng.standard_normal(shape).astype(np.float32)}
    assert rel_l2(sess.run(None, feeds)[0], _reference(model, feeds)[0]) < 1e-3


# ---- INT8 weights the INT8 kernel cannot run exactly: claimed only when it runs them -------------

def _int8_linear(scales, K=16, N=4, rng=None):
    """x -> Q -> DQ -> MatMul(DQ(int8 weights, per-channel scales)): the INT8 kernel's pattern."""
    rng = rng or np.random.default_rng(7)
    w = rng.integers(-128, 128, (K, N)).astype(np.int8)
    nodes = [n("QuantizeLinear", ["x", "s", "z"], ["q"]), n("DequantizeLinear", ["q", "s", "z"], ["xd"]),
             n("DequantizeLinear", ["w", "ws"], ["wd"], axis=1), n("MatMul", ["xd", "wd"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(128, np.uint8), "z"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array(scales, np.float32), "ws")]
    graph = helper.make_graph(nodes, "int8", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, K])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, N])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model.SerializeToString()


def _reason(op):
    return [nd["reason"] for nd in phoenix_npu.capability_reports()[-1]["per_node"] if nd["op"] == op]


def test_pruned_and_negative_weight_scales_run_as_int8(rng):
    """A pruned channel (scale 0) and a negative scale are valid: the INT8 kernel runs them."""
    model = _int8_linear([0.0, -0.01, 0.02, -0.0])
    sess = npu_session(model)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    x = rng.standard_normal((3, 16)).astype(np.float32)
    got, want = sess.run(None, {"x": x})[0], _reference(model, {"x": x})[0]
    assert _kernels().get("MatMulInt8", {}).get("launches") == 1, _kernels()
    assert np.all(got[:, [0, 3]] == 0) and rel_l2(got, want) < QDQ_TOLERANCE


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
def test_nonfinite_weight_scale_left_to_cpu_with_the_reason(rng, bad):
    model = _int8_linear([0.01, bad, 0.02, 0.03])
    sess = npu_session(model)
    assert "MatMul" in phoenix_npu.assignment(sess).get(CPU, [])
    assert _reason("MatMul") == ["an INT8 weight scale is NaN or infinite"]
    x = rng.standard_normal((3, 16)).astype(np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], cpu_run(model, {"x": x})[0])  # as without the provider


def test_k_beyond_the_exact_int32_sum_left_to_cpu_with_the_reason(rng):
    K = 33026  # kernels/matmul_int8: kMaxInt8K + 1
    model = _int8_linear([0.01, 0.02, 0.03, 0.04], K=K)
    sess = npu_session(model)
    assert "MatMul" in phoenix_npu.assignment(sess).get(CPU, [])
    assert "K > 33025" in _reason("MatMul")[0]
    x = rng.standard_normal((3, K)).astype(np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], cpu_run(model, {"x": x})[0])


def test_activation_product_beyond_the_exact_sum_runs_dequantized(rng):
    """Activation x activation: K (a sequence length) is known only per run; beyond the INT8
    kernel's bound the provider runs the dequantized product instead of failing the run."""
    K = 33026
    nodes = [n("QuantizeLinear", ["a", "s", "z"], ["qa"]), n("DequantizeLinear", ["qa", "s", "z"], ["ad"]),
             n("QuantizeLinear", ["b", "s", "z"], ["qb"]), n("DequantizeLinear", ["qb", "s", "z"], ["bd"]),
             n("MatMul", ["ad", "bd"], ["y"])]
    graph = helper.make_graph(nodes, "actact", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, "k"]),
                                                helper.make_tensor_value_info("b", TensorProto.FLOAT, ["k", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
                              [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                               numpy_helper.from_array(np.array(128, np.uint8), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    model = model.SerializeToString()
    sess = npu_session(model)
    assert_all_on_npu(phoenix_npu.assignment(sess))
    for k in (64, K):
        feeds = {"a": rng.standard_normal((2, k)).astype(np.float32), "b": rng.standard_normal((k, 3)).astype(np.float32)}
        got, want = sess.run(None, feeds)[0], _reference(model, feeds)[0]
        assert rel_l2(got, want) < QDQ_TOLERANCE
        assert ("MatMul" in _kernels()) == (k == K), _kernels()  # counters add up over the session's runs
    assert _kernels()["MatMulInt8Activations"]["launches"] == 1
