#!/usr/bin/env python3
"""Shrinks a failing fuzz DAG to a small reproducer and prints it as a Python function that
builds the model with onnx.helper:

    .venv/bin/python tools/fuzz_reduce.py 130            # seed of tests/dag_fuzz.py
    .venv/bin/python tools/fuzz_reduce.py 130 --env 1    # the second concrete shape of its dims

The failure is classified once (error message, NaN / Inf positions, relative L2 beyond the
bound, or numbers where the CPU EP fails); then, while the same class of failure persists,
graph outputs are dropped, intermediate values become graph inputs (fed what the CPU EP
computes for them), nodes whose output has the shape of an input are bypassed, and what no
output needs is pruned. Symbolic dims are pinned to the failing feed's sizes first. The
printed reproducer is run again before it is printed: what it prints reproduces."""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def classify(model: onnx.ModelProto, feeds: dict, options: dict):
    """The failure class of PhoenixNPU on this model, or None when it behaves (or when the
    CPU EP cannot run a model that is meant to be valid)."""
    import onnxruntime as ort

    import phoenix_npu
    from graph_fuzz import Reference, allowed_error, provider_share, _rel_err

    data = model.SerializeToString()
    try:
        want, sens = Reference(data).run(feeds)
    except Exception:  # noqa: BLE001
        want = None
    try:
        sess = phoenix_npu.make_session(data, device="emulator", **options)
        got = sess.run(None, feeds)
    except Exception as exc:  # noqa: BLE001
        if want is None:
            return None
        msg = str(exc).split("Status Message:")[-1].strip().splitlines()[0]
        return "error: " + re.sub(r"'[^']*'|\[[\d,]*\]|\d+", "#", msg)[:120]
    if want is None:
        try:
            ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
        except Exception:  # noqa: BLE001
            return "numbers where the CPU EP fails"
        return None
    regions = provider_share(sess)[1]
    for g, w, s in zip(got, want, sens):
        if g.shape != w.shape:
            return "shape"
        if not np.array_equal(np.isnan(g), np.isnan(w)):
            return "NaN positions"
        if not (np.array_equal(np.isposinf(g), np.isposinf(w)) and np.array_equal(np.isneginf(g), np.isneginf(w))):
            return "Inf positions"
        if _rel_err(g, w) > allowed_error(1e-2, len(model.graph.node), regions, s):
            return "relative L2 beyond the bound"
    return None


def classify_isolated(model: onnx.ModelProto, feeds: dict, options: dict):
    """classify() in a child process: "crash (signal N)" when PhoenixNPU kills the process."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        Path(d, "m.onnx").write_bytes(model.SerializeToString())
        np.savez(Path(d, "f.npz"), **feeds)
        code = (f"import sys, json, numpy as np, onnx; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                "import onnxruntime as ort; ort.set_default_logger_severity(4); from fuzz_reduce import classify; "
                f"f = dict(np.load({str(Path(d, 'f.npz'))!r})); "
                f"print(json.dumps(classify(onnx.load({str(Path(d, 'm.onnx'))!r}), f, {options!r})))")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if p.returncode < 0:
        return f"crash (signal {-p.returncode})"
    if p.returncode != 0:
        tail = p.stderr.strip().splitlines()[-1:] or [""]
        return "sanitizer report" if "Sanitizer" in p.stderr or "runtime error" in p.stderr else f"exit: {tail[0]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def pin_dims(model: onnx.ModelProto, feeds: dict):
    """Graph inputs get the feed's concrete shapes; declared output shapes are dropped."""
    m = copy.deepcopy(model)
    for vi in m.graph.input:
        dims = vi.type.tensor_type.shape.dim
        for d, n in zip(dims, feeds[vi.name].shape):
            d.Clear()
            d.dim_value = n
    for vi in m.graph.output:
        vi.type.tensor_type.ClearField("shape")
    return m


def prune(m: onnx.ModelProto, feeds: dict):
    needed = {o.name for o in m.graph.output}
    keep = []
    for n in reversed(m.graph.node):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(i for i in n.input if i)
    del m.graph.node[:]
    m.graph.node.extend(reversed(keep))
    for field in (m.graph.input, m.graph.initializer):
        alive = [x for x in field if x.name in needed]
        del field[:]
        field.extend(alive)
    for k in list(feeds):
        if k not in needed:
            del feeds[k]
    return m, feeds


def value_shapes(m: onnx.ModelProto):
    inferred = shape_inference.infer_shapes(m)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[vi.name] = (t.elem_type, [d.dim_value for d in t.shape.dim])
    for init in m.graph.initializer:
        shapes[init.name] = (init.data_type, list(init.dims))
    return shapes


def candidates(m: onnx.ModelProto, feeds: dict):
    """Smaller variants of (m, feeds), largest cuts first."""
    import onnxruntime as ort

    outs = [o.name for o in m.graph.output]
    if len(outs) > 1:
        for i in range(len(outs)):
            c = copy.deepcopy(m)
            del c.graph.output[i]
            yield prune(c, dict(feeds))
    shapes = value_shapes(m)
    produced = [o for n in m.graph.node for o in n.output if o and o in shapes]
    inits = {i.name for i in m.graph.initializer}
    # cut: an intermediate value becomes a graph input holding what the CPU EP computes for it
    probe = copy.deepcopy(m)
    extra = [o for o in produced if o not in outs and shapes[o][0] == onnx.TensorProto.FLOAT]
    for o in extra:
        probe.graph.output.append(helper.make_tensor_value_info(o, shapes[o][0], shapes[o][1]))
    try:
        values = dict(zip([o.name for o in probe.graph.output],
                          ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
                          .run(None, feeds)))
    except Exception:  # noqa: BLE001 - malformed models: no cuts
        values = {}
    for o in extra:
        if o not in values:
            continue
        c = copy.deepcopy(m)
        for n in c.graph.node:
            if o in n.output:
                c.graph.node.remove(n)
                break
        c.graph.input.append(helper.make_tensor_value_info(o, shapes[o][0], shapes[o][1]))
        f = dict(feeds)
        f[o] = values[o]
        yield prune(c, f)
    # truncate: an intermediate value becomes the only graph output
    for o in extra:
        c = copy.deepcopy(m)
        del c.graph.output[:]
        c.graph.output.append(helper.make_tensor_value_info(o, shapes[o][0], shapes[o][1]))
        yield prune(c, dict(feeds))
    # bypass: a node whose output has the shape of one of its (non-constant) inputs
    for idx, n in enumerate(m.graph.node):
        if len(n.output) != 1 or n.output[0] not in shapes:
            continue
        for i in n.input:
            if i and i not in inits and shapes.get(i) == shapes[n.output[0]] and i not in outs:
                c = copy.deepcopy(m)
                del c.graph.node[idx]
                for other in c.graph.node:
                    for k, name in enumerate(other.input):
                        if name == n.output[0]:
                            other.input[k] = i
                for k, vi in enumerate(c.graph.output):
                    if vi.name == n.output[0]:
                        vi.name = i
                yield prune(c, dict(feeds))
                break


def reduce(m: onnx.ModelProto, feeds: dict, options: dict, kind: str, log=print):
    isolated = not kind or kind.startswith(("crash", "sanitizer", "exit"))
    check = classify_isolated if isolated else classify
    changed = True
    while changed:
        changed = False
        for c, f in candidates(m, feeds):
            if len(c.graph.node) == 0 or (len(c.graph.node) >= len(m.graph.node) and
                                          len(c.graph.output) >= len(m.graph.output)):
                continue
            if check(c, f, options) == kind:
                m, feeds, changed = c, f, True
                log(f"  {len(m.graph.node)} nodes, {len(m.graph.output)} outputs")
                break
    return m, feeds


def _array_code(a: np.ndarray, name: str, literal_limit: int) -> str:
    if a.dtype != np.float32 or a.size <= literal_limit:
        body = np.array2string(a, separator=", ", threshold=10**6, floatmode="unique").replace("\n", "")
        body = body.replace("nan", "np.nan").replace("inf", "np.inf")
        return f"np.array({body}, np.{a.dtype})"
    finite = a[np.isfinite(a)]
    code = f"(rng.standard_normal({list(a.shape)}) * {float(finite.std()) if finite.size else 1.0:.3g})" \
           f".astype(np.float32)"
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        return f"_special({code}, {bad.tolist()}, {a.flat[bad].tolist()})".replace("nan", "np.nan") \
            .replace("inf", "np.inf")
    return code


def to_python(m: onnx.ModelProto, feeds: dict, options: dict, literal_limit: int = 16) -> str:
    lines = ["import numpy as np", "import onnx", "from onnx import TensorProto, helper, numpy_helper", "",
             "", "def _special(a, positions, values):", "    a.flat[positions] = values", "    return a", "",
             "", "def model_and_feeds():", "    rng = np.random.default_rng(0)", "    nodes = ["]
    for n in m.graph.node:
        attrs = ", ".join(f"{a.name}={helper.get_attribute_value(a)!r}".replace("b'", "'")
                          for a in n.attribute)
        lines.append(f"        helper.make_node({n.op_type!r}, {list(n.input)!r}, {list(n.output)!r}"
                     f"{', ' + attrs if attrs else ''}),")
    lines.append("    ]")
    lines.append("    inits = {")
    for init in m.graph.initializer:
        lines.append(f"        {init.name!r}: {_array_code(numpy_helper.to_array(init), init.name, literal_limit)},")
    lines.append("    }")

    def vi(v):
        t = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim] \
            if t.HasField("shape") else None
        return f"helper.make_tensor_value_info({v.name!r}, {t.elem_type}, {shape!r})"

    lines.append(f"    inputs = [{', '.join(vi(v) for v in m.graph.input)}]")
    lines.append(f"    outputs = [{', '.join(vi(v) for v in m.graph.output)}]")
    lines += ["    graph = helper.make_graph(nodes, 'repro', inputs, outputs,",
              "                              [numpy_helper.from_array(v, k) for k, v in inits.items()])",
              f"    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', "
              f"{m.opset_import[0].version})])",
              "    model.ir_version = 10",
              "    feeds = {"]
    for k, v in feeds.items():
        lines.append(f"        {k!r}: {_array_code(np.asarray(v), k, literal_limit)},")
    lines += ["    }", f"    return model.SerializeToString(), feeds  # provider options: {options}", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("seed", type=int)
    ap.add_argument("--env", type=int, help="which concrete shape of the symbolic dims (default: the first failing)")
    args = ap.parse_args()
    import onnxruntime as ort
    ort.set_default_logger_severity(4)
    from dag_fuzz import random_dag

    case = random_dag(args.seed)
    options = case.config.options()
    kind = None
    for i, feeds in enumerate(case.feeds):
        if args.env is not None and i != args.env:
            continue
        m = pin_dims(onnx.load_from_string(case.model), feeds)
        kind = classify_isolated(m, feeds, options)
        if kind:
            break
    if not kind:
        print(f"seed {args.seed}: no failure to reduce ({case.desc}; {case.config})")
        return 1
    print(f"seed {args.seed}: {kind} ({case.desc}; {case.config}); {len(m.graph.node)} nodes")
    m, feeds = reduce(m, dict(feeds), options, kind)
    for limit in (16, 10**6):  # random weights first; every value literally if that does not reproduce
        code = to_python(m, feeds, options, limit)
        scope = {}
        exec(compile(code, "repro", "exec"), scope)  # noqa: S102 - our own generated code
        model, f = scope["model_and_feeds"]()
        if classify_isolated(onnx.load_from_string(model), f, options) == kind:
            print(f"# seed {args.seed}: {kind}\n{code}")
            return 0
    print("# the reduced model reproduces only with its exact values; printed anyway")
    print(code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
