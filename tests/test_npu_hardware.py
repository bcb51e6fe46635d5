"""Hardware suite: runs only on a machine with a Phoenix NPU, XRT and the built kernels.

Skipped elsewhere with the provider's own reason (npu_probe.cc; nothing here has run yet). Every
shape comes from the kernel manifest, and the counters must show that the NPU ran the kernels
and that nothing fell back to the host: a test that the hybrid device could pass on the CPU
alone proves nothing."""
import numpy as np
import pytest

import _npu_path  # noqa: F401
from phoenix_npu.manifest import load_manifest, npu_status

pytestmark = pytest.mark.npu

_STATUS = npu_status()
needs_npu = pytest.mark.skipif(not _STATUS["usable"], reason=f"no usable Phoenix NPU here ({_STATUS['why_not']})")


def test_suite_reports_why_it_skips():
    if not _STATUS["usable"]:
        assert _STATUS["why_not"] and any(not c["ok"] for c in _STATUS["checks"])


def _matmul_model(k, rng):
    from onnx import TensorProto, helper, numpy_helper
    a = rng.standard_normal((1, k.M, k.K), dtype=np.float32)
    w = rng.standard_normal((k.K, k.N), dtype=np.float32) * 0.05
    nodes, inits = [helper.make_node("MatMul", ["a", "w"], ["mm"])], [numpy_helper.from_array(w, "w")]
    ref, last = a @ w, "mm"
    if k.bias:
        b = rng.standard_normal((k.N,), dtype=np.float32) * 0.05
        nodes.append(helper.make_node("Add", [last, "b"], ["biased"]))
        inits.append(numpy_helper.from_array(b, "b"))
        ref, last = ref + b, "biased"
    feeds, inputs = {"a": a}, [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, k.M, k.K])]
    if k.residual:
        r = rng.standard_normal((1, k.M, k.N), dtype=np.float32)
        nodes.append(helper.make_node("Add", [last, "r"], ["y"]))
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, k.M, k.N]))
        feeds["r"], ref, last = r, ref + r, "y"
    if last != "y":
        nodes.append(helper.make_node("Identity", [last], ["y"]))
    g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, k.M, k.N])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(), feeds, ref


@needs_npu
def test_manifest_artifacts_all_present():
    m = load_manifest()
    assert m.kernels and m.artifacts_present()


@needs_npu
@pytest.mark.parametrize("index", range(8))
def test_manifest_matmuls_run_on_the_npu_without_host_fallback(index):
    m = load_manifest()
    mms = [k for k in m.kernels if k.op == "matmul" and k.epilogue == "none"]
    if index >= len(mms):
        pytest.skip("fewer MatMul kernels in the manifest")
    k = mms[index]
    model, feeds, ref = _matmul_model(k, np.random.default_rng(index))
    npu, emulator = _run_both(model, feeds, "MatMul")   # the NPU ran it, no host fallback
    rel = np.linalg.norm(npu - ref) / np.linalg.norm(ref)
    assert rel < 1e-2, (k.describe(), rel)
    # Same numerics contract: the NPU agrees with the emulated device far better than with FP32.
    assert np.linalg.norm(npu - emulator) <= np.linalg.norm(emulator - ref)


# --- Every kernel kind at the provider level (issue 23 item 7): LayerNorm, Softmax, GELU, the GELU
# MatMul and the INT8 MatMul, each with the manifest's shapes; the counters must show that the NPU
# ran it (no host launch) and the output must agree with device=emulator (the same numerics contract).
def _run_both(model, feeds, kind):
    import onnxruntime as ort
    import phoenix_npu
    outs = {}
    for device in ("npu", "emulator"):
        phoenix_npu.reset_counters()
        sess = ort.InferenceSession(model, providers=[(phoenix_npu.EP_NAME, {"device": device}), "CPUExecutionProvider"])
        outs[device] = sess.run(None, feeds)[0]
        if device == "npu":
            c = phoenix_npu.counters()
            assert c["totals"]["launches"] >= 1 and c["totals"]["host_launches"] == 0, c["totals"]
            assert kind in c["regions"][-1]["kernels"], c["regions"][-1]["kernels"]
    return outs["npu"], outs["emulator"]


def _model(nodes, inputs, output, inits=(), opset=20):
    from onnx import TensorProto, helper
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    g = helper.make_graph(nodes, "g", [vi(n, s) for n, s in inputs], [vi(*output)], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m.SerializeToString()


def _ulp_close(got, want, ulp=2, atol=1e-5):
    """Within `ulp` BF16 ulps or `atol` of the emulated device (the host tests' tolerance, docs/npu.md 2a)."""
    g, w = np.asarray(got, np.float32), np.asarray(want, np.float32)
    step = np.abs(w).view(np.uint32).astype(np.int64)
    step = np.ldexp(1.0, ((step >> 23) & 0xFF) - 127 - 7)       # one BF16 ulp at w's magnitude
    return bool(np.all((np.abs(g - w) <= ulp * step) | (np.abs(g - w) <= atol)))


def _manifest_kernel(op, **want):
    k = load_manifest().find(op, **want) if want else next((k for k in load_manifest().kernels if k.op == op), None)
    if k is None:
        pytest.skip(f"the manifest has no {op} kernel {want or ''}")
    return k


@needs_npu
def test_layernorm_runs_on_the_npu():
    from onnx import helper, numpy_helper
    k = _manifest_kernel("layernorm")
    rng = np.random.default_rng(11)
    g = numpy_helper.from_array(rng.standard_normal(k.cols).astype(np.float32), "g")
    b = numpy_helper.from_array(rng.standard_normal(k.cols).astype(np.float32), "b")
    model = _model([helper.make_node("LayerNormalization", ["x", "g", "b"][:3 if k.beta else 2], ["y"], axis=-1,
                                     epsilon=float(k.epsilon))], [("x", [1, k.rows, k.cols])], ("y", [1, k.rows, k.cols]),
                   [g, b] if k.beta else [g])
    npu, emu = _run_both(model, {"x": rng.standard_normal((1, k.rows, k.cols)).astype(np.float32) * 3}, "LayerNorm")
    assert _ulp_close(npu, emu)


@needs_npu
def test_softmax_runs_on_the_npu():
    from onnx import helper
    k = _manifest_kernel("softmax")
    if float(k.scale) != 1.0:
        pytest.skip("the manifest's softmax has a fused scale")
    rng = np.random.default_rng(12)
    model = _model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [("x", [1, k.rows, k.cols])],
                   ("y", [1, k.rows, k.cols]), opset=13)
    npu, emu = _run_both(model, {"x": rng.standard_normal((1, k.rows, k.cols)).astype(np.float32) * 4}, "Softmax")
    assert _ulp_close(npu, emu, atol=1e-6)


@needs_npu
def test_gelu_runs_on_the_npu():
    from onnx import helper
    k = _manifest_kernel("gelu")
    rows, cols = k.n // 2048, 2048
    rng = np.random.default_rng(13)
    model = _model([helper.make_node("Gelu", ["x"], ["y"], approximate="tanh" if k.mode == "tanh" else "none")],
                   [("x", [1, rows, cols])], ("y", [1, rows, cols]))
    npu, emu = _run_both(model, {"x": rng.standard_normal((1, rows, cols)).astype(np.float32) * 3}, "Gelu")
    assert _ulp_close(npu, emu)


@needs_npu
def test_gelu_matmul_runs_on_the_npu():
    """FC1: MatMul + bias + GELU fused into one NPU MatMul (GEMM + epilogue with GELU)."""
    from onnx import helper, numpy_helper
    k = _manifest_kernel("matmul", epilogue="gelu_erf")
    rng = np.random.default_rng(14)
    w = numpy_helper.from_array((rng.standard_normal((k.K, k.N)) / np.sqrt(k.K)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(k.N).astype(np.float32) * 0.1, "b")
    model = _model([helper.make_node("MatMul", ["a", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["hb"]),
                    helper.make_node("Gelu", ["hb"], ["y"])], [("a", [1, k.M, k.K])], ("y", [1, k.M, k.N]), [w, b])
    npu, emu = _run_both(model, {"a": rng.standard_normal((1, k.M, k.K)).astype(np.float32)}, "MatMul")
    assert _ulp_close(npu, emu)


@needs_npu
@pytest.mark.parametrize("signed", [False, True], ids=["uint8-activations", "int8-activations"])
def test_int8_matmul_runs_on_the_npu(signed):
    """A QDQ linear layer (symmetric per-channel int8 weights) on the three INT8 stages: the same bits
    as the emulated MatMulInt8 (docs/npu.md 2d: every step exact or one IEEE operation)."""
    from onnx import helper, numpy_helper
    k = _manifest_kernel("matmul_int8", epilogue="none", residual=False)
    rng = np.random.default_rng(15)
    B = rng.integers(-128, 128, (k.K, k.N)).astype(np.int8)
    sb = (rng.uniform(0.5, 1.5, k.N) / (64 * np.sqrt(k.K))).astype(np.float32)
    za = np.array(0 if signed else 131, np.int8 if signed else np.uint8)
    n = helper.make_node
    nodes = [n("QuantizeLinear", ["a", "sa", "za"], ["aq"]), n("DequantizeLinear", ["aq", "sa", "za"], ["adq"]),
             n("DequantizeLinear", ["wq", "sb"], ["w"], axis=1), n("MatMul", ["adq", "w"], ["y" if not k.bias else "h"])]
    inits = [numpy_helper.from_array(np.float32(0.05), "sa"), numpy_helper.from_array(za, "za"),
             numpy_helper.from_array(B, "wq"), numpy_helper.from_array(sb, "sb")]
    if k.bias:
        nodes.append(n("Add", ["h", "bias"], ["y"]))
        inits.append(numpy_helper.from_array(rng.standard_normal(k.N).astype(np.float32), "bias"))
    model = _model(nodes, [("a", [1, k.M, k.K])], ("y", [1, k.M, k.N]), inits, opset=17)
    npu, emu = _run_both(model, {"a": rng.standard_normal((1, k.M, k.K)).astype(np.float32) * 2}, "MatMulInt8")
    assert (npu.view(np.uint32) == emu.view(np.uint32)).all()
