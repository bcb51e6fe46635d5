"""Whole-array INT8 GEMM with int32 output on npu1 (IRON, mlir-aie v1.4.1): acc = qa @ B, exact.

The second xclbin kernel of an INT8 MatMul (kernels/matmul_int8/README.md, "On the NPU"): the
quantize stage (../quantize) leaves int8 qa'' = qa - c_a in `qa`, this stage sums qa'' x qb in
int32 (exact: no rounding anywhere), and ../epilogue adds the activation zero-point correction,
dequantizes and applies the epilogue. Upstream's structure and microkernel, used from the pinned
installation, not copied: programming_examples/basic/matrix_multiplication/whole_array (the same
data movement as ../../../matmul/aie/gemm, whose docstring lists it) with aie_kernels/aie2/mm.cc
compiled -Di8_i32_ONLY (matmul_i8_i32: aie::mmul<4, 8, 8, int8, int8> accumulating in int32,
4x2-unrolled, needing m % 16, k % 8, n % 16; zero_i32). Every number (tiles, blocks, each shim
task) is the checked design's (npu_model.gemm_design with dtype "i8"). Host test: test.cpp.
Executed on the IRON stand-in only (docs/npu.md), never on mlir-aie.
Command line: common/aie/build_xclbin.py (design_main).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "common" / "aie"))
import build_xclbin  # noqa: E402

DESIGN_KIND = "gemm_i8"
MMUL_R, MMUL_S, MMUL_T = 4, 8, 8  # mm.cc's i8 -> i32 MMUL shape on aie2 (its combos: X(int8, i8, int32, i32, 4, 8, 8))


def core_objects(kernel, design, mlir_aie_dir):
    """Upstream mm.cc from the pinned installation, i8 -> i32 only, for this design's m x k x n tile."""
    p = design.params
    mm_cc = Path(mlir_aie_dir) / "include" / "aie_kernels" / "aie2" / "mm.cc"
    return [(mm_cc, f"mm_i8_{p['m']}x{p['k']}x{p['n']}.o",
             [f"-DDIM_M={p['m']}", f"-DDIM_K={p['k']}", f"-DDIM_N={p['n']}", "-Di8_i32_ONLY"])]


def program(kernel, design, stage, objects):
    import numpy as np
    from iron_common import whole_array_gemm
    return whole_array_gemm(design, stage.args, objects[0], (MMUL_R, MMUL_S, MMUL_T), np.int8, np.int32,
                            ("matmul_i8_i32", "zero_i32"))


def test_params(kernel, design):
    p = design.params   # K is 2K for weights with zero points (B' = [qb; -zb]: npu_model.designs_for)
    return {"M": p["M"], "K": p["K"], "N": p["N"]}


if __name__ == "__main__":
    build_xclbin.design_main(sys.modules[__name__])
