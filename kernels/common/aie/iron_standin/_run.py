"""Program.resolve_program() of the stand-in: the checks, then the data (see _api.py)."""
from __future__ import annotations

import math
from collections import defaultdict, deque

import numpy as np

from . import _api as A
from . import limits as L


def _where(h):
    kind = h.endpoint[0] if h.endpoint else None
    if kind == "runtime":
        return h.endpoint[1]
    if kind == "worker":
        return h.endpoint[1].tile
    if kind == "link":
        return h.endpoint[1].tile
    return None


def _check_resources(build, prog):
    rep = build.report
    for f in build.fifos:
        if f._prod is None or f._prod.endpoint is None:
            raise A.DataflowError(f"{f.name} has no producer")
        cons = [h for h in f._cons if h.endpoint is not None]
        if not cons:
            raise A.DataflowError(f"{f.name} has no consumer")
        f._cons = cons
    tiles = {}
    for w in prog.workers:
        if w.tile.key() in tiles:
            raise A.StandinError(f"two workers on {w.tile}")
        tiles[w.tile.key()] = w
    if set(map(id, build.workers)) != set(map(id, prog.workers)):
        raise A.StandinError("a Worker was constructed but not given to Program")
    # Compute tiles: L1 (FIFO buffers on the tile, buffers, stack) and DMA channels.
    l1 = defaultdict(int)
    ins, outs = defaultdict(int), defaultdict(int)
    for key, w in tiles.items():
        l1[key] += w.stack_size
        for a in w.fn_args:
            if isinstance(a, A.Buffer):
                l1[key] += a.data.nbytes
    for f in build.fifos:
        p = _where(f._prod)
        for h in f._cons:
            c = _where(h)
            if c.kind == "compute":              # buffers on the consumer's tile
                l1[c.key()] += h.depth * f.nbytes
                if p.key() != c.key():
                    ins[c.key()] += 1
        if p.kind == "compute":
            if any(_where(h).key() != p.key() for h in f._cons):
                outs[p.key()] += 1
            if all(_where(h).kind != "compute" for h in f._cons):
                l1[p.key()] += f.depth * f.nbytes
    for key in l1:
        if l1[key] > L.L1_BYTES:
            raise A.DmaLimit(f"compute tile {key}: {l1[key]} B of L1 (stack included) > {L.L1_BYTES}")
        if ins[key] > L.CORE_S2MM or outs[key] > L.CORE_MM2S:
            raise A.DmaLimit(f"compute tile {key}: {ins[key]} input / {outs[key]} output DMA channels "
                             f"> {L.CORE_S2MM} / {L.CORE_MM2S}")
    # Memtiles: channels, memory, BDs (each L2 buffer of a link takes a BD per channel it moves on).
    mm2s, s2mm, mem, bds = defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int)
    for ln in build.links:
        k = ln.tile.key()
        l2 = ln.dsts[0].fifo if ln.kind == "join" else ln.srcs[0].fifo
        s2mm[k] += len(ln.srcs)
        mm2s[k] += len(ln.dsts)
        mem[k] += l2.depth * l2.nbytes
        bds[k] += l2.depth * (len(ln.srcs) + len(ln.dsts))
    for k in mem:
        if mm2s[k] > L.MEMTILE_MM2S or s2mm[k] > L.MEMTILE_S2MM:
            raise A.DmaLimit(f"memtile {k}: {mm2s[k]} MM2S / {s2mm[k]} S2MM channels > {L.MEMTILE_MM2S} / {L.MEMTILE_S2MM}")
        if mem[k] > L.MEMTILE_BYTES:
            raise A.DmaLimit(f"memtile {k}: {mem[k]} B > {L.MEMTILE_BYTES}")
        if bds[k] > L.MEMTILE_BDS:
            raise A.DmaLimit(f"memtile {k}: about {bds[k]} BDs > {L.MEMTILE_BDS}")
    shim = {}
    for f in build.fifos:
        for h in [f._prod, *f._cons]:
            if h.endpoint[0] == "runtime":
                _, t, ch = h.endpoint
                key = (t.col, "MM2S" if h.is_prod else "S2MM", ch)
                if key in shim and shim[key] is not f:
                    raise A.DmaLimit(f"shim {key} used by {shim[key].name} and {f.name}")
                shim[key] = f
    rep.update(l1_max=max(l1.values(), default=0), memtile_max=max(mem.values(), default=0),
               memtile_channels=(max(mm2s.values(), default=0), max(s2mm.values(), default=0)),
               memtile_bds=max(bds.values(), default=0), shim_channels=len(shim))


def _run_sequence(build, prog):
    rt = prog.rt
    args, arrays = [], iter(build.arrays)
    for a in rt.fn_args:
        try:
            key = A.type_key(a)
        except A.StandinError:
            args.append(a)               # handles and other non-tensor items pass through
            continue
        arr = next(arrays, None)
        if arr is None or (arr.shape, arr.dtype) != key:
            raise A.StandinError(f"runtime argument {len(args)} declared {A._fmt(key)}, "
                                 f"given {None if arr is None else (arr.shape, arr.dtype)}")
        args.append(A.RuntimeData(arr))
    seq = A._Sequence(build)
    A._ACTIVE = seq
    try:
        rt.seq_fn(*args)
        seq.finalize()
    finally:
        A._ACTIVE = None
    build.report.update(tasks=seq.tasks, task_groups=len(seq.groups), peak_shim_bds=seq.peak_bds)


def _objects(f, flat):
    n = math.prod(f.key[0])
    if flat.size % n or flat.size == 0:
        raise A.DataflowError(f"{f.name}: the runtime sends {flat.size} elements, not whole {n}-element objects")
    return list(flat.reshape(-1, n))


def _deliver(f):
    """Hand f's produced objects to every consumer (each gets all of them: a broadcast)."""
    streamed = [A._stream_dims(f, o) if _where(f._prod).kind == "memtile" else o for o in f.produced]
    for h in f._cons:
        h.queue = deque(o.copy() for o in streamed)


def _dataflow(build, prog):
    for f in build.fifos:
        if f._prod.endpoint[0] == "runtime":
            if not f.stream:
                raise A.DataflowError(f"{f.name}: the runtime sequence never fills it")
            f.produced = _objects(f, np.concatenate(f.stream))
            _deliver(f)
    links, workers = list(build.links), list(prog.workers)
    while links or workers:
        progress = False
        for ln in list(links):
            if not all(h.fifo.produced is not None for h in ln.srcs):
                continue
            if ln.kind in ("forward", "split"):
                src = ln.srcs[0]
                for d in ln.dsts:
                    d.fifo.produced = []
                for obj in src.queue:
                    for d, off in zip(ln.dsts, ln.offsets):
                        n = math.prod(d.fifo.key[0])
                        if off + n > obj.size:
                            raise A.DataflowError(f"{ln.kind} {src.name} -> {d.name}: [{off}, {off + n}) outside "
                                                  f"the {obj.size}-element object")
                        d.fifo.produced.append(obj[off:off + n].copy())
                src.consumed, src.queue = len(src.queue), deque()
            else:  # join
                counts = {len(h.queue) for h in ln.srcs}
                if len(counts) != 1:
                    raise A.DataflowError(f"join into {ln.dsts[0].name}: its inputs deliver {sorted(counts)} objects")
                dst = ln.dsts[0].fifo
                n = math.prod(dst.key[0])
                dst.produced = []
                for parts in zip(*(h.queue for h in ln.srcs)):
                    obj = A._unset(n, dst.key[1])
                    covered = np.zeros(n, bool)
                    for part, off in zip(parts, ln.offsets):
                        if covered[off:off + part.size].any() or off + part.size > n:
                            raise A.DataflowError(f"join into {dst.name}: parts overlap or overrun the object")
                        obj[off:off + part.size] = part
                        covered[off:off + part.size] = True
                    if not covered.all():
                        raise A.DataflowError(f"join into {dst.name}: parts leave {int((~covered).sum())} elements unset")
                    dst.produced.append(obj)
                for h in ln.srcs:
                    h.consumed, h.queue = len(h.queue), deque()
            for d in ln.dsts:
                _deliver(d.fifo)
            links.remove(ln)
            progress = True
        for w in list(workers):
            ins = [a for a in w.fn_args if isinstance(a, A._Handle) and not a.is_prod]
            if not all(h.fifo.produced is not None for h in ins):
                continue
            outs = [a for a in w.fn_args if isinstance(a, A._Handle) and a.is_prod]
            for h in outs:
                h.fifo.produced = []
            w.core_fn(*w.fn_args)
            for h in ins + outs:
                if h.held:
                    raise A.DataflowError(f"worker on {w.tile}: {len(h.held)} object(s) of {h.name} still held at the "
                                          "end of its body")
            for h in ins:
                if h.queue:
                    raise A.DataflowError(f"worker on {w.tile}: {len(h.queue)} object(s) of {h.name} arrive but are "
                                          "never acquired (the producer would stall)")
            for h in outs:
                _deliver(h.fifo)
            workers.remove(w)
            progress = True
        if not progress:
            raise A.DataflowError("no link or worker can proceed (a cycle, or an input nobody produces): "
                                  + ", ".join([f"{ln.kind}@{ln.tile}" for ln in links] + [f"worker@{w.tile}" for w in workers]))
    # Drains: each runtime consumer's stream, in order, into the runtime buffers.
    drained = 0
    for f in build.fifos:
        rt = [h for h in f._cons if h.endpoint[0] == "runtime"]
        if not rt:
            continue
        stream = np.concatenate(list(rt[0].queue)) if rt[0].queue else np.zeros(0, f.key[1])
        pos = 0
        for arr, idx in f.drains:
            if pos + idx.size > stream.size:
                raise A.DataflowError(f"{f.name}: a drain waits for {pos + idx.size} elements, {stream.size} ever arrive")
            arr.reshape(-1)[idx] = stream[pos:pos + idx.size]
            pos += idx.size
        if pos != stream.size:
            raise A.DataflowError(f"{f.name}: {stream.size - pos} elements arrive that no drain takes (the array stalls)")
        drained += pos
    build.report.update(kernel_calls=build.kernel_calls, elements_drained=drained)


def resolve(build, prog):
    _check_resources(build, prog)
    _run_sequence(build, prog)
    _dataflow(build, prog)
    r = build.report
    return (f"// iron_standin: {len(prog.workers)} workers, {len(build.fifos)} ObjectFifos, {len(build.links)} links, "
            f"{r['tasks']} shim tasks in {r['task_groups']} groups, {r['kernel_calls']} kernel calls: no MLIR (stand-in)\n")
