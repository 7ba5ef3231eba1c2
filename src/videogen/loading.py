"""Where weights come from and where they run: Hub cache or local folder, device and dtype.

Loading never waits on a network that is not there: the Hugging Face cache is checked first,
and a model that is not cached is fetched only by ``videogen download`` (or
``download_model``). A missing model fails at once with a message naming the files and the
two ways out.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from videogen.catalog import CATALOG, ModelSpec
from videogen.errors import FieldError, UserError, WeightsMissingError

#: components that hold weights (the others are configs, a tokenizer or a feature extractor), and
#: the library whose file names they use
WEIGHTED_COMPONENTS = {
    "unet": "diffusers",
    "transformer": "diffusers",
    "transformer_2": "diffusers",
    "vae": "diffusers",
    "text_encoder": "transformers",
    "image_encoder": "transformers",
}
#: each library's weight file names, in the order its loader prefers them
WEIGHT_FILES = {
    "diffusers": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    "transformers": ("model.safetensors", "pytorch_model.bin"),
}
#: the files each component's loader reads besides weights: alternatives, each a set of files that
#: must all be there (a CLIP tokenizer reads vocab.json with merges.txt, or one tokenizer.json)
COMPONENT_FILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "tokenizer": (("vocab.json", "merges.txt"), ("tokenizer.json",)),
    "scheduler": (("scheduler_config.json",),),
    "feature_extractor": (("preprocessor_config.json",),),
    "image_processor": (("preprocessor_config.json",),),
}
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
        patterns += [f"{component}/*.json", f"{component}/*.txt", f"{component}/*.model"]  # spiece.model
        for suffix in ("safetensors", "bin"):
            patterns += [f"{component}/{glob}" for glob in weight_globs(variant, suffix)]
    return patterns


def locate_weights(spec: ModelSpec, revision: str | None = None, variant: str | None = None) -> Path:
    """Return the folder holding the model in diffusers layout, from the local dir or the Hub cache.

    Every file the family's loaders read is checked first (``check_model_files``), so a folder
    that lacks one fails here, naming it, before anything loads.
    """
    folder = _weights_folder(spec, revision, variant)
    check_model_files(folder, spec, None if spec.checkpoint else variant)
    return folder


def _weights_folder(spec: ModelSpec, revision: str | None, variant: str | None) -> Path:
    if spec.local_dir is not None:
        return spec.local_dir
    revision = revision or spec.revision
    if spec.checkpoint:
        return locate_converted(spec, revision)
    try:
        return Path(
            snapshot_download(
                spec.repo_id,
                revision=revision,
                allow_patterns=weight_patterns(spec, variant),
                local_files_only=True,
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        needed = ["model_index.json", *(f"{component}/" for component in spec.components)]
        raise WeightsMissingError(missing_message(spec, revision, variant, needed)) from None


def converted_dir(spec: ModelSpec, revision: str) -> Path:
    """Where a single-file checkpoint converted to diffusers layout is kept."""
    root = os.environ.get("VIDEOGEN_CACHE") or Path.home() / ".cache" / "videogen"
    return Path(root) / "converted" / f"{spec.id}@{revision}"


def locate_converted(spec: ModelSpec, revision: str) -> Path:
    """The diffusers-layout folder of a single-file model, converting the cached checkpoint on first use.

    SV3D's checkpoints hold no image encoder; the converter takes SVD-XT's (as Stability does),
    which is found here: the converter knows files only, and loading is the one side that knows both.
    """
    target = converted_dir(spec, revision)
    if (target / "model_index.json").is_file():
        return target
    try:
        checkpoint = hf_hub_download(spec.repo_id, spec.checkpoint, revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, OSError):
        raise WeightsMissingError(missing_message(spec, revision, None, [spec.checkpoint])) from None
    from videogen.convert.sv3d import convert_sv3d  # here, not on top: it imports diffusers (1.3 s)

    encoder_source = locate_weights(CATALOG["svd-xt"])
    staging = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        convert_sv3d(Path(checkpoint), staging, encoder_source)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass(frozen=True)
class FileProblem:
    """A file a component's loader reads that is missing or damaged."""

    file: str  # relative to the model folder
    component: str
    reason: str

    @property
    def missing(self) -> bool:
        return self.reason.startswith("missing")

    def __str__(self) -> str:
        return f"{self.file} ({self.component}): {self.reason}"


def check_model_files(folder: Path, spec: ModelSpec, variant: str | None) -> None:
    """Raise WeightsMissingError naming every file of ``folder`` that a loader of ``spec`` would miss."""
    problems = model_file_problems(folder, spec.components, variant)
    if problems:
        raise WeightsMissingError(problems_message(spec, folder, variant, problems))


def model_file_problems(folder: Path, components: Sequence[str], variant: str | None) -> list[FileProblem]:
    """The files that ``components`` of the model in ``folder`` need and that are missing or damaged.

    The loaders do not all fail on a missing file: a tokenizer folder without its vocabulary loads
    as an empty tokenizer that ignores every prompt. And a partial download fails deep inside
    safetensors. So each component's files are looked at (configs parsed, weight files measured
    against their headers) before anything loads.
    """
    problems = _file_problems(folder, "model_index.json", "pipeline")
    for component in components:
        problems += _config_problems(folder, component)
        if component in WEIGHTED_COMPONENTS:
            problems += _weight_problems(folder, component, variant)
    return problems


def _config_problems(folder: Path, component: str) -> list[FileProblem]:
    """The component's configuration (or vocabulary) files: the first complete alternative, checked."""
    alternatives = COMPONENT_FILES.get(component, (("config.json",),))
    for names in alternatives:
        if all((folder / component / name).is_file() for name in names):
            return [
                problem
                for name in names
                for problem in _file_problems(folder, f"{component}/{name}", component)
            ]
    first, *others = alternatives
    instead = " or ".join(" with ".join(names) for names in others)
    reason = f"missing, and no {instead} instead" if instead else "missing"
    return [
        FileProblem(f"{component}/{name}", component, reason)
        for name in first
        if not (folder / component / name).is_file()
    ]


def _weight_problems(folder: Path, component: str, variant: str | None) -> list[FileProblem]:
    """The weights the loader reads: one file or an index of shards, safetensors before .bin."""
    names = WEIGHT_FILES[WEIGHTED_COMPONENTS[component]]
    for name in names:
        single = f"{component}/{with_variant(name, variant)}"
        index = f"{component}/{with_variant(f'{name}.index.json', variant)}"
        if (folder / single).is_file():
            return _file_problems(folder, single, component)
        if (folder / index).is_file():
            return _shard_problems(folder, index, component)
    return [FileProblem(f"{component}/{with_variant(names[0], variant)}", component, "missing")]


def _shard_problems(folder: Path, index: str, component: str) -> list[FileProblem]:
    """An index of shards and every shard it names."""
    problems = _file_problems(folder, index, component)
    if problems:
        return problems
    weight_map = json.loads((folder / index).read_text(encoding="utf-8")).get("weight_map", {})
    shards = sorted(set(weight_map.values()))
    return [
        problem for shard in shards for problem in _file_problems(folder, f"{component}/{shard}", component)
    ]


def with_variant(name: str, variant: str | None) -> str:
    """``name`` with ``variant`` before its last suffix, as diffusers and transformers name such files."""
    if not variant:
        return name
    stem, suffix = name.rsplit(".", 1)
    return f"{stem}.{variant}.{suffix}"


def _file_problems(folder: Path, relative: str, component: str) -> list[FileProblem]:
    path = folder / relative
    if not path.is_file():  # a dangling Hub-cache link (its blob never arrived) is missing too
        return [FileProblem(relative, component, "missing")]
    damage = file_damage(path)
    return [FileProblem(relative, component, damage)] if damage else []


#: the safetensors format's own cap on its JSON header
SAFETENSORS_MAX_HEADER = 100 * 2**20


def file_damage(path: Path) -> str | None:
    """Why the file cannot be what its suffix says (JSON, safetensors, torch weights), or None."""
    try:
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".safetensors":
            return _safetensors_damage(path)
        elif path.suffix == ".bin":
            return _torch_file_damage(path)
    except OSError as exc:
        return f"unreadable, {exc.strerror or exc}"
    except ValueError as exc:  # JSON and UTF-8 decoding errors
        return f"not valid JSON, {exc}"
    return None


def _safetensors_damage(path: Path) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header, then exactly the tensor bytes the
    header accounts for; a partial download is shorter."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if size < 8 or length > min(size - 8, SAFETENSORS_MAX_HEADER):
            return f"truncated or not safetensors, {size} bytes"
        header_bytes = handle.read(length)
    try:
        header = json.loads(header_bytes)
        tensors = (entry for key, entry in header.items() if key != "__metadata__")
        expected = 8 + length + max((int(entry["data_offsets"][1]) for entry in tensors), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return "not safetensors, its header is damaged"
    if size < expected:
        return f"truncated, {size} of {expected} bytes"
    if size > expected:
        return f"damaged, {size} bytes where its header accounts for {expected}"
    return None


def _torch_file_damage(path: Path) -> str | None:
    """``torch.save`` writes a zip archive (a truncated one lacks the directory at its end); files
    from before PyTorch 1.6 are a bare pickle."""
    with path.open("rb") as handle:
        start = handle.read(2)
    if start == b"PK":
        return None if zipfile.is_zipfile(path) else "truncated, the zip archive has no end"
    return None if start[:1] == b"\x80" else "truncated or not a PyTorch weights file"


def problems_message(spec: ModelSpec, folder: Path, variant: str | None, problems: list[FileProblem]) -> str:
    """One line naming each missing or damaged file and the way to get it back."""
    listed = "; ".join(str(problem) for problem in problems)
    if spec.local_dir is not None:
        fix = "copy the model's files into the folder again"
    elif spec.checkpoint:
        fix = f"delete {folder} and it is converted again on the next run"
    elif all(problem.missing for problem in problems):
        fix = f"fetch them: videogen download {spec.id}{f' --variant {variant}' if variant else ''}"
    else:  # the Hub cache keeps a damaged blob, so only a fresh copy of the repo's folder helps
        fix = f"delete {folder.parents[1]} and fetch the model again: videogen download {spec.id}"
    return f"model {spec.id!r} in {folder}: missing/corrupt file {listed}; {fix}"


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
    check_model_files(folder, spec, variant)
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
