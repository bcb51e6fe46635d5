"""GELU (erf or tanh form) over BF16 on the whole npu1 array (IRON, mlir-aie v1.4.1).

The n elements are cut into chunks (npu_model.designs_for: the largest of 2048 / 1024 / 512 /
256 that divides n) and the chunks stream as rows of a row design: one input and one output
channel per tile. Every number (chunk, rows per object, rounds, each shim task, the stack) is the
checked design's. Kernel: gelu.cc (numerics of ../emulated.cc). Host test: test.cpp. NOT YET RUN.
Command line: common/aie/build_xclbin.py (design_main).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "common" / "aie"))
import build_xclbin  # noqa: E402

DESIGN_KIND = "gelu"
MODES = {"erf": 0, "tanh": 1}  # gelu.cc's MODE


def core_objects(kernel, design, mlir_aie_dir):
    return [(HERE / "gelu.cc", f"gelu_{kernel.mode}.o", [f"-DMODE={MODES[kernel.mode]}"])]


def program(kernel, design, stage, objects):
    import numpy as np
    from aie.iron import Kernel
    from iron_common import l1_types, rounds, rows_program, streaming_core

    p = design.params
    per_object = p["rows_per_obj"] * p["cols"]   # elements per L1 object
    l1_in, l1_out = l1_types(design)
    gelu = Kernel("phoenix_gelu_bf16", objects[0], [l1_in, l1_out, np.int32])
    return rows_program(design, stage.args, streaming_core(rounds(design), per_object), extra_args=lambda c, i: [gelu])


def test_params(kernel, design):
    return {"N": kernel.n, "GELU_MODE": MODES[kernel.mode]}


if __name__ == "__main__":
    build_xclbin.design_main(sys.modules[__name__])
