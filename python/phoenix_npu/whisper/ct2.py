"""Reading CTranslate2's `model.bin` (format version 6) without CTranslate2.

Layout: u32 version, u16-length spec name, u32 revision, u32 variable count, then per
variable a u16-length name, u8 rank, u32 dims, u8 dtype, u32 byte count and the bytes; then
u32 alias count and (alias, target) name pairs. Every count and size is checked against the
file: a model.bin comes from anywhere.
"""
from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# CTranslate2's DataType enum
_FLOAT32, _INT8, _INT16, _INT32, _FLOAT16, _BFLOAT16 = range(6)
_NUMPY = {_FLOAT32: np.float32, _INT8: np.int8, _INT16: np.int16, _INT32: np.int32,
          _FLOAT16: np.float16, _BFLOAT16: np.uint16}


@dataclass
class CT2Model:
    spec: str
    revision: int
    variables: dict[str, np.ndarray]   # float variables already as float32 (int8 dequantized)
    aliases: dict[str, str]


class _Reader:
    def __init__(self, data, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def _need(self, n: int, what: str) -> None:
        if self.pos + n > len(self.data):
            raise ValueError(f"{self.path}: truncated CTranslate2 model ({what} at byte {self.pos})")

    def take(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        self._need(size, "header")
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def string(self) -> str:
        (n,) = self.take("H")
        self._need(n, "name")
        raw = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{self.path}: a variable name at byte {self.pos - n} is not UTF-8") from exc

    def raw(self, n: int) -> memoryview:
        self._need(n, "variable data")
        out = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return out


_TYPE_NAMES = {_FLOAT32: "float32", _INT8: "int8", _INT16: "int16", _INT32: "int32", _FLOAT16: "float16",
               _BFLOAT16: "bfloat16"}


def saved_types(path: str | os.PathLike) -> set[str]:
    """The CTranslate2 data types of a model.bin's variables ("float16", "int8", ...), read
    from the variable headers only (the data is skipped)."""
    path = Path(path)
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        r = _Reader(data, path)
        (version,) = r.take("I")
        if version != 6:
            raise ValueError(f"{path}: CTranslate2 model format version {version}; this reader knows version 6")
        r.string()
        r.take("I")
        (count,) = r.take("I")
        found = set()
        for _ in range(count):
            r.string()
            (rank,) = r.take("B")
            if rank:
                r.take("I" * rank)
            (dtype,) = r.take("B")
            (nbytes,) = r.take("I")
            r._need(nbytes, "variable data")
            r.pos += nbytes
            found.add(_TYPE_NAMES.get(dtype, str(dtype)))
        return found
    finally:
        data.close()


def cpu_compute_type(model_dir: str | os.PathLike) -> str:
    """The compute type CTranslate2 ends up with on the CPU for this model's saved weights,
    named explicitly so that it does not warn about converting them: a model saved with float16
    or bfloat16 parts (int8_float16 included) runs as float32, as CTranslate2's own inference
    makes it on the CPU; otherwise "default" (what was saved: float32 or int8, no conversion)."""
    return "float32" if saved_types(Path(model_dir) / "model.bin") & {"float16", "bfloat16"} else "default"


def read_ct2_model(path: str | os.PathLike) -> CT2Model:
    """Read a CTranslate2 model.bin (format version 6). Float16/bfloat16 become float32; int8
    weights with a `weight_scale` are dequantized (w = q / scale)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ValueError(f"{path}: empty file, not a CTranslate2 model")
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    r = _Reader(data, path)
    (version,) = r.take("I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 model format version {version}; this reader knows version 6")
    spec = r.string()
    (revision,) = r.take("I")
    (count,) = r.take("I")
    raw: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = r.string()
        (rank,) = r.take("B")
        dims = r.take("I" * rank) if rank else ()
        (dtype,) = r.take("B")
        (nbytes,) = r.take("I")
        if dtype not in _NUMPY:
            raise ValueError(f"{path}: variable {name} has unsupported CTranslate2 dtype {dtype}")
        want = math.prod(dims) * np.dtype(_NUMPY[dtype]).itemsize
        if nbytes != want:
            raise ValueError(f"{path}: variable {name} {list(dims)} declares {nbytes} bytes, its shape needs {want}")
        arr = np.frombuffer(r.raw(nbytes), dtype=_NUMPY[dtype]).reshape(dims)
        if dtype == _BFLOAT16:
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        raw[name] = arr
    aliases: dict[str, str] = {}
    if r.pos < len(r.data):
        (n_alias,) = r.take("I")
        for _ in range(n_alias):
            alias = r.string()
            aliases[alias] = r.string()
    variables: dict[str, np.ndarray] = {}
    for name, arr in raw.items():
        if name.endswith("weight_scale"):
            continue
        scale = raw.get(name + "_scale")
        if scale is not None and arr.dtype == np.int8:
            s = scale.astype(np.float32).reshape(-1, *([1] * (arr.ndim - 1)))
            arr = arr.astype(np.float32) / s
        elif arr.dtype in (np.float16, np.float32):
            arr = arr.astype(np.float32)  # a copy: nothing keeps the mapping alive
        else:
            arr = arr.copy()
        variables[name] = arr
    for alias, target in aliases.items():
        if target in variables:
            variables.setdefault(alias, variables[target])
    return CT2Model(spec, revision, variables, aliases)
