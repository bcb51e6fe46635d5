# IRON (mlir-aie v1.4.1, kernels/common/aie/toolchain.json) programs for the designs that
# python/phoenix_npu/npu_model.py plans and checks: this file only turns a checked Design into
# ObjectFifos, Workers and the runtime sequence, using the Design's numbers verbatim (tile sizes,
# rows per object, every shim DMA task's offset / sizes / strides / channel / task group, the
# worker stack). NOT YET RUN: no mlir-aie here; written against the v1.4.1 sources
# (python/iron/runtime/runtime.py, dataflow/objectfifo.py, worker.py, device/__init__.py).
import numpy as np
from ml_dtypes import bfloat16

from aie.helpers.taplib import TensorAccessPattern
from aie.iron import Buffer, Kernel, ObjectFifo, Program, Runtime, TaskGroup, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1, Tile

R = C = 4  # npu1: 4 compute rows x 4 columns (NPU1() is the whole 4-column device in v1.4.1)

_DTYPES = {2: bfloat16, 4: np.float32}


def _vec(n, dtype):
    return np.ndarray[(n,), np.dtype[dtype]]


def sequence_from(design, arg_names, fifos):
    """The runtime sequence: every shim DMA task of the design, in its task groups (drains wait)."""
    def seq(*args):
        bufs = dict(zip(arg_names, args))
        groups = {}
        for t in design.transfers:
            tg = groups.setdefault(t.group, TaskGroup())
            tap = TensorAccessPattern([design.buffers[t.buffer][0]], t.offset, t.sizes, t.strides)
            if t.direction == "mm2s":
                fifos[t.fifo].fill(bufs[t.buffer], tap=tap, group=tg)
            else:
                fifos[t.fifo].drain(bufs[t.buffer], tap=tap, wait=True, group=tg)
            # Close the group that falls out of the in-flight window (ping-pong of open_groups).
            for g in [g for g in groups if g <= t.group - design.open_groups]:
                groups.pop(g).finish()
        for g in sorted(groups):
            groups[g].finish()
    return seq


def runtime_args(design, arg_names):
    return [_vec(design.buffers[a][0], _DTYPES[design.buffers[a][1]]) for a in arg_names]


def program(design, arg_names, workers, fifo_handles):
    """Program(NPU1(), Runtime(...)) with the fifo endpoints the sequence drives."""
    handles = list(fifo_handles.values())
    rt = Runtime(lambda *a: sequence_from(design, arg_names, fifo_handles)(*a[:len(arg_names)]),
                 [*runtime_args(design, arg_names), handles])
    return Program(NPU1(), rt, workers=workers).resolve_program()


def rows_program(design, arg_names, kernel_name, obj):
    """LayerNorm / Softmax / GELU / MatMul epilogue over rows (npu_model.rows_design)."""
    p = design.params
    op, r, cols = p["op"], p["rows_per_obj"], p["cols"]
    rounds = -(-p["rows"] // p["round_rows"])
    in_dt = np.float32 if op == "epilogue" else bfloat16
    l1_in, l1_out = _vec(r * cols, in_dt), _vec(r * cols, bfloat16)
    side_dt = bfloat16 if op == "epilogue" else np.float32
    side_ty = _vec(cols, side_dt)
    has_side = design.core_inputs == 2
    x_name, y_name = ("acc", "C") if op == "epilogue" else ("x", "y")
    fifos, workers = {}, []
    for c in range(C):
        x_l2 = ObjectFifo(_vec(R * r * cols, in_dt), name=f"{x_name}_l2_{c}", depth=2)
        y_l2 = ObjectFifo(_vec(R * r * cols, bfloat16), name=f"{y_name}_l2_{c}", depth=2)
        fifos[x_l2.name] = x_l2.prod(tile=Tile(c, 0), channel=0)
        fifos[y_l2.name] = y_l2.cons(tile=Tile(c, 0), channel=0)
        offs = [r * cols * i for i in range(R)]
        x_l1 = x_l2.cons().split(offs, tile=Tile(c, 1), obj_types=[l1_in] * R, names=[f"x_{c}_{i}" for i in range(R)])
        y_l1 = y_l2.prod().join(offs, tile=Tile(c, 1), obj_types=[l1_out] * R, names=[f"y_{c}_{i}" for i in range(R)])
        s_l1 = None
        if has_side:
            s_l2 = ObjectFifo(_vec(R * cols, side_dt), name=f"side_l2_{c}", depth=2)
            fifos[s_l2.name] = s_l2.prod(tile=Tile(c, 0), channel=1)
            s_l1 = s_l2.cons().split([cols * i for i in range(R)], tile=Tile(c, 1), obj_types=[side_ty] * R,
                                     depths=[p["side_depth"]] * R, names=[f"side_{c}_{i}" for i in range(R)])
        for i in range(R):
            args = [x_l1[i].cons(), y_l1[i].prod()] + ([s_l1[i].cons()] if has_side else [])
            if op == "epilogue":  # the worker's own L1 copy of the bias (placed on its tile)
                args.append(Buffer(_vec(cols, np.float32), name=f"bias_{c}_{i}"))
            workers.append(Worker(_core(op, p, rounds, cols, r, obj, kernel_name, l1_in, l1_out, side_ty),
                                  args, tile=Tile(c, 2 + i), stack_size=design.stack_bytes))
    return program(design, arg_names, workers, fifos)


def _core(op, p, rounds, cols, r, obj, kernel_name, l1_in, l1_out, side_ty):
    if op == "layernorm":
        ln = Kernel(kernel_name, obj, [l1_in, side_ty, side_ty, l1_out, np.int32])
        n_params = 2 if p["beta"] else 1

        def core(x, y, s):
            prm = s.acquire(n_params)                    # held for the whole run
            for _ in range_(rounds):
                xe, ye = x.acquire(1), y.acquire(1)
                ln(xe, prm[0], prm[n_params - 1], ye, r)  # beta unused when the kernel has none
                x.release(1)
                y.release(1)
            s.release(n_params)
        return core
    if op == "epilogue":
        keep = Kernel("phoenix_epi_keep_bias", obj, [side_ty, side_ty, _vec(cols, np.float32)])
        epi = Kernel(kernel_name, obj, [l1_in, _vec(cols, np.float32), side_ty, l1_out])

        def core(x, y, *rest):
            s, bias_buf = (rest[0], rest[1]) if len(rest) == 2 else (None, rest[0])
            if p["bias"]:
                b = s.acquire(2)
                keep(b[0], b[1], bias_buf)
                s.release(2)
            for _ in range_(rounds):
                xe, ye = x.acquire(1), y.acquire(1)
                re = s.acquire(1) if p["residual"] else xe    # the kernel ignores it without a residual
                epi(xe, bias_buf, re, ye)
                if p["residual"]:
                    s.release(1)
                x.release(1)
                y.release(1)
        return core
    k = Kernel(kernel_name, obj, [l1_in, l1_out, np.int32])  # softmax (rows) and gelu (elements)

    def core(x, y):
        for _ in range_(rounds):
            xe, ye = x.acquire(1), y.acquire(1)
            k(xe, ye, r if op == "softmax" else r * cols)
            x.release(1)
            y.release(1)
    return core


def gemm_program(design, mm_obj):
    """Whole-array BF16 GEMM, FP32 C (npu_model.gemm_design): upstream whole_array's structure with
    upstream's own mm.cc microkernel (matmul_bf16_f32 / zero_f32, built from the pinned
    installation's aie_kernels/aie2/mm.cc by build_xclbin.py)."""
    p = design.params
    m, k, n, K = p["m"], p["k"], p["n"], p["K"]
    r_, s_, t_ = 4, 8, 4  # mm.cc's bf16 -> f32 MMUL shape on aie2 (aie.iron.kernels.linalg _MM_MAC_DIMS)
    a_ty, b_ty, c_ty = _vec(m * k, bfloat16), _vec(k * n, bfloat16), _vec(m * n, np.float32)
    matmul = Kernel("matmul_bf16_f32", mm_obj, [a_ty, b_ty, c_ty])
    zero = Kernel("zero_f32", mm_obj, [c_ty])
    fifos, a_l1, b_l1, c_l1 = {}, [], [], [[None] * C for _ in range(R)]
    for i in range(R):
        a = ObjectFifo(_vec(m * k, bfloat16), name=f"A_L3L2_{i}", depth=2)
        fifos[a.name] = a.prod(tile=Tile(i, 0), channel=0)
        a_l1.append(a.cons().forward(tile=Tile(i, 1), obj_type=np.ndarray[(m, k), np.dtype[bfloat16]],
                                     name=f"A_L2L1_{i}", dims_to_stream=[(m // r_, r_ * k), (k // s_, s_), (r_, k), (s_, 1)]))
    for c in range(C):
        b = ObjectFifo(_vec(k * n, bfloat16), name=f"B_L3L2_{c}", depth=2)
        fifos[b.name] = b.prod(tile=Tile(c, 0), channel=1)
        b_l1.append(b.cons().forward(tile=Tile(c, 1), obj_type=np.ndarray[(k, n), np.dtype[bfloat16]],
                                     name=f"B_L2L1_{c}", dims_to_stream=[(k // s_, s_ * n), (n // t_, t_), (s_, n), (t_, 1)]))
        cc = ObjectFifo(_vec(R * m * n, np.float32), name=f"C_L2L3_{c}", depth=2,
                        dims_to_stream=[(m // r_, r_ * n), (r_, t_), (n // t_, r_ * t_), (t_, 1)])
        fifos[cc.name] = cc.cons(tile=Tile(c, 0), channel=0)
        joined = cc.prod().join([m * n * i for i in range(R)], tile=Tile(c, 1), obj_types=[np.ndarray[(m, n), np.dtype[np.float32]]] * R,
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
    return program(design, ["A", "B", "acc"], workers, fifos)
