"""Optimum export of a small random-weight Whisper: files, opset, LayerNormalization, static
encoder dims (Shape/Gather chains folded), BF16 weights, and loading through Optimum."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
from _whisper import RANDOM_DIMS, needs_whisper, optimized_op_types, random_hf_dir, random_onnx_dir

pytestmark = [pytest.mark.whisper, needs_whisper]

SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Concat", "ConstantOfShape", "Cast"}
FEATURES = np.random.default_rng(7).standard_normal((1, 80, 3000)).astype(np.float32)


def _run_encoder(path, so=None):
    import onnxruntime as ort

    sess = ort.InferenceSession(path if isinstance(path, bytes) else str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input_features": FEATURES})[0]


def test_export_writes_optimum_layout():
    import onnx
    from phoenix_npu.whisper.export import DECODER, DECODER_MERGED, DECODER_WITH_PAST, ENCODER, MARKER

    out = random_onnx_dir()
    for f in (ENCODER, DECODER, DECODER_WITH_PAST, DECODER_MERGED, "config.json", "generation_config.json",
              "preprocessor_config.json", MARKER):
        assert (out / f).is_file(), f
    enc = onnx.load(str(out / ENCODER))
    assert max(o.version for o in enc.opset_import if o.domain in ("", "ai.onnx")) >= 17
    ops = [n.op_type for n in enc.graph.node]
    # two per layer plus the final one: LayerNorm is one op, not a ReduceMean chain
    assert ops.count("LayerNormalization") == 2 * RANDOM_DIMS["encoder_layers"] + 1
    assert "ReduceMean" not in ops and ops.count("Erf") == RANDOM_DIMS["encoder_layers"] + 2  # + conv stem GELUs
    dims = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in enc.graph.input}
    assert dims == {"input_features": [1, 80, 3000]}
    out_dims = [d.dim_value or d.dim_param for d in enc.graph.output[0].type.tensor_type.shape.dim]
    assert out_dims == [1, 1500, RANDOM_DIMS["d_model"]]


def test_static_encoder_folds_shape_chains():
    from phoenix_npu.whisper.export import ENCODER, encoder_session_options

    static, dynamic = random_onnx_dir() / ENCODER, random_onnx_dir(dynamic=True) / ENCODER
    # the raw export has Shape -> Gather -> Unsqueeze -> Concat chains for the dynamic batch
    dyn_ops = optimized_op_types(dynamic)
    assert dyn_ops.get("Shape", 0) > 0
    # fixed in the file, or pinned with encoder_session_options(): all folded away
    for ops in (optimized_op_types(static), optimized_op_types(dynamic, encoder_session_options())):
        assert not SHAPE_OPS & set(ops), ops
        assert ops.get("LayerNormalization") == 2 * RANDOM_DIMS["encoder_layers"] + 1
    a = _run_encoder(static)
    b = _run_encoder(dynamic, encoder_session_options())
    assert a.shape == (1, 1500, RANDOM_DIMS["d_model"])
    np.testing.assert_array_equal(a, b)


def test_bf16_encoder_loads_on_cpu_and_equals_rounded_weights():
    import onnx
    from onnx import TensorProto, numpy_helper
    from phoenix_npu.whisper.export import BF16_MIN_ELEMENTS, ENCODER, bf16_round

    fp32, bf16 = random_onnx_dir() / ENCODER, random_onnx_dir(bf16=True) / ENCODER
    m = onnx.load(str(bf16))
    bf = [t for t in m.graph.initializer if t.data_type == TensorProto.BFLOAT16]
    assert len(bf) >= 4 * RANDOM_DIMS["encoder_layers"] + 2  # q, k, v, out, fc1, fc2 per layer; conv; positions
    casts = {n.input[0] for n in m.graph.node if n.op_type == "Cast"}
    assert {t.name for t in bf} <= casts
    assert bf16.stat().st_size < 0.7 * fp32.stat().st_size

    # reference: the FP32 export with the same weights rounded to bf16, still in fp32
    ref = onnx.load(str(fp32))
    for i, t in enumerate(ref.graph.initializer):
        arr = numpy_helper.to_array(t)
        if arr.dtype == np.float32 and arr.size >= BF16_MIN_ELEMENTS:
            ref.graph.initializer[i].CopyFrom(numpy_helper.from_array(bf16_round(arr), t.name))
    got = _run_encoder(bf16)
    want = _run_encoder(ref.SerializeToString())
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, _run_encoder(fp32))  # the rounding did something
    assert not SHAPE_OPS & set(optimized_op_types(bf16))  # the Casts fold into constants too


def test_bf16_rounding_is_nearest_even():
    from phoenix_npu.whisper.export import bf16_round

    x = np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 1.0 + 2 ** -9, -2.5, np.inf, -np.inf, 0.0, 1e-40],
                 dtype=np.float32)
    got = bf16_round(x)
    np.testing.assert_array_equal(got[:5], [1.0, 1.0, 1.0 + 2 ** -6, 1.0, -2.5])  # ties to even
    assert np.isinf(got[5]) and np.isinf(got[6]) and got[7] == 0.0
    assert np.isnan(bf16_round(np.array([np.nan], np.float32)))[0]


def test_optimum_loads_the_export():
    import torch
    from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
    from phoenix_npu.whisper.export import encoder_session_options
    from transformers import WhisperForConditionalGeneration

    out = random_onnx_dir(dynamic=True)
    model = ORTModelForSpeechSeq2Seq.from_pretrained(out, provider="CPUExecutionProvider",
                                                     session_options=encoder_session_options())
    feats = torch.from_numpy(FEATURES)
    enc = model.encoder(input_features=feats, attention_mask=None).last_hidden_state
    ref = WhisperForConditionalGeneration.from_pretrained(random_hf_dir()).eval()
    with torch.no_grad():
        want = ref.model.encoder(feats).last_hidden_state
    np.testing.assert_allclose(enc.numpy(), want.numpy(), atol=1e-4, rtol=1e-4)
    ids = model.generate(feats, max_new_tokens=3)
    assert ids.shape[0] == 1 and ids.shape[1] >= 2


def test_export_cli_rejects_low_opset(tmp_path, capsys):
    from phoenix_npu.whisper import export

    p = argparse.ArgumentParser()
    export.add_arguments(p)
    assert export.run(p.parse_args([str(random_hf_dir()), str(tmp_path / "o"), "--opset", "14"])) == 1
    assert "LayerNormalization" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert export.run(p.parse_args([str(random_hf_dir()), str(tmp_path / "full")])) == 2


def test_ensure_exported_uses_an_onnx_dir_as_is(caplog):
    from phoenix_npu.whisper.export import ensure_exported

    out = random_onnx_dir()
    caplog.set_level("DEBUG", logger="phoenix_npu")
    assert ensure_exported(str(out)) == out
    assert not caplog.records  # nothing imported or exported
