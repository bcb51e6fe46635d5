"""`phoenix-npu info`: the provider library, the ONNX Runtime it runs in, and the devices
ONNX Runtime sees for it (a quick check that the plugin loads; `doctor` checks the NPU)."""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--counters", action="store_true", help="also print the counters of live regions (JSON)")


def run(args) -> int:
    import json

    import onnxruntime as ort

    import phoenix_npu

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
              f"(vendor {d.ep_vendor}); options: device=auto|emulator|npu, threads=N, manifest=PATH")
    if args.counters:
        print(json.dumps(phoenix_npu.counters(), indent=2))
    return 0
