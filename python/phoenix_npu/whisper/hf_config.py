"""The Hugging Face configuration files of an imported Whisper, written by transformers' own
classes: config.json (WhisperConfig), generation_config.json (GenerationConfig) and
preprocessor_config.json (WhisperFeatureExtractor).

The generation config is complete, like OpenAI's published ones: token ids, suppressed
tokens, timestamp rules, alignment heads, and for multilingual models the language and task
tables with `task="transcribe"` as the default, so that a plain `generate()` or
`pipeline(...)` call without `task=` / `language=` detects the language and transcribes
(without a default task the prompt lacks a task token and the decoder repeats one word).
"""
from __future__ import annotations

from pathlib import Path

from .audio import CHUNK_LENGTH, HOP_LENGTH, N_FFT, SAMPLE_RATE
from .tokenizer import SpecialTokens

MAX_INITIAL_TIMESTAMP_INDEX = 50  # 1 s, as in Whisper's decoding options


def whisper_config(dims: dict, spec: SpecialTokens):
    """The model config. Generation settings (suppressed tokens) live in the generation
    config only: transformers warns when a model config carries them."""
    from transformers import WhisperConfig

    return WhisperConfig(
        **dims, architectures=["WhisperForConditionalGeneration"], activation_function="gelu",
        bos_token_id=spec.eot, eos_token_id=spec.eot, pad_token_id=spec.eot, decoder_start_token_id=spec.sot,
        begin_suppress_tokens=None, suppress_tokens=None, torch_dtype="float32", tie_word_embeddings=True)


def generation_config(dims: dict, spec: SpecialTokens, ct2_config: dict):
    """Whisper's decoding defaults, from the tokenizer's special tokens and CTranslate2's
    config.json (suppressed tokens, alignment heads)."""
    from transformers import GenerationConfig

    settings = dict(
        bos_token_id=spec.eot, eos_token_id=spec.eot, pad_token_id=spec.eot, decoder_start_token_id=spec.sot,
        max_length=dims["max_target_positions"],
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [220, spec.eot])),
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        no_timestamps_token_id=spec.notimestamps, prev_sot_token_id=spec.startofprev,
        max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX, return_timestamps=False,
        is_multilingual=spec.multilingual)
    heads = ct2_config.get("alignment_heads")
    if heads:
        settings["alignment_heads"] = [list(map(int, h)) for h in heads]
    if spec.multilingual:
        settings["lang_to_id"] = dict(sorted(spec.languages.items(), key=lambda kv: kv[1]))
        settings["task_to_id"] = {"translate": spec.translate, "transcribe": spec.transcribe}
        settings["task"] = "transcribe"  # English-only models take no task (transformers refuses one)
    # No forced_decoder_ids: transformers (>= 4.37) builds the prompt from is_multilingual,
    # task, lang_to_id/task_to_id and no_timestamps_token_id, and calls forced ids deprecated.
    return GenerationConfig(**settings)


def feature_extractor(n_mels: int):
    """Whisper's log-mel front end (16 kHz, n_fft 400, hop 160, 30 s windows)."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=n_mels, sampling_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH,
                                   chunk_length=CHUNK_LENGTH, padding_value=0.0, return_attention_mask=False)


def write_configs(outdir: Path, dims: dict, spec: SpecialTokens, ct2_config: dict) -> None:
    """config.json, generation_config.json and preprocessor_config.json in `outdir`."""
    whisper_config(dims, spec).save_pretrained(outdir)
    generation_config(dims, spec, ct2_config).save_pretrained(outdir)
    fe = feature_extractor(dims["num_mel_bins"])
    fe.processor_class = "WhisperProcessor"
    fe.save_pretrained(outdir)
