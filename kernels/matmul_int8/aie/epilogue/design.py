"""The INT8 MatMul's dequantizing epilogue on the whole npu1 array (IRON, mlir-aie v1.4.1):
C = bf16(gelu(alpha * float(acc + corr[n]) * s_ab[n] + bias[n]) + residual).

The third xclbin kernel of an INT8 MatMul (kernels/matmul_int8/README.md, "On the NPU"): the INT8
GEMM (../gemm) leaves S = sum qa'' qb in the int32 scratch `acc`; this stage adds the activation
zero-point correction corr[n] = (c_a - za) * colsum(qb)[n] (wrapping 32-bit: exact, the true sum
fits int32), converts to FP32 (round to nearest even), multiplies by s_ab[n] = sa * sb[n], then the
MatMul epilogue and ONE BF16 rounding (steps 3-5, 7 of the contract). The column parameters
(corr, s_ab and, with a bias, bias; `colparams`, [rows][4][N] 32-bit words written by
provider/devices/xrt/int8_params.h) lead the acc rows on each tile's first input channel, one
object per row, each copied once into the tile's own L1 buffers; the residual rows come on the
second channel (then 2 rows of tiles, as ../../../matmul/aie/epilogue). Every number is the checked
design's (npu_model.rows_design, op "epilogue_i8"). Kernel: epilogue.cc. Host test: test.cpp.
Executed on the IRON stand-in only (docs/npu.md), never on mlir-aie.
Command line: common/aie/build_xclbin.py (design_main).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "common" / "aie"))
import build_xclbin  # noqa: E402

DESIGN_KIND = "epilogue_i8"
GELU_MODES = {"none": -1, "gelu_erf": 0, "gelu_tanh": 1}  # epilogue.cc's GELU_MODE


def core_objects(kernel, design, mlir_aie_dir):
    cols, gelu, bias, res = design.params["cols"], GELU_MODES[kernel.epilogue], int(kernel.bias), int(kernel.residual)
    return [(HERE / "epilogue.cc", f"epilogue_i8_{cols}_a{float(kernel.scale)!r}_g{gelu}_b{bias}_r{res}.o",
             [f"-DCOLS={cols}", f"-DALPHA={build_xclbin.c_float(kernel.scale)}", f"-DGELU_MODE={gelu}",
              f"-DHAS_BIAS={bias}", f"-DHAS_RESIDUAL={res}"])]


def program(kernel, design, stage, objects):
    import numpy as np
    from ml_dtypes import bfloat16
    from aie.iron import Buffer, Kernel
    from aie.iron.controlflow import range_
    from iron_common import l1_types, rounds, rows_program, vec

    p = design.params
    cols, n_col = p["cols"], p["col_params"]
    l1_in, l1_out = l1_types(design)
    n_rounds = rounds(design)
    row_ty = vec(cols, np.int32)               # one acc row = one column-parameter row (32-bit words)
    has_side = p["side"] is not None           # the residual rows
    keep = Kernel("phoenix_epi8_keep_row", objects[0], [l1_in, row_ty])
    epi = Kernel("phoenix_epilogue_i8", objects[0],
                 [l1_in, row_ty, row_ty, row_ty, vec(cols, bfloat16), l1_out] if has_side
                 else [l1_in, row_ty, row_ty, row_ty, l1_out])

    def core(x, y, *rest):
        s = rest[0] if has_side else None
        corr, scale, bias, keep_k, epi_k = rest[-5:]
        for dst in (corr, scale, bias)[:n_col]:  # the column-parameter rows lead the acc rows: keep copies
            row = x.acquire(1)
            keep_k(row, dst)
            x.release(1)
        for _ in range_(n_rounds):
            xe, ye = x.acquire(1), y.acquire(1)
            if has_side:
                epi_k(xe, corr, scale, bias, s.acquire(1), ye)
                s.release(1)
            else:
                epi_k(xe, corr, scale, bias, ye)
            x.release(1)
            y.release(1)

    def extra(c, i):  # the worker's own L1 copies of corr, s_ab, bias (placed on its tile), then the kernels
        return [Buffer(row_ty, name=f"corr_{c}_{i}"), Buffer(row_ty, name=f"scale_{c}_{i}"),
                Buffer(row_ty, name=f"bias_{c}_{i}"), keep, epi]

    return rows_program(design, stage.args, core, side=(cols, bfloat16) if has_side else None, extra_args=extra)


def test_params(kernel, design):
    return {"ROWS": kernel.M, "K": kernel.K, "COLS": kernel.N, "ALPHA": float(kernel.scale),
            "GELU_MODE": GELU_MODES[kernel.epilogue], "HAS_BIAS": kernel.bias, "HAS_RESIDUAL": kernel.residual}


if __name__ == "__main__":
    build_xclbin.design_main(sys.modules[__name__])
