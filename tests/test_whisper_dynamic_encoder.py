"""Optimum's default export (symbolic batch dim) of the real encoders on PhoenixNPU with no
free-dimension override (issue 13): every node in one region, batch N against the CPU EP, and
each item of a batch equal to that item run alone (the batch only repeats the per-item work)."""
from __future__ import annotations

import numpy as np
import pytest
from _whisper import (clips, needs_base, needs_speech, needs_tiny_en, needs_whisper, optimum_default_export,
                      provider_available, run_and_find_region)

import phoenix_npu

pytestmark = [pytest.mark.whisper, needs_whisper, needs_speech(),
              pytest.mark.skipif(not provider_available(), reason="PhoenixNPU provider library not built")]

CLIPS = ("ls_test-clean_1089-134691-0000.wav", "ls_test-clean_2830-3980-0043.wav", "ls_test-clean_8455-210777-0068.wav",
         "jfk.wav", "ljspeech_LJ002-0020.wav", "ls_dev-clean_1272-141231-0000.wav", "ls_test-clean_1089-134686-0000.wav")


def _features(model: str, n: int) -> np.ndarray:
    """Log-mel features of n different real clips, [n, mels, 3000]."""
    from transformers import WhisperFeatureExtractor

    from phoenix_npu.whisper.audio import load_audio
    from phoenix_npu.whisper.importer import resolve_model

    fe = WhisperFeatureExtractor.from_pretrained(resolve_model(model))
    audio = [load_audio(c["path"]) for c in clips(CLIPS[:n])]
    return fe(audio, sampling_rate=16000, return_tensors="np").input_features.astype(np.float32)


def _rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("model,batches", [pytest.param("tiny.en", (1, 2, 4, 7), marks=needs_tiny_en),
                                           pytest.param("base", (3,), marks=needs_base)])
def test_default_export_encoder_runs_every_batch_on_the_provider(model, batches):
    import onnxruntime as ort

    path = str(optimum_default_export(model) / "encoder_model.onnx")
    sess = phoenix_npu.make_session(path, device="emulator")
    summary = phoenix_npu.assignment_summary(sess)
    assert list(summary) == [phoenix_npu.EP_NAME] and summary[phoenix_npu.EP_NAME]["subgraphs"] == 1, summary
    assert sess.get_inputs()[0].shape[0] == "batch_size"
    cpu = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feats = _features(model, max(batches))
    alone = [sess.run(None, {"input_features": feats[i:i + 1]})[0] for i in range(max(batches))]
    plans_built = []
    for b in batches:
        (got,), region = run_and_find_region(sess, {"input_features": feats[:b]})
        plans_built.append(region["plans_built"])
        want = cpu.run(None, {"input_features": feats[:b]})[0]
        assert got.shape == want.shape
        # the op-parity contract of the whole BF16 encoder (measured 0.008-0.009 on tiny.en)
        assert _rel_l2(got, want) < 0.02, (b, _rel_l2(got, want))
        for i in range(b):
            np.testing.assert_array_equal(got[i], alone[i][0])
    assert plans_built[-1] >= len(set(batches) | {1})  # one plan per batch size
