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
    import onnxruntime as ort
    import phoenix_npu
    m = load_manifest()
    mms = [k for k in m.kernels if k.op == "matmul" and k.epilogue == "none"]
    if index >= len(mms):
        pytest.skip("fewer MatMul kernels in the manifest")
    k = mms[index]
    model, feeds, ref = _matmul_model(k, np.random.default_rng(index))
    outs = {}
    for device in ("npu", "emulator"):
        phoenix_npu.reset_counters()
        sess = ort.InferenceSession(model, providers=[(phoenix_npu.EP_NAME, {"device": device}), "CPUExecutionProvider"])
        outs[device] = sess.run(None, feeds)[0]
        if device == "npu":
            c = phoenix_npu.counters()["totals"]
            assert c["launches"] >= 1 and c["host_launches"] == 0, c   # the NPU ran it, no host fallback
    rel = np.linalg.norm(outs["npu"] - ref) / np.linalg.norm(ref)
    assert rel < 1e-2, (k.describe(), rel)
    # Same numerics contract: the NPU agrees with the emulated device far better than with FP32.
    assert np.linalg.norm(outs["npu"] - outs["emulator"]) <= np.linalg.norm(outs["emulator"] - ref)
