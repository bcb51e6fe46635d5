# IRON design: elementwise GELU of n BF16 values on npu1; chunks of CHUNK elements per tile
# object, split over the 4 compute rows by each column's memtile. NOT YET RUN (mlir-aie + Peano).
# The last round overlaps the previous one when n is not a multiple of 16*CHUNK (y must not
# alias x). In the Whisper plan GELU is fused into the FC1 MatMul epilogue; this kernel serves
# standalone GELU calls.
import argparse

import numpy as np
from ml_dtypes import bfloat16

from aie.helpers.taplib import TensorAccessPattern
from aie.iron import Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col4, Tile
from aie.iron.placers import SequentialPlacer

N_COLS, N_ROWS = 4, 4


def design(n: int, chunk: int, obj: str):
    group = N_COLS * N_ROWS * chunk
    rounds = -(-n // group)
    assert n >= group and chunk % 16 == 0
    x_ty = np.ndarray[(n,), np.dtype[bfloat16]]
    l2_ty = np.ndarray[(N_ROWS * chunk,), np.dtype[bfloat16]]
    l1_ty = np.ndarray[(chunk,), np.dtype[bfloat16]]
    kernel = Kernel("phoenix_gelu_bf16", obj, [l1_ty, l1_ty, np.int32])
    x_l2, y_l2, x_l1, y_l1 = [], [], [], []
    for c in range(N_COLS):
        x_l2.append(ObjectFifo(l2_ty, name=f"x_l2_{c}"))
        y_l2.append(ObjectFifo(l2_ty, name=f"y_l2_{c}"))
        offs = [chunk * i for i in range(N_ROWS)]
        x_l1.append(x_l2[c].cons().split(offs, obj_types=[l1_ty] * N_ROWS, names=[f"x_{c}_{i}" for i in range(N_ROWS)],
                                         placement=Tile(c, 1)))
        y_l1.append(y_l2[c].prod().join(offs, obj_types=[l1_ty] * N_ROWS, names=[f"y_{c}_{i}" for i in range(N_ROWS)],
                                        placement=Tile(c, 1)))

    def core(x, y, g):
        for _ in range_(rounds):
            xe, ye = x.acquire(1), y.acquire(1)
            g(xe, ye, chunk)
            x.release(1)
            y.release(1)

    workers = [Worker(core, [x_l1[c][i].cons(), y_l1[c][i].prod(), kernel], placement=Tile(c, 2 + i))
               for c in range(N_COLS) for i in range(N_ROWS)]
    rt = Runtime()
    with rt.sequence(x_ty, x_ty) as (X, Y):
        rt.start(*workers)
        tg = rt.task_group()
        for k in range(rounds):
            base = min(k * group, n - group)
            for c in range(N_COLS):
                m = N_ROWS * chunk
                tap = TensorAccessPattern([n], base + c * m, [1, 1, 1, m], [0, 0, 0, 1])
                rt.fill(x_l2[c].prod(), X, tap=tap, task_group=tg, placement=Tile(c, 0))
                rt.drain(y_l2[c].cons(), Y, tap=tap, wait=True, task_group=tg, placement=Tile(c, 0))
            if k % 2 == 1:
                rt.finish_task_group(tg)
                tg = rt.task_group()
        rt.finish_task_group(tg)
    return Program(NPU1Col4(), rt).resolve_program(SequentialPlacer())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1500 * 2048)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--obj", default="gelu.o")
    a = ap.parse_args()
    print(design(a.n, a.chunk, a.obj))
