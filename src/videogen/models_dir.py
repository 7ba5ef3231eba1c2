"""A folder of local models offered by name next to the catalog ids (``--models-dir DIR``).

Each subfolder of DIR in diffusers layout (one with a ``model_index.json``) is a model whose id is
the folder name, so ``--model tiny-unet3d`` works like ``--model modelscope-t2v``. A folder named
like a catalog id takes that id's place: the user pointed at those weights on purpose.
"""

from __future__ import annotations

import logging
from pathlib import Path

from videogen.catalog import CATALOG, ModelSpec, resolve_model, spec_for_local_dir
from videogen.errors import UserError
from videogen.request import Request

log = logging.getLogger(__name__)


def local_models(models_dir: Path | None) -> dict[str, Path]:
    """Folder name -> folder, for each diffusers-layout model directly under ``models_dir``."""
    if models_dir is None:
        return {}
    models_dir = Path(models_dir).expanduser()
    if not models_dir.is_dir():
        raise UserError(f"models_dir: {str(models_dir)!r} is not a folder")
    return {
        child.name: child.resolve()
        for child in sorted(models_dir.iterdir())
        if (child / "model_index.json").is_file()
    }


def model_source(model: str, models_dir: Path | None) -> str:
    """What ``resolve_model`` should be given for ``model``: its local folder, or ``model`` unchanged."""
    folder = local_models(models_dir).get(model)
    return model if folder is None else str(folder)


def resolve_with_models_dir(model: str, models_dir: Path | None) -> ModelSpec:
    """``resolve_model`` that also knows the models under ``models_dir`` by folder name."""
    return resolve_model(model_source(model, models_dir))


def with_models_dir(request: Request, models_dir: Path | None) -> Request:
    """The request with ``model`` and ``upscale`` pointing at local folders where they name one."""
    if models_dir is None:
        return request
    update = {"model": model_source(request.model, models_dir)}
    if request.upscale:
        update["upscale"] = model_source(request.upscale, models_dir)
    return request.model_copy(update=update)


def available_models(models_dir: Path | None) -> dict[str, ModelSpec]:
    """The catalog plus the local models; a local folder that cannot be read is logged and left out."""
    models = dict(CATALOG)
    for name, folder in local_models(models_dir).items():
        try:
            models[name] = spec_for_local_dir(folder)
        except UserError as exc:
            log.warning("models_dir: skipping %s: %s", folder, exc)
    return models
