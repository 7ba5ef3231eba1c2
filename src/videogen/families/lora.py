"""LoRA weights on the Wan transformers, applied for one generation and removed after it.

A request's ``lora`` entries (``PATH_OR_REPO[:SCALE]``) name safetensors files: a local file, a folder
holding one, or a Hub repo already in the Hugging Face cache (loading never downloads). Each file is
read by diffusers' ``WanLoraLoaderMixin.lora_state_dict``, whose key converters turn the common
non-diffusers Wan formats (``diffusion_model.*`` with lora_down/lora_up/alpha, musubi-tuner's
``lora_unet_*``) into diffusers' ``transformer.*`` keys, then injected with the transformer's own
``load_lora_adapter`` (peft) as one adapter per file, weighted by its scale with ``set_adapters``.

Wan 2.2 A14B has two experts. A file with ``transformer_2.*`` keys loads those into the low-noise
expert and its ``transformer.*`` keys into the high-noise one; a file with ``transformer.*`` keys only
loads into both, as diffusers' ``load_lora_weights(..., load_into_transformer_2=True)`` does when the
same file is loaded a second time for ``transformer_2``.

The engine stays cached between jobs, so ``applied_loras`` unloads every adapter when the generation
ends (peft's layers are taken out again, leaving the original modules): the next job without LoRA
runs the plain model. While adapters are on, attention projections the engine fused (``to_qkv``,
``to_kv``) are run unfused, because a LoRA adapts ``to_q``, ``to_k`` and ``to_v`` one by one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.loaders.lora_pipeline import WanLoraLoaderMixin
from diffusers.models.attention import AttentionModuleMixin
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
from safetensors import SafetensorError

from videogen.errors import FieldError
from videogen.request import split_lora

#: the file name diffusers' ``save_lora_weights`` writes, preferred in a folder that holds several
DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"
#: the key prefixes of the two experts, as diffusers' Wan LoRA files name them
EXPERT_PREFIXES = ("transformer", "transformer_2")
#: the adapter names given to a request's LoRAs, in order
ADAPTER_NAME = "videogen_lora_{}"


@dataclass(frozen=True)
class LoraFile:
    """One ``lora`` entry, located: where it came from, its file and its scale."""

    entry: str
    path: Path
    scale: float

    def record(self, experts: list[str]) -> dict[str, object]:
        """What the video's record says about it: enough to find the same file again."""
        return {
            "source": split_lora(self.entry)[0],
            "file": self.path.name,
            "sha256": file_sha256(self.path),
            "scale": self.scale,
            "experts": experts,
        }


def locate(entry: str) -> LoraFile:
    """The safetensors file and scale of a ``lora`` entry; a FieldError when there is none."""
    source, scale = split_lora(entry)
    path = Path(source).expanduser()
    if path.is_file():
        return LoraFile(entry, path, scale)
    if path.is_dir():
        return LoraFile(entry, _weights_in(path, entry), scale)
    try:
        cached = snapshot_download(source, local_files_only=True, allow_patterns=["*.safetensors"])
    except (LocalEntryNotFoundError, HFValidationError):
        allowed = (
            "no such file or folder, and no Hub repo of that id in the local Hugging Face cache; give a "
            f".safetensors path, or download the repo first (`huggingface-cli download {source}`)"
        )
        raise FieldError("lora", entry, allowed) from None
    return LoraFile(entry, _weights_in(Path(cached), entry), scale)


def _weights_in(folder: Path, entry: str) -> Path:
    """The LoRA file of a folder: diffusers' file name, or its only safetensors file."""
    files = sorted(folder.rglob("*.safetensors"))
    if folder / DIFFUSERS_LORA_FILE in files:
        return folder / DIFFUSERS_LORA_FILE
    if len(files) == 1:
        return files[0]
    names = ", ".join(str(file.relative_to(folder)) for file in files[:6]) or "none"
    raise FieldError(
        "lora", entry, f"the folder must hold one .safetensors file (it holds {names}); name the file"
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_lora(lora: LoraFile) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The file's weights in diffusers' keys (converted from other Wan formats) and its adapter metadata."""
    try:
        state, metadata = WanLoraLoaderMixin.lora_state_dict(
            str(lora.path.parent), weight_name=lora.path.name, return_lora_metadata=True
        )
    except (ValueError, KeyError, OSError, SafetensorError) as exc:
        raise FieldError(
            "lora", lora.entry, f"it is not a LoRA file diffusers can read for Wan ({exc})"
        ) from None
    return state, metadata


def expert_prefixes(state: dict[str, torch.Tensor], experts: dict[str, torch.nn.Module]) -> dict[str, str]:
    """Which of the file's key prefixes loads into each expert (see the module docstring)."""
    has = {prefix: any(key.startswith(f"{prefix}.") for key in state) for prefix in EXPERT_PREFIXES}
    if "transformer_2" not in experts:
        return {"transformer": "transformer"}
    if has["transformer_2"]:
        return {name: name for name in experts if has[name]}
    return {name: "transformer" for name in experts}


def check_keys(lora: LoraFile, state: dict[str, torch.Tensor], experts: dict[str, torch.nn.Module]) -> None:
    """Every key must name a layer of an expert: a file for another model is refused, not half applied."""
    layers = {
        f"{prefix}.{name}" for prefix, model in experts.items() for name, _ in model.named_modules() if name
    }
    unmatched = [key for key in state if key.split(".lora_")[0] not in layers]
    if unmatched:
        allowed = (
            f"{len(unmatched)} of its {len(state)} LoRA keys match no layer of this model's transformer "
            f"(keys under {_prefix(unmatched)!r}); give a LoRA made for this Wan model"
        )
        raise FieldError("lora", lora.entry, allowed)


def _prefix(keys: list[str]) -> str:
    """The dotted prefix the keys share, or the first parts they start with."""
    parts = [key.split(".") for key in keys]
    common = os.path.commonprefix(parts)
    if common:
        return ".".join(common) + "."
    return ", ".join(sorted({part[0] + "." for part in parts})[:3])


@contextlib.contextmanager
def applied_loras(
    entries: list[str], transformer: torch.nn.Module, transformer_2: torch.nn.Module | None
) -> Iterator[list[dict[str, object]]]:
    """The request's LoRAs loaded into the experts, each at its scale, for the ``with`` block; yields
    what the record says about them ([] without LoRA). The adapters are unloaded when the block ends."""
    if not entries:
        yield []
        return
    experts = {"transformer": transformer, **({"transformer_2": transformer_2} if transformer_2 else {})}
    loaded: dict[str, list[tuple[str, float]]] = {name: [] for name in experts}
    records = []
    try:
        for index, entry in enumerate(entries):
            lora = locate(entry)
            state, metadata = read_lora(lora)
            check_keys(lora, state, experts)
            targets = expert_prefixes(state, experts)
            adapter = ADAPTER_NAME.format(index)
            for name, prefix in targets.items():
                _load_adapter(lora, experts[name], state, metadata, prefix, adapter)
                loaded[name].append((adapter, lora.scale))
            records.append(lora.record(list(targets)))
        for name, adapters in loaded.items():
            if adapters:
                experts[name].set_adapters([a for a, _ in adapters], [scale for _, scale in adapters])
        with contextlib.ExitStack() as unfused:
            for name in loaded:
                if loaded[name]:
                    unfused.enter_context(unfused_attention(experts[name]))
            yield records
    finally:
        for name, adapters in loaded.items():
            if adapters:
                experts[name].unload_lora()


def _load_adapter(
    lora: LoraFile,
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    metadata: dict | None,
    prefix: str,
    adapter: str,
) -> None:
    """One file's ``prefix`` keys into ``model`` as adapter ``adapter``; peft's refusals name the field."""
    try:
        model.load_lora_adapter(dict(state), prefix=prefix, adapter_name=adapter, metadata=metadata)
    except ValueError as exc:
        raise FieldError(
            "lora", lora.entry, f"its weights do not fit this model's transformer ({exc})"
        ) from None


@contextlib.contextmanager
def unfused_attention(model: torch.nn.Module) -> Iterator[None]:
    """Run ``model``'s attention on its separate q/k/v projections, keeping the fused ones for after."""
    fused = [m for m in model.modules() if isinstance(m, AttentionModuleMixin) and m.fused_projections]
    for module in fused:
        module.fused_projections = False
    try:
        yield
    finally:
        for module in fused:
            module.fused_projections = True
