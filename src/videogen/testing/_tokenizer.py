"""A tiny CLIP tokenizer written from a generated vocabulary, so tests never download one.

The layout follows OpenAI CLIP's byte-level BPE: the 256 byte-to-unicode characters, the same
characters with the ``</w>`` end-of-word suffix, one token per merge, then ``<|startoftext|>``
and ``<|endoftext|>`` last. The merges are learned here from the words of typical video prompts,
so those prompts split into a few word-sized pieces instead of single characters.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from itertools import pairwise
from pathlib import Path

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
MODEL_MAX_LENGTH = 77
MAX_MERGES = 400
END_OF_WORD = "</w>"

PROMPTS: tuple[str, ...] = (
    "a panda eating bamboo on a rock",
    "ocean waves crashing on the beach at sunset",
    "a knight riding a horse through a burning village",
    "an astronaut riding a horse on the moon",
    "a cat playing piano in a jazz club",
    "time lapse of clouds moving over snowy mountains",
    "a dog running across a green field in slow motion",
    "fireworks exploding over a city skyline at night",
    "a teddy bear surfing a big wave in the tropics",
    "a spaceship flying through an asteroid field",
    "a drone shot of a waterfall in a tropical forest",
    "rain falling on a quiet street with neon lights",
    "a golden retriever puppy chasing butterflies in a garden",
    "a red sports car driving along a coastal road",
    "a robot dancing in a futuristic city",
    "a close up of a flower blooming in spring",
    "a train passing through a desert canyon",
    "a dragon flying over a medieval castle",
    "a chef cooking pasta in a busy kitchen",
    "snow falling in a pine forest at dawn",
    "a sailboat on a calm lake at sunrise",
    "a hot air balloon floating above green hills",
    "children playing with a ball in the park",
    "a campfire burning under a starry sky",
    "a jellyfish swimming in the deep blue sea",
    "a woman walking on a beach with her dog",
    "lightning striking during a thunderstorm",
    "a slow zoom into a painting of a starry night",
    "an eagle soaring over a river valley",
    "leaves blowing in the wind in autumn",
    "a man playing guitar on a stage with bright lights",
    "a timelapse of a busy highway traffic at night",
    "an underwater coral reef with colorful fish",
    "a steaming cup of coffee on a wooden table",
    "a horse galloping across a beach at sunset",
    "a futuristic city with flying cars and tall buildings",
    "a lion walking slowly in the savanna grass",
    "a panda playing with a ball in the snow",
    "a cinematic shot of a volcano erupting with lava",
    "a small boat sailing through stormy waves",
    "a squirrel eating a nut on a tree branch",
    "a bird flying over the ocean in golden light",
)


@cache
def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible map from bytes to printable unicode characters."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + shift)
            shift += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=True)}


def _merge_pair(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    merged: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


@cache
def learn_merges() -> tuple[tuple[str, str], ...]:
    """Learn up to ``MAX_MERGES`` BPE merges from the words of ``PROMPTS``, deterministically.

    Each round merges the most frequent adjacent pair (ties broken by the pair's text). A pair
    whose merged text already exists is skipped so every vocabulary entry stays unique.
    """
    words = Counter(word for prompt in PROMPTS for word in re.findall(r"[a-z]+", prompt.lower()))
    splits = {word: [*word[:-1], word[-1] + END_OF_WORD] for word in words}
    known = set(bytes_to_unicode().values()) | {c + END_OF_WORD for c in bytes_to_unicode().values()}
    merges: list[tuple[str, str]] = []
    while len(merges) < MAX_MERGES:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in words.items():
            for pair in pairwise(splits[word]):
                if pair[0] + pair[1] not in known:
                    pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        known.add(best[0] + best[1])
        splits = {word: _merge_pair(symbols, best) for word, symbols in splits.items()}
    return tuple(merges)


def tiny_clip_vocab() -> dict[str, int]:
    """The vocabulary in CLIP's order: bytes, bytes + ``</w>``, merges, then the two specials."""
    tokens = list(bytes_to_unicode().values())
    tokens += [token + END_OF_WORD for token in tokens]
    tokens += [a + b for a, b in learn_merges()]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


def write_tiny_clip_tokenizer(folder: Path) -> None:
    """Write a CLIPTokenizer (vocab.json, merges.txt and the two configs) into ``folder``.

    Padding uses ``<|endoftext|>`` like OpenAI's CLIP tokenizer; the maximum length is 77.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = {
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": EOS_TOKEN,
        "unk_token": EOS_TOKEN,
    }
    config = {
        **specials,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "do_lower_case": True,
        "errors": "replace",
        "model_max_length": MODEL_MAX_LENGTH,
        "tokenizer_class": "CLIPTokenizer",
    }
    _write_json(folder / "vocab.json", tiny_clip_vocab())
    merges = "".join(f"{a} {b}\n" for a, b in learn_merges())
    (folder / "merges.txt").write_text("#version: 0.2\n" + merges, encoding="utf-8")
    _write_json(folder / "special_tokens_map.json", specials)
    _write_json(folder / "tokenizer_config.json", config)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
