"""phoenix_npu: the PhoenixNPUExecutionProvider plugin for ONNX Runtime, and Whisper tooling.

    import onnxruntime as ort
    import phoenix_npu                      # registers the provider with ONNX Runtime
    sess = ort.InferenceSession(model, providers=["PhoenixNPUExecutionProvider",
                                                  "CPUExecutionProvider"])
    phoenix_npu.assignment(sess)            # which nodes ran where
    phoenix_npu.counters()                  # kernel launches, bytes in/out, allocations
"""
from __future__ import annotations

from ._library import EP_NAME, ProviderError, get_ep_name, get_library_path, register, unregister
from .session import (assignment, assignment_summary, capability_reports, chrome_trace, counters, make_session, option_table, provider_options,
                      providers, reset_counters, session_options)

__version__ = "0.1.0"
__all__ = [
    "EP_NAME", "ProviderError", "get_ep_name", "get_library_path", "register", "unregister", "__version__",
    "assignment", "assignment_summary", "capability_reports", "chrome_trace", "counters", "make_session", "option_table", "provider_options", "providers",
    "reset_counters", "session_options",
]

try:  # registering on import is a convenience; register() raises the same error explicitly
    register()
except Exception as _exc:  # noqa: BLE001 - keep `import phoenix_npu` usable for `doctor`
    _import_error = _exc
else:
    _import_error = None
