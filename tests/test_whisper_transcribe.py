"""Transcription with the real tiny.en, the one engine (phoenix_npu.whisper.WhisperModel:
faster-whisper, the encoder on PhoenixNPU or ORT's CPU EP): short clips are correct, typed
results and every output format (the JSON schema's version), the CLI's device and output
handling."""
from __future__ import annotations

import functools
import json
import re

import pytest
from _whisper import (
    clips,
    needs_speech,
    needs_tiny_en,
    needs_whisper,
    provider_available,
    session_tmp,
    speech_dir,
)

pytestmark = [pytest.mark.whisper, needs_whisper]


@functools.cache
def tiny_en(device: str = "cpu"):
    """The real tiny.en, the encoder on `device`, loaded once."""
    from phoenix_npu.whisper.faster import load_model
    from phoenix_npu.whisper.options import TranscribeOptions

    return load_model(TranscribeOptions(model="tiny.en", device=device, threads=2))


@needs_tiny_en
@needs_speech()
def test_short_clips_are_transcribed_correctly():
    from phoenix_npu.whisper.faster import iter_transcribe
    from phoenix_npu_tools.wer import normalize, word_error_rate

    cs = clips()
    results = list(iter_transcribe([c["path"] for c in cs], whisper_model=tiny_en("cpu"), timestamps=False))
    refs, hyps = [c["reference"] for c in cs], [r.text for r in results]
    assert word_error_rate(refs, hyps) <= 0.10, list(zip(refs, hyps))
    assert normalize(hyps[0]) == normalize(refs[0])  # "He could wait no longer."
    assert all(r.device == "cpu" and "CPUExecutionProvider" in r.encoder for r in results)


@needs_tiny_en
@needs_speech()
def test_typed_results_and_every_format():
    """A FileResult carries faster-whisper's Segments, Words and TranscriptionInfo; the text,
    SRT, VTT and JSON writers render from them; JSON follows docs/transcript-json.md with its
    schema_version."""
    from faster_whisper.transcribe import Segment, TranscriptionInfo, Word

    from phoenix_npu.whisper.faster import iter_transcribe
    from phoenix_npu.whisper.formats import format_result, format_results
    from phoenix_npu.whisper.results import SCHEMA_VERSION, FileResult

    [r] = iter_transcribe(speech_dir() / "jfk.wav", whisper_model=tiny_en("cpu"), word_timestamps=True)
    assert isinstance(r, FileResult) and isinstance(r.info, TranscriptionInfo) and r.error is None
    assert r.segments and all(isinstance(s, Segment) for s in r.segments)
    assert all(isinstance(w, Word) for s in r.segments for w in s.words)
    assert "ask not what your country can do for you" in r.text.lower() and r.language == "en"
    stamps = [(s.start, s.end) for s in r.segments]
    assert all(0 <= s <= e <= r.duration + 0.01 for s, e in stamps)
    assert all(a[0] <= b[0] for a, b in zip(stamps, stamps[1:]))

    assert format_results([r], "text") == r.text + "\n"
    srt = format_results([r], "srt")
    assert re.match(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S", srt)
    assert srt.count(" --> ") == len([s for s in r.segments if s.text.strip()])
    vtt = format_results([r], "vtt")
    assert vtt.startswith("WEBVTT\n\n") and re.search(r"\d\d:\d\d:\d\d\.\d{3} --> ", vtt)

    data = json.loads(format_result(r, "json"))  # an output directory's file for this input: one object
    assert SCHEMA_VERSION == 1 and data["schema_version"] == SCHEMA_VERSION
    assert set(data) == {"schema_version", "path", "text", "duration", "language", "language_probability", "task",
                         "device", "encoder", "segments"}
    assert data["text"] == r.text and data["task"] == "transcribe" and data["device"] == "cpu"
    seg = data["segments"][0]
    assert set(seg) == {"id", "start", "end", "text", "avg_logprob", "compression_ratio", "no_speech_prob",
                        "temperature", "words"}
    assert (seg["start"], seg["end"], seg["text"]) == (round(r.segments[0].start, 3), round(r.segments[0].end, 3),
                                                       r.segments[0].text)
    assert set(seg["words"][0]) == {"word", "start", "end", "probability"}
    doc = json.loads(format_results([r], "json"))  # stdout or one --output file: an array, even of one
    assert isinstance(doc, list) and len(doc) == 1 and doc[0] == data
    failed = FileResult("gone.wav", error="gone.wav: no such file").to_json()
    assert failed == {"schema_version": 1, "path": "gone.wav", "text": "", "duration": 0.0,
                      "error": "gone.wav: no such file", "segments": []}


def test_options_are_one_frozen_object():
    import dataclasses
    import pickle

    from phoenix_npu.whisper.options import TranscribeOptions

    o = TranscribeOptions(model="base", device="emulator", beam_size=5, vad=True)
    assert pickle.loads(pickle.dumps(o)) == o
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.beam_size = 1
    for bad, message in [({"device": "gpu"}, "device must be one of"), ({"precision": "fp8"}, "precision must be"),
                         ({"task": "summarise"}, "task must be one of"), ({"beam_size": 0}, "beam_size must be 1")]:
        with pytest.raises(ValueError, match=message):
            TranscribeOptions(**bad)


def test_providers():
    import phoenix_npu

    assert phoenix_npu.providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="device must be one of"):
        phoenix_npu.providers("gpu")
    assert phoenix_npu.providers("emulator", threads=2, precision="bf16x3") == [
        ("PhoenixNPUExecutionProvider", {"device": "emulator", "threads": "2", "precision": "bf16x3"}),
        "CPUExecutionProvider"]


@needs_tiny_en
@needs_speech()
def test_cli_reports_missing_provider_and_runs_on_cpu(capsys, tmp_path):
    """Without the provider library, --device auto is a clear error before any model is
    loaded (a fresh process, since this one has registered the library), and --device cpu
    still transcribes, saying which device ran the encoder."""
    import os
    import subprocess
    import sys

    from phoenix_npu.cli import main

    clip = str(speech_dir() / "ls_test-clean_1089-134691-0000.wav")
    model = "tiny.en"
    r = subprocess.run([sys.executable, "-m", "phoenix_npu.cli", "transcribe", clip, "--model", model],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PHOENIX_NPU_LIBRARY": "/nonexistent/libphoenix_npu_ep.so"})
    assert r.returncode == 1 and not r.stdout
    assert "not available for --device auto" in r.stderr and "does not exist" in r.stderr
    assert "--device cpu" in r.stderr and "Traceback" not in r.stderr
    assert "encoder:" not in r.stderr  # it stopped before loading the model
    out = tmp_path / "out.json"
    assert main(["transcribe", clip, "--model", model, "--device", "cpu", "--format", "json", "-o", str(out)]) == 0
    [data] = json.loads(out.read_text())  # one --output file: an array of one
    assert "wait no longer" in data["text"].lower()
    assert "encoder: CPUExecutionProvider" in capsys.readouterr().err  # says which device ran the encoder


@needs_tiny_en
@needs_speech()
@pytest.mark.skipif(not provider_available(), reason="PhoenixNPU provider library not built")
def test_cli_precision_bf16x3(capsys):
    """`phoenix-npu transcribe --precision bf16x3`: the encoder on PhoenixNPU with BF16 pairs,
    said in the device line, and the same transcript as on the FP32 CPU EP."""
    from phoenix_npu.cli import main
    from phoenix_npu_tools.wer import normalize

    c = clips()[0]
    assert main(["transcribe", c["path"], "--model", "tiny.en", "--device", "emulator",
                 "--precision", "bf16x3", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert normalize(out) == normalize(c["reference"])
    assert "precision=bf16x3" in err and "PhoenixNPUExecutionProvider" in err


def test_wer_normalisation():
    from phoenix_npu_tools.wer import normalize, word_error_rate

    assert normalize("He hoped there would be STEW, for dinner!") == "he hoped there would be stew for dinner"
    assert word_error_rate(["IN EIGHTEEN THIRTEEN"], ["In 1813."]) == 0.0
    assert word_error_rate(["A B C D"], ["a b x d"]) == pytest.approx(0.25)
    assert word_error_rate(["HELLO"], [""]) == 1.0


def test_manifest_reader():
    from phoenix_npu_tools.wer import read_manifest

    d = speech_dir()
    if not (d / "manifest.tsv").is_file():
        pytest.skip(f"no clips at {d}")
    rows = read_manifest(d)
    assert len(rows) >= 3 and all(r["reference"] and r["duration"] > 0 for r in rows)
    with pytest.raises(FileNotFoundError, match="manifest.tsv"):
        read_manifest(session_tmp())


@needs_tiny_en
@needs_speech()
def test_cli_keeps_results_when_the_output_cannot_be_written(capsys):
    """--output /dev/full: every write fails with ENOSPC. The error says so and the finished
    transcript goes to stdout instead of being lost."""
    from phoenix_npu.cli import main

    c = clips()[0]
    assert main(["transcribe", c["path"], "--model", "tiny.en", "--device", "cpu", "-o", "/dev/full"]) == 1
    out, err = capsys.readouterr()
    assert "could not write /dev/full: No space left on device" in err
    assert "wait no longer" in out.lower()


@needs_tiny_en
@needs_speech()
def test_cli_one_output_per_input_even_with_one_stem(tmp_path, capsys):
    """Two inputs named jfk.wav (in different folders) get a result each, named from the input
    (jfk.wav.HASH.srt, HASH: of its path), not from its position; an unreadable third input is
    reported without losing the other two."""
    import shutil

    from phoenix_npu.cli import main

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(speech_dir() / "jfk.wav", tmp_path / d / "jfk.wav")
    inputs = [tmp_path / "a" / "jfk.wav", tmp_path / "b" / "jfk.wav", tmp_path / "missing.wav"]
    rc = main(["transcribe", *map(str, inputs), "--model", "tiny.en", "--device", "cpu",
               "--format", "srt", "-o", f"{tmp_path / 'subs'}/"])
    err = capsys.readouterr().err
    assert rc == 1 and "missing.wav: no such file" in err
    outs = sorted(p.name for p in (tmp_path / "subs").iterdir() if p.suffix == ".srt")  # + the run summary
    assert len(outs) == 2 and all(re.fullmatch(r"jfk\.wav\.[0-9a-f]{8}\.srt", n) for n in outs), outs
    for name in outs:
        srt = (tmp_path / "subs" / name).read_text()
        assert srt.startswith("1\n00:00:") and "ask not what your country" in srt.lower()
