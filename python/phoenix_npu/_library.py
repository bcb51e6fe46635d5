"""The provider library: where it is, what it is called, and registering it with ONNX Runtime.

This follows ONNX Runtime's packaging guidance for plugin execution providers (the same
helpers as onnxruntime-ep-openvino): `get_library_path()`, `get_ep_name()`, `get_ep_names()`,
and registration with `onnxruntime.register_execution_provider_library`.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

EP_NAME = "PhoenixNPUExecutionProvider"
MIN_ORT = (1, 29)
_LIB_NAME = "libphoenix_npu_ep.so"

_lock = threading.Lock()
_registered_with: set[int] = set()
_cdll = None


class ProviderError(RuntimeError):
    """The provider could not be loaded or used; the message says what to do."""


def get_ep_name() -> str:
    """The execution provider's name, as used in `providers=[...]`."""
    return EP_NAME


def get_ep_names() -> list[str]:
    """Every execution provider name the library creates (one: the library has one factory)."""
    return [EP_NAME]


def get_library_path() -> str:
    """Absolute path of the provider shared library shipped in this package.

    PHOENIX_NPU_LIBRARY overrides it (for a sanitizer or debug build)."""
    override = os.environ.get("PHOENIX_NPU_LIBRARY")
    if override:
        if not Path(override).is_file():
            raise ProviderError(f"PHOENIX_NPU_LIBRARY={override} does not exist")
        return str(Path(override).resolve())
    path = Path(__file__).resolve().parent / "lib" / _LIB_NAME
    if not path.is_file():
        raise ProviderError(
            f"{path} is missing: the provider library was not built. Reinstall the package "
            "with `pip install .` from the project root (it compiles the provider with CMake).")
    return str(path)


def cdll():
    """The provider library loaded with ctypes, for its exported PhoenixNPU_* functions. It is
    the path ORT loaded, so dlopen returns the same handle: the same counters, the same state."""
    global _cdll
    import ctypes

    with _lock:
        if _cdll is None:
            _cdll = ctypes.CDLL(get_library_path())
    return _cdll


def _ort_version(ort) -> tuple[int, int]:
    parts = ort.__version__.split(".")
    return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)


def register(ort_module=None) -> str:
    """Register the provider library with ONNX Runtime (once per process; later calls are
    no-ops). Returns the EP name. Raises ProviderError with a remedy when it cannot."""
    if ort_module is None:
        import onnxruntime as ort_module
    with _lock:
        if id(ort_module) in _registered_with:
            return EP_NAME
        if _ort_version(ort_module) < MIN_ORT:
            raise ProviderError(
                f"onnxruntime {ort_module.__version__} is too old: {EP_NAME} is built against the "
                f"plugin EP ABI of ORT {MIN_ORT[0]}.{MIN_ORT[1]}. Run: pip install 'onnxruntime>=1.29'")
        path = get_library_path()
        try:
            ort_module.register_execution_provider_library(EP_NAME, path)
        except Exception as exc:  # already registered by someone else in this process
            if "already registered" not in str(exc).lower():
                raise ProviderError(f"ONNX Runtime could not load {path}: {exc}") from exc
        _registered_with.add(id(ort_module))
    return EP_NAME


def unregister(ort_module=None) -> None:
    """Unregister the provider library from ONNX Runtime (sessions using it must be gone)."""
    if ort_module is None:
        import onnxruntime as ort_module
    with _lock:
        if id(ort_module) not in _registered_with:
            return
        ort_module.unregister_execution_provider_library(EP_NAME)
        _registered_with.discard(id(ort_module))
