# lit configuration of the kernel folders' hardware tests (kernels/*/aie/**/run_makefile.lit), with
# mlir-aie v1.4.1's conventions (programming_examples/lit.cfg.py, aie_lit_utils):
#   ryzen_ai_npu1      a usable Phoenix / Hawk Point NPU: the provider's NPU probe (driver, device
#                      node, firmware, XRT; the one-xclbin manifest is not needed here) and PCI id
#                      0x1502 behind /dev/accel/accel0
#   peano              the pinned llvm-aie (kernels/common/aie/toolchain.json) installed
#   makefile_examples  make on a POSIX host
#   %run_on_npu1%      prefix of a command that uses the NPU
# Run: `lit -v kernels` (pip install lit). Without an NPU every test is UNSUPPORTED: nothing of
# this has run on hardware.
import json
import os
import shutil
import subprocess
import sys

import lit.formats

config.name = "phoenix-npu-kernels"  # noqa: F821 (lit provides `config`)
config.test_format = lit.formats.ShTest(execute_external=False)  # the internal shell (lit >= 23 wants it)
config.suffixes = [".lit"]
config.excludes = ["build", "bench"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
config.test_exec_root = os.path.join(config.test_source_root, "build", "lit")
os.makedirs(config.test_exec_root, exist_ok=True)
ROOT = os.path.dirname(config.test_source_root)
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")
PYTHON = VENV_PY if os.path.exists(VENV_PY) else sys.executable
config.environment["PATH"] = os.environ.get("PATH", "")
for var in ("HOME", "XILINX_XRT", "XRT_ROOT", "LD_LIBRARY_PATH", "PYTHON"):
    if var in os.environ:
        config.environment[var] = os.environ[var]


def _ask(code):
    """Run `code` in the project's Python (phoenix_npu and the toolchain live there); its stdout."""
    try:
        return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _npu1():
    status = _ask("import json; from phoenix_npu.manifest import npu_status; print(json.dumps(npu_status()))")
    try:
        checks = json.loads(status)["checks"]
    except (ValueError, KeyError):
        return False, "the NPU probe did not answer (is phoenix_npu installed? scripts/setup.sh)"
    missing = [f"{c['name']}: {c['found']}" for c in checks if not c["ok"] and c["name"] != "kernel manifest"]
    if missing:
        return False, "; ".join(missing)
    try:
        with open("/sys/class/accel/accel0/device/device") as f:
            pci = f.read().strip()
    except OSError:
        return False, "no PCI id behind /dev/accel/accel0"
    return pci == "0x1502", f"PCI device {pci} (npu1 is 0x1502)"


def _peano():
    pins = os.path.join(config.test_source_root, "common", "aie", "toolchain.json")
    with open(pins) as f:
        want = json.load(f)["llvm_aie"]["version"]
    have = _ask("import importlib.metadata as m; print(m.version('llvm-aie'))")
    return bool(want) and have == want, f"llvm-aie {have or 'not installed'} (pinned {want})"


npu1, why_npu = _npu1()
peano, why_peano = _peano()
if npu1:
    config.available_features.add("ryzen_ai_npu1")
if peano:
    config.available_features.add("peano")
if os.name != "nt" and shutil.which("make"):
    config.available_features.add("makefile_examples")
config.substitutions.append(("%run_on_npu1%", "" if npu1 else "echo"))
lit_config.note(f"ryzen_ai_npu1: {npu1} ({why_npu}); peano: {peano} ({why_peano})")  # noqa: F821
