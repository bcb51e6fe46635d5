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
    from aie.iron import Kernel, ObjectFifo, Worker
    from aie.iron.controlflow import range_
    from aie.iron.device import Tile
    from iron_common import C, R, program as iron_program, vec

    p = design.params
    m, k, n, K = p["m"], p["k"], p["n"], p["K"]
    r_, s_, t_ = MMUL_R, MMUL_S, MMUL_T
    # The L1 object types, used for the FIFOs AND the kernels (func.call checks operand types: B2).
    a_ty = np.ndarray[(m, k), np.dtype[np.int8]]
    b_ty = np.ndarray[(k, n), np.dtype[np.int8]]
    c_ty = np.ndarray[(m, n), np.dtype[np.int32]]
    matmul = Kernel("matmul_i8_i32", objects[0], [a_ty, b_ty, c_ty])
    zero = Kernel("zero_i32", objects[0], [c_ty])
    fifos, a_l1, b_l1, c_l1 = {}, [], [], [[None] * C for _ in range(R)]
    for i in range(R):
        a = ObjectFifo(vec(m * k, np.int8), name=f"A_L3L2_{i}", depth=2)
        fifos[a.name] = a.prod(tile=Tile(i, 0), channel=0)
        a_l1.append(a.cons().forward(tile=Tile(i, 1), obj_type=a_ty, name=f"A_L2L1_{i}",
                                     dims_to_stream=[(m // r_, r_ * k), (k // s_, s_), (r_, k), (s_, 1)]))
    for c in range(C):
        b = ObjectFifo(vec(k * n, np.int8), name=f"B_L3L2_{c}", depth=2)
        fifos[b.name] = b.prod(tile=Tile(c, 0), channel=1)
        b_l1.append(b.cons().forward(tile=Tile(c, 1), obj_type=b_ty, name=f"B_L2L1_{c}",
                                     dims_to_stream=[(k // s_, s_ * n), (n // t_, t_), (s_, n), (t_, 1)]))
        cc = ObjectFifo(vec(R * m * n, np.int32), name=f"C_L2L3_{c}", depth=2,
                        dims_to_stream=[(m // r_, r_ * n), (r_, t_), (n // t_, r_ * t_), (t_, 1)])
        fifos[cc.name] = cc.cons(tile=Tile(c, 0), channel=0)
        joined = cc.prod().join([m * n * i for i in range(R)], tile=Tile(c, 1),
                                obj_types=[c_ty] * R,
                                names=[f"C_L1L2_{c}_{i}" for i in range(R)], depths=[2] * R)
        for i in range(R):
            c_l1[i][c] = joined[i]
    tiles_per_core = p["tiles_per_core"]

    def core(in_a, in_b, out_c, zero_k, mm_k):
        for _ in range_(tiles_per_core) if tiles_per_core > 1 else range(1):
            ce = out_c.acquire(1)
            zero_k(ce)
            for _ in range_(K // k):
                ae, be = in_a.acquire(1), in_b.acquire(1)
                mm_k(ae, be, ce)
                in_a.release(1)
                in_b.release(1)
            out_c.release(1)

    workers = [Worker(core, [a_l1[i].cons(), b_l1[c].cons(), c_l1[i][c].prod(), zero, matmul],
                      tile=Tile(c, 2 + i), stack_size=design.stack_bytes) for i in range(R) for c in range(C)]
    return iron_program(design, stage.args, workers, fifos)


def test_params(kernel, design):
    p = design.params   # K is 2K for weights with zero points (B' = [qb; -zb]: npu_model.designs_for)
    return {"M": p["M"], "K": p["K"], "N": p["N"]}


if __name__ == "__main__":
    build_xclbin.design_main(sys.modules[__name__])
