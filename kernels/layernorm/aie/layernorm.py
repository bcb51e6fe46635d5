# IRON design: LayerNorm of a [rows, cols] BF16 tensor on npu1 (4 columns x 4 compute rows).
# NOT YET RUN: needs mlir-aie (aie.iron) and Peano; `make` in this folder builds it.
#
# Rows are split over the 16 tiles: each shim tile streams its column's share of x to the
# memtile, which splits every object of 4*R rows into 4 objects of R rows (one per compute row)
# and joins the outputs back. gamma and beta (FP32) are loaded once per tile. The last group of
# rows overlaps the previous one when rows is not a multiple of 16*R (identical values are
# written twice; never out of bounds) - requires y not to alias x.
#
#   python3 layernorm.py --rows 1500 --cols 512 --rows-per-tile 4 > build/aie.mlir
import argparse

import numpy as np
from ml_dtypes import bfloat16

from aie.helpers.taplib import TensorAccessPattern
from aie.iron import Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col4, Tile
from aie.iron.placers import SequentialPlacer

N_COLS, N_ROWS = 4, 4


def design(rows: int, cols: int, r: int, has_beta: bool, obj: str = "layernorm.o"):
    group = N_COLS * N_ROWS * r                       # rows per round over the whole array
    rounds = -(-rows // group)
    assert rows >= group, "fewer rows than one round: use a smaller --rows-per-tile"
    x_ty = np.ndarray[(rows * cols,), np.dtype[bfloat16]]
    v_ty = np.ndarray[(cols,), np.dtype[np.float32]]
    l2_ty = np.ndarray[(N_ROWS * r * cols,), np.dtype[bfloat16]]
    l1_ty = np.ndarray[(r * cols,), np.dtype[bfloat16]]

    kernel = Kernel("phoenix_layernorm_bf16", obj, [l1_ty, v_ty, v_ty, l1_ty, np.int32, np.int32])

    gamma_in = ObjectFifo(v_ty, name="gamma", depth=1)
    beta_in = ObjectFifo(v_ty, name="beta", depth=1)
    x_l3l2, y_l2l3, x_l1, y_l1 = [], [], [], []
    for c in range(N_COLS):
        x_l3l2.append(ObjectFifo(l2_ty, name=f"x_l2_{c}"))
        y_l2l3.append(ObjectFifo(l2_ty, name=f"y_l2_{c}"))
        offs = [r * cols * i for i in range(N_ROWS)]
        x_l1.append(x_l3l2[c].cons().split(offs, obj_types=[l1_ty] * N_ROWS, names=[f"x_{c}_{i}" for i in range(N_ROWS)],
                                           placement=Tile(c, 1)))
        y_l1.append(y_l2l3[c].prod().join(offs, obj_types=[l1_ty] * N_ROWS, names=[f"y_{c}_{i}" for i in range(N_ROWS)],
                                          placement=Tile(c, 1)))

    def core(x, y, g, b, ln):
        ge, be = g.acquire(1), b.acquire(1)
        for _ in range_(rounds):
            xe, ye = x.acquire(1), y.acquire(1)
            ln(xe, ge, be, ye, r, 1 if has_beta else 0)
            x.release(1)
            y.release(1)
        g.release(1)
        b.release(1)

    workers = [Worker(core, [x_l1[c][i].cons(), y_l1[c][i].prod(), gamma_in.cons(), beta_in.cons(), kernel],
                      placement=Tile(c, 2 + i)) for c in range(N_COLS) for i in range(N_ROWS)]

    rt = Runtime()
    with rt.sequence(x_ty, v_ty, v_ty, x_ty) as (X, G, B, Y):
        rt.start(*workers)
        rt.fill(gamma_in.prod(), G, placement=Tile(0, 0))
        rt.fill(beta_in.prod(), B, placement=Tile(0, 0))
        tg = rt.task_group()
        for k in range(rounds):
            base = min(k * group, rows - group)        # overlapped last round
            for c in range(N_COLS):
                off = (base + c * N_ROWS * r) * cols
                n = N_ROWS * r * cols
                tap = TensorAccessPattern([rows * cols], off, [1, 1, 1, n], [0, 0, 0, 1])
                rt.fill(x_l3l2[c].prod(), X, tap=tap, task_group=tg, placement=Tile(c, 0))
                rt.drain(y_l2l3[c].cons(), Y, tap=tap, wait=True, task_group=tg, placement=Tile(c, 0))
            if k % 2 == 1:                              # bounded BD use: sync every 2 rounds
                rt.finish_task_group(tg)
                tg = rt.task_group()
        rt.finish_task_group(tg)
    return Program(NPU1Col4(), rt).resolve_program(SequentialPlacer())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--cols", type=int, default=512)
    ap.add_argument("--rows-per-tile", type=int, default=4)
    ap.add_argument("--no-beta", action="store_true")
    ap.add_argument("--obj", default="layernorm.o", help="kernel object file (built by the Makefile)")
    a = ap.parse_args()
    print(design(a.rows, a.cols, a.rows_per_tile, not a.no_beta, a.obj))
