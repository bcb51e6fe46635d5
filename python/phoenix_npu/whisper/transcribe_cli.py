"""`phoenix-npu transcribe`: audio files in, transcripts out.

Whatever can be checked before the work is checked first (the arguments, where the output
goes, the inputs, the provider), so a mistake costs no transcription. The output never
replaces an input, and two inputs never share an output file. Results are written as each
file finishes (with --output DIR/) or together at the end, through a temporary file renamed
into place; if a write fails anyway (a full disk), the error says so and the result goes to
stdout instead of being lost.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from . import batch
from .formats import FORMATS, format_result, format_results
from .outputs import MIN_FREE_BYTES, OutputError, OutputPlan, plan_output, write_output  # noqa: F401  (re-exported)
from .transcribe import DEFAULT_MODEL, DEVICES, PRECISIONS, iter_transcribe

ENGINES = ("auto", "faster-whisper", "optimum")

log = logging.getLogger(__name__)

def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (the default) or more, not {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def add_arguments(parser) -> None:
    parser.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg/opus, mp3, m4a/aac, mp4, webm, mkv: any rate and channel "
                                                 "count; what libsndfile does not read, FFmpeg does through PyAV), folders "
                                                 "(searched recursively) and @LIST files (one path per line)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="tiny.en (default), base, or a Hugging Face / CTranslate2 Whisper directory, or an ONNX "
                             "export directory (this project's or Optimum's default export)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where the encoder runs: auto (NPU if present, else the emulated NPU), emulator, npu, "
                             "or cpu (ORT's CPU EP, FP32)")
    parser.add_argument("--precision", default="bf16", choices=PRECISIONS,
                        help="encoder numerics on PhoenixNPU: bf16 (default, the NPU kernels) or bf16x3 (BF16 pairs, "
                             "FP32-grade output, about 2.9x the encoder time; emulated device only)")
    parser.add_argument("--format", default="text", choices=FORMATS, help="output format (default text)")
    parser.add_argument("--output", "-o", default=None,
                        help="output file (default stdout); an existing directory, or a path ending in '/', "
                             "gets one file per input")
    parser.add_argument("--language", default=None, help="language code for multilingual models (default: detect)")
    parser.add_argument("--beam-size", type=positive_int, default=1, help="beam search width (default 1, greedy)")
    parser.add_argument("--bf16", action="store_true", help="use the BF16-weight export of the encoder")
    parser.add_argument("--int8", action="store_true",
                        help="INT8 end to end: the model's INT8 (QDQ) encoder on the provider, quantized and "
                             "cached on first use, and (faster-whisper engine) CTranslate2's int8 decoder")
    parser.add_argument("--calibration", action="append", default=None, metavar="AUDIO",
                        help="with --int8: audio files or folders to calibrate the INT8 encoder on (repeatable; "
                             "default: 11 s of read speech installed with the package); best: a few minutes like "
                             "the audio you transcribe")
    parser.add_argument("--int8-encoder", default=None, metavar="QDQ.onnx",
                        help="a QDQ-quantized encoder you made (AMD Quark, ORT...) instead of the model's encoder")
    parser.add_argument("--decoder-on-device", action="store_true",
                        help="give the decoder sessions the same providers as the encoder (default: CPU EP)")
    parser.add_argument("--threads", type=nonnegative_int, default=0,
                        help="threads per session (default 0: ORT's default, all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--engine", default="auto", choices=ENGINES,
                        help="faster-whisper: CTranslate2's decoder with the encoder on PhoenixNPU "
                             "(phoenix_npu.whisper.WhisperModel); optimum: Optimum + transformers with the encoder "
                             "on PhoenixNPU and the decoder on ORT's CPU EP; auto (default): faster-whisper when it "
                             "is installed and the model has CTranslate2 weights, else optimum")
    parser.add_argument("--word-timestamps", action="store_true",
                        help="per-word start/end times (JSON output: 'words' in each chunk; faster-whisper engine)")
    parser.add_argument("--vad", action="store_true",
                        help="skip non-speech with faster-whisper's Silero VAD filter (faster-whisper engine)")
    parser.add_argument("--task", default="transcribe", choices=("transcribe", "translate"),
                        help="translate: speech in any language to English text (multilingual models; "
                             "faster-whisper engine)")
    add_batch_arguments(parser)  # --overwrite, --cluster, --workers: batch runs (batch.py, cluster.py)


# ----------------------------------------------------------------------------------------------
# where the output goes: phoenix_npu.whisper.outputs (plan_output, write_output)


def _deliver(path: Path | None, text: str) -> bool:
    """Write to `path` (stdout when None). On failure say why and print the text to stdout,
    so the finished result is not lost. Returns whether `path` was written."""
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return True
    try:
        write_output(path, text)
    except OSError as exc:
        print(f"phoenix-npu transcribe: could not write {path}: {exc.strerror or exc}; "
              "the result follows on stdout so that it is not lost", file=sys.stderr)
        sys.stdout.write(text)
        sys.stdout.flush()
        return False
    log.info("wrote %s", path)
    return True


# ----------------------------------------------------------------------------------------------
# the command

def choose_engine(args) -> str:
    """The engine to run: --engine, or for auto faster-whisper when it is installed and the
    model has CTranslate2 weights (a known model name or a CTranslate2 directory), else
    Optimum. Raises ValueError when an option needs the other engine."""
    engine = args.engine
    if engine == "auto":
        import importlib.util

        from .registry import is_ct2_dir, recipes

        has_fw = all(importlib.util.find_spec(m) is not None for m in ("faster_whisper", "ctranslate2"))
        has_ct2 = args.model in recipes() or is_ct2_dir(Path(args.model).expanduser())
        engine = "faster-whisper" if has_fw and has_ct2 else "optimum"
        log.debug("engine: %s (%s)", engine, "faster-whisper installed, CTranslate2 weights" if engine != "optimum"
                 else ("faster-whisper not installed" if not has_fw else f"{args.model} has no CTranslate2 weights"))
    if args.calibration and not args.int8:
        raise ValueError("--calibration is the calibration audio of --int8; without --int8 it does nothing")
    if engine == "optimum":
        wanted = [flag for flag, on in (("--word-timestamps", args.word_timestamps), ("--vad", args.vad),
                                        ("--task translate", args.task == "translate")) if on]
        if wanted:
            raise ValueError(f"{', '.join(wanted)} need(s) the faster-whisper engine (--engine faster-whisper "
                             "with a model that has CTranslate2 weights)")
    elif args.bf16 or args.decoder_on_device:
        raise ValueError("--bf16 and --decoder-on-device apply to the optimum engine (--engine optimum)")
    return engine


def check_model(model: str, prog: str = "phoenix-npu transcribe") -> int | None:
    """None when `model` can be resolved, else 2 after saying why and what works: checked
    after the arguments and outputs, before anything is imported or loaded, so a mistyped
    name fails in a moment."""
    from .registry import ModelNotFoundError, check_model_name

    try:
        check_model_name(model)
    except ModelNotFoundError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return None


def run(args) -> int:
    if batch_wanted(args):  # folders, @lists, --output DIR/ or --cluster: resumable batch run
        return run_batch(args)
    fmt = args.format
    try:
        plan = plan_output(args.output, list(args.audio), fmt)
    except OutputError as exc:
        print(f"phoenix-npu transcribe: {exc}", file=sys.stderr)
        return 2
    if (status := check_model(args.model)) is not None:
        return status
    if (status := register_provider(args.device)) is not None:
        return status
    try:
        engine = choose_engine(args)
    except ValueError as exc:
        print(f"phoenix-npu transcribe: {exc}", file=sys.stderr)
        return 2
    def work() -> int:
        with batch.interrupt_on_signals():  # SIGTERM as Ctrl-C: what is finished is written
            return _run(args, fmt, plan, engine)

    return batch.exit_on_sigterm(work, "phoenix-npu transcribe")


def _run(args, fmt, plan, engine) -> int:
    import phoenix_npu

    from .quantize import QuantizationError
    from .registry import ModelNotFoundError

    ok = True
    collected: list[dict] = []
    try:
        int8, decoder_compute = None, "default"
        if args.int8_encoder or args.int8:  # the QDQ encoder's path (quantized and cached on first use)
            from .int8 import INT8_DECODER, int8_encoder_path

            int8 = int8_encoder_path(args.int8_encoder or args.model, calibration_audio=args.calibration)
            decoder_compute = INT8_DECODER
        if engine == "faster-whisper":
            from .faster import iter_transcribe as fw_iter_transcribe

            encoder_model = int8
            results = fw_iter_transcribe(args.audio, model=args.model, device=args.device, precision=args.precision,
                                         threads=args.threads, language=args.language, task=args.task,
                                         beam_size=args.beam_size, word_timestamps=args.word_timestamps,
                                         vad_filter=args.vad, progress=not args.no_progress and sys.stderr.isatty(),
                                         errors="keep", encoder_model=encoder_model,
                                         timestamps=fmt in ("srt", "vtt", "json"),
                                         compute_type=decoder_compute)
        else:
            results = iter_transcribe(args.audio, model=args.model, device=args.device,
                                      return_timestamps=fmt in ("srt", "vtt", "json"), language=args.language,
                                      num_beams=args.beam_size, bf16=args.bf16,
                                      decoder_device="same" if args.decoder_on_device else "cpu",
                                      threads=args.threads, progress=False if args.no_progress else None,
                                      errors="keep", precision=args.precision, int8=int8 or False)
        for index, r in enumerate(results):
            if r.get("error"):
                print(f"phoenix-npu transcribe: {r['error']}", file=sys.stderr)
                ok = False
            elif plan.per_input:
                ok &= _deliver(plan.targets[index], format_result(r, fmt))
            else:
                collected.append(r)
    except phoenix_npu.ProviderError as exc:
        return _provider_unavailable(args.device, exc)
    except (ModelNotFoundError, QuantizationError) as exc:
        print(f"phoenix-npu transcribe: {exc}", file=sys.stderr)
        return 1
    finally:  # also on an interrupt: what is finished gets written
        if collected:
            ok &= _deliver(plan.path, format_results(collected, fmt))
    return 0 if ok else 1


def register_provider(device: str) -> int | None:
    """Registers the provider unless --device cpu: None when it is ready (or not needed), else
    the exit status after saying why."""
    import phoenix_npu

    if device == "cpu":
        return None
    try:
        phoenix_npu.register()
    except phoenix_npu.ProviderError as exc:
        return _provider_unavailable(device, exc)
    return None


def _provider_unavailable(device: str, exc: Exception) -> int:
    print(f"phoenix-npu transcribe: the PhoenixNPU provider is not available for --device {device}:\n"
          f"  {exc}\n  Use --device cpu to transcribe on ONNX Runtime's CPU EP instead.", file=sys.stderr)
    return 1


# ----------------------------------------------------------------------------------------------
# batch runs: folders, @lists, --output DIR/, --cluster (phoenix_npu.whisper.batch, cluster)

def add_batch_arguments(parser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="with --output DIR: transcribe again inputs whose result already exists "
                             "(default: skip them, so an interrupted run resumes)")
    parser.add_argument("--cluster", default=None, metavar="local:N|ray://HOST:PORT",
                        help="fan the files out over Ray: local:N (N worker processes here) or ray://HOST:PORT "
                             "(an existing cluster); one model per worker. Needs pip install 'phoenix-npu[cluster]'")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="with --cluster ray://: how many workers (default one per node)")


def batch_wanted(args) -> bool:
    """Whether the command is a batch run: a folder or @list among the inputs, --cluster, or
    --output naming a folder (one result per input, resumable)."""
    if args.cluster or any(batch.is_batch_input(a) for a in args.audio):
        return True
    out = args.output
    return out is not None and (Path(out).is_dir() or out.endswith(("/", os.sep)))


def run_batch(args) -> int:
    """`phoenix-npu transcribe` for batch runs. Exit status: 0 all done or skipped, 1 a file
    failed (or could not be written), 2 a usage error found before any work."""
    prog = "phoenix-npu transcribe"
    fmt = args.format
    try:
        inputs = batch.expand_inputs(args.audio)
    except batch.InputError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if not inputs:
        print(f"{prog}: no audio files to transcribe in {' '.join(args.audio)}", file=sys.stderr)
        return 2
    out_dir = target_file = None
    if args.output is not None:
        output = args.output
        if any(batch.is_batch_input(a) for a in args.audio) and not output.endswith(("/", os.sep)):
            output += "/"  # a folder or list in: a folder out
        try:
            plan = plan_output(output, [p for p, _ in inputs], fmt)
        except OutputError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        out_dir = plan.path if plan.per_input else None
        if not plan.per_input:
            target_file = plan.path
    elif len(inputs) > 1 and fmt in ("srt", "vtt"):
        print(f"{prog}: --format {fmt} with several inputs needs --output DIR/ (one file per input)", file=sys.stderr)
        return 2
    if (status := check_model(args.model, prog)) is not None:
        return status
    if (status := register_provider(args.device)) is not None:
        return status
    stop = threading.Event()

    def work() -> int:
        with batch.interrupt_on_signals(stop):
            return _run_batch(args, prog, fmt, inputs, out_dir, target_file, stop)

    return batch.exit_on_sigterm(work, prog)


def _run_batch(args, prog, fmt, inputs, out_dir, target_file, stop) -> int:
    import phoenix_npu

    from .cluster import ClusterError
    from .quantize import QuantizationError
    from .registry import ModelNotFoundError

    try:
        engine = choose_engine(args)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    collected: list[dict] = []
    ok = True
    runs: list[batch.BatchRun] = []
    results = None
    try:
        int8 = None
        if args.int8_encoder or args.int8:  # quantized (once) here, not in every worker
            from .int8 import int8_encoder_path

            int8 = int8_encoder_path(args.int8_encoder or args.model, calibration_audio=args.calibration)
        results = batch.transcribe_batch(
            args.audio, args.model, output=out_dir, format=fmt,
            overwrite=args.overwrite, cluster=args.cluster, workers=args.workers, device=args.device,
            precision=args.precision, bf16=args.bf16, decoder_device="same" if args.decoder_on_device else "cpu",
            threads=args.threads, language=args.language, num_beams=args.beam_size, engine=engine, task=args.task,
            word_timestamps=args.word_timestamps, vad_filter=args.vad, int8=int8,
            progress=False if args.no_progress else None, run=runs, stop=stop, _inputs=inputs)
        for r in results:
            if r.get("error"):
                ok = False
            elif out_dir is None:
                collected.append(r)
    except KeyboardInterrupt:  # raised here, not inside the run: the summary says so all the same
        if runs:
            runs[0].status = "interrupted"
        if results is not None:
            results.close()
        raise
    except ClusterError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2 if exc.usage else 1
    except phoenix_npu.ProviderError as exc:
        return _provider_unavailable(args.device, exc)
    except (ModelNotFoundError, QuantizationError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    finally:  # also on an interrupt: what is finished is written
        if collected:
            ok &= _deliver(target_file, format_results(collected, fmt))
    if runs and runs[0].write_failures:
        ok = False
    return 0 if ok else 1
