"""The provider's counters and traces, read from the library's exported C functions.

    phoenix_npu.counters()                 # per live region: launches, bytes, transfers, time
    phoenix_npu.chrome_trace("t.json")     # the last run as a chrome://tracing / Perfetto trace
    phoenix_npu.reset_counters()
"""
from __future__ import annotations

import ctypes
import json
import threading

from ._library import ProviderError, cdll

_lib = None
_lib_lock = threading.Lock()


def _library():
    """The provider library with the signatures of the JSON exports read here."""
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = cdll()
            for fn in (lib.PhoenixNPU_CountersJson, lib.PhoenixNPU_ChromeTraceJson, lib.PhoenixNPU_OptionTableJson):
                fn.restype = ctypes.c_size_t
                fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
            lib.PhoenixNPU_ResetCounters.restype = None
            _lib = lib
    return _lib


def _read_json(fn):
    """Call a `size_t fn(char* buf, size_t cap)` export until its answer fits the buffer: it
    returns the length it needs (with the NUL), and a region created between two calls only
    makes the text longer, so it asks again rather than parse a truncated copy."""
    size = 1 << 16
    for _ in range(32):
        buf = ctypes.create_string_buffer(size)
        need = fn(buf, size)
        if need == 0:
            raise ProviderError("the provider could not render its JSON")
        if need <= size:
            return json.loads(buf.value.decode())
        size = need * 2
    raise ProviderError("the provider's JSON kept growing while it was read")


def counters() -> dict:
    """The provider's counters: {"regions": [per live region: device, onnx_nodes, kernel_calls,
    arena_bytes, weight_bytes, runs, launches, bytes_in, bytes_out, transfers_in,
    transfers_out, weight_bytes_uploaded, device_allocations, kernels: {kind: {launches, ns}},
    last_run_ns, last_host_overhead_ns}], "totals": {...}}."""
    return _read_json(_library().PhoenixNPU_CountersJson)


def chrome_trace(path=None) -> dict:
    """The last run of every live region as a Chrome trace (open in chrome://tracing or
    Perfetto): one row per region, one slice per kernel call. Written to `path` if given."""
    trace = _read_json(_library().PhoenixNPU_ChromeTraceJson)
    if path is not None:
        with open(path, "w") as f:
            json.dump(trace, f)
    return trace


def reset_counters() -> None:
    """Zero every counter (regions stay registered)."""
    _library().PhoenixNPU_ResetCounters()
