"""The Optimum integration the design asks for (not an engine of the CLI): the exported
model in Optimum with the provider (`ORTModelForSpeechSeq2Seq.from_pretrained(dir,
provider="PhoenixNPUExecutionProvider")`), the decoders left to the CPU EP unless
claim_decoders=1 (the measurement's switch), a transformers ASR pipeline over it, and
Optimum's own default export on the provider. Real tiny.en, real clips."""
from __future__ import annotations

import re

import pytest
from _whisper import (
    clips,
    needs_speech,
    needs_tiny_en,
    needs_whisper,
    optimum_default_export,
    provider_available,
    speech_dir,
    tiny_en_onnx,
)

pytestmark = [pytest.mark.whisper, needs_whisper, needs_tiny_en, needs_speech(),
              pytest.mark.skipif(not provider_available(), reason="PhoenixNPU provider library not built")]


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


def test_a_transformers_pipeline_over_it_transcribes_on_the_provider():
    """phoenix_npu.whisper.optimum_pipeline.Transcriber: Optimum's model with the encoder on
    PhoenixNPU's emulated device inside a transformers automatic-speech-recognition pipeline;
    the clips within the WER budget, the device that ran named in the results."""
    from phoenix_npu.whisper.optimum_pipeline import load_model, transcribe
    from phoenix_npu_tools.wer import word_error_rate

    cs = clips()
    t = load_model(tiny_en_onnx(), device="auto")
    # results and the encoder line name the device that ran ("auto" resolved), not the one asked for
    assert t.device_ran in ("emulator", "npu") and f"(device=auto -> {t.device_ran}," in t.encoder_info
    results = transcribe([c["path"] for c in cs], transcriber=t, return_timestamps=True, progress=False)
    assert {r["device"] for r in results} == {t.device_ran}
    assert word_error_rate([c["reference"] for c in cs], [r["text"] for r in results]) <= 0.10, results
    assert all(r["chunks"] and r["chunks"][0]["timestamp"][0] == 0.0 for r in results)


def test_optimum_default_export_on_the_provider():
    """`optimum-cli export onnx --task automatic-speech-recognition-with-past` as a user runs it
    (symbolic batch dim, Optimum's default opset, no project marker), loaded by Optimum with the
    provider: every encoder node on PhoenixNPU in one region once the symbolic dims are pinned,
    and the transcript right."""
    import onnx
    from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
    from transformers import WhisperProcessor

    import phoenix_npu
    from phoenix_npu.whisper.audio import load_audio
    from phoenix_npu.whisper.export import encoder_free_dims
    from phoenix_npu_tools.wer import normalize

    out = optimum_default_export("tiny.en")
    enc = onnx.load(str(out / "encoder_model.onnx"), load_external_data=False)
    assert [d.dim_param or d.dim_value for d in enc.graph.input[0].type.tensor_type.shape.dim][0] == "batch_size"
    free = encoder_free_dims(out / "encoder_model.onnx")
    assert free == {"batch_size": 1}
    phoenix_npu.register()
    model = ORTModelForSpeechSeq2Seq.from_pretrained(
        out, provider=phoenix_npu.EP_NAME, session_options=phoenix_npu.session_options(free_dims=free),
        provider_options={"device": "emulator"})
    enc = phoenix_npu.assignment_summary(model.encoder.session)
    assert list(enc) == [phoenix_npu.EP_NAME] and enc[phoenix_npu.EP_NAME]["subgraphs"] == 1, enc
    c = clips()[0]
    proc = WhisperProcessor.from_pretrained(out)
    feats = proc(load_audio(c["path"]), sampling_rate=16000, return_tensors="pt").input_features
    text = proc.batch_decode(model.generate(feats, max_new_tokens=40), skip_special_tokens=True)[0]
    assert normalize(text) == normalize(c["reference"]), text
