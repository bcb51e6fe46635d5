"""The provider's counters and traces, and the reader of the library's JSON exports.

    phoenix_npu.counters()                 # per live region: launches, bytes, transfers, time
    phoenix_npu.chrome_trace("t.json")     # the last run as a chrome://tracing / Perfetto trace
    phoenix_npu.reset_counters()
"""
from __future__ import annotations

import ctypes
import json
import threading

from ._library import ProviderError, cdll

_signed: set[str] = set()
_lock = threading.Lock()


def library_json(name: str):
    """Call the library's `size_t PhoenixNPU_<name>Json(char* buf, size_t cap)` export and
    parse its answer."""
    fn = getattr(cdll(), f"PhoenixNPU_{name}Json")
    with _lock:
        if name not in _signed:
            fn.restype = ctypes.c_size_t
            fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
            _signed.add(name)
    return _read_json(fn, name)


def _read_json(fn, what: str = "JSON"):
    """The exports return the length they need (with the NUL) and write nothing partial: a
    region created between two calls only makes the text longer, so ask again until it fits."""
    size = 1 << 16
    for _ in range(32):
        buf = ctypes.create_string_buffer(size)
        need = fn(buf, size)
        if need == 0:
            raise ProviderError(f"the provider could not render its {what}")
        if need <= size:
            return json.loads(buf.value.decode())
        size = need * 2
    raise ProviderError(f"the provider's {what} kept growing while it was read")


def counters() -> dict:
    """The provider's counters: {"regions": [per live region: device, onnx_nodes, kernel_calls,
    arena_bytes, weight_bytes, runs, launches, bytes_in, bytes_out, transfers_in,
    transfers_out, weight_bytes_uploaded, device_allocations, kernels: {kind: {launches, ns}},
    last_run_ns, last_host_overhead_ns}], "totals": {...}}."""
    return library_json("Counters")


def chrome_trace(path=None) -> dict:
    """The last run of every live region as a Chrome trace (open in chrome://tracing or
    Perfetto): one row per region, one slice per kernel call. Written to `path` if given."""
    trace = library_json("ChromeTrace")
    if path is not None:
        with open(path, "w") as f:
            json.dump(trace, f)
    return trace


def reset_counters() -> None:
    """Zero every counter (regions stay registered)."""
    fn = cdll().PhoenixNPU_ResetCounters
    fn.restype = None
    fn()


def measure_peak() -> dict:
    """This CPU's dot-product peak per core (one thread), measured once per process by the
    provider library (about 0.25 s; kernels/common/peak.h): {"kernel_isa", "bf16_kernels",
    "int8_kernels", "per_core": {"fp32_fma", "fp32_muladd", "bf16_dot", "int8_dot",
    "int8_dot_ymm", "int16_madd"}} in GFLOP/s or GOP/s, a multiply-add counted as 2, 0 =
    instruction absent.
    "bf16_kernels" / "int8_kernels" name the entry whose instruction the emulated device's BF16 /
    INT8 kernels run on here (None: the portable scalar kernels)."""
    fn = cdll().PhoenixNPU_MeasurePeak
    with _lock:
        if "MeasurePeak" not in _signed:
            fn.restype = ctypes.c_size_t
            fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
            _signed.add("MeasurePeak")
    return _read_json(fn, "peak measurement")
