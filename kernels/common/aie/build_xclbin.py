"""Build NPU kernels with the pinned toolchain (toolchain.json, aie.mk): one xclbin for them all.

Shared by every kernels/*/aie/design.py. A design.py holds one kind of xclbin kernel (GEMM,
MatMul epilogue, LayerNorm, Softmax, GELU, and the INT8 MatMul's quantize / INT8 GEMM / epilogue): its core objects (`core_objects`), its IRON program
(`program`) and the values its host test needs (`test_params`). Its parameters are never written
by hand: the planner (the developers' tools, phoenix_npu_tools.npu_model) plans every stage of
kernels/manifest.json, checks it against npu1's limits and writes the design parameters file
(design_params.py), which is all a design reads: nothing here imports the Python packages.

    phoenix-npu plan --write-params kernels/build/design_params.json         # first (aie.mk does it)

    python build_xclbin.py --manifest kernels/manifest.json --out build      # ONE xclbin, every kernel
    python build_xclbin.py --manifest kernels/manifest.json --out build --per-stage  # one xclbin per stage
    python design.py --kernel NAME --xclbin-path build/NAME/final.xclbin --insts-path build/NAME/insts.bin
    python design.py --kernel NAME --params-header build/NAME/params.h       # no toolchain needed
    python design.py --list | --check                                         # no toolchain needed

The one-xclbin build compiles each stage's objects with Peano and chains aiecc: the first stage
creates the xclbin, each later one extends it (--xclbin-input, a distinct --xclbin-kernel-name /
--xclbin-kernel-id / --xclbin-instance-name): one xclbin, one hardware context. Caveat at
mlir-aie v1.4.1: its own multi-kernel xclbin tests (test/npu-xrt/add_one_two*) are marked
npu2-only since mlir-aie #2695 ("frequently failing on npu1 runners"): this path is the first
thing upstream distrusts on npu1, so `--per-stage` builds each stage alone into its own xclbin
(the XRT device's per-stage mode, the default until the bring-up passes the chain: docs/npu.md 5a).
NOT YET RUN: no Peano or mlir-aie here.
Needs the parameters file (above) and, to build, mlir_aie + llvm-aie at the pinned versions.
"""
import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import design_params

HERE = Path(__file__).resolve().parent
KERNELS = HERE.parent.parent
MANIFEST = KERNELS / "manifest.json"

# Design kind (npu_model: "gemm", or a row design's params["op"]) -> the folder holding its design.py.
DESIGN_FOLDERS = {
    "gemm": "matmul/aie/gemm",
    "epilogue": "matmul/aie/epilogue",
    "layernorm": "layernorm/aie",
    "softmax": "softmax/aie",
    "gelu": "gelu/aie",
    "quantize": "matmul_int8/aie/quantize",
    "gemm_i8": "matmul_int8/aie/gemm",
    "epilogue_i8": "matmul_int8/aie/epilogue",
}

# -ffunction-sections -fdata-sections -fstack-size-section: each function in its own section with its
# frame size recorded (.stack_sizes), so aiecc's post-link stack check can measure every core's stack
# (without them a kernel's frame is invisible to it and an overflow silently corrupts the buffers
# above the stack). The Workers' explicit stack_size values stay.
PEANO_FLAGS = ["-O2", "-std=c++20", "--target=aie2-none-unknown-elf", "-DNDEBUG", "-D__AIE_API_AIE_ADF_HPP__",
               "-ffunction-sections", "-fdata-sections", "-fstack-size-section",
               "-Wno-parentheses", "-Wno-attributes", "-Wno-macro-redefined"]
# Our kernels keep Peano's default FP32 emulation ("safe", 13 MAC-slot instructions per 16-lane
# multiply): the FAST / LOW macros (llvm-aie aiev2_core.h) trade accuracy we have not measured.
FP32_ACCURACY = []  # e.g. ["-DAIE2_FP32_EMULATION_ACCURACY_FAST"]
FIRST_KERNEL_ID = 0x901


def c_float(x) -> str:
    """A C float literal of x (the manifest parser may hand over 1 as an int: "1f" is not C)."""
    return f"{float(x)!r}f"


def design_kind(design) -> str:
    if design.op == "gemm":
        return "gemm_i8" if design.params.get("dtype") == "i8" else "gemm"
    return design.params["op"]


def load_design(kind: str):
    """The design module (kernels/<folder>/design.py) for one design kind."""
    path = KERNELS / DESIGN_FOLDERS[kind] / "design.py"
    spec = importlib.util.spec_from_file_location(f"phoenix_design_{kind}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest_stages(params_path=design_params.DEFAULT_PATH, manifest_path=MANIFEST):
    """[(manifest kernel, checked design, stage)] for every xclbin kernel of the manifest, from
    the planner's parameters file (design_params.py); exits with what to run when it is missing
    or planned for another manifest."""
    return load_params(params_path, manifest_path)[1]


def load_params(params_path=design_params.DEFAULT_PATH, manifest_path=MANIFEST):
    try:
        return design_params.load(params_path, manifest_path)
    except design_params.ParamsError as e:
        sys.exit(str(e))


def run(cmd, cwd):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def compile_objects(module, kernel, design, out: Path) -> list:
    """Compile the stage's core objects with Peano into `out`; their file names."""
    peano, mlir_aie = os.environ["PEANO_INSTALL_DIR"], os.environ["MLIR_AIE_DIR"]
    names = []
    for src, obj, defines in module.core_objects(kernel, design, Path(mlir_aie)):
        run([f"{peano}/bin/clang++", *PEANO_FLAGS, *FP32_ACCURACY, "-I", f"{mlir_aie}/include", "-I", str(HERE),
             *defines, "-c", str(src), "-o", obj], out)
        names.append(obj)
    return names


def build_stage(module, kernel, design, stage, xclbin: Path, insts: Path, kernel_id: int, xclbin_input=None):
    """Objects, MLIR and aiecc for one stage; writes `xclbin` (extending `xclbin_input`) and `insts`."""
    out = xclbin.parent
    out.mkdir(parents=True, exist_ok=True)
    objects = compile_objects(module, kernel, design, out)
    mlir = out / f"{stage.kernel_name}.mlir"
    mlir.write_text(str(module.program(kernel, design, stage, objects)))
    cmd = [os.environ.get("AIECC", "aiecc"), "--alloc-scheme=basic-sequential",
           f"--peano={os.environ['PEANO_INSTALL_DIR']}",
           "--get-xclbin", "--get-npu-insts", f"--xclbin-name={xclbin.name}",
           f"--npu-insts-name={os.path.relpath(insts, out)}", f"--xclbin-kernel-name={stage.kernel_name}",
           f"--xclbin-kernel-id={kernel_id:#x}", f"--xclbin-instance-name={stage.kernel_name}_INST",
           f"--tmpdir={stage.kernel_name}.prj"]
    if xclbin_input:
        cmd.append(f"--xclbin-input={os.path.relpath(xclbin_input, out)}")
    run(cmd + [mlir.name], out)


def params_header(module, kernel, design, stage) -> str:
    """The test.cpp parameters of one stage (C macros), from the manifest and the checked design."""
    lines = [f"// Generated by {Path(module.__file__).relative_to(KERNELS)} for manifest stage {stage.kernel_name}",
             f"// ({kernel.describe()}). Do not edit: `make` regenerates it from kernels/manifest.json.",
             "#pragma once",
             f'#define PHX_KERNEL_NAME "{stage.kernel_name}"',
             "// runtime arguments in kernel order (group_id 3, 4, ...): name, elements, bytes per element",
             "#define PHX_ARGS {" + ", ".join(f'{{"{a}", {design.buffers[a][0]}, {design.buffers[a][1]}}}'
                                              for a in stage.args) + "}"]
    for key, value in module.test_params(kernel, design).items():
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, float):
            value = c_float(value)
        lines.append(f"#define PHX_{key} {value}")
    return "\n".join(lines) + "\n"


def design_main(module):
    """Command line of a design.py (see the module docstring)."""
    kind = module.DESIGN_KIND
    ap = argparse.ArgumentParser(description=(module.__doc__ or kind).splitlines()[0])
    ap.add_argument("--manifest", default=str(MANIFEST))
    ap.add_argument("--params", default=str(design_params.DEFAULT_PATH),
                    help="the planner's design parameters (phoenix-npu plan --write-params PATH)")
    ap.add_argument("--kernel", help="manifest stage (kernel_name); default: the first of this design's kind")
    ap.add_argument("--list", action="store_true", help="print the manifest stages of this design's kind")
    ap.add_argument("--check", action="store_true", help="print the checked design (npu1 limits)")
    ap.add_argument("--params-header", help="write the host test's parameters to this file")
    ap.add_argument("--xclbin-path", help="build this stage alone into this xclbin (needs the toolchain)")
    ap.add_argument("--insts-path", help="its instruction file")
    a = ap.parse_args()
    mine = [s for s in manifest_stages(a.params, a.manifest) if design_kind(s[1]) == kind]
    if a.list:
        print(" ".join(s[2].kernel_name for s in mine))
        return
    chosen = [s for s in mine if a.kernel in (None, s[2].kernel_name)][:1]
    if not chosen:
        sys.exit(f"{a.manifest} has no {kind} stage named {a.kernel!r}; it has: "
                 + (", ".join(s[2].kernel_name for s in mine) or "none"))
    kernel, design, stage = chosen[0]
    if a.check:
        print(f"{stage.kernel_name}: {design.name}: within npu1's limits; L1 {sum(design.l1.values())} B, "
              f"memtile {sum(design.l2.values())} B, {len(design.transfers)} shim DMA tasks, params {design.params}")
    if a.params_header:
        Path(a.params_header).parent.mkdir(parents=True, exist_ok=True)
        Path(a.params_header).write_text(params_header(module, kernel, design, stage))
    if a.xclbin_path:
        if not a.insts_path:
            sys.exit("--xclbin-path needs --insts-path")
        build_stage(module, kernel, design, stage, Path(a.xclbin_path).resolve(), Path(a.insts_path).resolve(),
                    FIRST_KERNEL_ID)


def build_per_stage(stages, out: Path):
    """Per-stage mode (docs/npu.md 5): every stage built ALONE into its own xclbin (the manifest stage's
    "xclbin", else <out>/<kernel_name>.xclbin), one hw_context per stage at run time. No --xclbin-input
    chain: the configuration upstream runs on npu1 (one design per xclbin), unlike the one-xclbin chain
    (mlir-aie #2695, xdna-driver #906)."""
    modules = {}
    for kernel, design, stage in stages:
        kind = design_kind(design)
        if kind not in modules:
            modules[kind] = load_design(kind)
        xclbin = Path(stage.xclbin_path) if getattr(stage, "xclbin_path", None) else out / f"{stage.kernel_name}.xclbin"
        build_stage(modules[kind], kernel, design, stage, xclbin.resolve(), out / Path(stage.insts_path).name,
                    FIRST_KERNEL_ID)
        print(f"built {xclbin} ({stage.kernel_name})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default=str(MANIFEST))
    ap.add_argument("--params", default=str(design_params.DEFAULT_PATH),
                    help="the planner's design parameters (phoenix-npu plan --write-params PATH)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-stage", action="store_true",
                    help="one xclbin per stage (per-stage mode) instead of the one-xclbin chain")
    a = ap.parse_args()
    header, stages = load_params(a.params, a.manifest)
    out = Path(a.out).resolve()
    if a.per_stage:
        build_per_stage(stages, out)
        return
    xclbin = out / Path(header["xclbin"]).name
    previous, kernel_id, modules = None, FIRST_KERNEL_ID, {}
    for kernel, design, stage in stages:
        kind = design_kind(design)
        if kind not in modules:
            modules[kind] = load_design(kind)
        module = modules[kind]
        partial = out / f"{xclbin.stem}.{kernel_id - FIRST_KERNEL_ID}.xclbin"  # never read and write one file
        build_stage(module, kernel, design, stage, partial, out / Path(stage.insts_path).name, kernel_id, previous)
        previous, kernel_id = partial, kernel_id + 1
    os.replace(previous, xclbin)
    print(f"built {xclbin} with {kernel_id - FIRST_KERNEL_ID} kernels")


if __name__ == "__main__":
    main()
