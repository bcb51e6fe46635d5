"""Build every kernel of a manifest into ONE xclbin with the pinned toolchain (see aie.mk).

Per manifest stage: the design npu_model plans (and check_design accepts, else we stop), its
MLIR from phoenix_iron.py, its core objects compiled by Peano, then aiecc. The first stage
creates the xclbin; each later one extends it (aiecc --xclbin-input, a distinct
--xclbin-kernel-name / --xclbin-kernel-id / --xclbin-instance-name): one xclbin, one hardware
context. Caveat at mlir-aie v1.4.1: its own multi-kernel xclbin tests (test/npu-xrt/add_one_two*)
are marked npu2-only since mlir-aie #2695 ("frequently failing on npu1 runners"): this path is
the first thing to try on a Phoenix machine (docs/npu.md). NOT YET RUN.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERNELS = HERE.parent.parent
sys.path.insert(0, str(HERE))

PEANO_FLAGS = ["-O2", "-std=c++20", "--target=aie2-none-unknown-elf", "-DNDEBUG", "-D__AIE_API_AIE_ADF_HPP__",
               "-Wno-parentheses", "-Wno-attributes", "-Wno-macro-redefined"]
# Our kernels keep Peano's default FP32 emulation ("safe", 13 MAC-slot instructions per 16-lane
# multiply): the FAST / LOW macros (llvm-aie aiev2_core.h) trade accuracy we have not measured.
FP32_ACCURACY = []  # e.g. ["-DAIE2_FP32_EMULATION_ACCURACY_FAST"]


def run(cmd, cwd):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def compile_obj(src, obj, defines, out):
    peano, mlir_aie = os.environ["PEANO_INSTALL_DIR"], os.environ["MLIR_AIE_DIR"]
    run([f"{peano}/bin/clang++", *PEANO_FLAGS, *FP32_ACCURACY, "-I", f"{mlir_aie}/include", "-I", str(HERE),
         *defines, "-c", str(src), "-o", obj], out)


def stage_mlir(kernel, index, design, stage, out):
    """Compile the stage's core objects and return its MLIR text."""
    import phoenix_iron as iron_designs
    p = design.params
    if design.op == "gemm":
        obj = f"mm_{p['m']}x{p['k']}x{p['n']}.o"
        mm_cc = Path(os.environ["MLIR_AIE_DIR"]) / "include" / "aie_kernels" / "aie2" / "mm.cc"  # upstream, not copied
        compile_obj(mm_cc, obj, [f"-DDIM_M={p['m']}", f"-DDIM_K={p['k']}", f"-DDIM_N={p['n']}", "-Dbf16_f32_ONLY"], out)
        return str(iron_designs.gemm_program(design, obj))
    op = p["op"]
    src = {"epilogue": KERNELS / "matmul" / "aie" / "epilogue.cc", "layernorm": KERNELS / "layernorm" / "aie" / "layernorm.cc",
           "softmax": KERNELS / "softmax" / "aie" / "softmax.cc", "gelu": KERNELS / "gelu" / "aie" / "gelu.cc"}[op]
    defines = [f"-DCOLS={p['cols']}"]
    if op == "layernorm":
        defines += [f"-DEPSILON={kernel.epsilon!r}f", f"-DHAS_BETA={int(kernel.beta)}"]
    if op == "softmax":
        defines += [f"-DSCALE={kernel.scale!r}f"]
    if op == "gelu":
        defines += [f"-DMODE={0 if kernel.mode == 'erf' else 1}"]
    if op == "epilogue":
        gelu = {"none": -1, "gelu_erf": 0, "gelu_tanh": 1}[kernel.epilogue]
        defines += [f"-DALPHA={kernel.scale!r}f", f"-DGELU_MODE={gelu}", f"-DHAS_BIAS={int(kernel.bias)}",
                    f"-DHAS_RESIDUAL={int(kernel.residual)}"]
    obj = f"{stage.kernel_name}.o"
    compile_obj(src, obj, defines, out)
    fn = {"epilogue": "phoenix_epilogue", "layernorm": "phoenix_layernorm_bf16", "softmax": "phoenix_softmax_bf16",
          "gelu": "phoenix_gelu_bf16"}[op]
    return str(iron_designs.rows_program(design, stage.args, fn, obj))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    from phoenix_npu.manifest import load_manifest
    from phoenix_npu.npu_model import check_design, designs_for
    m = load_manifest(a.manifest, check_artifacts=False)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    xclbin = out / Path(m.xclbin).name
    previous, kernel_id = None, 0x901
    for k in m.kernels:
        designs = designs_for(k)
        for index, (design, stage) in enumerate(zip(designs, k.stages)):
            problems = check_design(design)
            if problems:
                sys.exit(f"{design.name}: violates npu1's limits: {problems}")
            mlir = out / f"{stage.kernel_name}.mlir"
            mlir.write_text(stage_mlir(k, index, design, stage, out))
            partial = f"{xclbin.stem}.{kernel_id - 0x901}.xclbin"  # never read and write one file
            cmd = [os.environ.get("AIECC", "aiecc"), "--alloc-scheme=basic-sequential", f"--peano={os.environ['PEANO_INSTALL_DIR']}",
                   "--get-xclbin", "--get-npu-insts", f"--xclbin-name={partial}",
                   f"--npu-insts-name={Path(stage.insts_path).name}", f"--xclbin-kernel-name={stage.kernel_name}",
                   f"--xclbin-kernel-id={kernel_id:#x}", f"--xclbin-instance-name={stage.kernel_name}_INST",
                   f"--tmpdir={stage.kernel_name}.prj"]
            if previous:
                cmd.append(f"--xclbin-input={previous}")
            run(cmd + [mlir.name], out)
            previous, kernel_id = partial, kernel_id + 1
    os.replace(out / previous, xclbin)
    print(f"built {xclbin} with {kernel_id - 0x901} kernels")


if __name__ == "__main__":
    main()
