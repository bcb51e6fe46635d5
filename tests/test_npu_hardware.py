"""Hardware suite: runs only on a machine with a Phoenix NPU, XRT and built kernels.

Skipped elsewhere with the reason (this machine has none; nothing here has run yet)."""
import os
from pathlib import Path

import numpy as np
import pytest

import _npu_path  # noqa: F401
from phoenix_npu import doctor

pytestmark = pytest.mark.npu


def _why_no_npu():
    checks = doctor.gather(os.environ.get("PHOENIX_NPU_MANIFEST"))
    missing = [f"{c.name}: {c.found}" for c in checks if c.required_for_npu and not c.ok]
    return "; ".join(missing)


_WHY = _why_no_npu()
needs_npu = pytest.mark.skipif(bool(_WHY), reason=f"no usable Phoenix NPU here ({_WHY})")


@needs_npu
def test_manifest_artifacts_all_present():
    from phoenix_npu.manifest import load_manifest
    m = load_manifest(os.environ.get("PHOENIX_NPU_MANIFEST"))
    assert m.kernels and all(k.artifacts_present() for k in m.kernels)


@needs_npu
def test_provider_runs_matmul_on_npu_and_matches_emulator():
    ort = pytest.importorskip("onnxruntime")
    import phoenix_npu
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 1500, 512), dtype=np.float32)
    w = rng.standard_normal((512, 2048), dtype=np.float32) * 0.05
    b = rng.standard_normal((2048,), dtype=np.float32) * 0.05
    g = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["y"])],
                          "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 1500, 512])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1500, 2048])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    outs = {}
    for device in ("npu", "emulator"):
        sess = ort.InferenceSession(model, providers=[(phoenix_npu.EP_NAME, {"device": device}), "CPUExecutionProvider"])
        outs[device] = sess.run(None, {"a": a})[0]
    ref = a @ w + b
    for device, y in outs.items():
        rel = np.linalg.norm(y - ref) / np.linalg.norm(ref)
        assert rel < 1e-2, (device, rel)
    # Same numerics contract: the NPU agrees with the emulated device far better than with FP32.
    assert np.linalg.norm(outs["npu"] - outs["emulator"]) <= np.linalg.norm(outs["emulator"] - ref)


def test_suite_reports_why_it_skips():
    if _WHY:
        assert "NPU device" in _WHY or "XRT" in _WHY or "kernel manifest" in _WHY or "driver" in _WHY
