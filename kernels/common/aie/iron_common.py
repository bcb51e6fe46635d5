# IRON (mlir-aie v1.4.1, kernels/common/aie/toolchain.json) helpers that every design in
# kernels/*/aie/design.py uses: the runtime sequence from a checked Design's shim DMA tasks, the
# Program around the workers, the whole-array GEMM that the BF16 and INT8 GEMMs share, and the
# whole-array row scaffolding that LayerNorm, Softmax, GELU and the MatMul epilogues share. Each design.py only adds its core body. The numbers come from the
# Design that tools/phoenix_npu_tools/npu_model.py plans and check_design() accepts, verbatim.
# Never run on mlir-aie (none here); written against the v1.4.1 sources (python/iron/runtime/runtime.py,
# runtime/taskgroup.py, dataflow/objectfifo.py, worker.py, kernel.py, device/__init__.py). Task groups
# follow upstream taskgroup.py's own example (construct one TaskGroup, fill / drain with group=tg,
# tg.finish()), once per group id. EXECUTED on the IRON stand-in (iron_standin/, `phoenix-npu plan
# --simulate`, tests/test_iron_standin.py): IRON's rules checked and the data moved, no MLIR.
import numpy as np
from ml_dtypes import bfloat16

from aie.helpers.taplib import TensorAccessPattern
from aie.iron import ObjectFifo, Program, Runtime, TaskGroup, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1, Tile

R = C = 4  # npu1: 4 compute rows x 4 columns (NPU1() is the whole 4-column device in v1.4.1)

DTYPES = {2: bfloat16, 4: np.float32}  # element bytes of a Design buffer -> numpy type
INT_DTYPES = {"int8": np.int8, "int32": np.int32}  # Design.dtypes (the INT8 MatMul's integer buffers)


def dtype_of(design, name):
    """The numpy element type of a design's runtime buffer."""
    named = getattr(design, "dtypes", {}).get(name)
    return INT_DTYPES[named] if named else DTYPES[design.buffers[name][1]]


def vec(n, dtype):
    return np.ndarray[(n,), np.dtype[dtype]]


def sequence_from(design, arg_names, fifos):
    """The runtime sequence: every shim DMA task of the design, in its task groups (drains wait)."""
    def seq(*args):
        bufs = dict(zip(arg_names, args))
        groups = {}
        for t in design.transfers:
            # One TaskGroup per group id, constructed when the id first appears: TaskGroup() registers
            # itself with the sequence, which rejects any left unfinished at its end (B1: a
            # setdefault(..., TaskGroup()) built a new, never-finished group for every transfer).
            if t.group not in groups:
                groups[t.group] = TaskGroup()
            tg = groups[t.group]
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
    return [vec(design.buffers[a][0], dtype_of(design, a)) for a in arg_names]


def program(design, arg_names, workers, fifo_handles):
    """Program(NPU1(), Runtime(...)) with the fifo endpoints the sequence drives; returns MLIR."""
    handles = list(fifo_handles.values())
    rt = Runtime(lambda *a: sequence_from(design, arg_names, fifo_handles)(*a[:len(arg_names)]),
                 [*runtime_args(design, arg_names), handles])
    return Program(NPU1(), rt, workers=workers).resolve_program()


def stream_of(transfer):
    """The stream (and runtime buffer) a shim transfer feeds: its FIFO's name without `_l2_{column}`."""
    return transfer.fifo.rsplit("_l2_", 1)[0]


def row_streams(design):
    """(input stream, output stream) of a row design: the streams of its channel-0 input and of its
    output, named after the FIFO (not after the first transfer's buffer: the epilogue's bias row
    leads its acc stream, and a stream named `bias` would not be the FIFO the sequence fills (B3))."""
    x = next(stream_of(t) for t in design.transfers if t.direction == "mm2s" and t.channel == 0)
    y = next(stream_of(t) for t in design.transfers if t.direction == "s2mm")
    return x, y


def rounds(design):
    """Rounds of a row design: each sends core_rows objects per column (the last may overlap its predecessor)."""
    return -(-design.params["rows"] // design.params["round_rows"])


def l1_types(design):
    """(input object, output object) types of a row design's compute-tile buffers."""
    x, y = row_streams(design)
    r, cols = design.params["rows_per_obj"], design.params["cols"]
    out_cols = design.params.get("out_cols", cols)   # the quantize stage with dup 2 writes rows twice
    return vec(r * cols, dtype_of(design, x)), vec(r * out_cols, dtype_of(design, y))


def rows_program(design, arg_names, core, side=None, extra_args=lambda c, i: ()):
    """Row kernels on the whole array (npu_model.rows_design): per column c, shim c sends
    `core_rows` objects of `rows_per_obj` rows to memtile c, which splits them one per compute
    tile (c, 2..) and joins the results. With `side` = (elements, dtype) a second input channel
    per tile carries the design's side objects: broadcast by the memtile to the column's tiles
    (design.params["side"] == "broadcast": LayerNorm's gamma / beta) or split one per tile
    ("split": the epilogue's residual rows). Worker (c, i) runs core(x, y[, side], *extra_args(c, i))."""
    p = design.params
    r, cols, rows_used = p["rows_per_obj"], p["cols"], p["core_rows"]
    out_cols = p.get("out_cols", cols)
    x_name, y_name = row_streams(design)
    l1_in, l1_out = l1_types(design)
    in_dt, out_dt = dtype_of(design, x_name), dtype_of(design, y_name)
    if (p["side"] is not None) != (side is not None):
        raise ValueError(f"{design.name}: the design's side stream is {p['side']}; pass `side` exactly when it has one")
    fifos, workers = {}, []
    for c in range(C):
        x_l2 = ObjectFifo(vec(rows_used * r * cols, in_dt), name=f"{x_name}_l2_{c}", depth=2)
        y_l2 = ObjectFifo(vec(rows_used * r * out_cols, out_dt), name=f"{y_name}_l2_{c}", depth=2)
        fifos[x_l2.name] = x_l2.prod(tile=Tile(c, 0), channel=0)
        fifos[y_l2.name] = y_l2.cons(tile=Tile(c, 0), channel=0)
        offs = [r * cols * i for i in range(rows_used)]
        x_l1 = x_l2.cons().split(offs, tile=Tile(c, 1), obj_types=[l1_in] * rows_used,
                                 names=[f"x_{c}_{i}" for i in range(rows_used)])
        y_l1 = y_l2.prod().join([r * out_cols * i for i in range(rows_used)], tile=Tile(c, 1),
                                obj_types=[l1_out] * rows_used,
                                names=[f"y_{c}_{i}" for i in range(rows_used)])
        side_args = [[] for _ in range(rows_used)]
        if side is not None:
            n, dt = side
            if p["side"] == "broadcast":   # one object per parameter, one stream for the column
                s_l2 = ObjectFifo(vec(n, dt), name=f"side_l2_{c}", depth=2)
                s_b = s_l2.cons().forward(tile=Tile(c, 1), obj_type=vec(n, dt), depth=p["side_depth"], name=f"side_{c}")
                side_args = [[s_b.cons()] for _ in range(rows_used)]  # each .cons() adds a consumer
            else:                          # one object per tile per round
                s_l2 = ObjectFifo(vec(rows_used * n, dt), name=f"side_l2_{c}", depth=2)
                s_l1 = s_l2.cons().split([n * i for i in range(rows_used)], tile=Tile(c, 1),
                                         obj_types=[vec(n, dt)] * rows_used, depths=[p["side_depth"]] * rows_used,
                                         names=[f"side_{c}_{i}" for i in range(rows_used)])
                side_args = [[s_l1[i].cons()] for i in range(rows_used)]
            fifos[s_l2.name] = s_l2.prod(tile=Tile(c, 0), channel=1)
        for i in range(rows_used):
            args = [x_l1[i].cons(), y_l1[i].prod(), *side_args[i], *extra_args(c, i)]
            workers.append(Worker(core, args, tile=Tile(c, 2 + i), stack_size=design.stack_bytes))
    return program(design, arg_names, workers, fifos)


def streaming_core(rounds, count):
    """The core of a one-input row kernel (Softmax, GELU): per round, kernel(x, y, count) on one
    object (count = rows or elements, as the kernel takes it)."""
    def core(x, y, kernel):
        for _ in range_(rounds):
            xe, ye = x.acquire(1), y.acquire(1)
            kernel(xe, ye, count)
            x.release(1)
            y.release(1)
    return core


def whole_array_gemm(design, arg_names, obj, mmul, in_dtype, out_dtype, kernel_names):
    """The whole-array GEMM program (upstream programming_examples/basic/matrix_multiplication/
    whole_array, whole_array_iron.py) that the BF16 and the INT8 GEMM designs share: row i's A
    blocks from shim i through memtile i, column c's B blocks from shim c through memtile c, each
    of the R x C cores accumulating m x n C blocks over K / k steps, C joined per column in its
    memtile. `mmul` = (r, s, t), the microkernel's MMUL shape (the L2 -> L1 tiling); the kernels
    (upstream mm.cc: kernel_names = (matmul, zero)) are declared with the L1 object types, as
    upstream declares them: func.call rejects an operand whose type differs (B2)."""
    from aie.iron import Kernel

    p = design.params
    m, k, n, K = p["m"], p["k"], p["n"], p["K"]
    r_, s_, t_ = mmul
    a_ty = np.ndarray[(m, k), np.dtype[in_dtype]]
    b_ty = np.ndarray[(k, n), np.dtype[in_dtype]]
    c_ty = np.ndarray[(m, n), np.dtype[out_dtype]]
    matmul = Kernel(kernel_names[0], obj, [a_ty, b_ty, c_ty])
    zero = Kernel(kernel_names[1], obj, [c_ty])
    fifos, a_l1, b_l1, c_l1 = {}, [], [], [[None] * C for _ in range(R)]
    for i in range(R):
        a = ObjectFifo(vec(m * k, in_dtype), name=f"A_L3L2_{i}", depth=2)
        fifos[a.name] = a.prod(tile=Tile(i, 0), channel=0)
        a_l1.append(a.cons().forward(tile=Tile(i, 1), obj_type=a_ty, name=f"A_L2L1_{i}",
                                     dims_to_stream=[(m // r_, r_ * k), (k // s_, s_), (r_, k), (s_, 1)]))
    for c in range(C):
        b = ObjectFifo(vec(k * n, in_dtype), name=f"B_L3L2_{c}", depth=2)
        fifos[b.name] = b.prod(tile=Tile(c, 0), channel=1)
        b_l1.append(b.cons().forward(tile=Tile(c, 1), obj_type=b_ty, name=f"B_L2L1_{c}",
                                     dims_to_stream=[(k // s_, s_ * n), (n // t_, t_), (s_, n), (t_, 1)]))
        cc = ObjectFifo(vec(R * m * n, out_dtype), name=f"C_L2L3_{c}", depth=2,
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
    return program(design, arg_names, workers, fifos)
