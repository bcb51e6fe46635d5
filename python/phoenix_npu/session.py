"""Sessions on PhoenixNPU, and what ran where.

    sess = phoenix_npu.make_session("encoder_model.onnx", device="emulator",
                                    free_dims={"batch_size": 1})
    phoenix_npu.assignment(sess)   # {"PhoenixNPUExecutionProvider": [...], "CPUExecutionProvider": [...]}
    phoenix_npu.counters()         # launches, bytes in/out, allocations, per-kernel time
"""
from __future__ import annotations

import ctypes
import json
from collections import defaultdict
from typing import Any, Mapping

from ._library import EP_NAME, ProviderError, get_library_path, register

DEVICES = ("auto", "emulator", "npu")


def provider_options(device: str = "auto", threads: int = 0, **extra: Any) -> dict[str, str]:
    """The provider options dict (ORT wants strings)."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)} (or 'cpu' for no provider), not {device!r}")
    opts = {"device": device, "threads": str(int(threads))}
    opts.update({k: str(v) for k, v in extra.items()})
    return opts


def providers(device: str = "auto", threads: int = 0, **extra: Any) -> list:
    """The `providers=` list for InferenceSession: PhoenixNPU first, the CPU EP for the rest.
    device="cpu" gives the CPU EP alone (the FP32 reference path)."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    register()
    return [(EP_NAME, provider_options(device, threads, **extra)), "CPUExecutionProvider"]


def session_options(free_dims: Mapping[str, int] | None = None, base=None):
    """SessionOptions that record node assignment (for `assignment()`) and pin free dims
    (e.g. {"batch_size": 1}) so shape subgraphs fold and the provider sees static shapes."""
    import onnxruntime as ort

    so = base if base is not None else ort.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    for name, value in (free_dims or {}).items():
        so.add_free_dimension_override_by_name(name, int(value))
    return so


def make_session(model, device: str = "auto", threads: int = 0, free_dims: Mapping[str, int] | None = None,
                 sess_options=None, **extra: Any):
    """An InferenceSession with PhoenixNPU (unless device="cpu"). Unlike a bare
    InferenceSession, it never falls back to the CPU EP quietly: if the provider cannot be
    created, ProviderError says why."""
    import onnxruntime as ort

    so = session_options(free_dims, sess_options)
    try:
        # enable_fallback=0: ORT's Python wrapper would otherwise retry on the CPU EP alone,
        # at session creation and again on a failed run.
        sess = ort.InferenceSession(model, so, providers=providers(device, threads, **extra), enable_fallback=0)
    except Exception as exc:
        if EP_NAME in str(exc) or "PhoenixNPU" in str(exc):
            raise ProviderError(str(exc)) from exc
        raise
    if device != "cpu" and EP_NAME not in sess.get_providers():
        raise ProviderError(f"{EP_NAME} is not active in this session; run `phoenix-npu doctor`.")
    return sess


def assignment(session) -> dict[str, list[str]]:
    """Which nodes each execution provider runs: {ep_name: [node name or op type, ...]}.
    Needs the session created with session_options() (or the config entry
    session.record_ep_graph_assignment_info=1)."""
    try:
        info = session.get_provider_graph_assignment_info()
    except Exception as exc:  # not recorded
        raise ProviderError(
            "node assignment was not recorded: create the session with phoenix_npu.session_options() "
            "or set session.record_ep_graph_assignment_info=1") from exc
    out: dict[str, list[str]] = defaultdict(list)
    for subgraph in info:
        for node in subgraph.get_nodes():
            out[subgraph.ep_name].append(node.name or node.op_type)
    return dict(out)


def assignment_summary(session) -> dict[str, dict[str, int]]:
    """Per EP: number of nodes and of subgraphs (for PhoenixNPU, a subgraph is a fused region)."""
    summary: dict[str, dict[str, int]] = {}
    for subgraph in session.get_provider_graph_assignment_info():
        s = summary.setdefault(subgraph.ep_name, {"nodes": 0, "subgraphs": 0})
        s["nodes"] += len(subgraph.get_nodes())
        s["subgraphs"] += 1
    return summary


_lib = None


def _library():
    global _lib
    if _lib is None:
        # The same path ORT loaded, so dlopen returns the same handle and the same counters.
        lib = ctypes.CDLL(get_library_path())
        lib.PhoenixNPU_CountersJson.restype = ctypes.c_size_t
        lib.PhoenixNPU_CountersJson.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.PhoenixNPU_ChromeTraceJson.restype = ctypes.c_size_t
        lib.PhoenixNPU_ChromeTraceJson.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.PhoenixNPU_CapabilityReportsJson.restype = ctypes.c_size_t
        lib.PhoenixNPU_CapabilityReportsJson.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.PhoenixNPU_OptionTableJson.restype = ctypes.c_size_t
        lib.PhoenixNPU_OptionTableJson.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.PhoenixNPU_ResetCounters.restype = None
        _lib = lib
    return _lib


def _read_json(fn):
    """Calls a PhoenixNPU_*Json function until its answer fits the buffer (the library writes
    nothing partial: a region created between two calls only makes it ask again)."""
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


def capability_reports() -> list:
    """What the provider took of the last graphs it was offered in this process (newest last):
    [{"graph", "nodes", "claimed", "regions", "per_node": [{"name", "op", "region", "reason"}]}];
    region -1 means the node was left to the CPU EP, and reason says why."""
    return _read_json(_library().PhoenixNPU_CapabilityReportsJson)


def option_table() -> list:
    """The provider options as the library declares them: [{"key", "default", "accepted", "doc"}]."""
    return _read_json(_library().PhoenixNPU_OptionTableJson)


def reset_counters() -> None:
    """Zero every counter (regions stay registered)."""
    _library().PhoenixNPU_ResetCounters()
