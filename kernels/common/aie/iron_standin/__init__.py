"""A stand-in for the part of mlir-aie v1.4.1's IRON API that kernels/*/aie/design.py use, which
EXECUTES a design on numpy buffers (_api.py says what it checks and what it cannot).

    from iron_standin import run_stage
    outputs, report = run_stage(design_module, manifest_kernel, checked_design, stage, {"x": x, ...})

Only numpy and ml_dtypes: it imports nothing from python/phoenix_npu (the caller hands over the
manifest kernel, the checked design and the stage).
"""
import contextlib
import sys
import types
from pathlib import Path

import numpy as np

from . import _api
from ._api import (DataflowError, DmaLimit, KernelTypeMismatch, StandinError,  # noqa: F401
                   UnfinishedTaskGroup, UnresolvedFifo)
from .reference import parse_defines

_MODULES = {
    "aie": {},
    "aie.iron": dict(ObjectFifo=_api.ObjectFifo, Program=_api.Program, Runtime=_api.Runtime, TaskGroup=_api.TaskGroup,
                     Worker=_api.Worker, Kernel=_api.Kernel, Buffer=_api.Buffer),
    "aie.iron.controlflow": dict(range_=_api.range_),
    "aie.iron.device": dict(NPU1=_api.NPU1, Tile=_api.Tile),
    "aie.helpers": {},
    "aie.helpers.taplib": dict(TensorAccessPattern=_api.TensorAccessPattern),
}


@contextlib.contextmanager
def activate():
    """`import aie.iron` (and the rest of the subset) resolves to the stand-in inside the block.
    iron_common is re-imported on entry and dropped on exit, so it binds to whichever is active."""
    saved = {name: sys.modules.get(name) for name in [*_MODULES, "iron_common"]}
    try:
        for name, attrs in _MODULES.items():
            m = types.ModuleType(name, "iron_standin: " + (_api.__doc__ or "").splitlines()[0])
            m.__dict__.update(attrs)
            m.__path__ = []
            sys.modules[name] = m
        sys.modules.pop("iron_common", None)
        yield
    finally:
        for name, m in saved.items():
            if m is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = m


class _Build:
    def __init__(self, arrays, defines):
        self.arrays, self.defines = arrays, defines
        self.fifos, self.links, self.workers = [], [], []
        self.kernel_calls = 0
        self.report = {}


DTYPES = {2: "bfloat16", 4: np.float32}
INT_DTYPES = {"int8": np.int8, "int32": np.int32}


def empty_buffer(elements, elem_bytes, dtype=None):
    """A runtime buffer filled with NaN (an element no transfer writes stays NaN); an integer
    buffer (dtype "int8" / "int32") with its type's minimum, which no INT8 stage writes in
    practice (the comparison then shows the element)."""
    from ml_dtypes import bfloat16
    if dtype:
        t = INT_DTYPES[dtype]
        return np.full(elements, np.iinfo(t).min, t)
    return np.full(elements, np.nan, bfloat16 if elem_bytes == 2 else np.float32)


def run_stage(module, kernel, design, stage, inputs):
    """Run one manifest stage's IRON program (module.program) on the stand-in.

    inputs: {runtime argument name: 1-D numpy array} (bfloat16 for 2-byte buffers, float32 for
    4-byte ones, int8 / int32 for the buffers design.dtypes names); every argument not given is an output, allocated NaN-filled. Returns
    ({argument: array} for every argument, report dict)."""
    objs = module.core_objects(kernel, design, Path("<mlir-aie>"))
    defines = {obj: parse_defines(flags) for _, obj, flags in objs}
    arrays = []
    for a in stage.args:
        n, eb = design.buffers[a]
        arr = inputs[a] if a in inputs else empty_buffer(n, eb, getattr(design, "dtypes", {}).get(a))
        if arr.shape != (n,) or arr.dtype.itemsize != eb:
            raise StandinError(f"{a}: expected {n} elements of {eb} bytes, got {arr.shape} {arr.dtype}")
        arrays.append(arr)
    build = _Build(arrays, defines)
    with activate():
        _api._BUILD = build
        try:
            text = module.program(kernel, design, stage, [o for _, o, _ in objs])
        except KeyError as e:
            raise UnresolvedFifo(f"{design.name}: the runtime sequence names {e}, which the design does not create "
                                 f"(its FIFOs: {', '.join(f.name for f in build.fifos if '_l2_' in f.name or 'L3' in f.name)})"
                                 ) from e
        finally:
            _api._BUILD = None
    build.report["program"] = str(text)
    return dict(zip(stage.args, arrays)), build.report
