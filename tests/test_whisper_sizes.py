"""Every Whisper size on the provider (issue 24.6): random-weight encoders shaped like small,
medium and large-v3 (the real d_model, heads, FFN width and mel bins; 2 encoder layers instead of
12 / 24 / 32, since a layer's nodes and shapes repeat and only the run time grows), exported here
by the project's exporter (Optimum), run on PhoenixNPU against the CPU EP: every node claimed in
one region, output within the BF16 contract. large-v3 has 128 mel bins and 20 heads of 64;
turbo's encoder is large-v3's."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from _whisper import needs_whisper, provider_available, session_tmp

import phoenix_npu

pytestmark = [pytest.mark.whisper, needs_whisper,
              pytest.mark.skipif(not provider_available(), reason="PhoenixNPU provider library not built")]

# OpenAI's dims (whisper/__init__.py model cards): d_model, heads, FFN, mel bins, vocabulary.
SIZES = {
    "small": dict(d_model=768, encoder_attention_heads=12, encoder_ffn_dim=3072, num_mel_bins=80, vocab_size=51865),
    "medium": dict(d_model=1024, encoder_attention_heads=16, encoder_ffn_dim=4096, num_mel_bins=80, vocab_size=51865),
    "large-v3": dict(d_model=1280, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=128,
                     vocab_size=51866),
}


@functools.cache
def _export(size: str):
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from phoenix_npu.whisper.export import export_model

    dims = SIZES[size]
    hf = session_tmp() / f"random_{size}_hf"
    torch.manual_seed(0)
    cfg = WhisperConfig(max_source_positions=1500, max_target_positions=448, encoder_layers=2, decoder_layers=1,
                        decoder_attention_heads=dims["encoder_attention_heads"], decoder_ffn_dim=dims["encoder_ffn_dim"],
                        decoder_start_token_id=50257, bos_token_id=50256, eos_token_id=50256, pad_token_id=50256,
                        **dims)
    WhisperForConditionalGeneration(cfg).eval().save_pretrained(hf)
    WhisperFeatureExtractor(feature_size=dims["num_mel_bins"]).save_pretrained(hf)
    return export_model(hf, session_tmp() / f"random_{size}_onnx") / "encoder_model.onnx"


@pytest.mark.parametrize("size", list(SIZES))
def test_encoder_of_every_size_runs_whole_on_the_provider(size):
    import onnxruntime as ort

    path = str(_export(size))
    mels = SIZES[size]["num_mel_bins"]
    feats = np.random.default_rng(3).standard_normal((1, mels, 3000)).astype(np.float32)
    sess = phoenix_npu.make_session(path, device="emulator")
    summary = phoenix_npu.assignment_summary(sess)
    assert list(summary) == [phoenix_npu.EP_NAME] and summary[phoenix_npu.EP_NAME]["subgraphs"] == 1, summary
    got = sess.run(None, {"input_features": feats})[0]
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input_features": feats})[0]
    assert got.shape == want.shape == (1, 1500, SIZES[size]["d_model"])
    rel = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    print(f"\n{size}-shaped encoder (2 layers, random weights): rel. L2 vs CPU EP FP32 {rel:.4f}")
    # the op-parity contract of BF16 tensors between kernels (test_ops.py: 1e-2 per op; a whole
    # real encoder measures 0.008-0.009, test_whisper_dynamic_encoder.py)
    assert rel < 0.02, rel
