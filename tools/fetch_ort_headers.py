#!/usr/bin/env python3
"""Fetch the ONNX Runtime 1.29 C/C++ headers the provider is built against.

No PyPI or Debian package ships them. The npm package named below carries them inside an
Android archive (a zip, folder ``headers/``). We fetch it with the ordinary ``npm pack`` client,
check its sha256, extract only the headers, and cache them so later builds do not fetch again.

Usage: fetch_ort_headers.py [CACHE_DIR]   -> prints the include directory on stdout.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "com.github.asus4.onnxruntime@0.4.9"
SHA256 = "e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d"
AAR_IN_TARBALL = "package/Plugins/Android/onnxruntime.aar"
ORT_API_VERSION = 29  # what that archive's onnxruntime_c_api.h declares


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "phoenix_npu" / f"ort-headers-{ORT_API_VERSION}"


def fail(msg: str) -> "None":
    print(f"fetch_ort_headers: {msg}", file=sys.stderr)
    sys.exit(1)


def fetch(cache: Path) -> Path:
    include = cache / "include"
    marker = include / "onnxruntime_c_api.h"
    if marker.exists() and (include / "onnxruntime_ep_c_api.h").exists():
        return include
    npm = shutil.which("npm")
    if npm is None:
        fail("npm is needed to fetch the ONNX Runtime headers (apt-get install npm), "
             "or set ONNXRUNTIME_INCLUDE_DIR to a folder holding onnxruntime_c_api.h (ORT >= 1.29).")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetch_ort_headers: npm pack {PACKAGE} (about 150 MB, once)", file=sys.stderr)
        res = subprocess.run([npm, "pack", PACKAGE, "--silent", "--pack-destination", tmp],
                             capture_output=True, text=True)
        if res.returncode != 0:
            fail(f"'npm pack {PACKAGE}' failed:\n{res.stderr.strip()}\n"
                 "Set ONNXRUNTIME_INCLUDE_DIR to build against headers you already have.")
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            fail(f"expected one tarball from npm pack, found {tarballs}")
        data = tarballs[0].read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != SHA256:
            fail(f"sha256 mismatch for {PACKAGE}: got {digest}, expected {SHA256}. Refusing to use it.")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            member = tar.extractfile(AAR_IN_TARBALL)
            if member is None:
                fail(f"{AAR_IN_TARBALL} not found in {PACKAGE}")
            aar = zipfile.ZipFile(io.BytesIO(member.read()))
        staging = Path(tempfile.mkdtemp(dir=cache.parent if cache.parent.exists() else None))
        try:
            for name in aar.namelist():
                if name.startswith("headers/") and not name.endswith("/"):
                    target = staging / Path(name).name
                    target.write_bytes(aar.read(name))
            cache.mkdir(parents=True, exist_ok=True)
            if include.exists():
                shutil.rmtree(include)
            staging.rename(include)  # atomic publish: a half-written cache is never seen
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return include


def main() -> None:
    cache = Path(sys.argv[1]) if len(sys.argv) > 1 else default_cache_dir()
    cache.parent.mkdir(parents=True, exist_ok=True)
    print(fetch(cache))


if __name__ == "__main__":
    main()
