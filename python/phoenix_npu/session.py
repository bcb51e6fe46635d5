"""Sessions on PhoenixNPU, and what ran where.

    sess = phoenix_npu.make_session("encoder_model.onnx", device="emulator",
                                    free_dims={"batch_size": 1})
    phoenix_npu.assignment(sess)   # {"PhoenixNPUExecutionProvider": [...], "CPUExecutionProvider": [...]}

ONNX Runtime's Python `InferenceSession` catches an error creating the providers (a bad
option value, `device=npu` without an NPU) and retries on the CPU EP alone, printing only a
banner. `InferenceSession(..., enable_fallback=0)` turns that retry off (at creation and on a
failed run); `make_session` always passes it.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Mapping

from ._library import EP_NAME, ProviderError, register
from .counters import library_json

DEVICES = ("auto", "emulator", "npu")
CPU_EP = "CPUExecutionProvider"


def provider_options(device: str = "auto", threads: int = 0, **extra: Any) -> dict[str, str]:
    """The provider options dict (ORT wants strings)."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)} (or 'cpu' for no provider), not {device!r}")
    opts = {"device": device, "threads": str(int(threads))}
    opts.update({k: str(v) for k, v in extra.items()})
    return opts


def option_table() -> list:
    """The provider options as the library declares them: [{"key", "default", "accepted", "doc"}]."""
    return library_json("OptionTable")


def option_table_markdown() -> str:
    """The option table as the README shows it (generated: `phoenix-npu info --options`)."""
    rows = ["| option | default | accepted | what it does |", "|---|---|---|---|"]
    for o in option_table():
        default = f"`{o['default']}`" if o["default"] else "(none)"
        rows.append(f"| `{o['key']}` | {default} | {o['accepted']} | {o['doc']} |")
    return "\n".join(rows) + "\n"


def capability_reports() -> list:
    """What the provider took of the last graphs it was offered in this process (newest last):
    [{"graph", "nodes", "claimed", "regions", "per_node": [{"name", "op", "region", "reason"}]}];
    region -1 means the node was left to the CPU EP, and reason says why."""
    return library_json("CapabilityReports")


def providers(device: str = "auto", threads: int = 0, **extra: Any) -> list:
    """The `providers=` list for InferenceSession: PhoenixNPU first, the CPU EP for the rest.
    device="cpu" gives the CPU EP alone (the FP32 reference path). Registers the library
    (ProviderError when it cannot: there is no quiet fallback to the CPU EP)."""
    if device == "cpu":
        return [CPU_EP]
    register()
    return [(EP_NAME, provider_options(device, threads, **extra)), CPU_EP]


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
    """An InferenceSession with PhoenixNPU (unless device="cpu"), recording node assignment.
    Unlike a bare InferenceSession it never falls back to the CPU EP quietly: if the provider
    cannot be created, ProviderError says why."""
    import onnxruntime as ort

    so = session_options(free_dims, sess_options)
    provider_list = providers(device, threads, **extra)
    try:
        # enable_fallback=0: ORT's Python wrapper would otherwise retry on the CPU EP alone,
        # at session creation and again on a failed run.
        sess = ort.InferenceSession(model, so, providers=provider_list, enable_fallback=0)
    except Exception as exc:
        if EP_NAME in str(exc) or "PhoenixNPU" in str(exc):
            raise ProviderError(provider_message(exc)) from exc  # ORT's full text stays as __cause__
        raise
    if device != "cpu" and EP_NAME not in sess.get_providers():
        raise ProviderError(f"{EP_NAME} is not active in this session; run `phoenix-npu doctor`.")
    return sess


# ORT puts its own C++ frame first: "/onnxruntime_src/...cc:393 virtual std::unique_ptr<...>
# CreateProvider(...) [ONNXRuntimeError] : 1 : FAIL : PhoenixNPU: device=npu was requested ...".
_ORT_PREFIX = re.compile(r"^.*?\[ONNXRuntimeError\] : \d+ : \w+ : ", re.S)


def provider_message(exc: BaseException) -> str:
    """The provider's own message from an ORT exception, without ORT's source location prefix."""
    return _ORT_PREFIX.sub("", str(exc), count=1).strip()


def assignment(session) -> dict[str, list[str]]:
    """Which nodes each execution provider runs: {ep_name: [node name or op type, ...]}.
    Needs the session created with session_options() (or the config entry
    session.record_ep_graph_assignment_info=1)."""
    out: dict[str, list[str]] = defaultdict(list)
    for subgraph in _assignment_info(session):
        for node in subgraph.get_nodes():
            out[subgraph.ep_name].append(node.name or node.op_type)
    return dict(out)


def assignment_summary(session) -> dict[str, dict[str, int]]:
    """Per EP: number of nodes and of subgraphs (for PhoenixNPU, a subgraph is a fused region)."""
    summary: dict[str, dict[str, int]] = {}
    for subgraph in _assignment_info(session):
        s = summary.setdefault(subgraph.ep_name, {"nodes": 0, "subgraphs": 0})
        s["nodes"] += len(subgraph.get_nodes())
        s["subgraphs"] += 1
    return summary


def describe_assignment(session) -> str:
    """One line: how many of the session's nodes PhoenixNPU took, in how many regions."""
    summary = assignment_summary(session)
    npu = summary.get(EP_NAME, {"nodes": 0, "subgraphs": 0})
    total = sum(s["nodes"] for s in summary.values())
    return f"{npu['nodes']} of {total} nodes in {npu['subgraphs']} region(s)"


def device_ran(session, requested: str) -> str:
    """The device that runs the session's PhoenixNPU nodes: "npu" or "emulator" (what "auto"
    resolved to), or "cpu" when the session was made for the CPU EP or PhoenixNPU took none of
    its nodes. Results and logs name this, not the requested device."""
    if requested == "cpu" or not assignment_summary(session).get(EP_NAME, {}).get("nodes"):
        return "cpu"
    from .counters import counters

    # every region of a process runs on the device its provider chose (the auto decision is per process)
    regions = counters().get("regions") or []
    return next((r["device"] for r in reversed(regions) if r.get("device")), requested)


def device_label(requested: str, ran: str) -> str:
    """How a log line names the device: the requested one, or "auto -> emulator" when the
    provider resolved it to another."""
    return requested if ran == requested else f"{requested} -> {ran}"


def _assignment_info(session):
    try:
        return session.get_provider_graph_assignment_info()
    except Exception as exc:  # not recorded
        raise ProviderError(
            "node assignment was not recorded: create the session with phoenix_npu.session_options() "
            "or set session.record_ep_graph_assignment_info=1") from exc
