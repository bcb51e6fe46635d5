"""Whisper on PhoenixNPU: the tooling beside the execution provider.

    audio        load any audio file as 16 kHz mono float32 (checked before decoding)
    registry     the model registry (models/*.toml) and name -> model directory resolution
    importer     CTranslate2 checkpoint -> Hugging Face Whisper directory (`phoenix-npu import`)
      ct2, convert, tokenizer, hf_config: its parts (model.bin reader, weights, tokenizer, configs)
    cache        the model cache and its atomic directory writer
    export       Hugging Face Whisper -> ONNX with Optimum (`phoenix-npu export`)
    faster       WhisperModel: faster-whisper with the encoder on PhoenixNPU (a drop-in for
                 faster_whisper.WhisperModel; the transcription engine); BatchedInferencePipeline,
                 Segment, Word, TranscriptionInfo; iter_transcribe (files -> FileResult)
    options      TranscribeOptions: one frozen object, one name per option
    results      FileResult (faster-whisper's Segment / TranscriptionInfo) and its JSON schema
    formats      results as text, SRT, VTT, JSON
    jobs, batch, cluster  runs over files, folders and @lists (resumable; Ray fan-out)
    outputs      output planning, result names and records, atomic writing
    transcribe_cli  `phoenix-npu transcribe`
    optimum_pipeline  the Optimum integration (ORTModelForSpeechSeq2Seq + a transformers
                 pipeline with the encoder on PhoenixNPU): tests and developer tools, not the engine
    whisperx_support  WhisperX's pipeline with that model (WhisperX's own environment)
    (bench and WER are developer tools: the phoenix_npu_tools package in tools/)

Importing this package or any module above loads neither torch nor transformers: they are
imported inside the functions that use them (loading a model, exporting, importing weights).
"""

_FASTER = ("WhisperModel", "BatchedInferencePipeline", "Segment", "Word", "TranscriptionInfo", "iter_transcribe")
_LIGHT = {"TranscribeOptions": "options", "FileResult": "results", "transcribe_batch": "batch"}


def __getattr__(name):
    # imported on first use: `import phoenix_npu.whisper` does not need faster-whisper
    import importlib

    if name in _FASTER:
        return getattr(importlib.import_module(f"{__name__}.faster"), name)
    if name in _LIGHT:
        return getattr(importlib.import_module(f"{__name__}.{_LIGHT[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
