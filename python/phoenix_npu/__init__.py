"""phoenix_npu: the PhoenixNPUExecutionProvider plugin for ONNX Runtime.

    import onnxruntime as ort
    import phoenix_npu

    phoenix_npu.register()                  # explicit; raises ProviderError with a remedy
    sess = ort.InferenceSession(model, providers=["PhoenixNPUExecutionProvider",
                                                  "CPUExecutionProvider"])
    phoenix_npu.assignment(sess)            # which nodes ran where (see make_session)
    phoenix_npu.counters()                  # kernel launches, bytes in/out, allocations

Where registration happens: `phoenix_npu.register()` registers the library with ONNX Runtime
(once per process). For convenience `import phoenix_npu` also tries it, so that
`providers=["PhoenixNPUExecutionProvider"]` works right after the import; that attempt never
raises (a failure is logged as a WARNING on the "phoenix_npu" logger, and `register()` raises
it again). It costs loading the library, which is needed for the session anyway.

This package imports neither torch nor transformers. The Whisper tooling lives in
`phoenix_npu.whisper` (import, export, audio, transcription, benchmarks, WER).
"""
from __future__ import annotations

import logging

from ._library import EP_NAME, ProviderError, get_ep_name, get_ep_names, get_library_path, register, unregister
from .counters import chrome_trace, counters, measure_peak, reset_counters
from .session import (assignment, assignment_summary, capability_reports, describe_assignment, device_label,
                      device_ran, make_session, option_table, option_table_markdown, provider_options, providers,
                      session_options)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("phoenix-npu")
    except metadata.PackageNotFoundError:  # a source checkout that is not installed
        return "0+unknown"


__version__ = _version()
__all__ = [
    "EP_NAME", "ProviderError", "get_ep_name", "get_ep_names", "get_library_path", "register", "unregister",
    "__version__", "assignment", "assignment_summary", "capability_reports", "describe_assignment", "device_label",
    "device_ran", "chrome_trace", "counters", "measure_peak",
    "make_session", "option_table", "option_table_markdown", "provider_options", "providers", "reset_counters",
    "session_options",
]

try:
    register()
except Exception as _exc:  # noqa: BLE001 - the import must work for `phoenix-npu doctor` and `info`
    logging.getLogger(__name__).warning("%s not registered on import: %s", EP_NAME, _exc)
