"""CTranslate2 WhisperSpec variables -> a Hugging Face Whisper state dict.

The fused self-attention projection [q; k; v] is split (Whisper's k_proj has no bias), the
cross-attention [k; v] likewise; the output projection must be tied to the token embeddings.
Dims are read from the weights, never assumed.
"""
from __future__ import annotations

import re

import numpy as np

from .ct2 import CT2Model


def _layers(v: dict[str, np.ndarray], prefix: str) -> int:
    ids = {int(m.group(1)) for k in v if (m := re.match(rf"{prefix}/layer_(\d+)/", k))}
    if ids != set(range(len(ids))):
        raise ValueError(f"{prefix} layers are not numbered 0..{len(ids) - 1}: {sorted(ids)}")
    return len(ids)


def _heads(v: dict[str, np.ndarray], prefix: str, d_model: int) -> int:
    arr = v.get(f"{prefix}/num_heads")
    return int(arr.reshape(-1)[0]) if arr is not None else max(1, d_model // 64)


def convert_weights(ct2: CT2Model) -> tuple[dict[str, np.ndarray], dict]:
    """CTranslate2 WhisperSpec variables -> (Hugging Face state dict, dims)."""
    if ct2.spec != "WhisperSpec":
        raise ValueError(f"not a Whisper model: CTranslate2 spec is {ct2.spec!r}")
    v = ct2.variables
    sd: dict[str, np.ndarray] = {}

    def put(name: str, arr: np.ndarray) -> None:
        sd[name] = np.ascontiguousarray(arr, dtype=np.float32)

    def linear(dst: str, src: str, bias: bool = True) -> None:
        put(f"{dst}.weight", v[f"{src}/weight"])
        if bias:
            put(f"{dst}.bias", v[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", v[f"{src}/gamma"])
        put(f"{dst}.bias", v[f"{src}/beta"])

    def split(arr: np.ndarray, n: int) -> list[np.ndarray]:
        if arr.shape[0] % n:
            raise ValueError(f"cannot split a fused projection of {arr.shape[0]} rows in {n}")
        return np.split(arr, n, axis=0)

    def self_attention(dst: str, src: str) -> None:  # linear_0 = [q; k; v], linear_1 = out
        norm(f"{dst}.self_attn_layer_norm", f"{src}/layer_norm")
        attn = f"{dst}.self_attn"
        ws, bs = split(v[f"{src}/linear_0/weight"], 3), split(v[f"{src}/linear_0/bias"], 3)
        for proj, w, b in zip("qkv", ws, bs):
            put(f"{attn}.{proj}_proj.weight", w)
            if proj != "k":  # Whisper's key projection has no bias (CTranslate2 stores zeros)
                put(f"{attn}.{proj}_proj.bias", b)
        linear(f"{attn}.out_proj", f"{src}/linear_1")

    def cross_attention(dst: str, src: str) -> None:  # linear_0 = q, linear_1 = [k; v], linear_2 = out
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/layer_norm")
        attn = f"{dst}.encoder_attn"
        linear(f"{attn}.q_proj", f"{src}/linear_0")
        (wk, wv), (_, bv) = split(v[f"{src}/linear_1/weight"], 2), split(v[f"{src}/linear_1/bias"], 2)
        put(f"{attn}.k_proj.weight", wk)
        put(f"{attn}.v_proj.weight", wv)
        put(f"{attn}.v_proj.bias", bv)
        linear(f"{attn}.out_proj", f"{src}/linear_2")

    def ffn(dst: str, src: str) -> None:
        norm(f"{dst}.final_layer_norm", f"{src}/layer_norm")
        linear(f"{dst}.fc1", f"{src}/linear_0")
        linear(f"{dst}.fc2", f"{src}/linear_1")

    try:
        conv1 = v["encoder/conv1/weight"]
        if conv1.ndim != 3:
            raise ValueError(f"encoder/conv1/weight has shape {list(conv1.shape)}, Whisper's is [d_model, n_mels, 3]")
        d_model, n_mels, _ = conv1.shape
        for i in (1, 2):
            put(f"model.encoder.conv{i}.weight", v[f"encoder/conv{i}/weight"])
            put(f"model.encoder.conv{i}.bias", v[f"encoder/conv{i}/bias"])
        put("model.encoder.embed_positions.weight", v["encoder/position_encodings/encodings"])
        n_enc = _layers(v, "encoder")
        for i in range(n_enc):
            dst, src = f"model.encoder.layers.{i}", f"encoder/layer_{i}"
            self_attention(dst, f"{src}/self_attention")
            ffn(dst, f"{src}/ffn")
        norm("model.encoder.layer_norm", "encoder/layer_norm")

        put("model.decoder.embed_tokens.weight", v["decoder/embeddings/weight"])
        put("model.decoder.embed_positions.weight", v["decoder/position_encodings/encodings"])
        n_dec = _layers(v, "decoder")
        for i in range(n_dec):
            dst, src = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
            self_attention(dst, f"{src}/self_attention")
            cross_attention(dst, f"{src}/attention")
            ffn(dst, f"{src}/ffn")
        norm("model.decoder.layer_norm", "decoder/layer_norm")
    except KeyError as exc:
        raise ValueError(f"CTranslate2 Whisper model lacks variable {exc.args[0]}") from exc

    proj = v.get("decoder/projection/weight")
    if proj is not None and not np.array_equal(proj, v["decoder/embeddings/weight"]):
        raise ValueError("the output projection is not tied to the token embeddings; not a Whisper layout")
    dims = dict(
        d_model=int(d_model), num_mel_bins=int(n_mels),
        vocab_size=int(v["decoder/embeddings/weight"].shape[0]),
        encoder_layers=n_enc, decoder_layers=n_dec,
        encoder_attention_heads=_heads(v, "encoder", d_model),
        decoder_attention_heads=_heads(v, "decoder", d_model),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]) if n_enc else 4 * int(d_model),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]) if n_dec else 4 * int(d_model),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
    )
    return sd, dims
