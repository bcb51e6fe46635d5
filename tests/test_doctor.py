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


def test_fake_machine_with_everything(tmp_path):
    sysroot = tmp_path / "root"
    (sysroot / "sys/module/amdxdna").mkdir(parents=True)
    accel = tmp_path / "accel0"
    accel.write_text("")
    fw = tmp_path / "amdnpu" / "1502_00"
    fw.mkdir(parents=True)
    (fw / "npu.sbin").write_bytes(b"\0")
    xrt = tmp_path / "xrt"
    (xrt / "include/xrt").mkdir(parents=True)
    (xrt / "include/xrt/xrt_device.h").write_text("")
    (xrt / "include/xrt/xrt_hw_context.h").write_text("")
    (tmp_path / "k.xclbin").write_bytes(b"x")
    (tmp_path / "k.insts").write_bytes(b"\0" * 4)
    (tmp_path / "m.json").write_text(json.dumps({"version": 1, "kernels": [
        {"op": "softmax", "rows": 8, "cols": 16, "xclbin": "k.xclbin", "insts": "k.insts", "args": ["x", "y"]}]}))
    checks = doctor.gather(tmp_path / "m.json", sys_root=sysroot, accel=str(accel), firmware=str(tmp_path / "amdnpu"),
                           xrt_roots=(str(xrt),))
    assert all(c.ok for c in checks if c.required_for_npu), [(c.name, c.found) for c in checks]


def test_fake_machine_with_old_xrt(tmp_path):
    xrt = tmp_path / "xrt"
    (xrt / "include/xrt").mkdir(parents=True)
    (xrt / "include/xrt/xrt_device.h").write_text("")
    c = doctor._xrt((str(xrt),))
    assert not c.ok and "hw_context" in c.found


def test_cli_wiring():
    from phoenix_npu import cli
    args = cli.build_parser().parse_args(["doctor", "--require-npu"])
    assert args._module == "phoenix_npu.doctor" and args.require_npu
