"""`phoenix-npu info`: the provider library, the ONNX Runtime it runs in, and the devices ONNX
Runtime sees for it (a quick check that the plugin loads; `doctor` checks the NPU).

`phoenix-npu info MODEL.onnx` prints where every node of MODEL runs and, for each node left
to the CPU EP, why the provider did not take it: ORT's node assignment for the session, with
the provider's own reason per node (its capability report, `phoenix_npu.capability_reports()`).
"""
from __future__ import annotations

import sys
from collections import defaultdict


def add_arguments(p) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="an ONNX model: print where each node runs and why the provider left a node to the CPU EP")
    p.add_argument("--device", default="emulator", choices=("auto", "emulator", "npu"),
                   help="provider device for MODEL (default emulator)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a provider option for MODEL (repeatable), e.g. --option precision=bf16x3")
    p.add_argument("--free-dim", action="append", default=[], metavar="NAME=VALUE",
                   help="pin a symbolic dim of MODEL (repeatable), e.g. --free-dim batch_size=1")
    p.add_argument("--counters", action="store_true", help="also print the counters of live regions (JSON)")
    p.add_argument("--options", action="store_true",
                   help="print the provider options (key, default, accepted values, what each does) as a Markdown table")


def node_report(model: str, device: str = "emulator", free_dims: dict | None = None, **options) -> list[dict]:
    """[{"ep", "region", "name", "op", "reason"}] for every node of `model`, in ORT's order
    (region: the fused region's number for PhoenixNPU nodes, else None; reason: why the
    provider left a CPU node, else ""). Creates one session; not for use while other threads
    create sessions (the provider keeps the reports of the last graphs offered to it)."""
    import phoenix_npu

    sess = phoenix_npu.make_session(model, device=device, free_dims=free_dims, **options)
    reasons: dict = {}
    for report in phoenix_npu.capability_reports():  # oldest first: this session's (the newest) win
        for node in report["per_node"]:
            reasons[(node["name"], node["op"])] = node["reason"]
    rows, region = [], 0
    for subgraph in sess.get_provider_graph_assignment_info():
        on_npu = subgraph.ep_name == phoenix_npu.EP_NAME
        region += on_npu
        for node in subgraph.get_nodes():
            reason = "" if on_npu else reasons.get((node.name, node.op_type), "not offered to the provider")
            rows.append({"ep": subgraph.ep_name, "region": region if on_npu else None, "name": node.name,
                         "op": node.op_type, "reason": reason})
    return rows


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} wants NAME=VALUE, not {item!r}")
        out[key] = value
    return out


def print_report(rows: list[dict], model: str) -> None:
    per_ep: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        per_ep[r["ep"]].append(r)
    import phoenix_npu

    npu = per_ep.get(phoenix_npu.EP_NAME, [])
    regions = len({r["region"] for r in npu})
    print(f"{model}: {len(rows)} nodes; {phoenix_npu.EP_NAME} takes {len(npu)} in {regions} region(s)")
    for ep, nodes in per_ep.items():
        print(f"\n{ep} ({len(nodes)} nodes):")
        width = max(len(n["op"]) for n in nodes)
        for n in nodes:
            where = f"region {n['region']}  " if n["region"] else ""
            why = f"  -- {n['reason']}" if n["reason"] else ""
            print(f"  {where}{n['op']:{width}s}  {n['name'] or '(unnamed)'}{why}")


def run(args) -> int:
    import json

    import onnxruntime as ort

    import phoenix_npu

    if args.options:
        print(phoenix_npu.option_table_markdown(), end="")
        return 0
    if args.model is not None:
        try:
            free_dims = {k: int(v) for k, v in _pairs(args.free_dim, "--free-dim").items()}
            rows = node_report(args.model, args.device, free_dims, **_pairs(args.option, "--option"))
        except (ValueError, phoenix_npu.ProviderError) as exc:
            print(f"phoenix-npu info: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # noqa: BLE001 - ORT's errors (a missing or invalid model) as one line
            print(f"phoenix-npu info: {args.model}: {exc}", file=sys.stderr)
            return 1
        print_report(rows, args.model)
        if args.counters:
            print(json.dumps(phoenix_npu.counters(), indent=2))
        return 0

    print(f"phoenix_npu {phoenix_npu.__version__}")
    print(f"onnxruntime {ort.__version__} ({ort.__file__})")
    try:
        print(f"provider library: {phoenix_npu.get_library_path()}")
        phoenix_npu.register()
    except phoenix_npu.ProviderError as exc:
        print(f"provider: NOT USABLE: {exc}")
        return 1
    devices = [d for d in ort.get_ep_devices() if d.ep_name == phoenix_npu.EP_NAME]
    if not devices:
        print("provider: registered, but it published no device (ONNX Runtime would ignore it)")
        return 1
    for d in devices:
        print(f"device: {d.ep_name} on {d.device.type.name} hardware device "
              f"(vendor {d.ep_vendor}); its options: phoenix-npu info --options")
    print("where a model's nodes run, and why: phoenix-npu info MODEL.onnx")
    if args.counters:
        print(json.dumps(phoenix_npu.counters(), indent=2))
    return 0
