"""A model folder that lacks a file, or holds a truncated one, fails before anything loads, naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from videogen.catalog import CATALOG, resolve_model
from videogen.cli import app
from videogen.errors import WeightsMissingError
from videogen.loading import file_damage, locate_weights, model_file_problems

runner = CliRunner()
SMALL = ["--num-frames", "2", "--height", "32", "--width", "32", "--steps", "1", "--device", "cpu"]


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def _truncate(path: Path) -> None:
    """Keep the first half of a file, as an interrupted download leaves it."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _generate(model: str, out: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["generate", "a red fox", "--model", model, "--out", str(out), *SMALL])
    return result.exit_code, result.stderr + result.stdout


@pytest.mark.parametrize(
    ("family", "removed", "component"),
    [
        ("unet3d", "tokenizer/vocab.json", "tokenizer"),
        ("unet3d", "tokenizer/merges.txt", "tokenizer"),
        ("unet3d", "text_encoder/config.json", "text_encoder"),
        ("unet3d", "text_encoder/model.safetensors", "text_encoder"),
        ("unet3d", "unet/diffusion_pytorch_model.safetensors", "unet"),
        ("unet3d", "vae/config.json", "vae"),
        ("unet3d", "scheduler/scheduler_config.json", "scheduler"),
        ("unet3d", "model_index.json", "pipeline"),
        ("svd", "image_encoder/model.safetensors", "image_encoder"),
        ("svd", "feature_extractor/preprocessor_config.json", "feature_extractor"),
        ("svd", "vae/diffusion_pytorch_model.safetensors", "vae"),
    ],
)
def test_each_component_file_is_required(tiny_unet3d, tiny_svd, tmp_path, family, removed, component) -> None:
    folder = _copy(tiny_unet3d if family == "unet3d" else tiny_svd, tmp_path)
    spec = resolve_model(str(folder))  # before the removal: the catalog itself reads some configs
    (folder / removed).unlink()
    with pytest.raises(WeightsMissingError) as caught:
        locate_weights(spec)
    message = str(caught.value)
    assert f"missing/corrupt file {removed} ({component}): missing" in message
    assert "\n" not in message


def test_a_tokenizer_without_its_vocabulary_is_refused_not_run_with_an_empty_one(
    tiny_unet3d, tmp_path
) -> None:
    folder = _copy(tiny_unet3d, tmp_path)
    for name in ("vocab.json", "merges.txt"):
        (folder / "tokenizer" / name).unlink()
    code, output = _generate(str(folder), tmp_path / "out")
    assert code == 2, output
    assert "tokenizer/vocab.json (tokenizer): missing, and no tokenizer.json instead" in output
    assert "tokenizer/merges.txt (tokenizer): missing" in output
    assert "Traceback" not in output and not list((tmp_path / "out").glob("*"))


def test_a_tokenizer_json_stands_in_for_vocab_and_merges(tiny_unet3d, tmp_path) -> None:
    folder = _copy(tiny_unet3d, tmp_path)
    for name in ("vocab.json", "merges.txt"):
        (folder / "tokenizer" / name).unlink()
    (folder / "tokenizer" / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    assert locate_weights(resolve_model(str(folder))) == folder.resolve()


def test_a_truncated_weights_file_in_a_local_folder_is_one_line_naming_it(tiny_unet3d, tmp_path) -> None:
    folder = _copy(tiny_unet3d, tmp_path)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    size = weights.stat().st_size
    _truncate(weights)
    code, output = _generate(str(folder), tmp_path / "out")
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert (
        len(lines) == 1 and "missing/corrupt file unet/diffusion_pytorch_model.safetensors (unet)" in lines[0]
    )
    assert f"truncated, {size // 2} of {size} bytes" in lines[0]
    assert "Traceback" not in output


def _hub_snapshot(hub: Path, repo_id: str, model: Path) -> Path:
    """The Hub cache layout: files are links into blobs/, refs/main names the snapshot."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    commit = "1" * 40
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    for source in sorted(model.rglob("*")):
        if source.is_file():
            blob = repo / "blobs" / f"{len(list((repo / 'blobs').iterdir())):064x}"
            shutil.copyfile(source, blob)
            target = snapshot / source.relative_to(model)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(blob)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_a_truncated_download_in_the_hub_cache_is_one_line_naming_it(
    tiny_unet3d, isolated_hub, tmp_path
) -> None:
    spec = CATALOG["modelscope-t2v"]
    snapshot = _hub_snapshot(isolated_hub, spec.repo_id, tiny_unet3d)
    _truncate((snapshot / "text_encoder" / "model.safetensors").resolve())
    code, output = _generate("modelscope-t2v", tmp_path / "out")
    assert code == 2, output
    assert "missing/corrupt file text_encoder/model.safetensors (text_encoder): truncated" in output
    assert (
        f"delete {snapshot.parents[1]} and fetch the model again: videogen download modelscope-t2v" in output
    )
    assert "Traceback" not in output


def test_a_blob_that_never_arrived_in_the_hub_cache_is_missing(tiny_unet3d, isolated_hub) -> None:
    spec = CATALOG["modelscope-t2v"]
    snapshot = _hub_snapshot(isolated_hub, spec.repo_id, tiny_unet3d)
    (snapshot / "vae" / "diffusion_pytorch_model.safetensors").resolve().unlink()  # a dangling link
    with pytest.raises(WeightsMissingError) as caught:
        locate_weights(spec)
    assert "file vae/diffusion_pytorch_model.safetensors (vae): missing;" in str(caught.value)
    assert str(caught.value).endswith("fetch them: videogen download modelscope-t2v")


def test_weights_of_the_chosen_variant_only(tiny_unet3d, tmp_path) -> None:
    folder = _copy(tiny_unet3d, tmp_path)
    weights = [folder / "unet/diffusion_pytorch_model", folder / "vae/diffusion_pytorch_model"]
    for stem in [*weights, folder / "text_encoder/model"]:
        Path(f"{stem}.safetensors").rename(f"{stem}.fp16.safetensors")
    components = CATALOG["modelscope-t2v"].components
    assert model_file_problems(folder, components, "fp16") == []
    problems = model_file_problems(folder, components, None)
    assert [(p.file, p.reason) for p in problems] == [
        ("unet/diffusion_pytorch_model.safetensors", "missing"),
        ("vae/diffusion_pytorch_model.safetensors", "missing"),
        ("text_encoder/model.safetensors", "missing"),
    ]


def test_every_shard_an_index_names_is_required(tiny_unet3d, tmp_path) -> None:
    folder = _copy(tiny_unet3d, tmp_path)
    unet = folder / "unet"
    first, second = (f"diffusion_pytorch_model-0000{i}-of-00002.safetensors" for i in (1, 2))
    (unet / "diffusion_pytorch_model.safetensors").rename(unet / first)
    index = {"metadata": {}, "weight_map": {"conv_in.weight": first, "conv_out.weight": second}}
    (unet / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(WeightsMissingError, match=rf"file unet/{second} \(unet\): missing"):
        locate_weights(resolve_model(str(folder)))


def test_damaged_files_of_each_kind(tmp_path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"in_channels": 4')
    assert file_damage(config).startswith("not valid JSON")
    weights = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.zeros(1000)}, weights)
    assert file_damage(weights) is None
    _truncate(weights)
    assert file_damage(weights) == "truncated, the zip archive has no end"
    header = tmp_path / "model.safetensors"
    header.write_bytes((40).to_bytes(8, "little") + b"{not json")
    assert file_damage(header) == "truncated or not safetensors, 17 bytes"
