"""`phoenix-npu doctor` on this machine and on faked system layouts."""
import argparse
import json
from pathlib import Path

import _npu_path  # noqa: F401
from phoenix_npu import doctor

ROOT = Path(__file__).resolve().parent.parent


def _args(*argv):
    p = argparse.ArgumentParser()
    doctor.add_arguments(p)
    return p.parse_args(list(argv))


def _npu_here() -> bool:
    return Path(doctor.ACCEL).exists()


def test_doctor_reports_and_exits_zero(capsys):
    assert doctor.run(_args()) == 0
    out = capsys.readouterr().out
    for name in ("amdxdna driver", "NPU device", "NPU firmware", "XRT", "kernel manifest"):
        assert name in out
    if not _npu_here():
        assert "NPU: not usable here" in out and "/dev/accel/accel0 missing" in out
        assert "To use the NPU:" in out


def test_require_npu_fails_without_npu(capsys):
    rc = doctor.run(_args("--require-npu"))
    if not _npu_here():
        assert rc != 0


def test_manifest_option(tmp_path, capsys):
    doctor.run(_args("--manifest", str(tmp_path / "missing.json")))
    assert "kernel manifest not found" in capsys.readouterr().out
    (tmp_path / "m.json").write_text(json.dumps({"version": 3, "kernels": []}))
    doctor.run(_args("--manifest", str(tmp_path / "m.json")))
    assert "version 3 is not supported" in capsys.readouterr().out


def test_fake_machine_is_judged_by_the_provider(tmp_path):
    """Driver, device, firmware and manifest come from the provider's probe (npu_probe.cc);
    XRT is what this build has: without an XRT build, only that check fails, with the remedy."""
    sysroot = tmp_path / "root"
    (sysroot / "sys/module/amdxdna").mkdir(parents=True)
    accel = tmp_path / "accel0"
    accel.write_text("")
    fw = tmp_path / "amdnpu" / "1502_00"
    fw.mkdir(parents=True)
    (fw / "npu.sbin").write_bytes(b"\0")
    (tmp_path / "k.xclbin").write_bytes(b"x")
    (tmp_path / "k.insts").write_bytes(b"\0" * 4)
    (tmp_path / "m.json").write_text(json.dumps({"version": 2, "xclbin": "k.xclbin", "kernels": [
        {"op": "softmax", "rows": 8, "cols": 16, "stages": [{"kernel_name": "SM", "insts": "k.insts", "args": ["x", "y"]}]}]}))
    checks = {c.name: c for c in doctor.gather(tmp_path / "m.json", sys_root=sysroot, accel=str(accel),
                                               firmware=str(tmp_path / "amdnpu"))}
    for name in ("amdxdna driver", "NPU device", "NPU firmware", "kernel manifest"):
        assert checks[name].ok, (name, checks[name].found)
    if not checks["XRT"].ok:
        assert "this build has no XRT device" in checks["XRT"].found and "XRT" in checks["XRT"].todo
    missing = {c.name: c for c in doctor.gather(tmp_path / "m.json", sys_root=tmp_path / "none",
                                                accel=str(tmp_path / "no-accel"), firmware=str(tmp_path / "nofw"))}
    assert not missing["amdxdna driver"].ok and not missing["NPU device"].ok and not missing["NPU firmware"].ok


def test_toolchain_pins_are_read_from_one_file():
    pins = doctor.toolchain_pins()
    assert pins["mlir_aie"]["version"] == "1.4.1" and pins["llvm_aie"]["version"].startswith("21.0.0.")
    names = [c.name for c in doctor._toolchain()]
    assert names == ["mlir_aie (builds kernels)", "llvm-aie (builds kernels)"]
    assert all(not c.required_for_npu for c in doctor._toolchain())


def test_cli_wiring():
    from phoenix_npu import cli
    args = cli.build_parser().parse_args(["doctor", "--require-npu"])
    assert args._module == "phoenix_npu.doctor" and args.require_npu
