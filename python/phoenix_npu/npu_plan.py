"""`phoenix-npu plan`: the npu1 tile plan and MODELLED latency of the Whisper encoder.

Nothing printed here was measured: every figure comes from phoenix_npu.npu_model (see
docs/npu.md for the assumptions) and is labelled "modelled".
"""
from __future__ import annotations


def add_arguments(parser) -> None:
    from .npu_model import WHISPER
    parser.add_argument("--model", default="base", choices=list(WHISPER), help="Whisper size (default base)")
    parser.add_argument("--clock", type=float, default=1.0, help="NPU clock in GHz (1.0-1.6; default 1.0)")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio window in seconds (Whisper uses 30)")
    parser.add_argument("--all", action="store_true", help="summary for tiny..large instead of one model's kernels")
    parser.add_argument("--numerics", default="contract", choices=["contract", "lut"],
                        help="transcendental cost: 'contract' = the FP32 steps of kernels/common/bf16.h "
                             "(what our AIE kernels implement); 'lut' = BF16 LUT exp/tanh (not our contract)")
    parser.add_argument("--attention", default="fused", choices=["fused", "unfused"],
                        help="fused per-head attention (default) or QK^T / Softmax / PV through DDR")


def _summary_line(e) -> str:
    lim = e.limiting
    return (f"{e.model:7s} {e.time_s * 1e3:9.1f} ms {e.realtime_factor:8.0f}x "
            f"{e.utilisation * 100:6.0f}% {e.physical_limit_s * 1e3:8.1f} ms  "
            f"{lim.kernel.name} ({lim.total_s / e.time_s * 100:.0f}%, {lim.bound}-bound)")


def run(args) -> int:
    from .npu_model import WHISPER, PlanError, plan_encoder

    try:
        if args.all:
            print(f"Whisper encoder on npu1, {args.seconds:g} s window, clock {args.clock:g} GHz, "
                  f"numerics '{args.numerics}', attention {args.attention} -- ALL FIGURES MODELLED, none measured")
            print(f"{'model':7s} {'modelled':>12s} {'realtime':>9s} {'of BF16':>7s} {'phys.limit':>11s}  limiting kernel")
            for m in WHISPER:
                print(_summary_line(plan_encoder(m, args.clock, args.seconds, args.numerics, args.attention)))
            return 0
        e = plan_encoder(args.model, args.clock, args.seconds, args.numerics, args.attention)
    except (PlanError, ValueError) as exc:
        print(f"phoenix-npu plan: {exc}")
        return 1
    npu = e.npu
    print(f"Whisper {e.model} encoder on npu1 ({npu.cols}x{npu.rows} tiles, {npu.clock_ghz:g} GHz, "
          f"peak {npu.peak_bf16_flops() / 1e12:.2f} TFLOP/s BF16), {e.seconds:g} s window, numerics '{e.numerics}'")
    print("ALL FIGURES ARE MODELLED (phoenix_npu.npu_model); nothing here has run on hardware.\n")
    print(f"{'kernel':16s} {'x':>3s} {'GFLOP':>7s} {'L1 KiB':>7s} {'L2 KiB':>7s} {'in MB':>7s} {'out MB':>7s} "
          f"{'compute':>8s} {'DMA':>8s} {'total ms':>9s}  bound    tiling")
    for p in e.plans:
        k = p.kernel
        print(f"{k.name:16s} {k.repeat:3d} {k.flops * k.repeat / 1e9:7.2f} {p.l1_bytes / 1024:7.1f} "
              f"{p.l2_bytes / 1024:7.0f} {p.shim_in / 1e6:7.2f} {p.shim_out / 1e6:7.2f} "
              f"{p.compute_s * 1e3:8.3f} {p.dma_s * 1e3:8.3f} {p.total_s * 1e3:9.2f}  {p.bound:8s} {p.tiling}"
              + (f"  [{'; '.join(p.notes)}]" if p.notes else ""))
    lim = e.limiting
    print(f"\nmodelled encoder time: {e.time_s * 1e3:.1f} ms for {e.flops / 1e9:.1f} GFLOP")
    print(f"modelled realtime factor: {e.realtime_factor:.0f}x ({e.seconds:g} s of audio)")
    print(f"modelled utilisation of BF16 peak: {e.utilisation * 100:.0f}% "
          f"(physical limit {e.physical_limit_s * 1e3:.1f} ms; modelled/limit = {1 / e.utilisation:.2f}x)")
    print(f"modelled limiting kernel: {lim.kernel.name} ({lim.total_s * 1e3:.1f} ms, "
          f"{lim.total_s / e.time_s * 100:.0f}% of the encoder, {lim.bound}-bound)")
    if e.numerics == "contract":
        alt = plan_encoder(args.model, args.clock, args.seconds, "lut", args.attention)
        print(f"(with BF16 LUT transcendentals instead of the FP32 contract: modelled {alt.time_s * 1e3:.1f} ms, "
              f"{alt.realtime_factor:.0f}x realtime; see docs/npu.md)")
    return 0
