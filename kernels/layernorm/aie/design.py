"""LayerNorm over rows of BF16 on the whole npu1 array (IRON, mlir-aie v1.4.1).

x rows on each tile's first input channel (split by the memtile, one object per tile); gamma
and beta (FP32) on its second, sent once per column and broadcast by the memtile to the column's
4 tiles, held for the whole run (a split would take 4 more memtile channels: 9 of 6). Every
number (rows per object, rounds, each shim task, the stack) is the checked design's.
Kernel: layernorm.cc (numerics of ../emulated.cc). Host test: test.cpp. NOT YET RUN.
Command line: common/aie/build_xclbin.py (design_main).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "common" / "aie"))
import build_xclbin  # noqa: E402

DESIGN_KIND = "layernorm"


def core_objects(kernel, design, mlir_aie_dir):
    cols = design.params["cols"]
    return [(HERE / "layernorm.cc", f"layernorm_{cols}_b{int(kernel.beta)}_e{float(kernel.epsilon)!r}.o",
             [f"-DCOLS={cols}", f"-DEPSILON={build_xclbin.c_float(kernel.epsilon)}", f"-DHAS_BETA={int(kernel.beta)}"])]


def program(kernel, design, stage, objects):
    import numpy as np
    from aie.iron import Kernel
    from aie.iron.controlflow import range_
    from iron_common import l1_types, rounds, rows_program, vec

    p = design.params
    cols, r = p["cols"], p["rows_per_obj"]
    n_params = 2 if kernel.beta else 1
    l1_in, l1_out = l1_types(design)
    n_rounds = rounds(design)
    param_ty = vec(cols, np.float32)
    ln = Kernel("phoenix_layernorm_bf16", objects[0], [l1_in, param_ty, param_ty, l1_out, np.int32])

    def core(x, y, s, ln_k):
        prm = s.acquire(n_params)                     # gamma (and beta), held for the whole run
        # acquire(1) is the object itself, acquire(2) a list of two (indexing one object would be an element)
        gamma, beta = (prm[0], prm[1]) if n_params == 2 else (prm, prm)  # beta unused when the kernel has none
        for _ in range_(n_rounds):
            xe, ye = x.acquire(1), y.acquire(1)
            ln_k(xe, gamma, beta, ye, r)
            x.release(1)
            y.release(1)
        s.release(n_params)

    return rows_program(design, stage.args, core, side=(cols, np.float32), extra_args=lambda c, i: [ln])


def test_params(kernel, design):
    return {"ROWS": kernel.rows, "COLS": kernel.cols, "EPSILON": float(kernel.epsilon), "HAS_BETA": kernel.beta}


if __name__ == "__main__":
    build_xclbin.design_main(sys.modules[__name__])
