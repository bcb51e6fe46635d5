"""Whisper's tokenizer from a CTranslate2 directory's tokenizer.json: the special tokens and
their ids, and the slow and fast transformers tokenizers written beside the weights."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

N_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|> in steps of 0.02 s


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


def english_spelling_mapping() -> dict[str, str] | None:
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
    mapping = english_spelling_mapping()
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
