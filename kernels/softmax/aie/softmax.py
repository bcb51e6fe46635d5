# IRON design: row softmax of a [rows, cols] BF16 tensor (scale compiled in) on npu1, rows
# split over the 16 tiles through the 4 memtiles. NOT YET RUN (needs mlir-aie + Peano).
# Same data movement as kernels/layernorm/aie/layernorm.py (overlapped last round; y must not
# alias x). For Whisper attention the model's plan fuses softmax into attention instead
# (docs/npu.md); this standalone kernel serves the unfused plan the compiler emits today.
import argparse

import numpy as np
from ml_dtypes import bfloat16

from aie.helpers.taplib import TensorAccessPattern
from aie.iron import Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col4, Tile
from aie.iron.placers import SequentialPlacer

N_COLS, N_ROWS = 4, 4


def design(rows: int, cols: int, r: int, obj: str):
    group = N_COLS * N_ROWS * r
    rounds = -(-rows // group)
    assert rows >= group and (r * cols * 2) % 4 == 0
    x_ty = np.ndarray[(rows * cols,), np.dtype[bfloat16]]
    l2_ty = np.ndarray[(N_ROWS * r * cols,), np.dtype[bfloat16]]
    l1_ty = np.ndarray[(r * cols,), np.dtype[bfloat16]]
    kernel = Kernel("phoenix_softmax_bf16", obj, [l1_ty, l1_ty, np.int32])
    x_l2, y_l2, x_l1, y_l1 = [], [], [], []
    for c in range(N_COLS):
        x_l2.append(ObjectFifo(l2_ty, name=f"x_l2_{c}"))
        y_l2.append(ObjectFifo(l2_ty, name=f"y_l2_{c}"))
        offs = [r * cols * i for i in range(N_ROWS)]
        x_l1.append(x_l2[c].cons().split(offs, obj_types=[l1_ty] * N_ROWS, names=[f"x_{c}_{i}" for i in range(N_ROWS)],
                                         placement=Tile(c, 1)))
        y_l1.append(y_l2[c].prod().join(offs, obj_types=[l1_ty] * N_ROWS, names=[f"y_{c}_{i}" for i in range(N_ROWS)],
                                        placement=Tile(c, 1)))

    def core(x, y, sm):
        for _ in range_(rounds):
            xe, ye = x.acquire(1), y.acquire(1)
            sm(xe, ye, r)
            x.release(1)
            y.release(1)

    workers = [Worker(core, [x_l1[c][i].cons(), y_l1[c][i].prod(), kernel], placement=Tile(c, 2 + i))
               for c in range(N_COLS) for i in range(N_ROWS)]
    rt = Runtime()
    with rt.sequence(x_ty, x_ty) as (X, Y):
        rt.start(*workers)
        tg = rt.task_group()
        for k in range(rounds):
            base = min(k * group, rows - group)
            for c in range(N_COLS):
                n = N_ROWS * r * cols
                tap = TensorAccessPattern([rows * cols], (base + c * N_ROWS * r) * cols, [1, 1, 1, n], [0, 0, 0, 1])
                rt.fill(x_l2[c].prod(), X, tap=tap, task_group=tg, placement=Tile(c, 0))
                rt.drain(y_l2[c].cons(), Y, tap=tap, wait=True, task_group=tg, placement=Tile(c, 0))
            if k % 2 == 1:
                rt.finish_task_group(tg)
                tg = rt.task_group()
        rt.finish_task_group(tg)
    return Program(NPU1Col4(), rt).resolve_program(SequentialPlacer())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=12000)
    ap.add_argument("--cols", type=int, default=1500)
    ap.add_argument("--rows-per-tile", type=int, default=2)
    ap.add_argument("--obj", default="softmax.o")
    a = ap.parse_args()
    print(design(a.rows, a.cols, a.rows_per_tile, a.obj))
