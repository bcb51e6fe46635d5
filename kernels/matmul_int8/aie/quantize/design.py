"""Quantize A for the INT8 GEMM on the whole npu1 array (IRON, mlir-aie v1.4.1): qa'' = qa - c_a.

The first xclbin kernel of an INT8 MatMul (kernels/matmul_int8/README.md, "On the NPU"): BF16 rows
of A in, int8 rows out, step 1 of the contract (v = x / sa in FP32, clamp, round half to even,
+ za) with the uint8 shift c_a = 128 folded in, so that the activations fit upstream mm.cc's
int8 x int8 GEMM (../gemm). The FP32 parameter object `qparams` (sa, qmin - za, qmax - za,
za - c_a: provider/devices/xrt/int8_params.h writes it per call) reaches each tile on its second
input channel, broadcast by the memtile and held for the run, as LayerNorm's gamma. Every number
(rows per object, rounds, each shim task, the stack) is the checked design's (npu_model.rows_design,
op "quantize"). Kernel: quantize.cc. Host test: test.cpp. Executed on the IRON stand-in only.
Command line: common/aie/build_xclbin.py (design_main).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "common" / "aie"))
import build_xclbin  # noqa: E402

DESIGN_KIND = "quantize"


def core_objects(kernel, design, mlir_aie_dir):
    cols, dup = design.params["cols"], design.params.get("dup", 1)   # dup 2: weights with zero points
    return [(HERE / "quantize.cc", f"quantize_{cols}_d{dup}.o", [f"-DCOLS={cols}", f"-DDUP={dup}"])]


def program(kernel, design, stage, objects):
    import numpy as np
    from aie.iron import Kernel
    from aie.iron.controlflow import range_
    from iron_common import l1_types, rounds, rows_program, vec

    p = design.params
    r = p["rows_per_obj"]
    l1_in, l1_out = l1_types(design)
    n_rounds = rounds(design)
    n_params = design.buffers["qparams"][0]        # npu_model.QPARAMS FP32 words
    param_ty = vec(n_params, np.float32)
    quantize = Kernel("phoenix_quantize_i8", objects[0], [l1_in, param_ty, l1_out, np.int32])

    def core(x, y, s, q_k):
        prm = s.acquire(1)                            # the quantization parameters, held for the whole run
        for _ in range_(n_rounds):
            xe, ye = x.acquire(1), y.acquire(1)
            q_k(xe, prm, ye, r)
            x.release(1)
            y.release(1)
        s.release(1)

    return rows_program(design, stage.args, core, side=(n_params, np.float32), extra_args=lambda c, i: [quantize])


def test_params(kernel, design):
    return {"ROWS": kernel.M, "COLS": kernel.K, "DUP": design.params.get("dup", 1)}


if __name__ == "__main__":
    build_xclbin.design_main(sys.modules[__name__])
