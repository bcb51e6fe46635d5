"""The IRON API subset that kernels/*/aie/design.py and ../iron_common.py use, as a functional
stand-in: same names and call shapes as mlir-aie v1.4.1's aie.iron (ObjectFifo and its handles'
prod / cons / forward / split / join / acquire / release / fill / drain, Worker, Kernel, Buffer,
Runtime(seq_fn, fn_args), TaskGroup, Program(...).resolve_program(), controlflow.range_,
device.NPU1 / Tile, helpers.taplib.TensorAccessPattern). Written from the upstream sources'
contracts (python/iron/runtime/_sequence.py, runtime/taskgroup.py, kernel.py), not from their code.

Instead of MLIR, resolve_program() checks IRON's and npu1's rules and MOVES THE DATA: every runtime
transfer gathers / scatters numpy buffers with its sizes, strides and offset; memtile links
forward, split and join objects (applying dims_to_stream); each worker's core body runs in Python
with every acquire / release, and each kernel call runs reference.py's body on the objects.
What it cannot show: timing, bounded-buffer back-pressure and deadlock between channels, locks,
real DMA / BD behaviour, Peano's code (docs/npu.md, "The IRON stand-in").
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from . import limits as L
from .reference import KERNELS as REFERENCE


class StandinError(Exception):
    """A rule of IRON, MLIR or npu1 that the design breaks (the message names it)."""


class UnfinishedTaskGroup(StandinError):
    """_sequence.py finalize(): "Runtime sequence ended with unfinished task group(s)" (B1)."""


class KernelTypeMismatch(StandinError):
    """func.call verifier: "operand type mismatch: expected operand type ..., but provided ..." (B2, B4)."""


class UnresolvedFifo(StandinError):
    """The runtime sequence names a FIFO the design does not create (B3)."""


class DmaLimit(StandinError):
    """A transfer or a tile exceeds npu1's DMA / memory limits (limits.py)."""


class DataflowError(StandinError):
    """Objects that would never arrive (a core or a drain waits forever) or never be consumed."""


_BUILD = None  # the build in progress (set by run_stage)


def _build():
    if _BUILD is None:
        raise StandinError("IRON objects constructed outside iron_standin.run_stage")
    return _BUILD


def type_key(t):
    """(shape, dtype) of np.ndarray[(shape), np.dtype[dt]] or of a numpy scalar type."""
    args = getattr(t, "__args__", None)
    if getattr(t, "__origin__", None) is np.ndarray and args:
        shape = tuple(args[0]) if isinstance(args[0], (tuple, list)) else (args[0],)
        return tuple(int(s) for s in shape), np.dtype(args[1].__args__[0])
    if isinstance(t, type) and issubclass(t, np.generic):
        return (), np.dtype(t)
    raise StandinError(f"not an IRON type: {t!r}")


def _fmt(key):
    shape, dt = key
    return f"{'x'.join(map(str, shape)) or 'scalar'} {dt}"


def _nbytes(key):
    return math.prod(key[0]) * key[1].itemsize


# --- device ------------------------------------------------------------------------------------------
class NPU1:
    """npu1: 4 columns; row 0 shim, row 1 memtile, rows 2-5 compute."""
    cols, rows = 4, 6


class Tile:
    def __init__(self, col, row):
        if not (0 <= col < NPU1.cols and 0 <= row < NPU1.rows):
            raise StandinError(f"Tile({col}, {row}) is not on npu1 (4 columns x 6 rows)")
        self.col, self.row = col, row

    @property
    def kind(self):
        return "shim" if self.row == 0 else "memtile" if self.row == 1 else "compute"

    def key(self):
        return (self.col, self.row)

    def __repr__(self):
        return f"Tile({self.col}, {self.row})"


def range_(*args):
    """controlflow.range_: an scf.for in MLIR; here the loop simply runs."""
    return range(*args)


class TensorAccessPattern:
    def __init__(self, tensor_dims, offset, sizes, strides):
        self.tensor_dims, self.offset, self.sizes, self.strides = list(tensor_dims), int(offset), list(sizes), list(strides)


# --- data objects ------------------------------------------------------------------------------------
class _Obj:
    """One acquired object (an L1 / L2 buffer of its FIFO's type)."""

    def __init__(self, key, data):
        self.key, self.data = key, data.reshape(key[0])

    def __getitem__(self, i):  # an element load, as in IRON: not a buffer
        return _Element(self.key[1])


class _Element:
    def __init__(self, dtype):
        self.key = ((), dtype)


class Buffer:
    """A worker-local L1 buffer (aie.iron.Buffer)."""

    def __init__(self, type=None, initial_value=None, name=None, **_):
        self.key, self.name = type_key(type), name
        self.data = _unset(self.key[0], self.key[1]) if initial_value is None else \
            np.asarray(initial_value, self.key[1]).reshape(self.key[0])
        self.tile = None


def _unset(shape, dtype):
    """An array nothing has written yet: NaN, or the integer type's minimum."""
    dtype = np.dtype(dtype)
    return np.full(shape, np.iinfo(dtype).min if dtype.kind in "iu" else np.nan, dtype)


class Kernel:
    """An external core function (aie.iron.Kernel): calls are type-checked like func.call."""

    def __init__(self, name, bin_name, arg_types=()):
        self.name, self.bin_name = name, bin_name
        self.arg_keys = [type_key(t) for t in arg_types]

    def __call__(self, *args):
        b = _build()
        if len(args) != len(self.arg_keys):
            raise KernelTypeMismatch(f"{self.name}: declared with {len(self.arg_keys)} arguments, called with {len(args)}")
        arrays = []
        for i, (a, want) in enumerate(zip(args, self.arg_keys)):
            if isinstance(a, (int, np.integer)) and not isinstance(a, bool):
                got = ((), want[1]) if want[0] == () and want[1].kind == "i" else ((), np.dtype(np.int64))
                arrays.append(int(a))
            elif isinstance(a, (_Obj, Buffer)):
                got = a.key
                arrays.append(a.data)
            elif isinstance(a, _Element):
                got = a.key
                arrays.append(None)
            else:
                raise KernelTypeMismatch(f"{self.name} operand {i}: {type(a).__name__} is not an object, buffer or int")
            if got != want:
                raise KernelTypeMismatch(f"{self.name} operand {i}: operand type mismatch: expected {_fmt(want)}, "
                                         f"but provided {_fmt(got)}")
        if self.bin_name not in b.defines:
            raise StandinError(f"{self.name}: object {self.bin_name} is not among the stage's core objects "
                               f"{sorted(b.defines)}")
        if self.name not in REFERENCE:
            raise StandinError(f"{self.name}: no reference body in iron_standin/reference.py")
        REFERENCE[self.name](b.defines[self.bin_name])(*arrays)
        b.kernel_calls += 1


# --- ObjectFifo --------------------------------------------------------------------------------------
class ObjectFifo:
    def __init__(self, obj_type, depth=None, name=None, dims_to_stream=None, default_depth=None, **_):
        self.key = type_key(obj_type)
        self.depth = depth or default_depth or 2
        self.name = name or f"of{len(_build().fifos)}"
        self.dims = [tuple(d) for d in dims_to_stream] if dims_to_stream else None
        self._prod = None
        self._cons = []
        self.produced = None   # list of object arrays once known
        self.stream, self.drains = [], []  # runtime fills (element arrays) / drains (buffer, indices)
        b = _build()
        if self.name in {f.name for f in b.fifos}:
            raise StandinError(f"two ObjectFifos named {self.name}")
        b.fifos.append(self)

    def prod(self, tile=None, channel=None, depth=None, **_):
        if self._prod is None:
            self._prod = _Handle(self, True, depth)
        h = self._prod
        if tile is not None:
            h.set_runtime(tile, channel)
        return h

    def cons(self, tile=None, channel=None, depth=None, **_):
        h = _Handle(self, False, depth)
        self._cons.append(h)
        if tile is not None:
            h.set_runtime(tile, channel)
        return h

    @property
    def nbytes(self):
        return _nbytes(self.key)

    def __repr__(self):
        return f"ObjectFifo({self.name})"


class _Handle:
    """A producer or consumer end of an ObjectFifo."""

    def __init__(self, fifo, is_prod, depth=None):
        self.fifo, self.is_prod, self.depth = fifo, is_prod, depth or fifo.depth
        self.endpoint = None   # ("runtime", tile, channel) | ("worker", worker) | ("link", link)
        self.queue = deque()   # consumer: objects waiting; producer: unused
        self.held = []

    @property
    def name(self):
        return self.fifo.name

    def _bind(self, endpoint):
        if self.endpoint is not None and self.endpoint != endpoint:
            raise StandinError(f"{self.fifo.name}: a {'producer' if self.is_prod else 'consumer'} handle used twice "
                               f"({self.endpoint[0]} and {endpoint[0]})")
        self.endpoint = endpoint

    def set_runtime(self, tile, channel):
        if tile.kind != "shim":
            raise StandinError(f"{self.fifo.name}: runtime endpoint on {tile} (a shim tile is row 0)")
        limit = L.SHIM_MM2S if self.is_prod else L.SHIM_S2MM
        ch = 0 if channel is None else channel
        if not 0 <= ch < limit:
            raise DmaLimit(f"{self.fifo.name}: shim {'MM2S' if self.is_prod else 'S2MM'} channel {ch} (a shim has {limit})")
        self._bind(("runtime", tile, ch))

    # memtile links
    def forward(self, obj_type=None, depth=None, name=None, dims_to_stream=None, tile=None, placement=None, **_):
        dst = ObjectFifo(obj_type or _type_of(self.fifo.key), depth=depth or self.fifo.depth, name=name,
                         dims_to_stream=dims_to_stream)
        _Link("forward", tile or placement, [self], [dst.prod()], [0])
        return dst

    def split(self, offsets, obj_types=(), names=None, depths=None, dims_to_stream=None, tile=None, placement=None, **_):
        dsts = [ObjectFifo(t, depth=(depths[i] if depths else self.fifo.depth), name=names[i] if names else None,
                           dims_to_stream=dims_to_stream[i] if dims_to_stream else None) for i, t in enumerate(obj_types)]
        _Link("split", tile or placement, [self], [d.prod() for d in dsts], list(offsets))
        return dsts

    def join(self, offsets, obj_types=(), names=None, depths=None, dims_to_stream=None, tile=None, placement=None, **_):
        srcs = [ObjectFifo(t, depth=(depths[i] if depths else self.fifo.depth), name=names[i] if names else None,
                           dims_to_stream=dims_to_stream[i] if dims_to_stream else None) for i, t in enumerate(obj_types)]
        _Link("join", tile or placement, [s.cons() for s in srcs], [self], list(offsets))
        return srcs

    # runtime verbs
    def fill(self, source, tap=None, group=None, wait=False, **_):
        _active().emit("fill", self, source, tap, group, wait)

    def drain(self, dest, tap=None, wait=False, group=None, **_):
        _active().emit("drain", self, dest, tap, group, wait)

    # core verbs (inside a worker's body)
    def acquire(self, n):
        if n > self.depth:
            raise DataflowError(f"{self.fifo.name}: acquire({n}) exceeds the depth {self.depth}")
        while len(self.held) < n:
            if self.is_prod:
                self.held.append(_Obj(self.fifo.key, _unset(self.fifo.key[0], self.fifo.key[1])))
            elif self.queue:
                self.held.append(_Obj(self.fifo.key, self.queue.popleft()))
            else:
                raise DataflowError(f"{self.fifo.name}: a core acquires object {self.consumed + len(self.held) + 1} "
                                    f"but only {self.consumed + len(self.held)} ever arrive: the core would wait forever")
        return self.held[0] if n == 1 else self.held[:n]

    consumed = 0

    def release(self, n):
        if n > len(self.held):
            raise DataflowError(f"{self.fifo.name}: release({n}) with {len(self.held)} objects held")
        done, self.held = self.held[:n], self.held[n:]
        if self.is_prod:
            self.fifo.produced.extend(o.data.reshape(-1) for o in done)
        else:
            self.consumed += n


def _type_of(key):
    return np.ndarray[key[0], np.dtype[key[1].type]]


class _Link:
    def __init__(self, kind, tile, srcs, dsts, offsets):
        if tile is None or tile.kind != "memtile":
            raise StandinError(f"{kind} of {[h.name for h in srcs]} -> {[h.name for h in dsts]} needs a memtile "
                               f"(row 1), not {tile}")
        self.kind, self.tile, self.srcs, self.dsts, self.offsets = kind, tile, srcs, dsts, offsets
        for h in srcs + dsts:
            h._bind(("link", self))
        _build().links.append(self)


class Worker:
    def __init__(self, core_fn, fn_args=(), tile=None, placement=None, stack_size=None, **_):
        self.core_fn, self.fn_args = core_fn, list(fn_args)
        self.tile = tile or placement
        if self.tile is None or self.tile.kind != "compute":
            raise StandinError(f"a Worker must be placed on a compute tile (rows 2-5), not {self.tile}")
        self.stack_size = L.DEFAULT_STACK if stack_size is None else stack_size
        for a in self.fn_args:
            if isinstance(a, _Handle):
                a._bind(("worker", self))
            elif isinstance(a, Buffer):
                if a.tile is not None and a.tile is not self.tile:
                    raise StandinError(f"Buffer {a.name} used by workers on two tiles")
                a.tile = self.tile
        _build().workers.append(self)


# --- runtime -----------------------------------------------------------------------------------------
class RuntimeData:
    def __init__(self, array):
        self.array = array


class Runtime:
    def __init__(self, seq_fn=None, fn_args=()):
        self.seq_fn, self.fn_args = seq_fn, list(fn_args)


_ACTIVE = None


def _active():
    if _ACTIVE is None:
        raise StandinError("a runtime verb (fill / drain / TaskGroup) outside the runtime sequence")
    return _ACTIVE


class TaskGroup:
    def __init__(self):
        seq = _active()
        self.group_id = len(seq.groups)
        self.tasks, self.finished = [], False
        seq.groups.append(self)

    def finish(self):
        _active().finish(self)

    def __str__(self):
        return f"TaskGroup({self.group_id})"


class _Sequence:
    def __init__(self, build):
        self.build, self.groups, self.default = build, [], None
        self.bds = {}          # shim column -> BDs alive
        self.queued = {}       # (column, direction, channel) -> tasks pushed, group not finished
        self.peak_bds = 0
        self.tasks = 0

    def emit(self, verb, handle, data, tap, group, wait):
        if not isinstance(handle, _Handle) or handle.endpoint is None or handle.endpoint[0] != "runtime":
            raise UnresolvedFifo(f"{verb} on {getattr(handle, 'name', handle)}, which has no shim (runtime) endpoint")
        if (verb == "fill") != handle.is_prod:
            raise StandinError(f"{verb} on the {'producer' if handle.is_prod else 'consumer'} end of {handle.name}")
        if group is None:
            if self.default is None:
                self.default = TaskGroup()
            group = self.default
        if not isinstance(group, TaskGroup) or group not in self.groups:
            raise StandinError(f"{verb} on {handle.name}: group {group} is not a TaskGroup of this sequence")
        if group.finished:
            raise StandinError(f"{verb} on {handle.name}: {group} is already finished")
        array = data.array if isinstance(data, RuntimeData) else None
        if array is None:
            raise StandinError(f"{verb} on {handle.name}: {data!r} is not a runtime argument")
        idx = _tap_indices(handle.name, array, tap)
        _, tile, ch = handle.endpoint
        col, direction = tile.col, "MM2S" if verb == "fill" else "S2MM"
        self.bds[col] = self.bds.get(col, 0) + 1
        if self.bds[col] > L.SHIM_BDS:
            raise DmaLimit(f"shim ({col},0): {self.bds[col]} buffer descriptors alive > {L.SHIM_BDS}")
        self.peak_bds = max(self.peak_bds, self.bds[col])
        q = (col, direction, ch)
        self.queued[q] = self.queued.get(q, 0) + 1
        if self.queued[q] > L.QUEUE_DEPTH:
            raise DmaLimit(f"shim ({col},0) {direction}{ch}: {self.queued[q]} tasks queued > {L.QUEUE_DEPTH} "
                           "(counted until their group is finished)")
        group.tasks.append((col, q))
        self.tasks += 1
        if verb == "fill":
            handle.fifo.stream.append(array.reshape(-1)[idx])
        else:
            handle.fifo.drains.append((array, idx))

    def finish(self, group):
        if group not in self.groups or group.finished:
            raise StandinError(f"{group} finished twice or not of this sequence")
        group.finished = True
        for col, q in group.tasks:
            self.bds[col] -= 1
            self.queued[q] -= 1

    def finalize(self):
        if self.default is not None and not self.default.finished:
            self.finish(self.default)
        open_ = [g for g in self.groups if not g.finished]
        if open_:
            raise UnfinishedTaskGroup(f"Runtime sequence ended with {len(open_)} unfinished task group(s): "
                                      f"{', '.join(map(str, open_[:4]))}{' ...' if len(open_) > 4 else ''}")


def _pattern_indices(sizes, strides, offset=0):
    idx = np.full([1] * len(sizes), offset, np.int64)
    for d, (sz, st) in enumerate(zip(sizes, strides)):
        shape = [1] * len(sizes)
        shape[d] = sz
        idx = idx + (np.arange(sz, dtype=np.int64) * st).reshape(shape)
    return idx.reshape(-1)


def _tap_indices(name, array, tap):
    """Element indices of a shim transfer, after npu1's DMA checks."""
    n, eb = array.size, array.dtype.itemsize
    if tap is None:
        return np.arange(n)
    where = f"{name} transfer (sizes {tap.sizes}, strides {tap.strides}, offset {tap.offset})"
    if math.prod(tap.tensor_dims) != n:
        raise StandinError(f"{where}: tensor dims {tap.tensor_dims} are not the buffer's {n} elements")
    s, st = tap.sizes, tap.strides
    if len(s) != 4 or len(st) != 4:
        raise DmaLimit(f"{where}: a shim BD has 4 dimensions")
    if any(x < 1 for x in s):
        raise DmaLimit(f"{where}: empty dimension")
    if s[0] > L.REPEAT_MAX:
        raise DmaLimit(f"{where}: repeat {s[0]} > {L.REPEAT_MAX}")
    if s[2] > L.WRAP_MAX or s[3] > L.WRAP_MAX:
        raise DmaLimit(f"{where}: inner sizes {s[2:]} exceed the 10-bit wraps ({L.WRAP_MAX})")
    for d in (1, 2, 3):
        if s[d] > 1 and not 1 <= st[d] <= L.STRIDE_MAX:
            raise DmaLimit(f"{where}: stride {st[d]} in dimension {d} (outermost first) outside [1, {L.STRIDE_MAX}]")
    if not 0 <= st[0] <= L.STRIDE_MAX:
        raise DmaLimit(f"{where}: repeat stride {st[0]} outside [0, {L.STRIDE_MAX}]")
    if s[3] > 1 and st[3] != 1 and eb < L.DMA_GRANULE:
        raise DmaLimit(f"{where}: a non-unit innermost stride on {eb}-byte elements (the DMA moves 4-byte words)")
    if (s[3] * eb) % L.DMA_GRANULE or (tap.offset * eb) % L.DMA_GRANULE or \
            any((x * eb) % L.DMA_GRANULE for x, sz in zip(st[:3], s[:3]) if sz > 1):
        raise DmaLimit(f"{where}: innermost length, offset or outer strides not multiples of {L.DMA_GRANULE} bytes")
    last = tap.offset + sum((a - 1) * b for a, b in zip(s, st))
    if tap.offset < 0 or last >= n:
        raise DmaLimit(f"{where}: reaches element {last} of {n}")
    return _pattern_indices(s, st, tap.offset)


def _stream_dims(fifo, obj):
    """An object as its producer's DMA streams it: fifo.dims_to_stream applied (outermost first).
    If the pattern covers less than the object, its outermost dimension runs on over the rest
    (upstream whole_array's C FIFO: one tile's pattern over the joined 4 tiles)."""
    if not fifo.dims:
        return obj
    idx = getattr(fifo, "_dims_idx", None)
    if idx is None or idx.size != obj.size:
        sizes, strides = [d[0] for d in fifo.dims], [d[1] for d in fifo.dims]
        inner = math.prod(sizes[1:])
        if obj.size % inner:
            raise DataflowError(f"{fifo.name}: dims_to_stream {fifo.dims} do not tile its {obj.size}-element object")
        sizes[0] = obj.size // inner
        idx = _pattern_indices(sizes, strides)
        if idx.max() >= obj.size or len(np.unique(idx)) != obj.size:
            raise DataflowError(f"{fifo.name}: dims_to_stream {fifo.dims} do not read each element once")
        fifo._dims_idx = idx
    return obj[idx]


class Program:
    def __init__(self, device, rt, workers=()):
        self.device, self.rt, self.workers = device, rt, list(workers)

    def resolve_program(self, *_, **__):
        from ._run import resolve
        return resolve(_build(), self)

