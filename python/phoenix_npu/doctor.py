"""`phoenix-npu doctor`: what the NPU path needs, what was found, and what to do about the rest.

Checks: the amdxdna driver, /dev/accel/accel0 and its permissions, the NPU firmware, XRT (a
modern one with xrt::hw_context), the kernel manifest and its artifacts. Exit status is 0
unless --require-npu is given and the NPU is not usable.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ACCEL = "/dev/accel/accel0"
XRT_ROOTS = ("/opt/xilinx/xrt",)
FIRMWARE = "/lib/firmware/amdnpu"


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


def _driver(sys_root: Path) -> Check:
    if (sys_root / "sys/module/amdxdna").exists():
        ver = ""
        vf = sys_root / "sys/module/amdxdna/version"
        if vf.is_file():
            ver = " version " + vf.read_text().strip()
        return Check("amdxdna driver", True, "loaded" + ver)
    try:
        out = subprocess.run(["lsmod"], capture_output=True, text=True, timeout=5).stdout
        if re.search(r"^amdxdna\b", out, re.M):
            return Check("amdxdna driver", True, "loaded (lsmod)")
    except (OSError, subprocess.SubprocessError):
        pass
    return Check("amdxdna driver", False, "not loaded",
                 "needs a Ryzen 7040/8040 (Phoenix / Hawk Point) NPU and Linux >= 6.14 (amdxdna is mainline), "
                 "or AMD's xdna-driver built for your kernel; then `sudo modprobe amdxdna`")


def _device(accel: str) -> Check:
    p = Path(accel)
    if not p.exists():
        return Check("NPU device", False, f"{accel} missing",
                     "appears when amdxdna binds to the NPU; check `dmesg | grep -i amdxdna` and that the NPU "
                     "is enabled in the BIOS (IPU / NPU setting)")
    if not os.access(accel, os.R_OK | os.W_OK):
        return Check("NPU device", False, f"{accel} present but not read/writable by this user",
                     "add yourself to the 'render' group (sudo usermod -aG render $USER) and log in again")
    return Check("NPU device", True, f"{accel} present, read/writable")


def _firmware(fw: str) -> Check:
    p = Path(fw)
    files = sorted(str(f.relative_to(p)) for f in p.rglob("*") if f.is_file()) if p.is_dir() else []
    if not files:
        return Check("NPU firmware", False, f"{fw} missing or empty",
                     "install linux-firmware >= 2024-05 (amdnpu/1502_00/npu.sbin for Phoenix), or the firmware "
                     "from AMD's xdna-driver")
    return Check("NPU firmware", True, f"{fw}: {', '.join(files[:4])}{' ...' if len(files) > 4 else ''}")


def _xrt(roots) -> Check:
    env_root = os.environ.get("XRT_ROOT")
    for root in ([env_root] if env_root else []) + list(roots):
        inc = Path(root) / "include"
        if not (inc / "xrt" / "xrt_device.h").is_file():
            continue
        has_ctx = any((inc / h).is_file() for h in
                      ("xrt/xrt_hw_context.h", "xrt/experimental/xrt_hw_context.h", "experimental/xrt_hw_context.h"))
        version = ""
        vh = inc / "xrt" / "detail" / "version.h"
        if not vh.is_file():
            vh = inc / "version.h"
        if vh.is_file():
            m = re.search(r'xrt_build_version\[\]\s*=\s*"([^"]+)"', vh.read_text(errors="replace"))
            version = f" {m.group(1)}" if m else ""
        if not has_ctx:
            return Check("XRT", False, f"{root}{version} has no xrt::hw_context (too old for the NPU)",
                         "install XRT from AMD's xdna-driver build (it installs /opt/xilinx/xrt)")
        smi = next((str(Path(root) / "bin" / t) for t in ("xrt-smi", "xbutil") if (Path(root) / "bin" / t).is_file()), "")
        return Check("XRT", True, f"{root}{version} with xrt::hw_context" + (f", {Path(smi).name}" if smi else ""))
    tool = shutil.which("xrt-smi") or shutil.which("xbutil")
    if Path("/usr/include/xrt/xrt_device.h").is_file():
        return Check("XRT", False, "only the system XRT (/usr/include/xrt; Debian's libxrt-dev 2.13 has no hw_context)",
                     "install XRT from AMD's xdna-driver build into /opt/xilinx/xrt (or set XRT_ROOT), "
                     "then rebuild phoenix-npu")
    return Check("XRT", False, "not found" + (f" (but {tool} is on PATH)" if tool else ""),
                 "build and install AMD's xdna-driver with its XRT (https://github.com/amd/xdna-driver), "
                 "source /opt/xilinx/xrt/setup.sh, then rebuild phoenix-npu so the XRT device is compiled in")


def _manifest(path) -> Check:
    from .manifest import ManifestError, default_manifest_path, load_manifest

    path = Path(path) if path else default_manifest_path()
    try:
        m = load_manifest(path, check_artifacts=False)
    except ManifestError as e:
        return Check("kernel manifest", False, str(e),
                     "build the NPU kernels (make in kernels/<op>/aie, needs mlir-aie + Peano) and point "
                     "--manifest / $PHOENIX_NPU_MANIFEST / the provider option `manifest` at kernels/manifest.json")
    missing = [k for k in m.kernels if not k.artifacts_present()]
    if missing:
        return Check("kernel manifest", False,
                     f"{path}: {len(m.kernels)} kernels, {len(missing)} without their xclbin/insts "
                     f"(first: {missing[0].describe()} -> {missing[0].xclbin_path})",
                     "build them: `make` in kernels/<op>/aie where mlir-aie and Peano are installed "
                     "(see kernels/README.md)")
    return Check("kernel manifest", True, f"{path}: {len(m.kernels)} kernels, all artifacts present")


def _provider() -> Check:
    try:
        from ._library import get_library_path
        lib = get_library_path()
    except Exception as e:  # noqa: BLE001 - doctor reports, never crashes
        return Check("provider library", False, f"not found ({e})", "", False)
    return Check("provider library", True, str(lib), required_for_npu=False)


def gather(manifest=None, sys_root: Path = Path("/"), accel: str = ACCEL, firmware: str = FIRMWARE,
           xrt_roots=XRT_ROOTS) -> list:
    return [_driver(sys_root), _device(accel), _firmware(firmware), _xrt(xrt_roots), _manifest(manifest), _provider()]


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
