"""The NPU kernel folders (kernels/<op>/aie/, mlir-aie programming-example style), checked as far
as a machine without NPU, XRT, mlir-aie or Peano allows: each folder is complete; its design.py
names exactly the manifest stages of its kind and writes host-test parameters that match the
manifest and the checked design; `make -n` works for every folder and the top-level Makefile;
the host test.cpp files compile against the pinned XRT's headers (skipped when those are not
available: no registry package has XRT >= 2.21.75); the lit files are found and, without an NPU,
UNSUPPORTED. Nothing here runs a kernel."""
import os
import py_compile
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import _npu_path  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"
sys.path.insert(0, str(KERNELS / "common" / "aie"))
import build_xclbin  # noqa: E402

FOLDERS = {kind: KERNELS / rel for kind, rel in build_xclbin.DESIGN_FOLDERS.items()}
SOURCES = {"epilogue": "epilogue.cc", "layernorm": "layernorm.cc", "softmax": "softmax.cc", "gelu": "gelu.cc",
           "quantize": "quantize.cc", "epilogue_i8": "epilogue.cc"}
UPSTREAM_CORE = ("gemm", "gemm_i8")   # the GEMMs' core is upstream mm.cc from the pinned installation


PARAMS = {}  # "path": the planner's design parameters file of this module's run (fixture `params`)


def _design(kind, *args, cwd=None, params=True):
    extra = ["--params", str(PARAMS["path"])] if params else []
    return subprocess.run([sys.executable, str(FOLDERS[kind] / "design.py"), *extra, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module", autouse=True)
def params(tmp_path_factory):
    """The design parameters file, written by the planner (the developers' tools) as aie.mk does."""
    from phoenix_npu_tools.design_params import write_params

    path = tmp_path_factory.mktemp("params") / "design_params.json"
    write_params(path, KERNELS / "manifest.json")
    PARAMS["path"] = path
    return path


@pytest.fixture(scope="module")
def stages(params):
    """{design kind: [(manifest kernel, checked design, stage)]} as the designs read them."""
    out = {}
    for k, d, s in build_xclbin.manifest_stages(params):
        out.setdefault(build_xclbin.design_kind(d), []).append((k, d, s))
    return out


@pytest.mark.parametrize("kind", sorted(FOLDERS))
def test_every_kernel_folder_is_complete(kind):
    f = FOLDERS[kind]
    for name in ("design.py", "Makefile", "test.cpp", "run_makefile.lit"):
        assert (f / name).is_file(), f"{f} has no {name}"
    if kind in SOURCES:
        assert (f / SOURCES[kind]).is_file()
    else:
        assert kind in UPSTREAM_CORE
    assert re.search(r"^include \$\(srcdir\)/(\.\./)+common/aie/aie\.mk$", (f / "Makefile").read_text(), re.M)
    lit = (f / "run_makefile.lit").read_text()
    # mlir-aie v1.4.1's conventions (programming_examples/basic/row_wise_bias_add/run_makefile.lit)
    assert "// REQUIRES: ryzen_ai_npu1, peano" in lit and "// REQUIRES: makefile_examples" in lit
    assert "// RUN: %run_on_npu1% make -f %S/Makefile run" in lit
    test = (f / "test.cpp").read_text()
    assert "PHX_KERNEL_NAME" in test and '#include "host_test.h"' in test


def test_kernels_import_no_python_package_of_the_project():
    """kernels/ reads the planner's parameters file; the dependency goes tools -> kernels only."""
    offenders = [str(f.relative_to(KERNELS)) for f in KERNELS.rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+phoenix_npu", f.read_text(), re.M)]
    assert not offenders, offenders


def test_params_file_version_and_round_trip(params):
    import design_params
    from phoenix_npu_tools import design_params as writer
    from phoenix_npu_tools.npu_model import designs_for

    from phoenix_npu.manifest import load_manifest

    assert writer.VERSION == design_params.VERSION
    header, read = design_params.load(params, KERNELS / "manifest.json")
    planned = [(k, d, s) for k in load_manifest(KERNELS / "manifest.json", check_artifacts=False).kernels
               for d, s in zip(designs_for(k), k.stages)]
    assert len(read) == len(planned) and header["xclbin"]
    for (k, d, s), (k0, d0, s0) in zip(read, planned):
        assert (k.describe(), d.name, s.kernel_name) == (k0.describe(), d0.name, s0.kernel_name)
        assert d.params == d0.params and d.buffers == {a: tuple(v) for a, v in d0.buffers.items()}
        assert [(t.fifo, t.buffer, t.offset, t.sizes, t.strides, t.group) for t in d.transfers] == \
               [(t.fifo, t.buffer, t.offset, list(t.sizes), list(t.strides), t.group) for t in d0.transfers]


def test_design_without_or_with_stale_params_says_what_to_run(tmp_path):
    r = _design("gelu", "--params", str(tmp_path / "none.json"), "--list", params=False)
    assert r.returncode != 0 and "plan --write-params" in r.stderr and "none.json" in r.stderr
    manifest = tmp_path / "manifest.json"
    manifest.write_text((KERNELS / "manifest.json").read_text() + "\n")   # another version of it
    r = _design("gelu", "--manifest", str(manifest), "--list")
    assert r.returncode != 0 and "planned for another version" in r.stderr and "plan --write-params" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 99, "stages": []}')
    r = _design("gelu", "--params", str(bad), "--list", params=False)
    assert r.returncode != 0 and "not a version-1 design parameters file" in r.stderr


def test_no_design_outside_the_kernel_folders():
    """One design per folder: the shared code holds helpers only (no program of any kernel)."""
    common = (KERNELS / "common" / "aie" / "iron_common.py").read_text()
    for kernel_fn in ("phoenix_layernorm_bf16", "phoenix_softmax_bf16", "phoenix_gelu_bf16", "phoenix_epilogue",
                      "matmul_bf16_f32", "matmul_i8_i32", "phoenix_quantize_i8"):
        assert kernel_fn not in common
    assert not (KERNELS / "common" / "aie" / "phoenix_iron.py").exists()
    found = {p.parent for p in KERNELS.glob("**/design.py")}
    assert found == set(FOLDERS.values())


def test_python_byte_compiles(tmp_path):
    files = list(KERNELS.glob("**/*.py"))
    assert len(files) >= 8
    for f in files:
        py_compile.compile(str(f), cfile=str(tmp_path / (f.name + "c")), doraise=True)


def test_every_manifest_stage_has_a_design_folder(stages):
    from phoenix_npu.manifest import load_manifest
    m = load_manifest(KERNELS / "manifest.json", check_artifacts=False)
    listed = sorted(s.kernel_name for k in m.kernels for s in k.stages)
    assert sorted(s.kernel_name for v in stages.values() for _, _, s in v) == listed
    assert set(stages) <= set(FOLDERS)


@pytest.mark.parametrize("kind", sorted(FOLDERS))
def test_design_lists_its_manifest_stages(kind, stages):
    r = _design(kind, "--list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [s.kernel_name for _, _, s in stages.get(kind, [])]
    bad = _design(kind, "--kernel", "NOT_A_KERNEL", "--check")
    assert bad.returncode != 0 and "has no" in bad.stderr


def _header_values(text):
    return dict(re.findall(r"^#define (PHX_\w+) (.+)$", text, re.M))


@pytest.mark.parametrize("kind", sorted(FOLDERS))
def test_params_header_matches_manifest_and_design(kind, stages, tmp_path):
    for kernel, design, stage in stages[kind]:
        out = tmp_path / stage.kernel_name / "params.h"
        r = _design(kind, "--kernel", stage.kernel_name, "--params-header", str(out))
        assert r.returncode == 0, r.stderr
        v = _header_values(out.read_text())
        assert v["PHX_KERNEL_NAME"] == f'"{stage.kernel_name}"'
        args = re.findall(r'\{"(\w+)", (\d+), (\d+)\}', v["PHX_ARGS"])
        assert [a for a, _, _ in args] == stage.args   # kernel order = the manifest's
        for name, elems, nbytes in args:
            assert (int(elems), int(nbytes)) == design.buffers[name]
        if kind in ("layernorm", "softmax"):
            assert (int(v["PHX_ROWS"]), int(v["PHX_COLS"])) == (kernel.rows, kernel.cols)
        if kind in UPSTREAM_CORE:
            assert (int(v["PHX_M"]), int(v["PHX_K"]), int(v["PHX_N"])) == (kernel.M, kernel.K, kernel.N)
        if kind in ("epilogue", "epilogue_i8"):
            assert int(v["PHX_HAS_RESIDUAL"]) == kernel.residual and int(v["PHX_HAS_BIAS"]) == kernel.bias
            assert v["PHX_ALPHA"].endswith("f") and "." in v["PHX_ALPHA"]   # a C float literal, never "1f"
        if kind == "gelu":
            assert int(v["PHX_N"]) == kernel.n


def test_core_object_defines_are_c_literals(stages):
    """Every -D value handed to Peano is an integer or a C float literal (the parser gives 1, not 1.0)."""
    for kind, items in stages.items():
        module = build_xclbin.load_design(kind)
        for kernel, design, _ in items:
            for src, obj, defines in module.core_objects(kernel, design, Path("/opt/mlir_aie")):
                assert obj.endswith(".o") and (kind in UPSTREAM_CORE or Path(src).parent == FOLDERS[kind])
                for d in defines:
                    if "=" not in d:   # a flag such as -Dbf16_f32_ONLY
                        continue
                    value = d.split("=", 1)[1]
                    is_int = re.fullmatch(r"-?\d+", value)
                    is_float = re.fullmatch(r"-?(\d+\.\d*|\d+(?=e))(e[-+]?\d+)?f", value)   # 1.0f, 1e-05f; never 1f
                    assert is_int or is_float, f"{kind}: {d} is not a C integer or float literal"


def _make_n(makefile, cwd, *targets):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["make", "-n", "-f", str(makefile), *targets], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("kind", sorted(FOLDERS))
def test_make_dry_run_builds_every_stage_and_its_host_test(kind, stages, tmp_path):
    r = _make_n(FOLDERS[kind] / "Makefile", tmp_path, "run")
    assert r.returncode == 0, r.stderr
    for _, _, s in stages[kind]:
        k = s.kernel_name
        assert f"--kernel {k} --xclbin-path=build/{k}/final.xclbin --insts-path=build/{k}/insts.bin" in r.stdout
        assert f"--kernel {k} --params-header build/{k}/params.h" in r.stdout
        assert re.search(rf"-o build/{k}/test \S*/test\.cpp build/libphoenix_ref\.a .*-lxrt_coreutil", r.stdout)
        assert f"./build/{k}/test -x build/{k}/final.xclbin -i build/{k}/insts.bin -k {k}" in r.stdout
    assert "emulated.cc" in r.stdout   # the reference the host tests compare with


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_top_level_make_dry_run(tmp_path):
    r = _make_n(KERNELS / "Makefile", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "build_xclbin.py --manifest" in r.stdout and "Cannot build NPU kernels here" in r.stdout
    r = _make_n(KERNELS / "Makefile", tmp_path, "kernel-tests")
    assert r.returncode == 0, r.stderr
    for f in FOLDERS.values():   # each folder's own make, in build/<folder>, dry-run too
        assert re.search(rf"Entering directory '\S*/build/{f.relative_to(KERNELS)}'", r.stdout), f


def _xrt_include():
    """XRT >= 2.21.75 public headers: $PHOENIX_XRT_INCLUDE, $XRT_ROOT/include or /opt/xilinx/xrt/include."""
    xrt_root = os.environ.get("XRT_ROOT")
    for c in (os.environ.get("PHOENIX_XRT_INCLUDE"), xrt_root and Path(xrt_root) / "include", "/opt/xilinx/xrt/include"):
        if c and (Path(c) / "xrt" / "xrt_hw_context.h").is_file():
            return Path(c)
    return None


@pytest.mark.skipif(_xrt_include() is None, reason=(
    "no XRT >= 2.21.75 headers (xrt/xrt_hw_context.h) in $PHOENIX_XRT_INCLUDE, $XRT_ROOT/include or "
    "/opt/xilinx/xrt/include: no PyPI / Debian package has them (bookworm's libxrt-dev is XRT 2.13); point "
    "PHOENIX_XRT_INCLUDE at src/runtime_src/core/include of XRT tag 2.21.75"))
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
@pytest.mark.parametrize("kind", sorted(FOLDERS))
def test_host_test_compiles_against_xrt_headers(kind, stages, tmp_path):
    inc = _xrt_include()
    # A source tree lacks the generated version header; the ABI check only records XRT's version.
    abi = [] if (inc / "xrt" / "detail" / "version-slim.h").is_file() else ["-DDISABLE_ABI_CHECK"]
    for _, _, s in stages[kind]:
        hdr = tmp_path / s.kernel_name
        assert _design(kind, "--kernel", s.kernel_name, "--params-header", str(hdr / "params.h")).returncode == 0
        r = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", *abi,
                            "-isystem", str(inc), f"-I{KERNELS}", f"-I{KERNELS / 'common' / 'aie'}", f"-I{hdr}",
                            str(FOLDERS[kind] / "test.cpp")], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-4000:]


def test_lit_files_are_unsupported_without_npu():
    lit = pytest.importorskip("lit", reason="lit is not installed (pip install .[test])")
    r = subprocess.run([sys.executable, "-c", "import lit.main; lit.main.main()", "-v", str(KERNELS)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Total Discovered Tests: 8" in r.stdout, r.stdout
    if os.path.exists("/dev/accel/accel0"):
        pytest.skip("an NPU device node exists: lit may run the hardware tests (lit -v kernels)")
    assert "Unsupported: 8" in r.stdout and "ryzen_ai_npu1: False" in r.stdout + r.stderr, (lit, r.stdout)
