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
    bench, wer   developer tools: `phoenix-npu bench`, `tools/wer.py`

Importing this package or any module above loads neither torch nor transformers: they are
imported inside the functions that use them (loading a model, exporting, importing weights).
"""
