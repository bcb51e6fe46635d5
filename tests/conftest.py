"""Shared helpers: build small ONNX graphs with onnx.helper and run them on PhoenixNPU and on
ORT's CPU EP (FP32), with the default session options users run with."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import phoenix_npu

EP = phoenix_npu.EP_NAME
CPU = "CPUExecutionProvider"


def make_model(nodes, inputs, outputs, initializers=(), opset=17, path=None):
    """inputs/outputs: [(name, shape)] float32 (shape entries may be str for a dynamic dim),
    or (name, shape, elem_type). initializers: {name: np.ndarray}."""
    def vi(spec):
        name, shape = spec[0], spec[1]
        elem = spec[2] if len(spec) > 2 else TensorProto.FLOAT
        return helper.make_tensor_value_info(name, elem, shape)

    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()]
    graph = helper.make_graph(nodes, "g", [vi(i) for i in inputs], [vi(o) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return data


def cpu_run(model, feeds):
    return ort.InferenceSession(model, providers=[CPU]).run(None, feeds)


def npu_session(model, device="emulator", **opts):
    return phoenix_npu.make_session(model, device=device, **opts)


def run_both(model, feeds, **opts):
    """(phoenix outputs, cpu outputs, assignment dict, session)"""
    sess = npu_session(model, **opts)
    got = sess.run(None, feeds)
    want = cpu_run(model, feeds)
    return got, want, phoenix_npu.assignment(sess), sess


def rel_l2(got, want):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    denom = np.linalg.norm(want)
    return float(np.linalg.norm(got - want) / (denom if denom > 0 else 1.0))


def assert_all_on_npu(assign, expected_ops=None):
    assert CPU not in assign or not assign[CPU], f"nodes left on CPU: {assign.get(CPU)}"
    assert assign.get(EP), "nothing assigned to PhoenixNPU"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
