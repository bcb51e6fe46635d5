"""phoenix_npu.whisper.WhisperModel: faster-whisper with the encoder on PhoenixNPU (emulated
device), on real weights and real speech. Each faster-whisper feature runs end to end through
it: beam search, temperature fallback, word timestamps, VAD, initial prompt, language
detection (multilingual base), long audio, BatchedInferencePipeline."""
from __future__ import annotations

import functools
import logging
import subprocess
import sys

import numpy as np
import pytest
from _whisper import clips, needs_base, needs_speech, needs_tiny_en, needs_whisper, speech_dir

pytest.importorskip("faster_whisper", reason="faster-whisper missing: pip install 'phoenix-npu[whisper]'")

pytestmark = [pytest.mark.whisper, needs_whisper, needs_speech()]

SR = 16000
LONG_CLIPS = ("ls_test-clean_1089-134686-0000.wav", "jfk.wav", "ls_test-clean_1089-134686-0001.wav",
              "librivox_sense_and_sensibility_01-0870.wav", "ls_test-clean_1221-135766-0002.wav",
              "ls_test-clean_1089-134691-0001.wav")
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


@functools.cache
def model(name: str = "tiny.en", encoder_device: str = "emulator", precision: str = "bf16"):
    from phoenix_npu.whisper import WhisperModel

    return WhisperModel(name, encoder_device=encoder_device, cpu_threads=2, precision=precision)


def audio(name: str) -> np.ndarray:
    from faster_whisper import decode_audio

    return decode_audio(str(speech_dir() / name))


def encoder_runs() -> int:
    import phoenix_npu

    return sum(r["runs"] for r in phoenix_npu.counters()["regions"])


def wer(refs, hyps) -> float:
    from phoenix_npu_tools.wer import word_error_rate

    return word_error_rate(list(refs), list(hyps))


def window(m, samples: np.ndarray) -> np.ndarray:
    from faster_whisper.audio import pad_or_trim

    return pad_or_trim(m.feature_extractor(samples)[..., :-1])


# ----------------------------------------------------------------------------------------------
# the encoder against CTranslate2's own encoder, same weights and features

@needs_tiny_en
@pytest.mark.parametrize("precision", ["bf16", "cpu"])
def test_encoder_matches_ctranslate2_encoder_tiny_en(precision):
    from phoenix_npu.whisper.faster import cosine_per_position

    m = model("tiny.en", "cpu" if precision == "cpu" else "emulator", "bf16" if precision == "cpu" else precision)
    feats = window(m, audio("ls_test-clean_1089-134686-0000.wav"))
    ours, ref = m.encoder(feats), m.ct2_encode(feats)
    assert ours.shape == ref.shape == (1, 1500, 384)
    cos = cosine_per_position(ours, ref)
    if precision == "bf16":
        # BF16 tensors lose the few positions with Whisper's massive activations (docs/architecture.md, Numerics)
        assert cos.mean() > 0.999 and (cos >= 0.999).mean() > 0.95, (cos.min(), cos.mean())
    else:  # the same ONNX encoder on ORT's CPU EP (FP32): the export itself is faithful
        assert cos.min() >= 0.999, cos.min()


@needs_base
def test_encoder_matches_ctranslate2_encoder_base():
    from phoenix_npu.whisper.faster import cosine_per_position

    from phoenix_npu.whisper.faster import ProviderEncoder

    m = model("base")
    feats = window(m, audio("ls_test-clean_1089-134686-0000.wav"))
    ref = m.ct2_encode(feats)
    cos = cosine_per_position(m.encoder(feats), ref)
    assert cos.mean() > 0.999 and (cos >= 0.999).mean() > 0.95, (cos.min(), cos.mean())
    fp32 = ProviderEncoder(m.encoder.path, device="cpu", threads=2)  # the same export on ORT's CPU EP
    assert cosine_per_position(fp32(feats), ref).min() >= 0.999


# ----------------------------------------------------------------------------------------------
# faster-whisper's features through the provider's encoder

@needs_tiny_en
def test_beam_search_on_the_provider_encoder():
    from faster_whisper.transcribe import Segment, TranscriptionInfo

    m = model()
    assert "155 of 155 encoder nodes in 1 region" in m.encoder_info
    refs, hyps = [], []
    before = encoder_runs()
    for c in clips():
        segments, info = m.transcribe(str(c["path"]), beam_size=5, language="en")
        segments = list(segments)
        assert isinstance(info, TranscriptionInfo) and info.transcription_options.beam_size == 5
        assert segments and all(isinstance(s, Segment) for s in segments)
        refs.append(c["reference"])
        hyps.append(" ".join(s.text for s in segments))
    assert encoder_runs() - before >= len(refs)  # the provider ran the encoder, once per clip
    assert wer(refs, hyps) < 0.10, list(zip(refs, hyps))


@needs_tiny_en
def test_temperature_fallback(caplog):
    m = model()
    # a compression-ratio threshold nothing meets: every temperature is tried, the best kept
    with caplog.at_level(logging.DEBUG, logger="faster_whisper"):
        segments, _ = m.transcribe(audio("jfk.wav"), beam_size=1, best_of=2, temperature=[0.0, 0.4, 0.8],
                                   compression_ratio_threshold=0.1, condition_on_previous_text=False)
        segments = list(segments)
    tried = [r.getMessage() for r in caplog.records if "threshold is not met with temperature" in r.getMessage()]
    assert any("temperature 0.0" in t for t in tried) and any("temperature 0.8" in t for t in tried), tried
    assert segments and wer([JFK_TEXT], [" ".join(s.text for s in segments)]) < 0.3


@needs_tiny_en
def test_word_timestamps():
    m = model()
    samples = audio("jfk.wav")
    segments, info = m.transcribe(samples, beam_size=1, word_timestamps=True)
    words = [w for s in segments for w in s.words]
    assert len(words) >= 20
    assert all(w.start <= w.end for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    assert words[0].start < 1.5 and 9.0 < words[-1].end <= info.duration + 0.05
    ask = [w for w in words if w.word.strip(" ,.").lower() == "ask"]
    assert len(ask) == 2 and 2.0 < ask[0].start < ask[0].end < 6.0 < ask[1].start  # "ask not", "ask what" ~8 s
    assert wer([JFK_TEXT], ["".join(w.word for w in words)]) < 0.1


@needs_tiny_en
def test_vad_filter_drops_silence_and_keeps_the_timeline():
    m = model()
    speech = audio("jfk.wav")
    samples = np.concatenate([np.zeros(6 * SR, np.float32), speech, np.zeros(6 * SR, np.float32)])
    segments, info = m.transcribe(samples, beam_size=1, vad_filter=True)
    segments = list(segments)
    assert info.duration == pytest.approx(23.0, abs=0.05)
    assert info.duration_after_vad < 13.0  # about 12 s of silence removed
    assert segments[0].start >= 5.0 and segments[-1].end <= 19.0  # times are in the original audio (speech 6-17 s)
    assert wer([JFK_TEXT], [" ".join(s.text for s in segments)]) < 0.1


@needs_tiny_en
def test_initial_prompt_steers_the_decoder():
    m = model()
    path = str(speech_dir() / "ls_test-clean_1089-134691-0000.wav")
    plain = " ".join(s.text for s in m.transcribe(path, beam_size=1)[0]).strip()
    caps = " ".join(s.text for s in m.transcribe(path, beam_size=1, initial_prompt="HE HOPED THERE WOULD BE "
                                                 "STEW FOR DINNER TURNIPS AND CARROTS")[0]).strip()
    assert not plain.isupper() and caps.isupper(), (plain, caps)  # the prompt's style carries over
    assert wer(["HE COULD WAIT NO LONGER"], [caps]) < 0.3


@needs_base
def test_language_detection_multilingual_base():
    m = model("base")
    assert m.model.is_multilingual
    samples = audio("jfk.wav")
    segments, info = m.transcribe(samples, beam_size=1)  # no language given: detected
    assert info.language == "en" and info.language_probability > 0.8
    probs = dict(info.all_language_probs)
    assert len(probs) >= 99 and sum(probs.values()) == pytest.approx(1.0, abs=0.02)
    assert max(probs, key=probs.get) == "en"
    lang, p, _ = m.detect_language(samples)
    assert lang == "en" and p == pytest.approx(info.language_probability, abs=1e-4)
    assert wer([JFK_TEXT], [" ".join(s.text for s in segments)]) < 0.1


@needs_tiny_en
def test_long_audio_is_decoded_window_after_window():
    m = model()
    gap = np.zeros(SR // 2, np.float32)
    pieces = [audio(n) for n in LONG_CLIPS]
    samples = np.concatenate([x for p in pieces for x in (p, gap)])
    refs = [c["reference"] for c in clips(LONG_CLIPS)]
    before = encoder_runs()
    segments, info = m.transcribe(samples, beam_size=1, language="en")
    segments = list(segments)
    assert info.duration > 40
    assert encoder_runs() - before >= 2  # more than one 30 s window
    assert segments[-1].end > 35 and all(a.start <= b.start for a, b in zip(segments, segments[1:]))
    assert wer([" ".join(refs)], [" ".join(s.text for s in segments)]) < 0.15


@needs_tiny_en
def test_batched_inference_pipeline_batches_on_the_provider():
    from phoenix_npu.whisper import BatchedInferencePipeline

    m = model()
    pieces = [audio(n) for n in LONG_CLIPS]
    gap = np.zeros(SR, np.float32)  # silences VAD cuts at
    samples = np.concatenate([x for p in pieces for x in (p, gap)])
    refs = [c["reference"] for c in clips(LONG_CLIPS)]
    pipe = BatchedInferencePipeline(model=m)
    segments, info = pipe.transcribe(samples, batch_size=4, language="en", beam_size=1)
    segments = list(segments)
    assert any(b > 1 for b in m.encoder._sessions), m.encoder._sessions.keys()  # a batched encoder session
    assert len(segments) >= 2 and segments[-1].end > 30
    assert wer([" ".join(refs)], [" ".join(s.text for s in segments)]) < 0.15


# ----------------------------------------------------------------------------------------------
# phoenix-npu transcribe on this path

@needs_tiny_en
def test_plain_text_decodes_without_timestamp_tokens():
    """timestamps=False (the CLI's text output): no timestamp tokens, so one segment per 30 s
    window, as the Optimum path; with timestamps the segments follow the speech."""
    from phoenix_npu.whisper.faster import iter_transcribe

    path = str(speech_dir() / "jfk.wav")
    [plain] = iter_transcribe([path], whisper_model=model(), language="en", timestamps=False)
    [timed] = iter_transcribe([path], whisper_model=model(), language="en", timestamps=True)
    assert [c["timestamp"] for c in plain["chunks"]] == [(0.0, round(plain["duration"], 2))], plain["chunks"]
    assert len(timed["chunks"]) >= 2 and timed["chunks"][0]["timestamp"][1] < timed["duration"] - 1, timed["chunks"]
    assert wer([JFK_TEXT], [plain["text"]]) < 0.1 and wer([JFK_TEXT], [timed["text"]]) < 0.1


@needs_tiny_en
def test_cli_faster_whisper_engine_with_word_timestamps_and_vad(tmp_path, capsys):
    import json

    from phoenix_npu.cli import main

    model()  # cached export
    out = tmp_path / "jfk.json"
    assert main(["transcribe", str(speech_dir() / "jfk.wav"), "--model", "tiny.en", "--device", "auto",
                 "--threads", "2", "--format", "json", "--word-timestamps", "--vad", "--no-progress",
                 "-o", str(out)]) == 0
    [data] = json.loads(out.read_text())  # one --output file: an array of one
    # the device that ran ("auto" resolved), not the one asked for
    assert data["engine"] == "faster-whisper" and data["device"] in ("emulator", "npu") and data["language"] == "en"
    assert f"PhoenixNPUExecutionProvider (device=auto -> {data['device']}," in data["encoder"]
    words = [w for c in data["chunks"] for w in c["words"]]
    assert len(words) >= 20 and all(w["start"] <= w["end"] for w in words)
    assert wer([JFK_TEXT], [data["text"]]) < 0.1
    assert "encoder: PhoenixNPUExecutionProvider" in capsys.readouterr().err
    srt = tmp_path / "jfk.srt"
    assert main(["transcribe", str(speech_dir() / "jfk.wav"), "--model", "tiny.en", "--device", "emulator",
                 "--threads", "2", "--format", "srt", "--no-progress", "-o", str(srt)]) == 0
    assert srt.read_text().startswith("1\n00:00:00,000 --> ")


def test_cli_flags_that_need_faster_whisper_are_refused_on_optimum(capsys):
    from phoenix_npu.cli import main

    assert main(["transcribe", "x.wav", "--engine", "optimum", "--word-timestamps", "--vad"]) == 2
    err = capsys.readouterr().err
    assert "--word-timestamps, --vad need(s) the faster-whisper engine" in err


# ----------------------------------------------------------------------------------------------
# API

@needs_tiny_en
def test_arguments_and_imports():
    from phoenix_npu.whisper import WhisperModel

    with pytest.raises(ValueError, match="encoder_device must be one of"):
        WhisperModel("tiny.en", encoder_device="gpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        WhisperModel("tiny.en", precision="fp8")
    stock = WhisperModel("tiny.en", encoder_device="ctranslate2", cpu_threads=1)  # stock faster-whisper
    assert stock.encoder is None and stock.encoder_info.startswith("CTranslate2 (cpu")
    model()  # exported and cached before the child process below
    code = ("import sys, logging; root = logging.getLogger().handlers[:]\n"
            "from phoenix_npu.whisper import WhisperModel\n"
            "m = WhisperModel('tiny.en', encoder_device='emulator', cpu_threads=1)\n"
            "assert logging.getLogger().handlers == root\n"
            "print(sorted(k for k in ('torch', 'transformers', 'optimum') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _env():
    import os

    return dict(os.environ)  # the installed package, as users run it


def test_unknown_model_says_what_works_offline(monkeypatch):
    from phoenix_npu.whisper import WhisperModel
    from phoenix_npu.whisper.registry import ModelNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="tiny.en"):
        WhisperModel("no-such-size-xyz", local_files_only=True)
