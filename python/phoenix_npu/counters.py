"""The provider's counters and traces, read from the library's exported C functions.

    phoenix_npu.counters()                 # per live region: launches, bytes, transfers, time
    phoenix_npu.chrome_trace("t.json")     # the last run as a chrome://tracing / Perfetto trace
    phoenix_npu.reset_counters()
"""
from __future__ import annotations

import ctypes
import json
import threading

from ._library import ProviderError, get_library_path

_lib = None
_lib_lock = threading.Lock()


def _library():
    global _lib
    with _lib_lock:
        if _lib is None:
            # The same path ORT loaded, so dlopen returns the same handle and the same counters.
            lib = ctypes.CDLL(get_library_path())
            for fn in (lib.PhoenixNPU_CountersJson, lib.PhoenixNPU_ChromeTraceJson):
                fn.restype = ctypes.c_size_t
                fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
            lib.PhoenixNPU_ResetCounters.restype = None
            _lib = lib
    return _lib


def _read_json(fn) -> dict:
    """Call a `size_t fn(char* buf, size_t cap)` that returns the length it needs (with the
    NUL): a region created between two calls makes the text longer, so fill until it fits."""
    cap = 0
    for _ in range(8):
        need = fn(None, 0) if cap == 0 else cap
        if need == 0:
            raise ProviderError("the provider could not render its counters")
        buf = ctypes.create_string_buffer(need + 65536)  # room for a run finishing meanwhile
        got = fn(buf, len(buf))
        if got == 0:
            raise ProviderError("the provider could not render its counters")
        if got <= len(buf):
            return json.loads(buf.value.decode())
        cap = got
    raise ProviderError("the provider's counters kept growing while being read; try again")


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
