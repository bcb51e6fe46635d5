"""Whole-array BF16 GEMM with FP32 output on npu1 (IRON, mlir-aie v1.4.1): acc = A @ B.

The first xclbin kernel of every MatMul (../epilogue then applies alpha, bias, GELU, residual and
the one BF16 rounding). Upstream's structure and microkernel, used from the pinned installation,
not copied: programming_examples/basic/matrix_multiplication/whole_array (core (i, c) computes
m x n tiles of C, A rows of core row i from shim i repeated per column block as the outermost
stride-0 dimension, B columns of core column c from shim c, C tiles joined in memtile c, two row
blocks' task groups in flight, stack 0xD00, --alloc-scheme=basic-sequential) and
aie_kernels/aie2/mm.cc (matmul_bf16_f32, zero_f32). Every number (tiles, blocks, each shim task)
is the checked design's (npu_model.gemm_design); the kernels are declared with the L1 object types, as
whole_array_iron.py declares them. Host test: test.cpp. Executed on the IRON stand-in only (docs/npu.md).
Command line: common/aie/build_xclbin.py (design_main).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "common" / "aie"))
import build_xclbin  # noqa: E402

DESIGN_KIND = "gemm"
MMUL_R, MMUL_S, MMUL_T = 4, 8, 4  # mm.cc's bf16 -> f32 MMUL shape on aie2 (aie.iron.kernels.linalg _MM_MAC_DIMS)


def core_objects(kernel, design, mlir_aie_dir):
    """Upstream mm.cc from the pinned installation, for this design's m x k x n tile."""
    p = design.params
    mm_cc = Path(mlir_aie_dir) / "include" / "aie_kernels" / "aie2" / "mm.cc"
    return [(mm_cc, f"mm_{p['m']}x{p['k']}x{p['n']}.o",
             [f"-DDIM_M={p['m']}", f"-DDIM_K={p['k']}", f"-DDIM_N={p['n']}", "-Dbf16_f32_ONLY"])]


def program(kernel, design, stage, objects):
    from ml_dtypes import bfloat16
    import numpy as np
    from iron_common import whole_array_gemm
    return whole_array_gemm(design, stage.args, objects[0], (MMUL_R, MMUL_S, MMUL_T), bfloat16, np.float32,
                            ("matmul_bf16_f32", "zero_f32"))


def test_params(kernel, design):
    return {"M": kernel.M, "K": kernel.K, "N": kernel.N}


if __name__ == "__main__":
    build_xclbin.design_main(sys.modules[__name__])
