"""`phoenix-npu plan`: the npu1 tile plan and MODELLED latency of the Whisper encoder.

Nothing printed here was measured: every figure comes from phoenix_npu_tools.npu_model (see
docs/npu.md for the assumptions) and is labelled "modelled".
"""
from __future__ import annotations

HELP = "print the npu1 tile plan and modelled latency of the Whisper encoder"


def add_arguments(parser) -> None:
    from .npu_model import WHISPER
    parser.add_argument("--model", default="base", choices=list(WHISPER), help="Whisper size (default base)")
    parser.add_argument("--clock", type=float, default=1.0, help="NPU clock in GHz (1.0-1.6; default 1.0)")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio window in seconds (Whisper uses 30)")
    parser.add_argument("--all", action="store_true", help="summary for tiny..large instead of one model's kernels")
    parser.add_argument("--numerics", default="contract", choices=["contract", "lut"],
                        help="transcendental cost: 'contract' = the FP32 steps of kernels/common/bf16.h "
                             "(what our AIE kernels implement); 'lut' = BF16 LUT exp/tanh (not our contract)")
    parser.add_argument("--attention", default="host", choices=["host", "fused", "unfused"],
                        help="host (default: today's plan; attention runs on the CPU), fused "
                             "(npu_model.attention_design: checked against npu1, not built; docs/npu.md 2b) "
                             "or unfused (QK^T / Softmax / PV through DDR)")
    parser.add_argument("--mode", default="one-xclbin", choices=["one-xclbin", "per-stage"],
                        help="how the XRT device holds the stages (docs/npu.md 5): one-xclbin (every stage in one "
                             "xclbin, one hw_context) or per-stage (one xclbin + hw_context per stage, a context cache)")
    parser.add_argument("--contexts", type=int, default=None,
                        help="per-stage mode: hw_contexts the session may hold (1..6; default 6)")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "int8"],
                        help="bf16 (default) or int8: the QDQ model's linear layers as the INT8 MatMul's three NPU "
                             "stages (quantize, INT8 GEMM, dequantizing epilogue; docs/npu.md 2d)")
    parser.add_argument("--check", action="store_true",
                        help="check every kernel of the manifest against npu1's limits (exit 1 on a violation)")
    parser.add_argument("--manifest", default=None, help="manifest for --check / --simulate (default: the provider's)")
    parser.add_argument("--simulate", action="store_true",
                        help="execute every manifest stage's IRON program (the real mlir_aie + aiecc where installed, "
                             "else the IRON stand-in kernels/common/aie/iron_standin) on random inputs and compare "
                             "each output with the emulated device (exit 1 on a failure); docs/npu.md")
    parser.add_argument("--kernels", default=None, help="the source tree's kernels/ folder for --simulate "
                                                        "(default: found from the current directory)")
    parser.add_argument("--seed", type=int, default=0, help="random inputs of --simulate")
    parser.add_argument("--write-params", metavar="PATH", default=None,
                        help="plan and check every manifest stage and write the design parameters file the "
                             "IRON designs read (kernels/common/aie/design_params.py); exit 1 on a violation")


def _summary_line(e) -> str:
    lim = e.limiting
    return (f"{e.model:7s} {e.time_s * 1e3:9.1f} ms {e.realtime_factor:8.0f}x "
            f"{e.utilisation * 100:6.0f}% {e.physical_limit_s * 1e3:8.1f} ms  "
            f"{lim.kernel.name} ({lim.total_s / e.time_s * 100:.0f}%, {lim.bound}-bound)")


def check(manifest_path=None) -> int:
    """Every manifest kernel's design against npu1's limits (npu_model.check_design)."""
    from phoenix_npu.manifest import ManifestError, load_manifest
    from .npu_model import check_manifest
    try:
        m = load_manifest(manifest_path, check_artifacts=False)
    except ManifestError as e:
        print(f"phoenix-npu plan --check: {e}")
        return 1
    failures = 0
    print(f"npu1 limits check of {m.path} ({len(m.kernels)} kernels, one xclbin {m.xclbin})")
    for desc, designs, problems in check_manifest(m):
        for d in designs:
            p = d.params
            tiling = f"m,k,n={p['m']},{p['k']},{p['n']}" + (" i8" if p.get("dtype") == "i8" else "") if d.op == "gemm" else f"{p['rows_per_obj']} row(s)/object"
            shim = max((sum(1 for t in d.transfers if t.column == c) for c in range(4)), default=0)
            print(f"  {d.name:42s} {tiling:22s} L1 {sum(d.l1.values()) / 1024:5.1f} KiB (stack {d.stack_bytes:#x}) "
                  f"memtile {sum(d.l2.values()) / 1024:6.1f} KiB  {len(d.transfers)} DMA tasks ({shim}/shim)")
        for prob in problems:
            print(f"  VIOLATION {desc}: {prob}")
        failures += bool(problems)
    print(f"{len(m.kernels) - failures} of {len(m.kernels)} kernels within npu1's limits" +
          ("" if not failures else f"; {failures} violate them"))
    return 1 if failures else 0


def write(path, manifest_path=None) -> int:
    """`--write-params PATH`: the design parameters file of every manifest stage."""
    from phoenix_npu.manifest import ManifestError

    from .design_params import DesignCheckError, write_params
    from .npu_model import DesignError
    try:
        data = write_params(path, manifest_path)
    except (ManifestError, DesignError, DesignCheckError) as e:
        print(f"phoenix-npu plan --write-params: {e}")
        return 1
    print(f"wrote {path}: {len(data['stages'])} stages of {data['manifest']}")
    return 0


def run(args) -> int:
    from .npu_model import WHISPER, PlanError, plan_encoder
    if getattr(args, "write_params", None):
        return write(args.write_params, args.manifest)
    if getattr(args, "check", False):
        return check(args.manifest)
    if getattr(args, "simulate", False):
        from .npu_simulate import run as simulate
        return simulate(args)

    try:
        if args.all:
            print(f"Whisper encoder on npu1, {args.seconds:g} s window, clock {args.clock:g} GHz, "
                  f"numerics '{args.numerics}', attention {args.attention} -- ALL FIGURES MODELLED, none measured")
            print(f"{'model':7s} {'modelled':>12s} {'realtime':>9s} {'of BF16':>7s} {'phys.limit':>11s}  limiting kernel")
            for m in WHISPER:
                try:
                    print(_summary_line(plan_encoder(m, args.clock, args.seconds, args.numerics, args.attention)))
                except PlanError as exc:  # a design that does not fit is reported, not modelled
                    print(f"{m:7s} no plan: {exc}")
            return 0
        e = plan_encoder(args.model, args.clock, args.seconds, args.numerics, args.attention,
                         mode=args.mode, contexts=args.contexts, precision=getattr(args, "precision", "bf16"))
    except (PlanError, ValueError) as exc:
        print(f"phoenix-npu plan: {exc}")
        return 1
    npu = e.npu
    print(f"Whisper {e.model} encoder on npu1 ({npu.cols}x{npu.rows} tiles, {npu.clock_ghz:g} GHz, "
          f"peak {npu.peak_bf16_flops() / 1e12:.2f} TFLOP/s BF16), {e.seconds:g} s window, numerics '{e.numerics}'")
    print("ALL FIGURES ARE MODELLED (phoenix_npu_tools.npu_model); nothing here has run on hardware.\n")
    print(f"{'kernel':16s} {'x':>3s} {'GFLOP':>7s} {'L1 KiB':>7s} {'L2 KiB':>7s} {'in MB':>7s} {'out MB':>7s} "
          f"{'compute':>8s} {'DMA':>8s} {'total ms':>9s}  bound    tiling")
    for p in e.plans:
        k = p.kernel
        print(f"{k.name:16s} {k.repeat:3d} {k.flops * k.repeat / 1e9:7.2f} {p.l1_bytes / 1024:7.1f} "
              f"{p.l2_bytes / 1024:7.0f} {p.shim_in / 1e6:7.2f} {p.shim_out / 1e6:7.2f} "
              f"{p.compute_s * 1e3:8.3f} {p.dma_s * 1e3:8.3f} {p.total_s * 1e3:9.2f}  {p.bound:8s} {p.tiling}"
              + (f"  [{'; '.join(p.notes)}]" if p.notes else ""))
    lim = e.limiting
    pdi, pdi_hi = npu.pdi_reload_us, npu.pdi_reload_high_us
    print(f"{'reconfiguration':16s} {'':3s} {'':7s} {'':7s} {'':7s} {'':7s} {'':7s} {'':8s} {'':8s} "
          f"{e.reconfig_s() * 1e3:9.2f}  {len(e.launches)} NPU launches/run, {e.reloads} PDI reloads x "
          f"{pdi / 1e3:.2f} ms" + (f", {e.context_creates} hw_context creations x {npu.context_create_us / 1e3:.2f} ms "
                                   f"({e.contexts} contexts, per-stage)" if e.mode == "per-stage" else ""))
    print(f"\nmode {e.mode}: " + ("every stage in one xclbin, one hw_context (the path upstream disabled on npu1: "
                                   "mlir-aie #2695, xdna-driver #906)" if e.mode == "one-xclbin" else
                                   f"one xclbin + hw_context per stage, at most {e.contexts} open (context_cache.h)"))
    print(f"modelled encoder time: {e.time_s * 1e3:.1f} ms for {e.flops / 1e9:.1f} GFLOP "
          f"(PDI reload {pdi / 1e3:.2f} ms; {e.time_high_s * 1e3:.1f} ms at {pdi_hi / 1e3:.2f} ms)")
    print(f"  NPU kernels and host work {e.kernels_s * 1e3:.1f} ms + reconfiguration {e.reconfig_s() * 1e3:.1f}-"
          f"{e.reconfig_s(high=True) * 1e3:.1f} ms")
    print(f"modelled realtime factor: {e.realtime_factor:.0f}x ({e.seconds:g} s of audio)")
    print(f"modelled utilisation of BF16 peak: {e.utilisation * 100:.0f}% "
          f"(physical limit {e.physical_limit_s * 1e3:.1f} ms; modelled/limit = {1 / e.utilisation:.2f}x)")
    host = sum(p.total_s for p in e.plans if p.bound == "host")
    if host:
        print(f"of which on the host CPU (not built for the NPU): {host * 1e3:.1f} ms "
              f"({host / e.time_s * 100:.0f}%, measured emulated-kernel time, not modelled NPU time)")
    print(f"modelled limiting kernel: {lim.kernel.name} ({lim.total_s * 1e3:.1f} ms, "
          f"{lim.total_s / e.time_s * 100:.0f}% of the encoder, {lim.bound}-bound)")
    print("\nconstants of the time model (value, source):")
    for name, value, unit, src in npu.sources():
        print(f"  {name:24s} {value:>9g} {unit:16s} {src}")
    print(f"  {'host attention':24s} {'':>9s} {'':16s} measured emulated kernel, docs/benchmarks.md (84.3 ms, "
          "whisper-base, 2 Zen 5 cores)")
    print(f"  {'host conv stem':24s} {'':>9s} {'':16s} measured emulated MatMul 162.7 ms / 59.7 GFLOP + Im2Col 1.6 ms, "
          "docs/benchmarks.md")
    if e.numerics == "contract":
        alt = plan_encoder(args.model, args.clock, args.seconds, "lut", args.attention, mode=args.mode,
                           contexts=args.contexts, precision=getattr(args, "precision", "bf16"))
        print(f"(with Peano's AIE2_FP32_EMULATION_ACCURACY_FAST: see docs/npu.md)")
        print(f"(with BF16 LUT transcendentals instead of the FP32 contract: modelled {alt.time_s * 1e3:.1f} ms, "
              f"{alt.realtime_factor:.0f}x realtime; see docs/npu.md)")
    return 0
