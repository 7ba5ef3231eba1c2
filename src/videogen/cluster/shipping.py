"""Moving a request's files to a Ray worker and its outputs back, so no node needs a shared disk.

A request names its inputs by local path (``image``, ``video``, ``last_image``, keyframes, LoRA
files). ``pack_request`` reads each such file on the caller's machine and names it by a token
instead; the worker writes the bytes into its own temporary folder (``unpack_request``). After the
run the worker sends every output file back (``collect_outputs``) and the caller writes them under
the request's ``out_dir`` (``write_outputs``). Model weights are not shipped: every node loads them
from its own Hugging Face cache or models folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from videogen.errors import UserError
from videogen.fields import upload_fields
from videogen.generate import GenerationResult, VideoOutput
from videogen.media.outputs import writable_folder
from videogen.request import Request, split_keyframe, split_lora


@dataclass
class PackedRequest:
    """A request whose input files travel with it, by token."""

    fields: dict[str, object]
    files: dict[str, bytes] = field(default_factory=dict)
    #: token -> the path it was read from, to name in the sidecars instead of the worker's copy
    origins: dict[str, str] = field(default_factory=dict)


@dataclass
class PackedResult:
    """A run's outputs as (path relative to the worker's out_dir, bytes), and how they were made."""

    seed: int
    seed_was_random: bool
    videos: list[dict[str, object]]
    files: dict[str, bytes]
    #: where the worker wrote the request's input files, and its outputs
    input_folder: str
    output_folder: str


def _pack_file(path: str, packed: PackedRequest) -> str:
    token = f"{len(packed.files)}/{Path(path).name}"  # the name kept: output names derive from it
    packed.files[token] = Path(path).read_bytes()
    packed.origins[token] = path
    return token


def pack_request(request: Request) -> PackedRequest:
    """``request`` with each local input file replaced by a token, and the files' bytes.

    A LoRA entry that is not a local file is a Hub repo and stays as it is; so does a model, whose
    weights each node has (see the module docstring).
    """
    packed = PackedRequest({})
    update: dict[str, object] = {}
    for name in upload_fields():
        value = getattr(request, name)
        if value is not None and Path(value).is_file():
            update[name] = _pack_file(value, packed)
    if request.keyframe:
        entries = []
        for entry in request.keyframe:
            path, frame, strength = split_keyframe(entry)
            entries.append(f"{_pack_file(path, packed)}@{frame}:{strength}")
        update["keyframe"] = entries
    if request.lora:
        entries = []
        for entry in request.lora:
            source, scale = split_lora(entry)
            local = Path(source).is_file()
            entries.append(f"{_pack_file(source, packed)}:{scale}" if local else entry)
        update["lora"] = entries
    packed.fields = {**request.model_dump(mode="json", exclude_unset=True), **update}
    return packed


def unpack_request(packed: PackedRequest, folder: Path, out_dir: Path) -> Request:
    """The request with its files written into ``folder`` and its outputs going to ``out_dir``."""
    folder.mkdir(parents=True, exist_ok=True)
    for token, data in packed.files.items():
        (folder / token).parent.mkdir(exist_ok=True)
        (folder / token).write_bytes(data)
    fields = dict(packed.fields)

    def local(token: str) -> str:
        return str(folder / token) if token in packed.files else token

    for name in upload_fields():
        if isinstance(fields.get(name), str):
            fields[name] = local(fields[name])
    if fields.get("keyframe"):
        fields["keyframe"] = [_local_keyframe(entry, local) for entry in fields["keyframe"]]
    if fields.get("lora"):
        fields["lora"] = [_local_lora(entry, local) for entry in fields["lora"]]
    fields["out_dir"] = str(out_dir)
    return Request.model_validate(fields)


def _local_keyframe(entry: str, local) -> str:
    token, frame, strength = split_keyframe(entry)
    return f"{local(token)}@{frame}:{strength}"


def _local_lora(entry: str, local) -> str:
    source, scale = split_lora(entry)
    return f"{local(source)}:{scale}"


def collect_outputs(result: GenerationResult, out_dir: Path, input_folder: Path) -> PackedResult:
    """Every file the run wrote under ``out_dir`` (a folder output: each file in it), by relative path."""
    files: dict[str, bytes] = {}
    videos = []
    for video in result.videos:
        names = {}
        for kind, path in video.files.items():
            names[kind] = path.relative_to(out_dir).as_posix()
            inside = sorted(path.rglob("*")) if path.is_dir() else [path]
            for item in inside:
                if item.is_file():
                    files[item.relative_to(out_dir).as_posix()] = item.read_bytes()
        videos.append({"model": video.model, "seed": video.seed, "files": names, "timings": video.timings})
    return PackedResult(result.seed, result.seed_was_random, videos, files, str(input_folder), str(out_dir))


def write_outputs(packed: PackedResult, request: PackedRequest, here: Request) -> GenerationResult:
    """Write a worker's outputs under ``here.out_dir``; the result names the files here.

    Each file is written beside its final name and renamed into place, so a reader never sees a
    half-written one. A name that would leave ``out_dir`` is refused. Sidecars name the inputs by
    the paths they were read from, not by the worker's copies.
    """
    sidecars = {str(video["files"]["sidecar"]) for video in packed.videos if "sidecar" in video["files"]}
    copies = {f"{packed.input_folder}/{token}": origin for token, origin in request.origins.items()}
    copies[packed.output_folder] = str(here.out_dir)
    out_dir = Path(here.out_dir)
    writable_folder("out_dir", here.out_dir)
    root = out_dir.resolve()
    for name, data in packed.files.items():
        target = (out_dir / name).resolve()
        if not target.is_relative_to(root) or target == root:
            raise ValueError(f"a worker sent an output named {name!r}, outside the output folder")
        if target.exists():  # outputs never overwrite earlier ones
            raise UserError(f"out_dir: {out_dir} already holds {name}; the worker's file was not written")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".tmp-{target.name}")
        staging.write_bytes(_named_as_here(data, copies) if name in sidecars else data)
        os.replace(staging, target)
    videos = [
        VideoOutput(
            model=str(video["model"]),
            seed=int(video["seed"]),
            files={kind: out_dir / name for kind, name in video["files"].items()},
            timings=dict(video["timings"]),
        )
        for video in packed.videos
    ]
    ran = here.model_copy(update={"seed": packed.seed})
    return GenerationResult(ran, packed.seed, packed.seed_was_random, videos)


def _named_as_here(sidecar: bytes, copies: dict[str, str]) -> bytes:
    """A sidecar with every string that names a worker's copy of an input naming the original."""

    def rename(value: object) -> object:
        if isinstance(value, str):
            for copy, origin in copies.items():
                value = value.replace(copy, origin)
            return value
        if isinstance(value, list):
            return [rename(item) for item in value]
        if isinstance(value, dict):
            return {key: rename(item) for key, item in value.items()}
        return value

    return json.dumps(rename(json.loads(sidecar)), indent=2).encode()
