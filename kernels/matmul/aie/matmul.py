# IRON design: C = epilogue(alpha * A @ B + bias) + residual on the whole npu1 array (4 x 4).
# NOT YET RUN (needs mlir-aie + Peano); learned from mlir-aie's whole_array example, extended
# with the FP32 L1 accumulator, the epilogue, and tails handled by overlapping blocks.
#
# Core (r, c) computes m x n tiles of C; A rows go from shim r through memtile r to all 4 cores
# of row r (broadcast), B columns from shim c through memtile c to the 4 cores of column c, C
# tiles are joined in memtile c and drained by shim c. A compute tile has two input channels
# (A and B), so per output block the B stream first carries the bias of the column block (n
# FP32) and the 4 residual tiles of the column (each core keeps its own), then the K/k B tiles.
# M and N need not be multiples of the 4m x 4n block: the last block row/column starts at
# M - 4m / N - 4n and recomputes a few rows/columns, writing identical values (C must not alias
# A, B or the residual). See kernels/matmul/README.md and docs/npu.md.
#
#   python3 matmul.py -M 1500 -K 512 -N 2048 -m 64 -k 32 -n 64 --bias > build/aie.mlir
import argparse

import numpy as np
from ml_dtypes import bfloat16

from aie.helpers.taplib import TensorAccessPattern
from aie.iron import Buffer, Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col4, Tile
from aie.iron.placers import SequentialPlacer

R, C = 4, 4  # compute rows, columns of npu1


def starts(total: int, block: int) -> list:
    """Block start offsets; the last block overlaps its neighbour instead of running past the end."""
    assert total >= block, f"dimension {total} is smaller than one array block {block}"
    n = -(-total // block)
    return [min(i * block, total - block) for i in range(n)]


def design(M, K, N, m, k, n, bias: bool, residual: bool, obj: str):
    assert K % k == 0, "K must be a multiple of k"
    assert m % 8 == 0 and n % 8 == 0 and k % 16 == 0
    if residual:
        assert k % m == 0, "residual tiles ride the B stream: k must be a multiple of m"
    rows, cols = starts(M, R * m), starts(N, C * n)
    tiles_per_core = len(rows) * len(cols)
    ksteps = K // k
    prefix = (1 if bias else 0) + (R if residual else 0)

    A_ty = np.ndarray[(M * K,), np.dtype[bfloat16]]
    B_ty = np.ndarray[(K * N,), np.dtype[bfloat16]]
    C_ty = np.ndarray[(M * N,), np.dtype[bfloat16]]
    bias_ty = np.ndarray[(N,), np.dtype[np.float32]]
    a_l1 = np.ndarray[(m, k), np.dtype[bfloat16]]
    b_l1 = np.ndarray[(k, n), np.dtype[bfloat16]]
    c_l1 = np.ndarray[(m, n), np.dtype[bfloat16]]
    c_l2 = np.ndarray[(R * m * n,), np.dtype[bfloat16]]
    acc_ty = np.ndarray[(m * n,), np.dtype[np.float32]]
    vbias_ty = np.ndarray[(n,), np.dtype[np.float32]]

    k_zero = Kernel("phoenix_mm_zero", obj, [acc_ty])
    k_mac = Kernel("phoenix_mm_mac", obj, [a_l1, b_l1, acc_ty])
    k_bias = Kernel("phoenix_mm_keep_bias", obj, [b_l1, vbias_ty])
    k_res = Kernel("phoenix_mm_keep_residual", obj, [b_l1, c_l1])
    k_epi = Kernel("phoenix_mm_epilogue", obj, [acc_ty, vbias_ty, c_l1, c_l1, np.int32, np.int32])

    # 4x8 blocks for A, 8x4 for B, 4x4 for C: the layouts of the 4x8x4 BF16 mmul.
    a_dims = [(m // 4, 4 * k), (k // 8, 8), (4, k), (8, 1)]
    b_dims = [(k // 8, 8 * n), (n // 4, 4), (8, n), (4, 1)]
    c_dims = [(m // 4, 4 * n), (4, 4), (n // 4, 16), (4, 1)]
    a_l3 = [ObjectFifo(a_l1, name=f"A_L3L2_{i}") for i in range(R)]
    a_l2 = [a_l3[i].cons().forward(obj_type=a_l1, name=f"A_L2L1_{i}", dims_to_stream=a_dims, placement=Tile(i, 1))
            for i in range(R)]
    b_l3 = [ObjectFifo(b_l1, name=f"B_L3L2_{c}") for c in range(C)]
    b_l2 = [b_l3[c].cons().forward(obj_type=b_l1, name=f"B_L2L1_{c}", dims_to_stream=b_dims, placement=Tile(c, 1))
            for c in range(C)]
    c_l3 = [ObjectFifo(c_l2, name=f"C_L2L3_{c}", dims_to_stream=c_dims) for c in range(C)]
    c_l1s = [c_l3[c].prod().join([m * n * i for i in range(R)], obj_types=[c_l1] * R,
                                 names=[f"C_L1L2_{c}_{i}" for i in range(R)], placement=Tile(c, 1)) for c in range(C)]

    def make_core(row):
        def core(a, b, out, acc, vbias, res, zero, mac, keep_bias, keep_res, epi):
            for _ in range_(tiles_per_core) if tiles_per_core > 1 else range(1):
                zero(acc)
                if bias:
                    e = b.acquire(1)
                    keep_bias(e, vbias)
                    b.release(1)
                if residual:
                    for rr in range(R):            # unrolled: keep only this row's tile
                        e = b.acquire(1)
                        if rr == row:
                            keep_res(e, res)
                        b.release(1)
                for _ in range_(ksteps):
                    ea, eb = a.acquire(1), b.acquire(1)
                    mac(ea, eb, acc)
                    a.release(1)
                    b.release(1)
                ec = out.acquire(1)
                epi(acc, vbias, res, ec, 1 if bias else 0, 1 if residual else 0)
                out.release(1)
        return core

    workers = []
    for r in range(R):
        for c in range(C):
            bufs = [Buffer(acc_ty, name=f"acc_{r}_{c}"), Buffer(vbias_ty, name=f"bias_{r}_{c}"),
                    Buffer(c_l1, name=f"res_{r}_{c}")]
            workers.append(Worker(make_core(r), [a_l2[r].cons(), b_l2[c].cons(), c_l1s[c][r].prod(), *bufs,
                                                 k_zero, k_mac, k_bias, k_res, k_epi], placement=Tile(c, 2 + r)))

    rt = Runtime()
    # Arguments in the manifest's order: A, B, [bias], [residual], C.
    arg_types = [A_ty, B_ty] + ([bias_ty] if bias else []) + ([C_ty] if residual else []) + [C_ty]
    with rt.sequence(*arg_types) as handles:
        A, B, Cout = handles[0], handles[1], handles[-1]
        Bias = handles[2] if bias else None
        Res = handles[2 + (1 if bias else 0)] if residual else None
        rt.start(*workers)
        for r0 in rows:
            tg = rt.task_group()
            for c0 in cols:
                for i in range(R):      # A rows of core row i, K/k tiles of m x k
                    rt.fill(a_l3[i].prod(), A, task_group=tg, placement=Tile(i, 0),
                            tap=TensorAccessPattern([M, K], (r0 + i * m) * K, [1, ksteps, m, k], [0, k, K, 1]))
                for c in range(C):
                    col = c0 + c * n
                    if bias:            # n floats, repeated to fill one k x n BF16 object
                        rt.fill(b_l3[c].prod(), Bias, task_group=tg, placement=Tile(c, 0),
                                tap=TensorAccessPattern([N], col, [1, 1, k // 2, n], [0, 0, 0, 1]))
                    if residual:        # 4 residual tiles, each repeated k/m times to fill an object
                        for i in range(R):
                            rt.fill(b_l3[c].prod(), Res, task_group=tg, placement=Tile(c, 0),
                                    tap=TensorAccessPattern([M, N], (r0 + i * m) * N + col, [1, k // m, m, n], [0, 0, N, 1]))
                    rt.fill(b_l3[c].prod(), B, task_group=tg, placement=Tile(c, 0),
                            tap=TensorAccessPattern([K, N], col, [1, ksteps, k, n], [0, k * N, N, 1]))
                    rt.drain(c_l3[c].cons(), Cout, wait=True, task_group=tg, placement=Tile(c, 0),
                             tap=TensorAccessPattern([M, N], r0 * N + col, [1, 1, R * m, n], [0, 0, N, 1]))
            rt.finish_task_group(tg)
    return Program(NPU1Col4(), rt).resolve_program(SequentialPlacer())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-M", type=int, default=1500)
    ap.add_argument("-K", type=int, default=512)
    ap.add_argument("-N", type=int, default=2048)
    ap.add_argument("-m", type=int, default=64)
    ap.add_argument("-k", type=int, default=32)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--residual", action="store_true")
    ap.add_argument("--obj", default="matmul.o")
    a = ap.parse_args()
    print(design(a.M, a.K, a.N, a.m, a.k, a.n, a.bias, a.residual, a.obj))
