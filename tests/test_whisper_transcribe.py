"""Transcription with the real tiny.en through Optimum + the transformers pipeline on ORT's
CPU EP: short clips are correct, long audio is chunked, output formats, provider selection."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from _whisper import (
    clips,
    needs_speech,
    needs_tiny_en,
    needs_whisper,
    optimum_default_export,
    provider_available,
    session_tmp,
    speech_dir,
    tiny_en_cpu,
    tiny_en_onnx,
)

pytestmark = [pytest.mark.whisper, needs_whisper]


@needs_tiny_en
@needs_speech()
def test_short_clips_are_transcribed_correctly():
    from phoenix_npu.whisper.transcribe import transcribe
    from phoenix_npu_tools.wer import normalize, word_error_rate

    cs = clips()
    results = transcribe([c["path"] for c in cs], transcriber=tiny_en_cpu(), progress=False)
    refs, hyps = [c["reference"] for c in cs], [r["text"] for r in results]
    assert word_error_rate(refs, hyps) <= 0.10, list(zip(refs, hyps))
    assert normalize(hyps[0]) == normalize(refs[0])  # "He could wait no longer."
    assert all(r["device"] == "cpu" and "CPUExecutionProvider" in r["encoder"] for r in results)


@needs_tiny_en
@needs_speech()
def test_timestamps_and_formats():
    from phoenix_npu.whisper.formats import format_result, format_results
    from phoenix_npu.whisper.transcribe import transcribe

    [r] = transcribe(speech_dir() / "jfk.wav", transcriber=tiny_en_cpu(), return_timestamps=True, progress=False)
    assert "ask not what your country can do for you" in r["text"].lower()
    stamps = [c["timestamp"] for c in r["chunks"]]
    assert stamps and all(0 <= s <= e <= r["duration"] + 0.01 for s, e in stamps)
    assert all(a[0] <= b[0] for a, b in zip(stamps, stamps[1:]))
    srt = format_results([r], "srt")
    assert re.match(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S", srt)
    vtt = format_results([r], "vtt")
    assert vtt.startswith("WEBVTT\n\n") and re.search(r"\d\d:\d\d:\d\d\.\d{3} --> ", vtt)
    data = json.loads(format_result(r, "json"))  # an output directory's file for this input: one object
    assert data["text"] == r["text"] and data["chunks"]
    doc = json.loads(format_results([r], "json"))  # stdout or one --output file: an array, even of one
    assert isinstance(doc, list) and len(doc) == 1 and doc[0]["text"] == r["text"]
    assert [d["text"] for d in json.loads(format_results([r, r], "json"))] == [r["text"], r["text"]]


@needs_tiny_en
@needs_speech()
def test_long_audio_is_chunked(tmp_path):
    """45 s of speech: more than one 30 s window, words from both ends come out."""
    import soundfile as sf
    from phoenix_npu.whisper.audio import load_audio
    from phoenix_npu.whisper.transcribe import transcribe

    parts = ["jfk.wav", "ls_test-clean_1089-134686-0000.wav", "librivox_sense_and_sensibility_01-0870.wav",
             "ls_test-clean_1089-134691-0001.wav", "ls_test-clean_1221-135766-0002.wav",
             "ls_test-clean_2830-3980-0043.wav"]
    gap = np.zeros(8000, np.float32)
    audio = np.concatenate([np.concatenate([load_audio(speech_dir() / p), gap]) for p in parts])
    assert audio.size / 16000 > 40
    sf.write(tmp_path / "long.wav", audio, 16000)
    t = tiny_en_cpu()
    before = t.windows_done
    [r] = transcribe(tmp_path / "long.wav", transcriber=t, return_timestamps=True, progress=False)
    assert t.windows_done - before >= 2  # chunked: several encoder runs
    text = r["text"].lower()
    assert "fellow americans" in text and "experience proves this" in text
    assert r["chunks"][-1]["timestamp"][1] > 35
    # cues are segments of speech, not whole windows (the chunked pipeline gave one 45 s cue)
    assert len(r["chunks"]) >= 5
    assert max(c["timestamp"][1] - c["timestamp"][0] for c in r["chunks"]) < 20


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
    model = str(tiny_en_onnx())
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
def test_emulator_transcripts_match_cpu():
    """The encoder on PhoenixNPU's emulated device: same transcripts within the WER budget."""
    from phoenix_npu.whisper.transcribe import load_model, transcribe
    from phoenix_npu_tools.wer import word_error_rate

    cs = clips()
    refs = [c["reference"] for c in cs]
    cpu = [r["text"] for r in transcribe([c["path"] for c in cs], transcriber=tiny_en_cpu(), progress=False)]
    t = load_model(tiny_en_onnx(), device="auto")
    # results and the encoder line name the device that ran ("auto" resolved), not the one asked for
    assert t.device_ran in ("emulator", "npu") and f"(device=auto -> {t.device_ran}," in t.encoder_info
    results = transcribe([c["path"] for c in cs], transcriber=t, progress=False)
    assert {r["device"] for r in results} == {t.device_ran}
    npu = [r["text"] for r in results]
    assert word_error_rate(refs, npu) <= word_error_rate(refs, cpu) + 0.005, list(zip(cpu, npu))


@needs_tiny_en
@needs_speech()
@pytest.mark.skipif(not provider_available(), reason="PhoenixNPU provider library not built")
def test_cli_precision_bf16x3(capsys):
    """`phoenix-npu transcribe --precision bf16x3`: the encoder on PhoenixNPU with BF16 pairs,
    said in the device line, and the same transcript as on the FP32 CPU EP."""
    from phoenix_npu.cli import main
    from phoenix_npu_tools.wer import normalize

    c = clips()[0]
    assert main(["transcribe", c["path"], "--model", str(tiny_en_onnx()), "--device", "emulator",
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
@pytest.mark.skipif(not provider_available(), reason="PhoenixNPU provider library not built")
@pytest.mark.parametrize("claim_decoders", ["0", "1"])
def test_optimum_with_the_provider_takes_the_encoder_and_leaves_the_decoders(claim_decoders):
    """What users write: ORTModelForSpeechSeq2Seq.from_pretrained(dir, provider=EP). Optimum gives
    the provider to the encoder AND the decoder sessions; the encoder lands on PhoenixNPU in one
    region, the decoders (token decoder graphs, measured faster on the CPU EP) stay on the CPU EP
    unless claim_decoders=1, and the transcript is right either way."""
    import phoenix_npu
    from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
    from transformers import WhisperProcessor

    from phoenix_npu.whisper.audio import load_audio

    phoenix_npu.register()
    so = phoenix_npu.session_options()
    model = ORTModelForSpeechSeq2Seq.from_pretrained(
        tiny_en_onnx(), provider=phoenix_npu.EP_NAME, session_options=so,
        provider_options={"device": "emulator", "claim_decoders": claim_decoders})
    enc = phoenix_npu.assignment_summary(model.encoder.session)
    assert enc == {phoenix_npu.EP_NAME: {"nodes": enc[phoenix_npu.EP_NAME]["nodes"], "subgraphs": 1}}
    dec = phoenix_npu.assignment_summary(model.decoder.session)
    if claim_decoders == "0":
        assert phoenix_npu.EP_NAME not in dec
    else:
        assert dec[phoenix_npu.EP_NAME]["nodes"] > 100, dec
    proc = WhisperProcessor.from_pretrained(tiny_en_onnx())
    feats = proc(load_audio(speech_dir() / "jfk.wav"), sampling_rate=16000, return_tensors="pt").input_features
    text = proc.batch_decode(model.generate(feats, max_new_tokens=40), skip_special_tokens=True)[0]
    assert "ask not what your country can do for you" in text.lower()


@needs_tiny_en
@needs_speech()
def test_cli_keeps_results_when_the_output_cannot_be_written(capsys):
    """--output /dev/full: every write fails with ENOSPC. The error says so and the finished
    transcript goes to stdout instead of being lost."""
    from phoenix_npu.cli import main

    c = clips()[0]
    assert main(["transcribe", c["path"], "--model", str(tiny_en_onnx()), "--device", "cpu", "-o", "/dev/full"]) == 1
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
    rc = main(["transcribe", *map(str, inputs), "--model", str(tiny_en_onnx()), "--device", "cpu",
               "--format", "srt", "-o", f"{tmp_path / 'subs'}/"])
    err = capsys.readouterr().err
    assert rc == 1 and "missing.wav: no such file" in err
    outs = sorted(p.name for p in (tmp_path / "subs").iterdir() if p.suffix == ".srt")  # + the run summary
    assert len(outs) == 2 and all(re.fullmatch(r"jfk\.wav\.[0-9a-f]{8}\.srt", n) for n in outs), outs
    for name in outs:
        srt = (tmp_path / "subs" / name).read_text()
        assert srt.startswith("1\n00:00:") and "ask not what your country" in srt.lower()


@needs_tiny_en
@needs_speech()
def test_optimum_default_export_directory_transcribes(capsys):
    """`optimum-cli export onnx --task automatic-speech-recognition-with-past` as a user runs it
    (symbolic batch dim, Optimum's default opset, no project marker): `--model DIR` takes it,
    pins the encoder's symbolic dims, and transcribes on the CPU EP and on PhoenixNPU alike."""
    import onnx

    from phoenix_npu.cli import main
    from phoenix_npu.whisper.export import encoder_free_dims

    out = optimum_default_export("tiny.en")
    enc = onnx.load(str(out / "encoder_model.onnx"), load_external_data=False)
    assert [d.dim_param or d.dim_value for d in enc.graph.input[0].type.tensor_type.shape.dim][0] == "batch_size"
    assert encoder_free_dims(out / "encoder_model.onnx") == {"batch_size": 1}
    c = clips()[0]
    texts = {}
    for device in ("cpu", "emulator") if provider_available() else ("cpu",):
        assert main(["transcribe", c["path"], "--model", str(out), "--device", device, "--no-progress"]) == 0
        texts[device], err = capsys.readouterr()
        if device == "emulator":
            m = re.search(r"PhoenixNPUExecutionProvider \(device=emulator, precision=bf16\): (\d+) of (\d+) encoder", err)
            assert m and m[1] == m[2], err  # every encoder node on the provider
    from phoenix_npu_tools.wer import normalize

    assert all(normalize(t) == normalize(c["reference"]) for t in texts.values()), texts
