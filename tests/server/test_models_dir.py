"""``--models-dir``: local diffusers folders offered by name next to the catalog ids."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from videogen.catalog import CATALOG
from videogen.cli import app
from videogen.errors import FieldError, UserError
from videogen.models_dir import available_models, local_models, resolve_with_models_dir, with_models_dir
from videogen.request import Request


def test_folders_in_diffusers_layout_are_models_by_name(models_dir, tiny_unet3d, tmp_path) -> None:
    assert local_models(models_dir) == {"tiny-unet3d": tiny_unet3d.resolve()}
    assert local_models(None) == {}
    spec = resolve_with_models_dir("tiny-unet3d", models_dir)
    assert spec.id == "tiny-unet3d" and spec.family == "unet3d" and spec.local_dir == tiny_unet3d.resolve()
    assert resolve_with_models_dir("svd", models_dir) is CATALOG["svd"]
    with pytest.raises(FieldError):
        resolve_with_models_dir("tiny-unet3d", None)
    with pytest.raises(UserError, match="models_dir"):
        local_models(tmp_path / "missing")


def test_requests_name_local_models_for_the_model_and_the_upscaler(models_dir, tiny_unet3d) -> None:
    request = Request(prompt="x", model="tiny-unet3d", upscale="tiny-unet3d")
    local = with_models_dir(request, models_dir)
    assert local.model == local.upscale == str(tiny_unet3d.resolve())
    assert with_models_dir(Request(prompt="x"), models_dir).model == "modelscope-t2v"


def test_a_local_folder_can_take_a_catalog_id_and_broken_folders_are_skipped(tiny_unet3d, tmp_path) -> None:
    shutil.copytree(tiny_unet3d, tmp_path / "zeroscope-v2-576w")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text("{not json")
    (tmp_path / "not-a-model").mkdir()
    models = available_models(tmp_path)
    assert models["zeroscope-v2-576w"].local_dir == (tmp_path / "zeroscope-v2-576w").resolve()
    assert "broken" not in models and "not-a-model" not in models
    assert set(CATALOG) <= set(models)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--preload", "no-such-model"], "model: 'no-such-model' is not allowed"),
        (["--models-dir", "/no/such/folder"], "models_dir"),
        (["--database-url", "nonsense://"], "database_url"),
    ],
)
def test_serve_refuses_bad_options_before_starting(tmp_path, options, message) -> None:
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), *options])
    assert result.exit_code == 2 and message in result.stderr
