"""The MatMul epilogue on the whole npu1 array (IRON, mlir-aie v1.4.1): C = bf16(gelu(alpha*acc + bias) + residual).

The second xclbin kernel of every MatMul (the first, ../gemm, leaves the FP32 accumulator in the
scratch buffer `acc`). FP32 acc rows on each tile's first input channel, led by the FP32 bias row
(each tile's first object, copied once into a local L1 buffer); the residual rows on its second
channel. Every distinct per-tile stream takes a memtile channel (6 per memtile), so with a
residual the design uses 2 rows of tiles. Every number (one row per object, tiles, rounds, each
shim task, the stack) is the checked design's (npu_model.rows_design, op "epilogue"). Kernel:
epilogue.cc (numerics of ../../emulated.cc); as upstream whole_array_iron.py does for its kernels, each
Kernel is declared with exactly the types of the objects it is called with (no residual: the 3-argument
form). Host test: test.cpp. Executed on the IRON stand-in only (docs/npu.md), never on mlir-aie.
Command line: common/aie/build_xclbin.py (design_main).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "common" / "aie"))
import build_xclbin  # noqa: E402

DESIGN_KIND = "epilogue"
GELU_MODES = {"none": -1, "gelu_erf": 0, "gelu_tanh": 1}  # epilogue.cc's GELU_MODE


def core_objects(kernel, design, mlir_aie_dir):
    """(source, object, Peano defines): one object per epilogue variant (its defines differ)."""
    cols, gelu, bias, res = design.params["cols"], GELU_MODES[kernel.epilogue], int(kernel.bias), int(kernel.residual)
    return [(HERE / "epilogue.cc", f"epilogue_{cols}_a{float(kernel.scale)!r}_g{gelu}_b{bias}_r{res}.o",
             [f"-DCOLS={cols}", f"-DALPHA={build_xclbin.c_float(kernel.scale)}", f"-DGELU_MODE={gelu}",
              f"-DHAS_BIAS={bias}", f"-DHAS_RESIDUAL={res}"])]


def program(kernel, design, stage, objects):
    import numpy as np
    from ml_dtypes import bfloat16
    from aie.iron import Buffer, Kernel
    from aie.iron.controlflow import range_
    from iron_common import l1_types, rounds, rows_program, vec

    p = design.params
    cols = p["cols"]
    l1_in, l1_out = l1_types(design)
    n_rounds = rounds(design)
    row_ty = vec(cols, np.float32)           # one acc row = one bias row
    has_side = p["side"] is not None           # the residual rows
    keep = Kernel("phoenix_epi_keep_bias", objects[0], [l1_in, row_ty])
    # epilogue.cc takes the BF16 residual row only when HAS_RESIDUAL: without one the kernel has 3
    # arguments (passing the FP32 acc object as a BF16 row is an operand-type mismatch, B4).
    epi = Kernel("phoenix_epilogue", objects[0],
                 [l1_in, row_ty, vec(cols, bfloat16), l1_out] if has_side else [l1_in, row_ty, l1_out])

    def core(x, y, *rest):
        s = rest[0] if has_side else None
        bias_buf, keep_k, epi_k = rest[-3:]
        if p["bias"]:
            b = x.acquire(1)                     # the bias row leads the acc rows: keep a copy
            keep_k(b, bias_buf)
            x.release(1)
        for _ in range_(n_rounds):
            xe, ye = x.acquire(1), y.acquire(1)
            if has_side:
                epi_k(xe, bias_buf, s.acquire(1), ye)
                s.release(1)
            else:
                epi_k(xe, bias_buf, ye)
            x.release(1)
            y.release(1)

    def extra(c, i):  # the worker's own L1 copy of the bias (placed on its tile), then the kernels
        return [Buffer(row_ty, name=f"bias_{c}_{i}"), keep, epi]

    return rows_program(design, stage.args, core, side=(cols, bfloat16) if has_side else None, extra_args=extra)


def test_params(kernel, design):
    return {"ROWS": kernel.M, "COLS": kernel.N, "ALPHA": float(kernel.scale), "GELU_MODE": GELU_MODES[kernel.epilogue],
            "HAS_BIAS": kernel.bias, "HAS_RESIDUAL": kernel.residual}


if __name__ == "__main__":
    build_xclbin.design_main(sys.modules[__name__])
