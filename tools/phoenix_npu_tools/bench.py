"""`phoenix-npu bench`: the emulated PhoenixNPU encoder and whole transcription, side by side
with ONNX Runtime's CPU EP and with CTranslate2 (faster-whisper's engine), in ONE process on
the same audio. Medians of repeats after warm-up; thread counts pinned and printed; ratios
against the ORT CPU EP printed last; results also written as JSON and a PNG bar chart.

Timings are measurements of this machine at this moment: compare the ratios, not the
absolute numbers, across machines."""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

HELP = "benchmark PhoenixNPU against ORT's CPU EP and faster-whisper"


def add_arguments(p) -> None:
    p.add_argument("--model", default="base", help="tiny.en, base, or a Hugging Face Whisper directory (default base)")
    p.add_argument("--seconds", type=float, default=30.0, help="audio window for the encoder benchmark (max 30)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per engine (median reported)")
    p.add_argument("--threads", type=int, default=0, help="threads for every engine (default: all cores)")
    p.add_argument("--speech-dir", default=None, help="clips for the benchmarks (default: shared/speech beside the repo)")
    p.add_argument("--clips", type=int, default=0, help="use only the first N clips (default all)")
    p.add_argument("--skip-transcription", action="store_true", help="encoder latency only")
    p.add_argument("--no-int8", action="store_true", help="leave out the INT8 (QDQ) encoder rows")
    p.add_argument("--bf16x3", action="store_true",
                   help="add the precision=bf16x3 row (minutes per run on CPUs without AVX-512 BF16)")
    p.add_argument("--int8-encoder", default=None, metavar="QDQ.onnx",
                   help="benchmark this QDQ encoder as the INT8 rows (default: the model's, quantized once and cached)")
    p.add_argument("--batch", default="", metavar="N,N,...",
                   help="also time the encoder with a symbolic batch dim at these batch sizes (e.g. 1,4,8): per-item "
                        "time on PhoenixNPU and on the CPU EP at the same batch, and batch 1 against the fixed-dims export")
    p.add_argument("--out", default="bench-results", help="folder for results.json and results.png")
    p.add_argument("--beam-size", type=int, default=5, help="beam size of the faster-whisper comparison (default 5)")
    p.add_argument("--rounds", type=int, default=2,
                   help="timed rounds of the faster-whisper comparison (configurations interleaved clip by clip)")
    p.add_argument("--faster-whisper-only", action="store_true",
                   help="only the faster-whisper comparison (PhoenixNPU encoder vs stock float32 and int8)")


def _median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cpu_flags() -> str:
    try:
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")).split()
        return ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni") if f in flags)
    except (OSError, StopIteration):
        return ""


def _cpu_class() -> str:
    """The CPU classes the kernels are written for (kernels/README.md): what decides which ISA
    path runs, so every figure is reported with it."""
    flags = _cpu_flags()
    if "avx512_bf16" in flags:
        return "AVX-512 BF16" + (" + VNNI" if "avx512_vnni" in flags else "")
    if "avx512f" in flags:
        return "AVX-512 without BF16"
    return "AVX2-only" if "avx2" in flags else "pre-AVX2"


def _mel_window(hf_dir: Path, seconds: float, speech_dir: Path):
    """Log-mel features [1, 80|128, 3000] of real speech: clips concatenated up to `seconds`
    (Whisper pads every window to 30 s)."""
    import numpy as np
    from transformers import WhisperFeatureExtractor

    from phoenix_npu.whisper.audio import load_audio

    fe = WhisperFeatureExtractor.from_pretrained(hf_dir)
    audio = np.zeros(0, np.float32)
    for wav in sorted(speech_dir.glob("*.wav")):
        audio = np.concatenate([audio, load_audio(wav)])
        if len(audio) >= seconds * 16000:
            break
    audio = audio[: int(seconds * 16000)]
    return fe(audio, sampling_rate=16000, return_tensors="np").input_features.astype(np.float32)


def encoder_flops(config: dict, positions: int = 1500) -> dict:
    """Operations (a multiply-add = 2) of one encoder run on a 30 s window, per part: "conv"
    (the two stem convolutions), "linear" (q, k, v, out, fc1, fc2 of every layer) and
    "attention" (Q K^T and P V). From the model's config.json."""
    d, ffn, layers = config["d_model"], config["encoder_ffn_dim"], config["encoder_layers"]
    mels, frames = config["num_mel_bins"], 2 * positions
    return {"conv": 2 * 3 * (frames * d * mels + positions * d * d),
            "linear": layers * 2 * positions * (4 * d * d + 2 * d * ffn),
            "attention": layers * 4 * positions * positions * d}


# Kernel kinds (counters) -> the encoder part they compute, and the peak their instruction has
# on this CPU (measure_peak()'s "bf16_kernels" / "int8_kernels"). Other kinds (LayerNorm, Im2Col,
# Binary, FakeQuant) move bytes more than they multiply: time only.
def kernel_families(kernels: dict, flops: dict) -> dict:
    """{kind: flops} for the kinds that do the encoder's multiply-adds: MatMul is the stem
    (and the linear layers when they run in BF16), MatMulInt8 the linear layers in INT8."""
    out = {}
    if "Attention" in kernels:
        out["Attention"] = flops["attention"]
    if "MatMulInt8" in kernels:
        out["MatMulInt8"] = flops["linear"]
        if "MatMul" in kernels:
            out["MatMul"] = flops["conv"]
    elif "MatMul" in kernels:
        out["MatMul"] = flops["conv"] + flops["linear"]
    return out


def encoder_floor_ms(flops: dict, peak_gops: float) -> float:
    """The encoder's time if all its multiply-adds ran at `peak_gops` and nothing else took time:
    a floor for any kernel built on that instruction (0 when the peak is unknown)."""
    return sum(flops.values()) / (peak_gops * 1e9) * 1e3 if peak_gops > 0 else 0.0


def share_of_peak(kernel_ms: dict, flops: dict, peak: dict, threads: int) -> dict:
    """Per kernel family: {"ms", "gops" (achieved), "peak_gops" (threads x per-core peak of the
    instruction it runs on), "share"}."""
    per_core = peak.get("per_core", {})
    out = {}
    for kind, ops in kernel_families(kernel_ms, flops).items():
        ms = kernel_ms[kind]
        entry = peak.get("int8_kernels" if kind == "MatMulInt8" else "bf16_kernels")
        peak_gops = per_core.get(entry, 0.0) * threads if entry else 0.0
        gops = ops / (ms / 1e3) / 1e9 if ms > 0 else 0.0
        out[kind] = {"ms": ms, "gops": gops, "peak_gops": peak_gops, "instruction": entry,
                     "share": gops / peak_gops if peak_gops else None}
    return out


def _cosines(got, want):
    import numpy as np

    a, b = got.reshape(-1, got.shape[-1]), want.reshape(-1, want.shape[-1])
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-30)


def symbolic_batch(encoder: str | os.PathLike) -> bytes:
    """The project's encoder with its batch dim symbolic ("batch", as Optimum's default export
    writes it): its shapes come from Shape ops, so only the declared input and output change."""
    import onnx

    model = onnx.load(str(encoder))
    for vi in list(model.graph.input) + list(model.graph.output):
        dim = vi.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "batch"
    del model.graph.value_info[:]
    return model.SerializeToString()


def bench_batches(model: str, batches: list[int], repeats: int, threads: int, speech_dir: Path) -> dict:
    """Per-item encoder time at each batch size, PhoenixNPU and the CPU EP on the same
    symbolic-batch encoder (one session each: the provider builds a plan per batch size), plus
    the fixed-dims export at batch 1; configurations interleaved round by round."""
    import numpy as np
    import onnxruntime as ort

    import phoenix_npu

    from phoenix_npu.whisper.export import encoder_session_options, ensure_exported
    from phoenix_npu.whisper.importer import resolve_model

    fixed = Path(ensure_exported(model)) / "encoder_model.onnx"
    window = _mel_window(resolve_model(model), 30.0, speech_dir)

    def options(pinned: bool):
        so = encoder_session_options() if pinned else ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        return so

    dynamic = symbolic_batch(fixed)
    npu = phoenix_npu.make_session(dynamic, device="emulator", threads=threads, sess_options=options(False))
    cpu = ort.InferenceSession(dynamic, options(False), providers=["CPUExecutionProvider"])
    npu_fixed = phoenix_npu.make_session(str(fixed), device="emulator", threads=threads, sess_options=options(True))
    name = npu.get_inputs()[0].name
    configs = [("PhoenixNPU, fixed-dims export", npu_fixed, 1)]
    configs += [(f"{label}, batch {b}", sess, b) for b in batches for label, sess in (("PhoenixNPU", npu), ("CPU EP", cpu))]
    feeds = {b: {name: np.repeat(window, b, axis=0)} for b in set(batches) | {1}}
    for _, sess, b in configs:
        sess.run(None, feeds[b])  # warm-up: the provider builds this batch size's plan
    times: dict[str, list[float]] = {label: [] for label, _, _ in configs}
    for _ in range(repeats):
        for label, sess, b in configs:
            t0 = time.perf_counter()
            sess.run(None, feeds[b])
            times[label].append(time.perf_counter() - t0)
    per_item = {label: statistics.median(times[label]) / b for label, _, b in configs}
    return {"per_item_s": per_item, "batches": batches}


def bench_encoder(model: str, seconds: float, repeats: int, threads: int, speech_dir: Path,
                  int8: bool = True, int8_encoder: str | None = None, bf16x3: bool = False) -> dict:
    """Every engine's encoder on the same window, the configurations INTERLEAVED (round r runs
    each once, in turn), so that load from other processes falls on all of them alike; then, per
    PhoenixNPU configuration, two more runs with the counters reset for its kernel times."""
    import numpy as np
    import onnxruntime as ort

    import phoenix_npu

    from phoenix_npu.whisper.importer import resolve_model
    from phoenix_npu.whisper.registry import ct2_model_dir
    from phoenix_npu.whisper.export import encoder_session_options, ensure_exported

    hf_dir = resolve_model(model)
    onnx_dir = ensure_exported(model)
    encoder = str(Path(onnx_dir) / "encoder_model.onnx")
    feats = _mel_window(hf_dir, seconds, speech_dir)
    config = json.loads((Path(onnx_dir) / "config.json").read_text())
    flops = encoder_flops(config)

    def cpu_session(path):
        so = encoder_session_options()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def npu_session(path, precision):
        so = encoder_session_options()
        so.intra_op_num_threads = threads
        return phoenix_npu.make_session(path, device="emulator", threads=threads, sess_options=so, precision=precision)

    cpu = cpu_session(encoder)
    feeds = {cpu.get_inputs()[0].name: feats}
    cpu_out = cpu.run(None, feeds)[0]
    engines: dict = {}       # label -> callable
    npu: dict = {}           # label -> (session, precision)
    for precision, label in (("bf16", "PhoenixNPU emulated (BF16)"), ("bf16x3", "PhoenixNPU emulated (BF16x3)")):
        if precision == "bf16" or bf16x3:
            npu[label] = (npu_session(encoder, precision), precision)
    qdq_path = None
    if int8 or int8_encoder:
        from phoenix_npu.whisper.int8 import int8_encoder_path
        from phoenix_npu.whisper.quantize import check_qdq_encoder

        from .speech import calibration_paths

        # calibrated on the calibration clips of --speech-dir (never the evaluation clips)
        qdq_path = str(int8_encoder_path(int8_encoder or model, calibration_audio=calibration_paths(speech_dir)))
        npu["PhoenixNPU emulated (INT8)"] = (npu_session(qdq_path, "bf16"), "bf16")
    for label, (sess, _) in npu.items():
        engines[label] = (lambda s: lambda: s.run(None, feeds))(sess)
    engines["ORT CPU EP (FP32)"] = lambda: cpu.run(None, feeds)
    if qdq_path:
        cpu_q = cpu_session(qdq_path)
        engines["ORT CPU EP (INT8 QDQ)"] = lambda: cpu_q.run(None, feeds)
    try:
        import ctranslate2

        ct2_dir = str(ct2_model_dir(model))
        sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats))
        for compute_type in ("float32", "int8"):
            w = ctranslate2.models.Whisper(ct2_dir, device="cpu", compute_type=compute_type, intra_threads=threads)
            engines[f"CTranslate2 encode ({compute_type})"] = (lambda w: lambda: w.encode(sv))(w)
    except Exception as exc:  # noqa: BLE001 - report and continue with the rest
        print(f"  (CTranslate2 skipped: {exc})")

    for label, fn in engines.items():  # warm-up
        t0 = time.perf_counter()
        fn()
        print(f"  warm-up {label}: {(time.perf_counter() - t0) * 1000:.0f} ms", flush=True)
    times: dict = {k: [] for k in engines}
    phoenix_npu.reset_counters()  # the kernel times below come from these interleaved runs too
    for _ in range(repeats):
        for label, fn in engines.items():
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    results = {k: statistics.median(v) for k, v in times.items()}
    interleaved_regions = phoenix_npu.counters()["regions"]

    peak = phoenix_npu.measure_peak()
    per_run: dict = {"peak": peak, "flops": flops}
    for label, (sess, precision) in npu.items():
        summary = phoenix_npu.assignment_summary(sess)
        out = sess.run(None, feeds)[0]
        nodes = summary.get(phoenix_npu.EP_NAME, {}).get("nodes", 0)
        mine = [r for r in interleaved_regions if r["onnx_nodes"] == nodes and r["runs"] == repeats]
        if len(mine) == 1:  # its kernel times over the interleaved repeats
            region = mine[0]
        else:  # two sessions with the same node count (BF16 and BF16x3): two runs of its own
            phoenix_npu.reset_counters()
            for _ in range(2):
                sess.run(None, feeds)
            region = max(phoenix_npu.counters()["regions"], key=lambda r: (r["runs"], r["onnx_nodes"]))
        runs = max(region["runs"], 1)
        cos = _cosines(out, cpu_out)
        kernel_ms = {k: v["ns"] / 1e6 / runs for k, v in region["kernels"].items()}
        stats = {
            "min_cosine_vs_cpu": float(cos.min()),
            "positions_below_0.999": float((cos < 0.999).mean()),
            "host_overhead_ms": region["last_host_overhead_ns"] / 1e6,
            "peak_device_mb": (region["arena_bytes"] + region["weight_bytes"]) / 2**20,
            "kernel_ms_per_run": kernel_ms,
            "kernel_launches_per_run": {k: v["launches"] / runs for k, v in region["kernels"].items()},
            "share_of_peak": share_of_peak(kernel_ms, flops, peak, threads),
            "regions": summary.get(phoenix_npu.EP_NAME, {}).get("subgraphs", 0),
            "nodes_on_npu": summary.get(phoenix_npu.EP_NAME, {}).get("nodes", 0),
            "nodes_on_cpu": summary.get("CPUExecutionProvider", {}).get("nodes", 0),
        }
        if label.endswith("(INT8)"):
            ref = cpu_q.run(None, feeds)[0]
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            so.intra_op_num_threads = threads
            defined = ort.InferenceSession(qdq_path, so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
            stats["rel_l2_vs_cpu_ep_qdq_definition"] = float(np.linalg.norm(out - defined) / np.linalg.norm(defined))
            stats["rel_l2_cpu_ep_optimised_vs_definition"] = float(np.linalg.norm(ref - defined) / np.linalg.norm(defined))
            stats["qdq"] = check_qdq_encoder(qdq_path)
            stats["encoder"] = qdq_path
            per_run["int8"] = stats
            continue
        if precision != "bf16":
            per_run[precision] = stats
            continue
        per_run.update({
            "transfers_in_per_run": region["transfers_in"] / runs,
            "transfers_out_per_run": region["transfers_out"] / runs,
            "weight_bytes_per_run": region["weight_bytes_uploaded"] / runs,
            "allocations_per_run": region["device_allocations"] / runs,
            "launches_per_run": region["launches"] / runs,
            **stats,
        })
    return {"latency_s": results, "provider": per_run, "repeats": repeats, "interleaved": True}


def bench_transcription(model: str, threads: int, speech_dir: Path, clips: int) -> dict:
    from phoenix_npu.whisper.audio import load_audio
    from phoenix_npu.whisper.optimum_pipeline import Transcriber

    wavs = sorted(speech_dir.glob("*.wav"))
    if clips:
        wavs = wavs[:clips]
    audio = [load_audio(w) for w in wavs]
    total_audio = sum(len(a) for a in audio) / 16000
    rtf = {}
    for label, device in (("PhoenixNPU + Optimum", "emulator"), ("CPU EP + Optimum", "cpu")):
        tr = Transcriber(model, device=device, threads=threads)
        tr.transcribe_array(audio[0])  # warm-up
        t0 = time.perf_counter()
        for a in audio:
            tr.transcribe_array(a)
        rtf[label] = (time.perf_counter() - t0) / total_audio
        del tr
    try:
        from faster_whisper import WhisperModel

        from phoenix_npu.whisper.registry import ct2_model_dir

        fw = WhisperModel(str(ct2_model_dir(model)), device="cpu", compute_type="float32", cpu_threads=threads)
        lang = "en"
        list(fw.transcribe(audio[0], beam_size=1, language=lang)[0])
        t0 = time.perf_counter()
        for a in audio:
            list(fw.transcribe(a, beam_size=1, language=lang, without_timestamps=True)[0])
        rtf["faster-whisper (float32)"] = (time.perf_counter() - t0) / total_audio
    except Exception as exc:  # noqa: BLE001
        print(f"  (faster-whisper skipped: {exc})")
    return {"real_time_factor": rtf, "clips": len(wavs), "audio_seconds": total_audio}


FW_ROWS = ("PhoenixNPU BF16 encoder, float32 decoder (default)", "faster-whisper float32", "faster-whisper int8",
           "PhoenixNPU INT8 encoder, int8 decoder (--int8)", "PhoenixNPU BF16 encoder, int8 decoder (--decoder int8)")


def bench_faster_whisper(model: str, threads: int, speech_dir: Path, clips: int, beam_size: int = 5,
                         rounds: int = 2) -> dict:
    """faster-whisper with the encoder on PhoenixNPU (emulated) against stock faster-whisper
    in float32 and int8: same CTranslate2 weights, clips, beam size and threads. The
    configurations are interleaved clip by clip in every round, so load on the machine hits
    them alike; per configuration the summed wall time of each round (the best round is
    reported as RTF) and the WER of its transcripts."""
    import faster_whisper
    from faster_whisper import decode_audio

    from phoenix_npu.whisper.faster import WhisperModel
    from phoenix_npu.whisper.int8 import INT8_DECODER, int8_encoder_path
    from phoenix_npu.whisper.registry import ct2_model_dir
    from .wer import read_manifest, word_error_rate

    rows = read_manifest(speech_dir)
    if clips:
        rows = rows[:clips]
    audio = [decode_audio(r["path"]) for r in rows]
    total_audio = sum(len(a) for a in audio) / 16000
    ct2_dir = str(ct2_model_dir(model))
    models = {
        FW_ROWS[0]: WhisperModel(model, encoder_device="emulator", cpu_threads=threads, compute_type="float32"),
        FW_ROWS[1]: faster_whisper.WhisperModel(ct2_dir, device="cpu", compute_type="float32", cpu_threads=threads),
        FW_ROWS[2]: faster_whisper.WhisperModel(ct2_dir, device="cpu", compute_type="int8", cpu_threads=threads),
        FW_ROWS[3]: WhisperModel(model, encoder_device="emulator", cpu_threads=threads, compute_type=INT8_DECODER,
                                 encoder_model=int8_encoder_path(model)),
        FW_ROWS[4]: WhisperModel(model, encoder_device="emulator", cpu_threads=threads, compute_type="int8"),
    }
    opts = dict(beam_size=beam_size, language="en" if models[FW_ROWS[1]].model.is_multilingual else None)

    def run(m, a):
        return " ".join(s.text for s in m.transcribe(a, **opts)[0]).strip()

    for m in models.values():  # warm-up
        run(m, audio[0])
    seconds = {k: [] for k in models}
    texts: dict[str, list[str]] = {}
    for _ in range(max(rounds, 1)):
        spent = dict.fromkeys(models, 0.0)
        texts = {k: [] for k in models}
        for a in audio:
            for k, m in models.items():
                t0 = time.perf_counter()
                texts[k].append(run(m, a))
                spent[k] += time.perf_counter() - t0
        for k in models:
            seconds[k].append(spent[k])
    refs = [r["reference"] for r in rows]
    out = {k: {"seconds": seconds[k], "rtf": min(seconds[k]) / total_audio,
               "wer": word_error_rate(refs, texts[k])} for k in models}
    base = min(seconds[FW_ROWS[1]])
    for k in models:
        out[k]["vs_float32"] = min(seconds[k]) / base
    return {"rows": out, "clips": len(rows), "audio_seconds": total_audio, "beam_size": beam_size,
            "rounds": rounds, "encoder": models[FW_ROWS[0]].encoder_info}


def print_faster_whisper(fw: dict) -> None:
    print(f"\nfaster-whisper, {fw['clips']} clips ({fw['audio_seconds']:.1f} s), beam {fw['beam_size']}, "
          f"{fw['rounds']} interleaved round(s); encoder: {fw['encoder']}")
    w = max(len(k) for k in fw["rows"])
    print(f"  {'configuration':{w}s} {'wall s (per round)':>24s} {'RTF':>7s} {'vs f32':>7s} {'WER %':>6s}")
    for k, r in fw["rows"].items():
        rounds = "/".join(f"{s:.1f}" for s in r["seconds"])
        print(f"  {k:{w}s} {rounds:>24s} {r['rtf']:7.3f} {r['vs_float32']:6.2f}x {r['wer'] * 100:6.2f}")


def _chart(results: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (no PNG: matplotlib is not installed)")
        return
    panels = [("Encoder latency, s (lower is better)", results["encoder"]["latency_s"])]
    if "transcription" in results:
        panels.append(("Transcription real-time factor (lower is better)",
                       results["transcription"]["real_time_factor"]))
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)))
    axes = axes if len(panels) > 1 else [axes]
    for ax, (title, data) in zip(axes, panels):
        names = list(data)
        ax.barh(names, [data[n] for n in names], color=["#d2691e" if "Phoenix" in n else "#4682b4" for n in names])
        ax.set_title(title)
        ax.invert_yaxis()
    fig.suptitle(f"whisper-{results['model']}, {results['threads']} threads, {results['machine']['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(args) -> int:
    from phoenix_npu.whisper.registry import ModelNotFoundError

    threads = args.threads or len(os.sched_getaffinity(0))
    try:
        batches = [int(b) for b in args.batch.split(",") if b.strip()] if args.batch else []
        if any(b < 1 or b > 64 for b in batches):
            raise ValueError
    except ValueError:
        print(f"phoenix-npu bench: --batch wants batch sizes from 1 to 64 separated by commas, not {args.batch!r}")
        return 2
    from .wer import default_speech_dir

    speech_dir = Path(args.speech_dir) if args.speech_dir else default_speech_dir()
    if not speech_dir.is_dir():
        print(f"phoenix-npu bench: no speech clips at {speech_dir} (use --speech-dir)")
        return 2
    import phoenix_npu

    peak = phoenix_npu.measure_peak()
    machine = {"cpu": _cpu_name(), "cpu_class": _cpu_class(), "cores": os.cpu_count(), "flags": _cpu_flags(),
               "kernel_isa": peak["kernel_isa"], "bf16_kernels": peak["bf16_kernels"],
               "int8_kernels": peak["int8_kernels"],
               "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "loadavg_1min_at_start": round(os.getloadavg()[0], 2)}
    import onnxruntime as ort

    print(f"phoenix-npu bench: whisper-{args.model}, {args.seconds:g} s window, {threads} threads for every engine")
    print(f"  machine: {machine['cpu']}, {machine['cpu_class']} ({machine['cores']} cores; {machine['flags']}), "
          f"kernel path {machine['kernel_isa']} (BF16 on {machine['bf16_kernels']}, INT8 on "
          f"{machine['int8_kernels']}), {machine['date']}, "
          f"onnxruntime {ort.__version__}; load average {machine['loadavg_1min_at_start']} at start "
          f"(other processes share these cores: compare the interleaved ratios)")
    out = Path(args.out)
    if args.faster_whisper_only:
        try:
            fw = bench_faster_whisper(args.model, threads, speech_dir, args.clips, args.beam_size, args.rounds)
        except ModelNotFoundError as exc:
            print(f"phoenix-npu bench: {exc}")
            return 2
        print_faster_whisper(fw)
        out.mkdir(parents=True, exist_ok=True)
        data = {"model": args.model, "threads": threads, "machine": machine, "faster_whisper": fw}
        (out / "results-faster-whisper.json").write_text(json.dumps(data, indent=2))
        print(f"\nwrote {out / 'results-faster-whisper.json'}")
        return 0
    try:
        results = {"model": args.model, "threads": threads, "machine": machine,
                   "encoder": bench_encoder(args.model, min(args.seconds, 30.0), args.repeats, threads, speech_dir,
                                            int8=not args.no_int8, int8_encoder=args.int8_encoder,
                                            bf16x3=args.bf16x3)}
        if args.batch:
            results["batches"] = bench_batches(args.model, batches, args.repeats, threads, speech_dir)
        if not args.skip_transcription:
            results["transcription"] = bench_transcription(args.model, threads, speech_dir, args.clips)
            results["faster_whisper"] = bench_faster_whisper(args.model, threads, speech_dir, args.clips,
                                                             args.beam_size, args.rounds)
    except ModelNotFoundError as exc:
        print(f"phoenix-npu bench: {exc}")
        return 2

    lat = results["encoder"]["latency_s"]
    prov = results["encoder"]["provider"]
    if "batches" in results:
        per_item = results["batches"]["per_item_s"]
        fixed = per_item["PhoenixNPU, fixed-dims export"]
        print("\nencoder with a symbolic batch dim, time per item (median of %d, interleaved):" % args.repeats)
        for b in batches:
            npu, cpu = per_item[f"PhoenixNPU, batch {b}"], per_item[f"CPU EP, batch {b}"]
            print(f"  batch {b:3d}: PhoenixNPU {npu * 1000:9.1f} ms  CPU EP {cpu * 1000:9.1f} ms  ({npu / cpu:.2f}x)")
        print(f"  symbolic-batch export at batch 1 vs the fixed-dims export: "
              f"{per_item['PhoenixNPU, batch 1'] / fixed:.3f}x" if 1 in batches else "")
    print("\nencoder latency (median of %d, configurations interleaved):" % args.repeats)
    for k, v in lat.items():
        print(f"  {k:32s} {v * 1000:9.1f} ms")
    print(f"\nprovider per run: {prov['regions']} region(s), {prov['nodes_on_npu']} nodes on PhoenixNPU, "
          f"{prov['nodes_on_cpu']} on CPU; transfers in/out {prov['transfers_in_per_run']:.0f}/"
          f"{prov['transfers_out_per_run']:.0f}; weight bytes {prov['weight_bytes_per_run']:.0f}; "
          f"allocations {prov['allocations_per_run']:.0f}; host overhead {prov['host_overhead_ms']:.2f} ms; "
          f"peak device memory {prov['peak_device_mb']:.1f} MiB; min cosine vs CPU {prov['min_cosine_vs_cpu']:.5f}")
    print("  kernel time per run: " + ", ".join(f"{k} {v:.1f} ms" for k, v in prov["kernel_ms_per_run"].items()))
    for precision in ("bf16x3",):
        if precision in prov:
            x = prov[precision]
            print(f"  precision={precision}: min cosine vs CPU {x['min_cosine_vs_cpu']:.6f} "
                  f"({x['positions_below_0.999'] * 100:.1f}% of positions below 0.999; bf16: "
                  f"{prov['positions_below_0.999'] * 100:.1f}%), peak device memory {x['peak_device_mb']:.1f} MiB, "
                  f"host overhead {x['host_overhead_ms']:.2f} ms")
            print("    kernel time per run: " + ", ".join(f"{k} {v:.1f} ms" for k, v in x["kernel_ms_per_run"].items()))
    q = prov.get("int8")
    if q:
        print(f"  INT8 (QDQ, {q['qdq']['quantized_linear_layers']} of {q['qdq']['linear_layers']} linear layers "
              f"quantized): {q['nodes_on_npu']} nodes on PhoenixNPU, {q['nodes_on_cpu']} on CPU, "
              f"{q['kernel_launches_per_run'].get('MatMulInt8', 0):.0f} MatMulInt8 calls per run; rel. L2 vs the CPU EP "
              f"running the QDQ definition {q['rel_l2_vs_cpu_ep_qdq_definition']:.4f} (CPU EP optimised: "
              f"{q['rel_l2_cpu_ep_optimised_vs_definition']:.4f}); min cosine vs FP32 CPU {q['min_cosine_vs_cpu']:.5f}")
        print("    kernel time per run: " + ", ".join(f"{k} {v:.1f} ms" for k, v in q["kernel_ms_per_run"].items()))
        bf16_lin = prov["kernel_ms_per_run"].get("MatMul", 0) - q["kernel_ms_per_run"].get("MatMul", 0)
        int8_lin = q["kernel_ms_per_run"].get("MatMulInt8", 0)
        if bf16_lin > 0 and int8_lin > 0:
            print(f"    linear layers: INT8 {int8_lin:.1f} ms vs BF16 {bf16_lin:.1f} ms = {int8_lin / bf16_lin:.2f}x; "
                  f"whole encoder INT8 / BF16 = {lat['PhoenixNPU emulated (INT8)'] / lat['PhoenixNPU emulated (BF16)']:.2f}x")
    peak = prov["peak"]
    pc = peak["per_core"]
    print(f"\nthis CPU's dot-product peak per core (kernels: {peak['kernel_isa']}): "
          + ", ".join(f"{k} {v:.1f}" for k, v in pc.items() if v) + " GOP/s; "
          f"{threads} threads: BF16 kernels ({peak['bf16_kernels']}) {pc.get(peak['bf16_kernels'] or '', 0) * threads:.0f}, "
          f"INT8 kernels ({peak['int8_kernels']}) {pc.get(peak['int8_kernels'] or '', 0) * threads:.0f} GOP/s")
    fl = prov["flops"]
    print(f"  encoder work per 30 s window: linear {fl['linear'] / 1e9:.1f}, attention {fl['attention'] / 1e9:.1f}, "
          f"conv stem {fl['conv'] / 1e9:.1f} GOP")
    floor = encoder_floor_ms(fl, pc.get(peak["bf16_kernels"] or "", 0) * threads)
    if floor:  # no kernel of the emulated device can beat it: every product goes through that instruction
        print(f"  BF16 floor (all of that work at the BF16 kernels' peak, nothing else): {floor:.0f} ms = "
              f"{floor / (lat['ORT CPU EP (FP32)'] * 1e3):.2f}x the ORT CPU EP's time in this run")
    for name, x in (("BF16", prov), ("BF16x3", prov.get("bf16x3")), ("INT8", prov.get("int8"))):
        if not x:
            continue
        parts = [f"{k} {v['gops']:.0f} GOP/s = {100 * v['share']:.0f}% of {v['peak_gops']:.0f}"
                 for k, v in x["share_of_peak"].items() if v["share"] is not None]
        print(f"  share of peak, {name}: " + "; ".join(parts))
    if "transcription" in results:
        t = results["transcription"]
        print(f"\ntranscription of {t['clips']} clips ({t['audio_seconds']:.1f} s of audio), real-time factor:")
        for k, v in t["real_time_factor"].items():
            print(f"  {k:32s} {v:9.4f}  ({1 / v:6.1f}x realtime)")
    base = lat["ORT CPU EP (FP32)"]
    print("\nratios against ORT CPU EP FP32 (time / ORT time; below 1.0 is faster):")
    for k, v in lat.items():
        print(f"  encoder  {k:32s} {v / base:6.2f}x")
    if "transcription" in results:
        rb = results["transcription"]["real_time_factor"]["CPU EP + Optimum"]
        for k, v in results["transcription"]["real_time_factor"].items():
            print(f"  transcr. {k:32s} {v / rb:6.2f}x")
    if "faster_whisper" in results:
        print_faster_whisper(results["faster_whisper"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _chart(results, out / "results.png")
    print(f"\nwrote {out / 'results.json'} and {out / 'results.png'}")
    return 0
