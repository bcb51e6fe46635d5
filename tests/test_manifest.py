"""Kernel manifest: the Python mirror and the C++ loader (compiled here with g++ into a tmp dir)."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import _npu_path  # noqa: F401
from phoenix_npu.manifest import ManifestError, expected_args, load_manifest, parse_manifest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "kernels" / "manifest.json"


def _kernel(**kw):
    k = {"op": "matmul", "M": 1500, "K": 512, "N": 2048, "bias": True, "epilogue": "gelu_erf",
         "xclbin": "mm.xclbin", "insts": "mm.insts.bin", "args": ["A", "B", "bias", "C"]}
    k.update(kw)
    return k


def _write(tmp_path, doc, artifacts=True):
    p = tmp_path / "manifest.json"
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=1))
    if artifacts:
        (tmp_path / "mm.xclbin").write_bytes(b"x")
        (tmp_path / "mm.insts.bin").write_bytes(b"\0\0\0\0")
    return p


# --- Python mirror ---------------------------------------------------------------------------
def test_example_manifest_parses():
    m = load_manifest(EXAMPLE, check_artifacts=False)
    assert m.version == 1 and m.device == "npu1" and len(m.kernels) >= 5
    assert m.find("matmul", M=1500, K=512, N=2048, epilogue="gelu_erf", bias=True) is not None
    assert m.find("matmul", M=1499, K=512, N=2048) is None
    for k in m.kernels:
        assert k.args == expected_args(k.op, k.bias, k.residual, k.beta)


def test_good_manifest_with_artifacts(tmp_path):
    m = load_manifest(_write(tmp_path, {"version": 1, "kernels": [_kernel()]}))
    k = m.kernels[0]
    assert k.xclbin_path == tmp_path / "mm.xclbin" and k.artifacts_present()
    assert k.describe() == "matmul 1500x512x2048 +bias gelu_erf"


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match="kernel manifest not found"):
        load_manifest(tmp_path / "nope.json")


def test_corrupt_json_reports_line_and_column(tmp_path):
    p = _write(tmp_path, '{\n  "version": 1,\n  "kernels": [\n    {"op": "matmul",,}\n  ]\n}\n')
    with pytest.raises(ManifestError, match=r"not valid JSON: line 4, column \d+"):
        load_manifest(p)


def test_wrong_version(tmp_path):
    with pytest.raises(ManifestError, match="version 2 is not supported"):
        load_manifest(_write(tmp_path, {"version": 2, "kernels": []}))


@pytest.mark.parametrize("drop,msg", [("M", 'missing field "M"'), ("xclbin", 'missing field "xclbin"'),
                                      ("args", 'missing field "args"')])
def test_missing_fields(tmp_path, drop, msg):
    k = _kernel()
    del k[drop]
    with pytest.raises(ManifestError, match=msg):
        load_manifest(_write(tmp_path, {"version": 1, "kernels": [k]}))


def test_bad_args_order_and_values(tmp_path):
    with pytest.raises(ManifestError, match=r"needs \[A, B, bias, C\]"):
        load_manifest(_write(tmp_path, {"version": 1, "kernels": [_kernel(args=["B", "A", "bias", "C"])]}))
    with pytest.raises(ManifestError, match='"epilogue" is "relu"'):
        load_manifest(_write(tmp_path, {"version": 1, "kernels": [_kernel(epilogue="relu")]}))
    with pytest.raises(ManifestError, match="duplicate key"):
        parse_manifest('{"version": 1, "version": 1, "kernels": []}', "x.json")


def test_missing_artifact(tmp_path):
    p = _write(tmp_path, {"version": 1, "kernels": [_kernel()]}, artifacts=False)
    with pytest.raises(ManifestError, match="xclbin not found: .*mm.xclbin"):
        load_manifest(p)
    assert load_manifest(p, check_artifacts=False).kernels[0].artifacts_present() is False


# --- C++ loader ------------------------------------------------------------------------------
DRIVER = r'''
#include <cstdio>
#include <string>
#include "devices/xrt/manifest.h"
namespace phoenix { const char* KernelKindName(KernelKind k) { return k == KernelKind::kMatMul ? "MatMul" : "other"; } }
using namespace phoenix;
int main(int argc, char** argv) {
  xrt_device::Manifest m;
  Status s = xrt_device::LoadManifest(argv[1], &m, std::string(argv[2]) == "1");
  if (!s.ok()) { std::printf("ERROR %s\n", s.message().c_str()); return 0; }
  std::printf("OK %zu\n", m.kernels.size());
  KernelCall c;  // [1500, 512] x [512, 2048] + bias, GELU(erf)
  c.kind = KernelKind::kMatMul;
  c.in[0].buffer = 0; c.in[0].view = TensorView::Contiguous({1, 1500, 512});
  c.in[1].buffer = 1; c.in[1].view = TensorView::Contiguous({512, 2048});
  c.in[2].buffer = 2; c.in[2].view = TensorView::Contiguous({2048});
  c.out.buffer = 0; c.out.view = TensorView::Contiguous({1, 1500, 2048});
  c.mode = 1;
  std::string why;
  const xrt_device::ManifestKernel* k = m.Find(c, &why);
  std::printf("FIND %s\n", k ? k->Describe().c_str() : ("none: " + why).c_str());
  c.mode = 0;
  k = m.Find(c, &why);
  std::printf("FIND %s\n", k ? k->Describe().c_str() : ("none: " + why).c_str());
  return 0;
}
'''


@pytest.fixture(scope="module")
def cpp_loader(tmp_path_factory):
    gxx = shutil.which("g++")
    if not gxx:
        pytest.skip("g++ is not installed: cannot compile the C++ manifest loader")
    d = tmp_path_factory.mktemp("manifest_cpp")
    (d / "driver.cc").write_text(DRIVER)
    exe = d / "driver"
    r = subprocess.run([gxx, "-std=c++17", "-O0", "-Wall", "-I", str(ROOT / "kernels"), "-I", str(ROOT / "provider"),
                        str(d / "driver.cc"), str(ROOT / "provider/devices/xrt/manifest.cc"), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return lambda path, check=True: subprocess.run([str(exe), str(path), "1" if check else "0"],
                                                   capture_output=True, text=True, check=True).stdout


def test_cpp_example_and_find(cpp_loader):
    out = cpp_loader(EXAMPLE, check=False).splitlines()
    n = len(load_manifest(EXAMPLE, check_artifacts=False).kernels)
    assert out[0] == f"OK {n}"
    assert out[1] == "FIND matmul 1500x512x2048 +bias gelu_erf"
    assert out[2].startswith("FIND none: the kernel manifest has no MatMul kernel for this shape")


def test_cpp_errors_match_python(cpp_loader, tmp_path):
    cases = {
        "missing": (tmp_path / "nope.json", "kernel manifest not found"),
        "corrupt": (_write(tmp_path / "c", '{\n "version": 1,\n "kernels": [ {"op": } ]\n}') if (tmp_path / "c").mkdir() is None else None,
                    "not valid JSON: line 3, column"),
        "version": (_write(tmp_path / "v", {"version": 7, "kernels": []}) if (tmp_path / "v").mkdir() is None else None,
                    "version 7 is not supported"),
        "field": (_write(tmp_path / "f", {"version": 1, "kernels": [{k: v for k, v in _kernel().items() if k != "N"}]})
                  if (tmp_path / "f").mkdir() is None else None, 'missing field "N"'),
        "artifact": (_write(tmp_path / "a", {"version": 1, "kernels": [_kernel()]}, artifacts=False)
                     if (tmp_path / "a").mkdir() is None else None, "xclbin not found"),
    }
    for name, (path, msg) in cases.items():
        out = cpp_loader(path)
        assert out.startswith("ERROR") and msg in out, (name, out)
        with pytest.raises(ManifestError, match=msg.replace("(", r"\(")):
            load_manifest(path)
    assert cpp_loader(_write(tmp_path / "a", {"version": 1, "kernels": [_kernel()]})).startswith("OK 1")


def test_schema_is_consistent_with_loader():
    schema = json.loads((ROOT / "kernels" / "manifest.schema.json").read_text())
    assert schema["properties"]["version"]["const"] == 1
    assert set(schema["$defs"]["kernel"]["properties"]["op"]["enum"]) == {"matmul", "layernorm", "softmax", "gelu"}
