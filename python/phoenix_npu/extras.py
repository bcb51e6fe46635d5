"""Which optional extra of the phoenix-npu wheel provides a module: the one place that turns
a missing import into the `pip install` that fixes it.

    try:
        ...
    except ModuleNotFoundError as exc:
        hint = install_hint(exc)      # "pip install 'phoenix-npu[whisper]'" or None

The keys are top-level import names; the values are extras of pyproject.toml (a test checks
that they exist). Imports nothing.
"""
from __future__ import annotations

# import name -> the extra that installs it (the smallest one that makes its command work)
MODULE_EXTRAS = {
    # the faster-whisper engine (the default of `phoenix-npu transcribe`) and audio reading
    "faster_whisper": "faster-whisper",
    "ctranslate2": "faster-whisper",
    "av": "faster-whisper",
    "soundfile": "faster-whisper",
    "soxr": "faster-whisper",
    "tqdm": "faster-whisper",
    "tokenizers": "faster-whisper",
    "huggingface_hub": "faster-whisper",
    # export, import, the Optimum integration
    "torch": "whisper",
    "transformers": "whisper",
    "optimum": "whisper",
    "safetensors": "whisper",
    "whisper_normalizer": "whisper",
    # fan-out over Ray, WhisperX, AMD Quark
    "ray": "cluster",
    "whisperx": "whisperx",
    "quark": "quark",
}


def extra_for(module: str | None) -> str | None:
    """The extra that installs `module` (a dotted name is looked up by its top level)."""
    if not module:
        return None
    return MODULE_EXTRAS.get(module.split(".")[0])


def install_hint(exc: BaseException) -> str | None:
    """`pip install 'phoenix-npu[EXTRA]'` for a ModuleNotFoundError of a module an extra
    provides; None for anything else (a module no extra provides is a broken install)."""
    if not isinstance(exc, ModuleNotFoundError):
        return None
    extra = extra_for(exc.name)
    return f"pip install 'phoenix-npu[{extra}]'" if extra else None


def missing_message(exc: ModuleNotFoundError, what: str = "this command") -> str | None:
    """One sentence for a user: which module is missing and the install that fixes it."""
    hint = install_hint(exc)
    if hint is None:
        return None
    return f"{what} needs the Python module {exc.name.split('.')[0]!r}, which is not installed: {hint}"
