"""Where weights come from and where they run: Hub cache or local folder, device and dtype.

Loading never waits on a network that is not there: the Hugging Face cache is checked first,
and a model that is not cached is fetched only by ``videogen download`` (or
``download_model``). A missing model fails at once with a message naming the files and the
two ways out.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from videogen.catalog import ModelSpec
from videogen.errors import FieldError, UserError, WeightsMissingError

#: components that hold weights (the others are configs, a tokenizer or a feature extractor)
WEIGHTED_COMPONENTS = ("unet", "vae", "text_encoder", "image_encoder")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; a named device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FieldError("device", name, "no CUDA device is available here; use cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise FieldError("device", name, "no MPS device is available here; use cpu or auto")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` is fp16 on cuda and fp32 elsewhere (half precision on CPU is slow and lossy)."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str:
    """The short name (fp32/fp16/bf16) used in requests and sidecars."""
    return next(key for key, value in DTYPES.items() if value == dtype)


def weight_globs(variant: str | None, suffix: str) -> list[str]:
    """File-name globs of one component's weights (single file or shards) in ``variant`` only.

    Without a variant, ``*model.safetensors`` and its shards, never ``*model.fp16.safetensors``.
    """
    infix = f".{variant}" if variant else ""
    return [f"*model{infix}.{suffix}", f"*model{infix}-*-of-*.{suffix}"]


def weight_patterns(spec: ModelSpec, variant: str | None) -> list[str]:
    """Glob patterns of the files a family needs from a Hub repo."""
    patterns = ["model_index.json"]
    for component in spec.components:
        patterns += [f"{component}/*.json", f"{component}/*.txt"]
        for suffix in ("safetensors", "bin"):
            patterns += [f"{component}/{glob}" for glob in weight_globs(variant, suffix)]
    return patterns


def locate_weights(spec: ModelSpec, revision: str | None = None, variant: str | None = None) -> Path:
    """Return the folder holding the model in diffusers layout, from the local dir or the Hub cache."""
    if spec.local_dir is not None:
        return spec.local_dir
    revision = revision or spec.revision
    if spec.checkpoint:
        return locate_converted(spec, revision)
    try:
        folder = Path(
            snapshot_download(
                spec.repo_id,
                revision=revision,
                allow_patterns=weight_patterns(spec, variant),
                local_files_only=True,
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        folder = None
    missing = missing_files(folder, spec, variant)
    if missing:
        raise WeightsMissingError(missing_message(spec, revision, variant, missing))
    return folder


def converted_dir(spec: ModelSpec, revision: str) -> Path:
    """Where a single-file checkpoint converted to diffusers layout is kept."""
    root = os.environ.get("VIDEOGEN_CACHE") or Path.home() / ".cache" / "videogen"
    return Path(root) / "converted" / f"{spec.id}@{revision}"


def locate_converted(spec: ModelSpec, revision: str) -> Path:
    """The diffusers-layout folder of a single-file model, converting the cached checkpoint on first use.

    SV3D's checkpoints hold no image encoder; the converter takes SVD-XT's (as Stability does).
    """
    target = converted_dir(spec, revision)
    if (target / "model_index.json").is_file():
        return target
    try:
        checkpoint = hf_hub_download(spec.repo_id, spec.checkpoint, revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, OSError):
        raise WeightsMissingError(missing_message(spec, revision, None, [spec.checkpoint])) from None
    from videogen.catalog import CATALOG
    from videogen.convert.sv3d import convert_sv3d

    encoder_source = locate_weights(CATALOG["svd-xt"])
    staging = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        convert_sv3d(Path(checkpoint), staging, encoder_source)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def missing_files(folder: Path | None, spec: ModelSpec, variant: str | None) -> list[str]:
    """Files (or file kinds) the family needs that are not in ``folder``."""
    needed = ["model_index.json"]
    for component in spec.components:
        needed.append(f"{component}/")
    if folder is None or not folder.is_dir():
        return needed
    missing = [] if (folder / "model_index.json").is_file() else ["model_index.json"]
    globs = weight_globs(variant, "safetensors") + weight_globs(variant, "bin")
    for component in spec.components:
        sub = folder / component
        if not any(sub.glob("*.json")):
            missing.append(f"{component}/ config")
        elif component in WEIGHTED_COMPONENTS and not any(any(sub.glob(glob)) for glob in globs):
            missing.append(f"{component}/ weights ({' or '.join(globs[::2])})")
    return missing


def missing_message(spec: ModelSpec, revision: str, variant: str | None, missing: list[str]) -> str:
    """The message a user sees when a model is not on disk."""
    variant_flag = f" --variant {variant}" if variant else ""
    return (
        f"model {spec.id!r} ({spec.repo_id}, revision {revision}) is not in the Hugging Face cache.\n"
        f"missing: {', '.join(missing)}\n"
        f"Either fetch it while online:  videogen download {spec.id}{variant_flag}\n"
        f"or pass a local folder in diffusers layout:  --model /path/to/{spec.repo_id.split('/')[-1]}"
    )


def download_model(spec: ModelSpec, revision: str | None = None, variant: str | None = None) -> Path:
    """Fetch a catalog model into the Hugging Face cache (safetensors preferred over .bin)."""
    if spec.local_dir is not None:
        return spec.local_dir
    revision = revision or spec.revision
    try:
        if spec.checkpoint:
            from videogen.catalog import CATALOG

            download_model(CATALOG["svd-xt"])
            hf_hub_download(spec.repo_id, spec.checkpoint, revision=revision)
            return locate_converted(spec, revision)
        folder = Path(
            snapshot_download(
                spec.repo_id, revision=revision, allow_patterns=_preferred_patterns(spec, variant)
            )
        )
    except UserError:
        raise
    except Exception as exc:  # network, auth and missing-revision errors all end the same way
        raise UserError(f"download of {spec.repo_id}@{revision} failed: {exc}") from None
    missing = missing_files(folder, spec, variant)
    if missing:
        raise WeightsMissingError(missing_message(spec, revision, variant, missing))
    return folder


def _preferred_patterns(spec: ModelSpec, variant: str | None) -> list[str]:
    """Like weight_patterns, but without .bin files where the repo has safetensors."""
    from huggingface_hub import HfApi

    files = HfApi().list_repo_files(spec.repo_id, revision=spec.revision)
    patterns = [p for p in weight_patterns(spec, variant) if not p.endswith("bin")]
    for component in spec.components:
        if not any(f.startswith(f"{component}/") and f.endswith(".safetensors") for f in files):
            patterns += [
                p
                for p in weight_patterns(spec, variant)
                if p.startswith(f"{component}/") and p.endswith("bin")
            ]
    return patterns


def is_cached(spec: ModelSpec) -> bool:
    """Whether ``locate_weights`` would succeed without a network (without converting anything)."""
    if spec.checkpoint:
        return (converted_dir(spec, spec.revision) / "model_index.json").is_file() or _checkpoint_cached(spec)
    try:
        locate_weights(spec, variant=spec.variant)
    except WeightsMissingError:
        return False
    return True


def _checkpoint_cached(spec: ModelSpec) -> bool:
    try:
        hf_hub_download(spec.repo_id, spec.checkpoint, revision=spec.revision, local_files_only=True)
    except (LocalEntryNotFoundError, OSError):
        return False
    return True
