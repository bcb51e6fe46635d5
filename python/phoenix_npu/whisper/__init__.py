"""Whisper on PhoenixNPU: the tooling beside the execution provider.

    audio        load any audio file as 16 kHz mono float32 (checked before decoding)
    registry     the model registry (models/*.toml) and name -> model directory resolution
    importer     CTranslate2 checkpoint -> Hugging Face Whisper directory (`phoenix-npu import`)
      ct2, convert, tokenizer, hf_config: its parts (model.bin reader, weights, tokenizer, configs)
    cache        the model cache and its atomic directory writer
    export       Hugging Face Whisper -> ONNX with Optimum (`phoenix-npu export`)
    transcribe   Transcriber / transcribe(): Optimum + transformers with the encoder on PhoenixNPU
    formats      results as text, SRT, VTT, JSON
    transcribe_cli  `phoenix-npu transcribe`
    faster       WhisperModel: faster-whisper with the encoder on PhoenixNPU (a drop-in for
                 faster_whisper.WhisperModel); BatchedInferencePipeline, Segment, Word, ...
    whisperx_support  WhisperX's pipeline with that model (WhisperX's own environment)
    (bench and WER are developer tools: the phoenix_npu_tools package in tools/)

Importing this package or any module above loads neither torch nor transformers: they are
imported inside the functions that use them (loading a model, exporting, importing weights).
"""

_FASTER = ("WhisperModel", "BatchedInferencePipeline", "Segment", "Word", "TranscriptionInfo")


def __getattr__(name):
    # imported on first use: `import phoenix_npu.whisper` does not need faster-whisper
    if name in _FASTER:
        from . import faster

        return getattr(faster, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
