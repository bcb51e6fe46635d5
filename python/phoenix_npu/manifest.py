"""The NPU kernel manifest, as the provider reads it.

There is one manifest parser: the provider's (provider/devices/xrt/manifest.cc). This module
calls it through the library (PhoenixNPU_LoadManifestJson) and wraps the normalised result in
dataclasses, so `phoenix-npu doctor`, `phoenix-npu plan --check` and the tests see exactly what
the XRT device would accept. Format: docs/npu.md ("The kernel manifest"); example kernels/manifest.json.

    m = load_manifest("kernels/manifest.json", check_artifacts=False)
    m.find("matmul", M=1500, K=512, N=2048, bias=True, epilogue="gelu_erf")
"""
from __future__ import annotations

import ctypes
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

_lock = threading.Lock()
_lib = None


class ManifestError(ValueError):
    """The manifest is missing, not JSON, the wrong version, incomplete, or names missing files."""


def _library():
    """The provider library with the manifest / NPU-status functions typed (loaded once)."""
    global _lib
    with _lock:
        if _lib is None:
            from ._library import get_library_path
            lib = ctypes.CDLL(get_library_path())
            for fn, args in (("PhoenixNPU_LoadManifestJson", [ctypes.c_char_p, ctypes.c_int]),
                             ("PhoenixNPU_NpuStatusJson", [ctypes.c_char_p] * 4)):
                getattr(lib, fn).restype = ctypes.c_void_p  # freed with PhoenixNPU_FreeString
                getattr(lib, fn).argtypes = args
            lib.PhoenixNPU_FreeString.restype = None
            lib.PhoenixNPU_FreeString.argtypes = [ctypes.c_void_p]
            _lib = lib
        return _lib


def call_json(fn: str, *args) -> dict:
    """Call one of the library's JSON-returning functions and decode (and free) its answer."""
    lib = _library()
    ptr = getattr(lib, fn)(*args)
    if not ptr:
        raise MemoryError(f"{fn} returned nothing (out of memory)")
    try:
        raw = ctypes.string_at(ptr)
    finally:
        lib.PhoenixNPU_FreeString(ptr)
    return json.loads(raw.decode("utf-8", errors="replace"))


def _c_path(path) -> bytes | None:
    return None if path is None else os.fsencode(str(path))


@dataclass
class ManifestStage:
    kernel_name: str
    insts: str
    insts_path: Path
    args: list
    xclbin: str = ""                    # per-stage mode: this stage's own xclbin (docs/npu.md 5)
    xclbin_path: Path | None = None


@dataclass
class ManifestKernel:
    op: str
    describe_text: str
    stages: list
    dtype: str = "bf16"
    scale: float = 1.0
    batch: int = 1
    M: int = 0
    K: int = 0
    N: int = 0
    b_layout: str = "row_major"
    epilogue: str = "none"
    bias: bool = False
    residual: bool = False
    weight_zero_points: bool = False    # matmul_int8: weights with zero points (K' = 2K GEMM; docs/npu.md 2d)
    rows: int = 0
    cols: int = 0
    beta: bool = True
    epsilon: float = 1e-5
    n: int = 0
    mode: str = "erf"
    scratch_bytes: int = 0

    def describe(self) -> str:
        return self.describe_text

    def artifacts_present(self) -> bool:
        return all(s.insts_path.is_file() for s in self.stages)


@dataclass
class Manifest:
    path: Path
    version: int
    device: str
    xclbin: str
    xclbin_path: Path
    kernels: list = field(default_factory=list)

    def find(self, op: str, **want) -> ManifestKernel | None:
        """The kernel with this op whose fields equal every given value (e.g. M=1500, bias=True)."""
        for k in self.kernels:
            if k.op == op and all(_same(getattr(k, key), v) for key, v in want.items()):
                return k
        return None

    def artifacts_present(self) -> bool:
        return self.xclbin_path.is_file() and all(k.artifacts_present() for k in self.kernels)


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-6 * max(abs(float(a)), abs(float(b)), 1e-30)
    return a == b


def _from_json(d: dict) -> Manifest:
    kernels = []
    for k in d["kernels"]:
        stages = [ManifestStage(s["kernel_name"], s["insts"], Path(s["insts_path"]), list(s["args"]),
                                s.get("xclbin", ""), Path(s["xclbin_path"]) if s.get("xclbin_path") else None)
                  for s in k.pop("stages")]
        k["describe_text"] = k.pop("describe")
        kernels.append(ManifestKernel(stages=stages, **k))
    return Manifest(Path(d["path"]), d["version"], d["device"], d["xclbin"], Path(d["xclbin_path"]), kernels)


def load_manifest(path: str | Path | None = None, check_artifacts: bool = True) -> Manifest:
    """Load and validate a manifest with the provider's parser. `path` None: the provider's
    default ($PHOENIX_NPU_MANIFEST, else the manifest installed beside the library)."""
    answer = call_json("PhoenixNPU_LoadManifestJson", _c_path(path), 1 if check_artifacts else 0)
    if not answer.get("ok"):
        raise ManifestError(answer.get("error", "unknown error"))
    return _from_json(answer["manifest"])


def npu_status(sys_root=None, accel=None, firmware=None, manifest=None) -> dict:
    """The provider's own answer to "can this machine run the NPU path, and if not why":
    {"usable", "why_not", "checks": [{"name", "ok", "found", "todo"}]}. Arguments fake a machine."""
    return call_json("PhoenixNPU_NpuStatusJson", *(_c_path(a) for a in (sys_root, accel, firmware, manifest)))
