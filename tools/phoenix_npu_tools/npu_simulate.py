"""`phoenix-npu plan --simulate`: every manifest stage's IRON program EXECUTED, and its output
compared with the emulated device's.

Where mlir-aie (the pinned `mlir_aie` wheel, `aie.iron`) and `aiecc` are installed, each stage's
program() is run for real and compiled with `aiecc --get-npu-insts` (compile-only: no NPU, no
xclbin). Everywhere else (every machine of this project so far) the programs run on the IRON
stand-in, kernels/common/aie/iron_standin/, which checks IRON's and npu1's rules and moves the
data through numpy buffers, each kernel call computed by iron_standin/reference.py (float64
numpy of the kernel's numerics contract, one BF16 rounding). Each design's output is compared,
on seeded random BF16 inputs, with the provider's emulated device (an ONNX Runtime session on
device=emulator running the same op). What the stand-in proves and cannot: docs/npu.md, "The
IRON stand-in".

The designs live in the source tree (kernels/), which the wheel does not install: run from a
checkout, or name it with --kernels / $PHOENIX_NPU_KERNELS.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def find_kernels_dir(explicit: str | None = None) -> Path | None:
    """The kernels/ folder that holds common/aie/iron_standin (explicit, $PHOENIX_NPU_KERNELS, the
    current directory or a parent, or the checkout this module was imported from)."""
    def holds_designs(c) -> bool:
        return bool(c) and (Path(c) / "common" / "aie" / "iron_standin" / "__init__.py").is_file()

    for named in (explicit, os.environ.get("PHOENIX_NPU_KERNELS")):
        if named:  # a folder the user named is the answer, or the error: never guessed past
            return Path(named).resolve() if holds_designs(named) else None
    cands = []
    here = Path.cwd().resolve()
    cands += [p / "kernels" for p in (here, *here.parents)] + [here]
    cands.append(Path(__file__).resolve().parents[2] / "kernels")
    return next((Path(c).resolve() for c in cands if holds_designs(c)), None)


def _kernel_modules(kernels_dir: Path):
    aie_dir = str(kernels_dir / "common" / "aie")
    if aie_dir not in sys.path:
        sys.path.insert(0, aie_dir)
    import build_xclbin
    import iron_standin
    return build_xclbin, iron_standin


def real_toolchain() -> str | None:
    """Why the real IRON cannot run here (None when mlir_aie's aie.iron and aiecc are both present)."""
    if importlib.util.find_spec("aie") is None:
        return "mlir_aie is not installed"
    try:
        import aie.iron  # noqa: F401
    except Exception as e:  # pragma: no cover - only with a broken wheel
        return f"aie.iron does not import: {e}"
    if shutil.which("aiecc") is None:
        return "aiecc is not on PATH"
    return None


@dataclass
class StageResult:
    stage: str
    design: str
    executed: bool
    max_abs: float = float("nan")      # against `against`
    max_ulp: int = -1                  # BF16 ulps (outputs in BF16), -1 for FP32 outputs
    bad: int = 0                       # elements beyond the tolerance
    against: str = ""
    report: dict = field(default_factory=dict)
    error: str = ""


def _bf16(x):
    from ml_dtypes import bfloat16
    return np.asarray(x, np.float32).astype(bfloat16)


def _emulated(nodes, inputs, outputs, inits, feeds, opset=17):
    """Run a small ONNX graph on the provider's emulated device; its only output."""
    from onnx import TensorProto, helper, numpy_helper
    from phoenix_npu.session import make_session
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    graph = helper.make_graph(nodes, "sim", [vi(n, s) for n, s in inputs], [vi(n, s) for n, s in outputs],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    sess = make_session(model.SerializeToString(), device="emulator")
    return sess.run(None, feeds)[0]


# An element matches when it is within TOLERANCE_ULP BF16 ulps OR ATOL of the emulated device (the
# host tests' tolerance, docs/npu.md 2a): the reference bodies' float64 maths and the contract's
# FP32 steps may round differently (reference.py); a data movement error is off by far more.
TOLERANCE_ULP = 2
ATOL = 1e-5


def _compare_bf16(got, want) -> tuple[float, int, int]:
    """(max abs error, max BF16 ulps among elements more than ATOL off (0 if none: near zero a
    tiny absolute difference is many ulps), elements beyond both tolerances)."""
    want = _bf16(np.asarray(want, np.float32).reshape(-1))
    got = got.reshape(-1)
    if np.isnan(got.astype(np.float32)).any():
        return float("inf"), 1 << 16, int(np.isnan(got.astype(np.float32)).sum())
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    def ordered(x):
        i = np.asarray(x).view(np.uint16).astype(np.int32)
        return np.where(i & 0x8000, 0x8000 - (i & 0x7FFF), 0x8000 + i)
    ulps = np.abs(ordered(got) - ordered(want))
    far = diff > ATOL
    return float(diff.max()), int(ulps[far].max()) if far.any() else 0, int(((ulps > TOLERANCE_ULP) & far).sum())


def planned_as_built(kernel, stages):
    """(kernel, [design], [stage]) of a manifest kernel exactly as a design reads them at build
    time: planned, written in the design parameters format and read back by the kernels' own
    reader (kernels/common/aie/design_params.py, on sys.path after _kernel_modules). Unchecked:
    the caller checks, so that a violation is reported per stage."""
    import design_params as kernel_side

    from .design_params import stage_records
    wanted = {s.kernel_name for s in stages}
    records = [r for r in stage_records(kernel, check=False) if r["stage"]["kernel_name"] in wanted]
    triples = kernel_side.stages_from({"version": kernel_side.VERSION, "stages": records})
    return (triples[0][0] if triples else kernel), [d for _, d, _ in triples], [s for _, _, s in triples]


def simulate_kernel(kernel, stages, kernels_dir: Path, seed: int = 0) -> list[StageResult]:
    """Run every stage of one manifest kernel on the stand-in (in order: a MatMul's GEMM feeds its
    epilogue) and compare with the emulated device."""
    from onnx import helper
    from .npu_model import check_design
    build_xclbin, standin = _kernel_modules(kernels_dir)
    rng = np.random.default_rng(seed)
    kernel, designs, stages = planned_as_built(kernel, stages)
    out, buffers = [], {}

    def run(design, stage):
        if check_design(design):
            raise standin.StandinError(f"{design.name} violates npu1's limits: {check_design(design)}")
        module = build_xclbin.load_design(build_xclbin.design_kind(design))
        result, report = standin.run_stage(module, kernel, design, stage,
                                           {a: buffers[a] for a in stage.args if a in buffers})
        buffers.update(result)
        return report

    n = helper.make_node
    try:
        if kernel.op == "matmul":
            M, K, N = kernel.M, kernel.K, kernel.N
            buffers["A"] = _bf16(rng.standard_normal(M * K))
            buffers["B"] = _bf16(rng.standard_normal(K * N) / np.sqrt(K))
            buffers["bias"] = _bf16(rng.standard_normal(N)).astype(np.float32)
            buffers["residual"] = _bf16(rng.standard_normal(M * N))
            rep = run(designs[0], stages[0])
            exact = buffers["A"].astype(np.float64).reshape(M, K) @ buffers["B"].astype(np.float64).reshape(K, N)
            acc = buffers["acc"].astype(np.float64).reshape(M, N)
            # FP32 accumulation in any order: |acc - exact| <= K u sum|a b| / (1 - K u), u = 2^-24 (test.cpp's bound)
            u = 2.0 ** -24
            bound = K * u / (1 - K * u) * (np.abs(buffers["A"].astype(np.float64).reshape(M, K))
                                           @ np.abs(buffers["B"].astype(np.float64).reshape(K, N)))
            err = np.abs(acc - exact)
            out.append(StageResult(stages[0].kernel_name, designs[0].name, True, float(np.nanmax(err)), -1,
                                   int((~(err <= bound)).sum()), "float64 A @ B (FP32 summation bound)", rep))
            rep = run(designs[1], stages[1])
            nodes, inputs = [n("MatMul", ["a", "w"], ["h"])], [("a", [1, M, K])]
            last, opset = "h", 17
            if float(kernel.scale) != 1.0:
                nodes.append(n("Mul", [last, "alpha"], ["hs"]))
                last = "hs"
            if kernel.bias:
                nodes.append(n("Add", [last, "b"], ["hb"]))
                last = "hb"
            if kernel.epilogue != "none":
                nodes.append(n("Gelu", [last], ["hg"], approximate="tanh" if kernel.epilogue == "gelu_tanh" else "none"))
                last, opset = "hg", 20
            feeds = {"a": buffers["A"].astype(np.float32).reshape(1, M, K)}
            if kernel.residual:
                nodes.append(n("Add", ["r", last], ["hr"]))
                last = "hr"
                inputs.append(("r", [1, M, N]))
                feeds["r"] = buffers["residual"].astype(np.float32).reshape(1, M, N)
            nodes[-1].output[0] = "y"
            inits = {"w": buffers["B"].astype(np.float32).reshape(K, N), "b": buffers["bias"],
                     "alpha": np.float32(kernel.scale)}
            inits = {k: v for k, v in inits.items() if any(k in nd.input for nd in nodes)}
            want = _emulated(nodes, inputs, [("y", [1, M, N])], inits, feeds, opset)
            out.append(StageResult(stages[1].kernel_name, designs[1].name, True, *_compare_bf16(buffers["C"], want),
                                   "emulated MatMul (+ epilogue)", rep))
        elif kernel.op == "matmul_int8":
            # uint8 activations (ORT's default) where there is no residual, int8 (Quark's symmetric) where
            # there is: whisper-base's four linear layers exercise both shifts (c_a = 128 and 0).
            out += _simulate_int8(kernel, stages, designs, run, buffers, rng, signed=bool(kernel.residual))
        elif kernel.op == "layernorm":
            R, C = kernel.rows, kernel.cols
            buffers["x"] = _bf16(rng.standard_normal(R * C) * 3 + 1)
            buffers["gamma"] = _bf16(rng.standard_normal(C)).astype(np.float32)
            buffers["beta"] = _bf16(rng.standard_normal(C)).astype(np.float32)
            rep = run(designs[0], stages[0])
            ins = ["x", "g"] + (["b"] if kernel.beta else [])
            want = _emulated([n("LayerNormalization", ins, ["y"], axis=-1, epsilon=float(kernel.epsilon))],
                             [("x", [1, R, C])], [("y", [1, R, C])],
                             {"g": buffers["gamma"], **({"b": buffers["beta"]} if kernel.beta else {})},
                             {"x": buffers["x"].astype(np.float32).reshape(1, R, C)})
            out.append(StageResult(stages[0].kernel_name, designs[0].name, True, *_compare_bf16(buffers["y"], want),
                                   "emulated LayerNormalization", rep))
        elif kernel.op == "softmax":
            R, C = kernel.rows, kernel.cols
            buffers["x"] = _bf16(rng.standard_normal(R * C) * 4)
            rep = run(designs[0], stages[0])
            nodes, inits = [n("Softmax", ["x"], ["y"], axis=-1)], {}
            if float(kernel.scale) != 1.0:
                nodes = [n("Mul", ["x", "s"], ["xs"]), n("Softmax", ["xs"], ["y"], axis=-1)]
                inits = {"s": np.float32(kernel.scale)}
            want = _emulated(nodes, [("x", [1, R, C])], [("y", [1, R, C])], inits,
                             {"x": buffers["x"].astype(np.float32).reshape(1, R, C)}, 13 if not inits else 17)
            out.append(StageResult(stages[0].kernel_name, designs[0].name, True, *_compare_bf16(buffers["y"], want),
                                   "emulated Softmax", rep))
        elif kernel.op == "gelu":
            chunk = designs[0].params["cols"]
            buffers["x"] = _bf16(rng.standard_normal(kernel.n) * 3)
            rep = run(designs[0], stages[0])
            rows = kernel.n // chunk
            want = _emulated([n("Gelu", ["x"], ["y"], approximate="tanh" if kernel.mode == "tanh" else "none")],
                             [("x", [1, rows, chunk])], [("y", [1, rows, chunk])], {},
                             {"x": buffers["x"].astype(np.float32).reshape(1, rows, chunk)}, 20)
            out.append(StageResult(stages[0].kernel_name, designs[0].name, True, *_compare_bf16(buffers["y"], want),
                                   "emulated Gelu", rep))
        else:
            raise ValueError(f"no simulation for op {kernel.op}")
    except Exception as e:  # the stand-in's verdict on this stage, reported (not raised) by the CLI
        done = {r.stage for r in out}
        for d, s in zip(designs, stages):
            if s.kernel_name not in done:
                out.append(StageResult(s.kernel_name, d.name, False, error=f"{type(e).__name__}: {e}"))
                break
    return out


def int8_stage_params(sa: float, za: int, signed: bool, B, sb, bias, copies: int = 4, zb=None):
    """qparams and colparams of the INT8 MatMul's stages, as provider/devices/xrt/int8_params.h
    computes them: qparams [sa, qmin - za, qmax - za, za - c_a, 0, 0, 0, 0] (FP32), colparams
    [rows][copies][N] 32-bit words: corr[n] = (c_a - za) * colsum(B - zb)[n] (mod 2^32; zb the weights'
    zero points or None), s_ab[n] = sa * sb[n] (FP32) and, with a bias, bias[n] (FP32 bits)."""
    c_a = 0 if signed else 128
    qmin, qmax = (-128, 127) if signed else (0, 255)
    qparams = np.array([sa, qmin - za, qmax - za, za - c_a, 0, 0, 0, 0], np.float32)
    colsum = B.astype(np.int64).sum(axis=0)
    if zb is not None:
        colsum = colsum - B.shape[0] * np.broadcast_to(np.asarray(zb, np.int64), colsum.shape)
    corr = (((c_a - za) * colsum) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    s_ab = (np.float32(sa) * np.asarray(sb, np.float32)).astype(np.float32)
    rows = [corr, s_ab.view(np.int32)] + ([np.asarray(bias, np.float32).view(np.int32)] if bias is not None else [])
    colparams = np.stack([np.tile(r, (copies, 1)) for r in rows]).reshape(-1).astype(np.int32)
    return qparams, colparams


def zero_point_weights(B, zb):
    """B' = [qb; -zb] (int8 [2K][N]) of a weight_zero_points kernel, as int8_params.h ZeroPointWeights."""
    K, N = B.shape
    return np.concatenate([B, np.tile(-np.asarray(zb, np.int16).reshape(1, -1), (K, 1)).astype(np.int8)], axis=0)


def _simulate_int8(kernel, stages, designs, run, buffers, rng, signed: bool = False) -> list:
    """The INT8 MatMul's three stages on the stand-in: quantize (qa'' exactly ORT's CPU QuantizeLinear
    minus c_a), the INT8 GEMM (acc exactly the integer sum), the epilogue (C against the emulated
    device's MatMulInt8 on the same QDQ graph: the same bits except where GELU's float64 reference
    body and the contract's FP32 steps round differently). A weight_zero_points kernel: per-channel
    weight zero points in the QDQ graph; qa is [qa'' | qa''] and the GEMM runs on B' = [qb; -zb]."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from phoenix_npu import counters, reset_counters
    M, K, N = kernel.M, kernel.K, kernel.N
    out = []
    a = _bf16(rng.standard_normal(M * K) * 2)
    sa = np.float32(np.abs(a.astype(np.float32)).max() / 100.0)
    za = 0 if signed else int(rng.integers(100, 156))
    B = rng.integers(-128, 128, size=(K, N)).astype(np.int8)
    sb = (rng.uniform(0.5, 1.5, N) / (64.0 * np.sqrt(K))).astype(np.float32)
    bias = _bf16(rng.standard_normal(N)).astype(np.float32) if kernel.bias else None
    zp = getattr(kernel, "weight_zero_points", False)
    zb = rng.integers(-127, 128, size=N).astype(np.int8) if zp else None
    qparams, colparams = int8_stage_params(float(sa), za, signed, B, sb, bias, zb=zb)
    Bg = zero_point_weights(B, zb) if zp else B          # what the GEMM stage reads
    buffers.update(A=a, qparams=qparams, B=Bg.reshape(-1), colparams=colparams,
                   residual=_bf16(rng.standard_normal(M * N)))
    # 1. quantize: against ORT's CPU QuantizeLinear (the contract's step 1 is its arithmetic)
    rep = run(designs[0], stages[0])
    qt = TensorProto.INT8 if signed else TensorProto.UINT8
    g = helper.make_graph([helper.make_node("QuantizeLinear", ["a", "s", "z"], ["q"])], "q",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [M, K])],
                          [helper.make_tensor_value_info("q", qt, [M, K])],
                          [numpy_helper.from_array(np.float32(sa), "s"),
                           numpy_helper.from_array(np.array(za, np.int8 if signed else np.uint8), "z")])
    mdl = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    mdl.ir_version = 10
    q_ort = ort.InferenceSession(mdl.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"a": a.astype(np.float32).reshape(M, K)})[0].astype(np.int32).reshape(-1)
    c_a = 0 if signed else 128
    want_qa = (q_ort - c_a).reshape(M, 1, K)
    want_qa = np.tile(want_qa, (1, 2 if zp else 1, 1)).reshape(-1)   # [qa'' | qa''] for weights with zero points
    diff = np.abs(buffers["qa"].astype(np.int32) - want_qa)
    out.append(StageResult(stages[0].kernel_name, designs[0].name, True, float(diff.max()), -1, int((diff != 0).sum()),
                           "ORT CPU QuantizeLinear - c_a (exact integers)", rep))
    # 2. INT8 GEMM: the exact integer sum
    rep = run(designs[1], stages[1])
    exact = buffers["qa"].astype(np.int64).reshape(M, -1) @ Bg.astype(np.int64)
    diff = np.abs(buffers["acc"].astype(np.int64).reshape(M, N) - exact)
    out.append(StageResult(stages[1].kernel_name, designs[1].name, True, float(diff.max()), -1, int((diff != 0).sum()),
                           "exact integer sum of [qa'' | qa''] x [qb; -zb]" if zp else "exact integer sum of qa'' x qb",
                           rep))
    # 3. epilogue: against the emulated device running the QDQ MatMul (MatMulInt8 on device=emulator)
    rep = run(designs[2], stages[2])
    n = helper.make_node
    nodes = [n("QuantizeLinear", ["a", "sa", "za"], ["aq"]), n("DequantizeLinear", ["aq", "sa", "za"], ["adq"]),
             n("DequantizeLinear", ["wq", "sb"] + (["wz"] if zp else []), ["w"], axis=1), n("MatMul", ["adq", "w"], ["h"])]
    last, opset = "h", 17
    if kernel.bias:
        nodes.append(n("Add", [last, "bias"], ["hb"]))
        last = "hb"
    if kernel.epilogue != "none":
        nodes.append(n("Gelu", [last], ["hg"], approximate="tanh" if kernel.epilogue == "gelu_tanh" else "none"))
        last, opset = "hg", 20
    inputs, feeds = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, M, K])], \
        {"a": a.astype(np.float32).reshape(1, M, K)}
    if kernel.residual:
        nodes.append(n("Add", ["r", last], ["hr"]))
        last = "hr"
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, M, N]))
        feeds["r"] = buffers["residual"].astype(np.float32).reshape(1, M, N)
    nodes[-1].output[0] = "y"
    inits = [numpy_helper.from_array(np.float32(sa), "sa"),
             numpy_helper.from_array(np.array(za, np.int8 if signed else np.uint8), "za"),
             numpy_helper.from_array(B, "wq"), numpy_helper.from_array(sb, "sb")]
    if kernel.bias:
        inits.append(numpy_helper.from_array(bias, "bias"))
    if zp:
        inits.append(numpy_helper.from_array(zb, "wz"))
    g = helper.make_graph(nodes, "int8", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, M, N])],
                          inits)
    mdl = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    mdl.ir_version = 10
    from phoenix_npu.session import make_session
    reset_counters()
    sess = make_session(mdl.SerializeToString(), device="emulator")   # alive while its counters are read
    want = sess.run(None, feeds)[0]
    kinds = counters()["regions"][-1]["kernels"]
    del sess
    if kinds.get("MatMulInt8", {}).get("launches") != 1 or "MatMul" in kinds:
        raise RuntimeError(f"the emulated device did not run the QDQ graph as one MatMulInt8: {sorted(kinds)}")
    out.append(StageResult(stages[2].kernel_name, designs[2].name, True, *_compare_bf16(buffers["C"], want),
                           "emulated MatMulInt8 (same QDQ graph)", rep))
    return out


def compile_real(kernel, stages, kernels_dir: Path) -> list[str]:  # pragma: no cover - needs mlir_aie + aiecc
    """Where the pinned mlir_aie is installed: each stage's program() for real, then `aiecc
    --get-npu-insts` (compile-only, as upstream lit tests under REQUIRES: peano). Returns errors."""
    build_xclbin, _ = _kernel_modules(kernels_dir)
    kernel, designs, stages = planned_as_built(kernel, stages)
    errors = []
    for design, stage in zip(designs, stages):
        module = build_xclbin.load_design(build_xclbin.design_kind(design))
        objs = [o for _, o, _ in module.core_objects(kernel, design, Path(os.environ.get("MLIR_AIE_DIR", ".")))]
        with tempfile.TemporaryDirectory() as tmp:
            mlir = Path(tmp) / f"{stage.kernel_name}.mlir"
            try:
                mlir.write_text(str(module.program(kernel, design, stage, objs)))
                subprocess.run(["aiecc", "--alloc-scheme=basic-sequential", "--no-xchesscc", "--no-xbridge",
                                "--get-npu-insts", f"--npu-insts-name={stage.kernel_name}.bin", f"--tmpdir={tmp}/prj",
                                mlir.name], cwd=tmp, check=True, capture_output=True, text=True, timeout=600)
            except Exception as e:
                errors.append(f"{stage.kernel_name}: {type(e).__name__}: {getattr(e, 'stderr', '') or e}")
    return errors


def simulate_manifest(manifest_path=None, kernels_dir: Path | None = None, seed: int = 0) -> list[StageResult]:
    from phoenix_npu.manifest import load_manifest
    m = load_manifest(manifest_path, check_artifacts=False)
    results = []
    for k in m.kernels:
        results += simulate_kernel(k, k.stages, kernels_dir, seed)
    return results


def run(args) -> int:
    kernels_dir = find_kernels_dir(getattr(args, "kernels", None))
    if kernels_dir is None:
        print("phoenix-npu plan --simulate: the IRON designs are in the source tree (kernels/), which the wheel "
              "does not install; run from a checkout or pass --kernels DIR (or set PHOENIX_NPU_KERNELS)")
        return 2
    why = real_toolchain()
    print(f"IRON designs of {kernels_dir}: "
          + ("executed on the IRON stand-in (kernels/common/aie/iron_standin; " + why + "): numpy data movement, "
             "reference kernel bodies; no timing, locks or real DMA" if why else "mlir_aie and aiecc found"))
    failures = 0
    if why is None:  # pragma: no cover - needs the toolchain
        from phoenix_npu.manifest import load_manifest
        for k in load_manifest(args.manifest, check_artifacts=False).kernels:
            for e in compile_real(k, k.stages, kernels_dir):
                print(f"  COMPILE FAILED {e}")
                failures += 1
    results = simulate_manifest(args.manifest, kernels_dir, getattr(args, "seed", 0))
    print(f"  {'stage':34s} {'executed':8s} {'max abs err':>12s} {'max ulp':>7s}  against   (ulp: BF16 ulps where abs > {ATOL})")
    for r in results:
        if r.executed:
            ulp = "-" if r.max_ulp < 0 else str(r.max_ulp)
            print(f"  {r.stage:34s} {'yes':8s} {r.max_abs:12.3e} {ulp:>7s}  {r.against}  "
                  f"[{r.report.get('tasks')} shim tasks, {r.report.get('kernel_calls')} kernel calls]")
        else:
            failures += 1
            print(f"  {r.stage:34s} {'NO':8s} {'':12s} {'':7s}  {r.error}")
    bad = [r for r in results if r.executed and r.bad]
    for r in bad:
        print(f"  MISMATCH {r.stage}: {r.bad} elements beyond {TOLERANCE_ULP} BF16 ulp and {ATOL} abs of {r.against}")
    failures += len(bad)
    print(f"{sum(r.executed for r in results)} of {len(results)} stages executed; "
          + (f"every output within {TOLERANCE_ULP} BF16 ulp or {ATOL} abs of the reference" if not failures
             else f"{failures} failed"))
    return 1 if failures else 0
