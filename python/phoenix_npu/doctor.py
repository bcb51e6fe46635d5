"""`phoenix-npu doctor`: what the NPU path needs, what was found, and what to do about the rest.

The NPU checks (amdxdna driver, /dev/accel/accel0 and its permissions, NPU firmware, XRT, the
kernel manifest and its artifacts) are the provider's own, asked through the library: the same
decision device=auto takes. Then the pinned build toolchain (kernels/common/aie/toolchain.json).
Exit status is 0 unless --require-npu is given and the NPU is not usable.
"""
from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

ACCEL = "/dev/accel/accel0"


@dataclass
class Check:
    name: str
    ok: bool
    found: str
    todo: str = ""
    required_for_npu: bool = True


def add_arguments(parser) -> None:
    parser.add_argument("--require-npu", action="store_true",
                        help="exit non-zero unless a usable NPU (driver, device, XRT, kernels) is present")
    parser.add_argument("--manifest", default=None,
                        help="kernel manifest to check (default: $PHOENIX_NPU_MANIFEST or the package's)")


def toolchain_pins() -> dict:
    """The pinned NPU toolchain (kernels/common/aie/toolchain.json, the one place it is written)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "kernels" / "toolchain.json", here.parent.parent / "kernels" / "common" / "aie" / "toolchain.json"):
        if cand.is_file():
            return json.loads(cand.read_text(encoding="utf-8"))
    raise FileNotFoundError("toolchain.json is missing from this installation")


def _installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _toolchain() -> list:
    """mlir-aie and Peano are needed to BUILD the kernels, not to run them: not required here."""
    try:
        pins = toolchain_pins()
    except (OSError, ValueError) as e:
        return [Check("NPU toolchain pins", False, str(e), "reinstall phoenix-npu", False)]
    out = []
    for key, dist in (("mlir_aie", "mlir_aie"), ("llvm_aie", "llvm-aie")):
        want, have = pins[key]["version"], _installed(dist)
        ok = have == want
        found = f"{dist} {have}" if have else f"{dist} not installed"
        out.append(Check(f"{dist} (builds kernels)", ok, found + ("" if ok else f"; pinned: {want}"),
                         "" if ok else f"pip install '{pins[key]['pip']}' -f {pins[key]['find_links']}", False))
    return out
def _provider() -> Check:
    try:
        from ._library import get_library_path
        lib = get_library_path()
    except Exception as e:  # noqa: BLE001 - doctor reports, never crashes
        return Check("provider library", False, f"not found ({e})", "", False)
    return Check("provider library", True, str(lib), required_for_npu=False)


def gather(manifest=None, sys_root=None, accel=None, firmware=None) -> list:
    """Every check. The NPU checks are the provider's own (npu_probe.cc, through the library):
    what doctor prints is what device=auto decides. Arguments fake a machine (tests)."""
    try:
        from .manifest import npu_status
        status = npu_status(sys_root, accel, firmware, manifest)
    except Exception as e:  # noqa: BLE001 - doctor reports, never crashes (e.g. no library)
        npu = [Check("provider library", False, f"cannot ask the provider library: {e}",
                     "reinstall phoenix-npu (`pip install .` builds the library)")]
    else:
        npu = [Check(c["name"], c["ok"], c["found"], c["todo"]) for c in status["checks"]]
    return npu + _toolchain() + [_provider()]


def run(args) -> int:
    checks = gather(getattr(args, "manifest", None))
    width = max(len(c.name) for c in checks)
    print("phoenix-npu doctor: what the Phoenix NPU path needs on this machine\n")
    for c in checks:
        print(f"  [{'ok' if c.ok else '--'}] {c.name:{width}s}  {c.found}")
    todo = [c for c in checks if not c.ok]
    npu_ok = all(c.ok for c in checks if c.required_for_npu)
    print()
    if npu_ok:
        print("NPU: usable. Sessions with device=auto or device=npu run on the Phoenix NPU.")
    else:
        print("NPU: not usable here; the provider runs on its emulated device (same BF16 numerics, CPU).")
        print("To use the NPU:")
        for c in todo:
            if c.todo:
                print(f"  - {c.name}: {c.todo}")
    print("\nNote: the NPU kernels and the XRT device have not yet been run on hardware (see docs/npu.md).")
    if getattr(args, "require_npu", False) and not npu_ok:
        return 1
    return 0
