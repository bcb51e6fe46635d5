"""Softmax over rows of BF16 (scale folded in) on the whole npu1 array (IRON, mlir-aie v1.4.1).

One input and one output channel per tile. At 1500 columns a row is 3000 bytes (not a multiple
of 32): the checked design puts ONE row in each L1 object, which the allocator aligns to 32
bytes, so every vector load of softmax.cc is aligned (npu_model.rows_design rejects two rows per
object). Every number (rows per object, rounds, each shim task, the stack) is the checked
design's. Kernel: softmax.cc (numerics of ../emulated.cc). Host test: test.cpp. NOT YET RUN.
Command line: common/aie/build_xclbin.py (design_main).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "common" / "aie"))
import build_xclbin  # noqa: E402

DESIGN_KIND = "softmax"


def core_objects(kernel, design, mlir_aie_dir):
    cols = design.params["cols"]
    return [(HERE / "softmax.cc", f"softmax_{cols}_s{float(kernel.scale)!r}.o",
             [f"-DCOLS={cols}", f"-DSCALE={build_xclbin.c_float(kernel.scale)}"])]


def program(kernel, design, stage, objects):
    import numpy as np
    from aie.iron import Kernel
    from iron_common import l1_types, rounds, rows_program, streaming_core

    p = design.params
    r = p["rows_per_obj"]
    l1_in, l1_out = l1_types(design)
    sm = Kernel("phoenix_softmax_bf16", objects[0], [l1_in, l1_out, np.int32])
    return rows_program(design, stage.args, streaming_core(rounds(design), r), extra_args=lambda c, i: [sm])


def test_params(kernel, design):
    return {"ROWS": kernel.rows, "COLS": kernel.cols, "SCALE": float(kernel.scale)}


if __name__ == "__main__":
    build_xclbin.design_main(sys.modules[__name__])
