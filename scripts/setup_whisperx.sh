#!/usr/bin/env bash
# WhisperX in its own environment, .venv-whisperx (WhisperX 3.8 pins torch~=2.8, torchaudio 2.8 and
# pyannote-audio 4, which cannot share .venv's torch 2.13). phoenix_npu is used from this checkout
# (PYTHONPATH=python) with the provider library built by scripts/setup.sh:
#
#   bash scripts/setup_whisperx.sh
#   PYTHONPATH=python PHOENIX_NPU_LIBRARY=$(.venv/bin/python -c 'import phoenix_npu; print(phoenix_npu.get_library_path())') \
#     .venv-whisperx/bin/python -c 'from phoenix_npu.whisper.whisperx_support import load_model; ...'
#
# tests/test_whisperx.py runs in it when it exists (or PHOENIX_NPU_WHISPERX_PYTHON names another).
# Downloads about 3 GB, 7.6 GB installed (torch 2.8 from PyPI is the CUDA build with its NVIDIA libraries; a CPU
# build of 2.8 is not on PyPI). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv-whisperx/bin/python ]; then
  "$PY" -m venv .venv-whisperx
fi
VPY=.venv-whisperx/bin/python
"$VPY" -m pip install -q --upgrade pip
# the `whisperx` extra of pyproject.toml, plus what phoenix_npu itself needs at run time
"$VPY" -m pip install -q "whisperx==3.8.6" "faster-whisper==1.2.1" "ctranslate2==4.8.5" \
  "onnxruntime>=1.29" "onnx>=1.17" "soundfile>=0.12" "soxr>=0.5"
echo "[setup_whisperx] ready: $("$VPY" -c 'import whisperx, torch, faster_whisper, onnxruntime; print("torch", torch.__version__, "| faster-whisper", faster_whisper.__version__, "| onnxruntime", onnxruntime.__version__)')"
