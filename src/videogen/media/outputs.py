"""Output naming and writing: one video's files plus its JSON sidecar, never overwriting."""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from videogen.errors import FieldError
from videogen.media.latents import write_latents
from videogen.media.writers import (
    FORMATS,
    remove_output,
    staged,
    write_frames,
    write_gif,
    write_mp4,
    write_webm,
)


def slugify(text: str, max_len: int = 40) -> str:
    """A file-name-safe slug of ``text``, never empty: lowercase words of letters and digits of any
    script, joined by dashes, at most ``max_len`` bytes of UTF-8.

    NFKC folds compatibility forms (full-width letters, ligatures) into plain ones. Every character
    that is not a letter, a digit or a combining mark separates words: path separators, control and
    format characters, the characters file systems reserve, punctuation, emoji. So "一只猫" stays
    readable and nothing in a slug can leave its folder or hide.
    """
    normal = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(char if unicodedata.category(char)[0] in "LNM" else " " for char in normal)
    slug = "-".join(kept.split()).encode()
    if len(slug) > max_len:
        cut = slug[: max_len + 1]
        # Cut at a word boundary unless that would leave less than half.
        boundary = cut.rfind(b"-")
        slug = cut[:boundary] if boundary >= max_len // 2 else slug[:max_len]
    return slug.decode(errors="ignore").strip("-") or "video"  # "ignore" drops a character cut in two


def output_base(prompt: str | None, input_file: str | None, model: str) -> str:
    """The readable part of an output's name: the input file's stem and the prompt, else the model."""
    parts = [Path(input_file).stem] if input_file else []
    parts += [prompt] if prompt else []
    return "_".join(slugify(part) for part in parts or [model])


def writable_folder(field: str, folder: str | Path) -> Path:
    """Create ``folder`` (with its parents) and make sure a file can be written in it.

    Called before any model loads, so a folder that cannot take the outputs (a file, a path
    through a file, no permission, a read-only disk) fails at once instead of after the compute.
    """
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        raise FieldError(field, str(folder), "it is a file; give a folder") from None
    except NotADirectoryError:
        raise FieldError(field, str(folder), "a part of the path is a file; give a folder") from None
    except OSError as exc:
        raise FieldError(field, str(folder), f"files cannot be written there ({exc.strerror})") from None
    return path


def output_names(stem: str) -> dict[str, str]:
    """File names (relative to the output folder) of every format and the sidecar for ``stem``."""
    return {
        "mp4": f"{stem}.mp4",
        "webm": f"{stem}.webm",
        "gif": f"{stem}.gif",
        "frames": f"{stem}_frames",
        "sidecar": f"{stem}.json",
        "input": f"{stem}_input.png",
        "latents": f"{stem}.latents.safetensors",
    }


def reserve_stem(out_dir: Path, base: str) -> str:
    """Claim a stem no file in ``out_dir`` uses: ``base``, else ``base-1``, ``base-2``, ...

    The claim is the exclusive creation of the empty sidecar ``<stem>.json``, so concurrent
    callers (threads or processes) never get the same stem.
    """
    out_dir = Path(out_dir)
    if not base or base != Path(base).name or base.startswith("."):
        raise ValueError(f"base must be a plain file name, got {base!r}")
    n = 0
    while True:
        stem = base if n == 0 else f"{base}-{n}"
        names = output_names(stem)
        if not any((out_dir / name).exists() for name in names.values()):
            try:
                with open(out_dir / names["sidecar"], "x"):
                    return stem
            except FileExistsError:
                pass  # another caller claimed it between the check and the open
        n += 1


def write_outputs(
    frames: np.ndarray,
    formats: Sequence[str],
    out_dir: Path,
    base: str,
    fps: float,
    sidecar: dict[str, Any],
    mp4_metadata: dict[str, str] | None = None,
    input_image: np.ndarray | None = None,
    latents: dict[str, torch.Tensor] | None = None,
    encoded: dict[str, Path] | None = None,
) -> dict[str, Path]:
    """Write one video in each requested format plus its sidecar ``<stem>.json``.

    ``encoded`` holds formats already written elsewhere in ``out_dir`` (a chained video is encoded as
    it is made): they are renamed to their names instead of encoded from ``frames``.

    ``input_image`` (uint8 H,W,3), when given, is saved beside the video as ``<stem>_input.png``;
    ``latents``, when given, as ``<stem>.latents.safetensors`` (with the sidecar inside).

    The sidecar is ``sidecar`` with an ``"outputs"`` key added (format -> name relative to
    ``out_dir``). Returns format -> path, plus ``"sidecar"``. If anything fails, the files of
    this call are removed and the error is re-raised.
    """
    formats = list(dict.fromkeys(formats))
    for fmt in formats:
        if fmt not in FORMATS:
            raise FieldError("format", fmt, f"allowed: {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = reserve_stem(out_dir, base)
    names = output_names(stem)
    kinds = [*formats, *(["input"] if input_image is not None else []), *(["latents"] if latents else [])]
    paths = {kind: out_dir / names[kind] for kind in [*kinds, "sidecar"]}
    try:
        # Serialised before any encoding so a sidecar that is not JSON fails fast.
        record = {**sidecar, "outputs": {kind: names[kind] for kind in kinds}}
        text = json.dumps(record, indent=2, ensure_ascii=False)
        writers = _writers(fps, mp4_metadata)
        for fmt in formats:
            if encoded and fmt in encoded:
                os.replace(encoded.pop(fmt), paths[fmt])
            else:
                writers[fmt](frames, paths[fmt])
        if input_image is not None:
            with staged(paths["input"]) as tmp:
                Image.fromarray(input_image).save(tmp, format="PNG")
        if latents:
            with staged(paths["latents"]) as tmp:
                write_latents(tmp, latents, record)
        with staged(paths["sidecar"]) as tmp:  # replaces the empty reservation in one step
            tmp.write_text(text + "\n", encoding="utf-8")
    except BaseException:
        for path in [*paths.values(), *(encoded or {}).values()]:
            remove_output(path)
        raise
    return paths


_Writer = Callable[[np.ndarray, Path], object]


def _writers(fps: float, mp4_metadata: dict[str, str] | None) -> dict[str, _Writer]:
    return {
        "mp4": lambda frames, path: write_mp4(frames, path, fps, mp4_metadata),
        "webm": lambda frames, path: write_webm(frames, path, fps),
        "gif": lambda frames, path: write_gif(frames, path, fps),
        "frames": write_frames,
    }
