"""A seeded generator of random small ONNX graphs over the ops the provider knows and ops it
does not, with random shapes, broadcasts, attributes and dtypes; and the check that every
graph behaves: session creation never fails, results match the CPU EP within the BF16
contract, and what the provider cannot run falls back to the CPU EP.

Used by tests/test_fuzz.py (a short run in CI) and by tools/fuzz.py (the long run). The oracle
at the end (Reference, allowed_error, assert_matches) is shared with tests/dag_fuzz.py."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto, helper, numpy_helper

SUPPORTED_HINT = {"MatMul", "Gemm", "LayerNormalization", "Softmax", "Gelu", "Add", "Sub", "Mul", "Div", "Reshape",
                  "Transpose", "Conv", "Erf"}


@dataclass
class Graph:
    nodes: list = field(default_factory=list)
    inits: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)   # (name, shape, elem)
    values: dict = field(default_factory=dict)   # name -> shape (float values only)
    opset: int = 17
    counter: int = 0

    def name(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, arr):
        n = self.name("c")
        self.inits[n] = np.asarray(arr)
        return n


def _factor(n, rng):
    """A random split of n into 1-3 factors."""
    dims = []
    while n > 1 and len(dims) < 2:
        divs = [d for d in range(2, n + 1) if n % d == 0]
        d = int(rng.choice(divs))
        dims.append(d)
        n //= d
    dims.append(n)
    rng.shuffle(dims)
    return [int(d) for d in dims]


def random_graph(seed: int):
    """Returns (model bytes, feeds dict, description)."""
    rng = np.random.default_rng(seed)
    g = Graph(opset=int(rng.choice([17, 17, 20])))
    rank = int(rng.integers(2, 5))
    shape = [int(rng.integers(1, 9)) for _ in range(rank)]
    g.inputs.append(("x", shape, TensorProto.FLOAT))
    g.values["x"] = shape
    feeds = {"x": rng.standard_normal(shape).astype(np.float32)}
    if rng.random() < 0.05:  # sometimes an int64 graph: nothing to claim
        g.inputs[0] = ("x", shape, TensorProto.INT64)
        feeds["x"] = rng.integers(-4, 4, shape).astype(np.int64)
        y = g.name("v")
        g.nodes.append(helper.make_node("Add", ["x", g.const(np.array(1, np.int64))], [y]))
        return _finish(g, [(y, shape, TensorProto.INT64)], feeds, "int64 Add")
    cur = "x"
    ops = []
    for _ in range(int(rng.integers(1, 7))):
        s = g.values[cur]
        op = str(rng.choice(["MatMul", "Gemm", "LayerNorm", "Softmax", "Gelu", "Binary", "BinaryAct", "Reshape",
                             "Transpose", "Relu", "Tanh", "Conv", "SoftmaxAxis", "Attention"]))
        out = g.name("v")
        if op == "MatMul":
            n = int(rng.integers(1, 9))
            w = (rng.standard_normal((s[-1], n)) / math.sqrt(s[-1])).astype(np.float32)
            g.nodes.append(helper.make_node("MatMul", [cur, g.const(w)], [out]))
            ns = s[:-1] + [n]
        elif op == "Gemm" and len(s) == 2:
            n = int(rng.integers(1, 9))
            tb = int(rng.integers(0, 2))
            w = (rng.standard_normal((n, s[-1]) if tb else (s[-1], n)) / math.sqrt(s[-1])).astype(np.float32)
            ins = [cur, g.const(w)] + ([g.const(rng.standard_normal(n).astype(np.float32))] if rng.random() < 0.6 else [])
            g.nodes.append(helper.make_node("Gemm", ins, [out], transB=tb, alpha=float(rng.choice([1.0, 0.5]))))
            ns = s[:-1] + [n]
        elif op == "LayerNorm":
            axis = -1 if rng.random() < 0.85 else 0  # axis 0 over all dims: CPU only (unless rank 1)
            nshape = s[axis:] if axis == 0 else s[-1:]
            ins = [cur, g.const(rng.uniform(0.5, 1.5, nshape).astype(np.float32))]
            if rng.random() < 0.5:
                ins.append(g.const(rng.standard_normal(nshape).astype(np.float32)))
            g.nodes.append(helper.make_node("LayerNormalization", ins, [out], axis=axis,
                                            epsilon=float(rng.choice([1e-5, 1e-3]))))
            ns = s
        elif op in ("Softmax", "SoftmaxAxis"):
            axis = -1 if op == "Softmax" else int(rng.integers(0, len(s)))
            g.nodes.append(helper.make_node("Softmax", [cur], [out], axis=axis))
            ns = s
        elif op == "Gelu":
            if g.opset >= 20 and rng.random() < 0.5:
                g.nodes.append(helper.make_node("Gelu", [cur], [out],
                                                approximate=str(rng.choice(["none", "tanh"]))))
            else:
                d, e, a, m = (g.name("d"), g.name("e"), g.name("a"), g.name("m"))
                g.nodes += [helper.make_node("Div", [cur, g.const(np.array(math.sqrt(2), np.float32))], [d]),
                            helper.make_node("Erf", [d], [e]),
                            helper.make_node("Add", [e, g.const(np.array(1.0, np.float32))], [a]),
                            helper.make_node("Mul", [cur, a], [m]),
                            helper.make_node("Mul", [m, g.const(np.array(0.5, np.float32))], [out])]
            ns = s
        elif op == "Binary":
            kind = str(rng.choice(["Add", "Sub", "Mul", "Div"]))
            bshape = [d if rng.random() < 0.5 else 1 for d in s][int(rng.integers(0, len(s))):]
            c = rng.uniform(0.5, 2.0, bshape) * rng.choice([-1, 1], bshape)
            ins = [cur, g.const(c.astype(np.float32))]
            if kind in ("Add", "Mul") and rng.random() < 0.3:
                ins.reverse()
            g.nodes.append(helper.make_node(kind, ins, [out]))
            ns = list(np.broadcast_shapes(tuple(s), tuple(bshape)))
        elif op == "BinaryAct":  # two activations: x (op) f(x), broadcast against an input
            kind = str(rng.choice(["Add", "Sub", "Mul"]))
            other = g.name("in")
            oshape = [d if rng.random() < 0.7 else 1 for d in s]
            g.inputs.append((other, oshape, TensorProto.FLOAT))
            feeds[other] = rng.standard_normal(oshape).astype(np.float32)
            g.nodes.append(helper.make_node(kind, [cur, other], [out]))
            ns = s
        elif op == "Attention":  # softmax(scale * Q K^T) V with K, V as new inputs
            nkeys, dv = int(rng.integers(1, 9)), int(rng.integers(1, 9))
            kname, vname = g.name("k"), g.name("vv")
            kshape, vshape = s[:-2] + [nkeys, s[-1]], s[:-2] + [nkeys, dv]
            g.inputs += [(kname, kshape, TensorProto.FLOAT), (vname, vshape, TensorProto.FLOAT)]
            feeds[kname] = rng.standard_normal(kshape).astype(np.float32)
            feeds[vname] = rng.standard_normal(vshape).astype(np.float32)
            perm = list(range(len(s)))
            perm[-1], perm[-2] = perm[-2], perm[-1]
            kt, sc, sm, pr = g.name("kt"), g.name("s"), g.name("ss"), g.name("p")
            g.nodes += [helper.make_node("Transpose", [kname], [kt], perm=perm),
                        helper.make_node("MatMul", [cur, kt], [sc]),
                        helper.make_node("Mul", [sc, g.const(np.array(s[-1] ** -0.5, np.float32))], [sm]),
                        helper.make_node("Softmax", [sm], [pr], axis=-1),
                        helper.make_node("MatMul", [pr, vname], [out])]
            ns = s[:-1] + [dv]
        elif op == "Reshape":
            total = int(np.prod(s))
            ns = _factor(total, rng)
            if rng.random() < 0.3:
                ns = [1] + ns
            g.nodes.append(helper.make_node("Reshape", [cur, g.const(np.array(ns, np.int64))], [out]))
        elif op == "Transpose":
            perm = [int(p) for p in rng.permutation(len(s))]
            g.nodes.append(helper.make_node("Transpose", [cur], [out], perm=perm))
            ns = [s[p] for p in perm]
        elif op == "Conv" and len(s) == 3:
            d_out, k = int(rng.integers(1, 6)), int(rng.integers(1, 4))
            stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
            if s[2] + 2 * pad < k:
                continue
            w = (rng.standard_normal((d_out, s[1], k)) / math.sqrt(s[1] * k)).astype(np.float32)
            g.nodes.append(helper.make_node("Conv", [cur, g.const(w), g.const(rng.standard_normal(d_out).astype(np.float32))],
                                            [out], kernel_shape=[k], strides=[stride], pads=[pad, pad]))
            ns = [s[0], d_out, (s[2] + 2 * pad - k) // stride + 1]
        else:  # Relu / Tanh (not supported: CPU), or an op that did not fit this shape
            g.nodes.append(helper.make_node("Relu" if op != "Tanh" else "Tanh", [cur], [out]))
            ns = s
            op = "Relu" if op != "Tanh" else "Tanh"
        ops.append(op)
        g.values[out] = [int(d) for d in ns]
        cur = out
    outputs = [(cur, g.values[cur], TensorProto.FLOAT)]
    if rng.random() < 0.1:  # sometimes the first input's leading dim is only known at run time
        name, shp, elem = g.inputs[0]
        g.inputs[0] = (name, ["batch"] + list(shp[1:]), elem)
        outputs = [(cur, None, TensorProto.FLOAT)]  # let shape inference say what it can
        ops.append("dynamic")
    return _finish(g, outputs, feeds, " -> ".join(ops))


def _finish(g, outputs, feeds, desc):
    graph = helper.make_graph(g.nodes, "fuzz",
                              [helper.make_tensor_value_info(n, e, s) for n, s, e in g.inputs],
                              [helper.make_tensor_value_info(n, e, s) for n, s, e in outputs],
                              [numpy_helper.from_array(v, k) for k, v in g.inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)])
    model.ir_version = 10
    return model.SerializeToString(), feeds, desc


def check_graph(seed: int, per_op: float = 1e-2, precision: str = "bf16"):
    """Runs one random graph on PhoenixNPU and on the CPU EP. Returns a dict with what
    happened; raises AssertionError when the provider misbehaves. precision="bf16x3" is held
    to the same (BF16) bounds: it must never be worse."""
    import phoenix_npu

    model, feeds, desc = random_graph(seed)
    want, sensitivity = Reference(model).run(feeds)
    sess = phoenix_npu.make_session(model, device="emulator", precision=precision)
    got = sess.run(None, feeds)
    claimed, regions = provider_share(sess)
    assert_matches(got, want, sensitivity, len(desc.split(" -> ")), regions, f"seed {seed}: {desc}", per_op)
    return {"seed": seed, "desc": desc, "claimed": claimed,
            "nodes": sum(len(v) for v in phoenix_npu.assignment(sess).values())}


# The oracle, shared with tests/dag_fuzz.py.

def session_options(model: bytes):
    """SessionOptions for the reference and the PhoenixNPU sessions of one model. Q/DQ models
    run at ORT's basic level on both: its extended QDQ fusions replace the nodes the CPU EP
    keeps (DequantizeLinear -> MatMul) by INT8 kernels that quantize the activation
    dynamically, where a NaN becomes a number and Inf x 0 no NaN (DAG seeds 117, 516), and
    with errors of 0.1: the comparison is with the model's meaning, the same on both sides."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if b"quantizeLinear" in model:  # QuantizeLinear or DequantizeLinear
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return so


class Reference:
    """The CPU EP's FP32 results for a model, and how far BF16 rounding moves them.

    Some random graphs are ill-conditioned (a LayerNorm over two nearly equal values, a
    Softmax of huge logits): any BF16 rounding moves their output a lot. That is measured on
    the CPU EP itself: the model with every intermediate value BF16-rounded (Cast pairs after
    each node) and BF16 weights, fed BF16-rounded inputs; and the FP32 model on the rounded
    inputs. The larger of the two distances to the FP32 result, per output, is the graph's
    BF16 sensitivity; a provider result may be a multiple of it away. The rounded model runs
    unoptimised: ORT's fusions could drop Cast pairs (and ORT 1.32's full optimisation level
    segfaults on some of these models, e.g. DAG seed 633)."""

    def __init__(self, model: bytes):
        import onnxruntime as ort

        self.model = model
        self.cpu = ort.InferenceSession(model, session_options(model), providers=["CPUExecutionProvider"])
        self._rounded = None

    def run(self, feeds):
        """(FP32 outputs, BF16 sensitivity per output) for one feed dict."""
        import onnxruntime as ort

        want = self.cpu.run(None, feeds)
        if self._rounded is None:
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            self._rounded = ort.InferenceSession(_bf16_everywhere(self.model), so, providers=["CPUExecutionProvider"])
        rounded = {k: _round_bf16(v) for k, v in feeds.items()}
        sensitivity = [max(_rel_err(a, w), _rel_err(b, w))
                       for a, b, w in zip(self._rounded.run(None, rounded), self.cpu.run(None, rounded), want)]
        return want, sensitivity


def provider_share(sess):
    """(nodes PhoenixNPU runs, regions it runs them in) for a session made by make_session."""
    import phoenix_npu

    claimed = len(phoenix_npu.assignment(sess).get(phoenix_npu.EP_NAME, []))
    regions = phoenix_npu.assignment_summary(sess).get(phoenix_npu.EP_NAME, {}).get("subgraphs", 0)
    return claimed, regions


def allowed_error(per_op: float, ops: int, regions: int, sensitivity: float) -> float:
    """The contract is per op (1e-2); along a path of `ops` ops the errors add up roughly in
    quadrature, each PhoenixNPU region rounding its inputs and outputs to BF16 once more:
    1.5 * per_op * sqrt(ops + regions), or a multiple of the graph's own BF16 sensitivity."""
    return max(1.5 * per_op * math.sqrt(ops + regions), 8 * sensitivity)


def assert_matches(got, want, sensitivity, ops, regions, context: str, per_op: float = 1e-2, names=None):
    """Provider outputs against the CPU EP's: same shapes and dtypes, the same NaN and Inf
    positions, and a relative L2 error within allowed_error(). `ops` is the number of ops on
    the longest path to each output (one int for all, or one per output)."""
    ops = ops if isinstance(ops, (list, tuple)) else [ops] * len(want)
    names = names or [str(i) for i in range(len(want))]
    assert len(got) == len(want), f"{context}: {len(got)} outputs, expected {len(want)}"
    for g_out, w_out, sens, k, name in zip(got, want, sensitivity, ops, names):
        where = f"{context}: output {name}"
        assert g_out.shape == w_out.shape and g_out.dtype == w_out.dtype, \
            f"{where}: {g_out.dtype}{list(g_out.shape)}, expected {w_out.dtype}{list(w_out.shape)}"
        if w_out.dtype != np.float32:
            np.testing.assert_array_equal(g_out, w_out, err_msg=where)
            continue
        assert np.array_equal(np.isnan(g_out), np.isnan(w_out)), \
            f"{where}: NaN mismatch ({int(np.isnan(g_out).sum())} NaN, expected {int(np.isnan(w_out).sum())})"
        assert np.array_equal(np.isposinf(g_out), np.isposinf(w_out)) and \
            np.array_equal(np.isneginf(g_out), np.isneginf(w_out)), \
            f"{where}: Inf mismatch ({int(np.isinf(g_out).sum())} Inf, expected {int(np.isinf(w_out).sum())})"
        err = _rel_err(g_out, w_out)
        allowed = allowed_error(per_op, k, regions, sens)
        assert err <= allowed, f"{where}: relative L2 {err:.3e} > {allowed:.3e}"


def _bf16_everywhere(model_bytes):
    """The same model with every float node output rounded to BF16 (Cast to BF16 and back)."""
    import onnx

    m = onnx.load_from_string(model_bytes)
    # only float values: QuantizeLinear, Shape, Cast(int) and integer arithmetic keep their types
    typed = onnx.shape_inference.infer_shapes(m)
    elem = {vi.name: vi.type.tensor_type.elem_type
            for vi in list(typed.graph.value_info) + list(typed.graph.input) + list(typed.graph.output)}
    float_values = {vi.name for vi in list(m.graph.input) + list(m.graph.output)
                    if vi.type.tensor_type.elem_type == TensorProto.FLOAT}
    float_values |= {n.output[0] for n in m.graph.node
                     if n.op_type not in ("Shape",) and elem.get(n.output[0], TensorProto.FLOAT) == TensorProto.FLOAT}
    nodes = []
    for n in m.graph.node:
        outs = list(n.output)
        renamed = [o + "__f32" if o in float_values else o for o in outs]
        n.ClearField("output")
        n.output.extend(renamed)
        nodes.append(n)
        for o, r in zip(outs, renamed):
            if o != r:
                nodes.append(helper.make_node("Cast", [r], [o + "__b16"], to=TensorProto.BFLOAT16))
                nodes.append(helper.make_node("Cast", [o + "__b16"], [o], to=TensorProto.FLOAT))
    m.graph.ClearField("node")
    m.graph.node.extend(nodes)
    for init in m.graph.initializer:  # weights are BF16 on the device too
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(_round_bf16(numpy_helper.to_array(init)), init.name))
    # int graphs: outputs of integer ops must not be cast
    if any(vi.type.tensor_type.elem_type != TensorProto.FLOAT for vi in m.graph.output):
        return model_bytes
    return m.SerializeToString()


def _round_bf16(a):
    if a.dtype != np.float32:
        return a
    bits = a.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return np.asarray(bits, np.uint64).astype(np.uint32).view(np.float32).reshape(a.shape)  # 0-d stays an array


def _rel_err(got, want):
    if want.dtype != np.float32:
        return 0.0
    fin = np.isfinite(want) & np.isfinite(got)
    w, g = want[fin].astype(np.float64), got[fin].astype(np.float64)
    denom = max(np.linalg.norm(w), 1e-3 * math.sqrt(max(w.size, 1)))
    return float(np.linalg.norm(g - w) / denom)
