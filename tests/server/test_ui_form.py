"""The web UI's form, built without a browser: every Request field has a control in the form of every
kind of model that takes it and in no other, and each control sends what was typed (0 as 0, empty
as "the model's default") and shows a recorded request so that re-sending it gives it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from videogen.errors import FieldError
from videogen.families import KINDS
from videogen.fields import FieldInfo, all_fields, upload_fields
from videogen.server import JobService, Settings
from videogen.server.ui import build_ui
from videogen.server.ui.controls import OMIT, elem_id
from videogen.server.ui.form import SERVER_DECIDES, Form, build_form
from videogen.server.ui.models import offered_models
from videogen.testing import build_tiny_model


def _tiny(kind: str) -> str:
    return f"tiny-{kind.replace('_', '-')}"


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with a tiny model of each kind, named tiny-<kind>."""
    root = tmp_path_factory.mktemp("kinds")
    for kind in KINDS:
        build_tiny_model(_tiny(kind).removeprefix("tiny-"), root / _tiny(kind))
    return root


@pytest.fixture(scope="module")
def service(every_kind: Path, tmp_path_factory: pytest.TempPathFactory) -> JobService:
    data = tmp_path_factory.mktemp("ui-form") / "data"
    return JobService(Settings(data_dir=data, models_dir=every_kind, run_worker=False, ui=True))


@pytest.fixture(scope="module")
def form(every_kind: Path) -> Form:
    with gr.Blocks():
        return build_form(offered_models(every_kind))


def _look_after_picking(ui: gr.Blocks, model: str) -> dict[Any, Any]:
    """Run the UI's own handler for a change of the model picker: component -> its update."""
    picker = next(
        block for block in ui.blocks.values() if getattr(block, "elem_id", None) == elem_id("model")
    )
    (handler,) = [fn for fn in ui.fns.values() if (picker._id, "change") in fn.targets]
    return dict(zip(handler.outputs, handler.fn(model), strict=True))


def _shown(component: Any, look: dict[Any, Any]) -> bool:
    """Whether the component and every block around it are visible after ``look``."""
    block = component
    while block is not None:
        update = look.get(block)
        if isinstance(update, dict) and update.get("visible") is False:
            return False
        block = block.parent
    return True


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_field_is_in_the_form_of_each_kind_that_takes_it_and_of_no_other(
    service: JobService, kind: str
) -> None:
    ui = build_ui(service)
    look = _look_after_picking(ui, _tiny(kind))
    controls = {block.elem_id: block for block in ui.blocks.values() if getattr(block, "elem_id", None)}
    for name, info in all_fields().items():
        if name in SERVER_DECIDES or name == "model":
            continue
        assert _shown(controls[elem_id(name)], look) == (kind in info.kinds), f"{name} in the {kind} form"
    assert elem_id("model") in controls


def test_the_only_fields_without_a_control_are_those_the_server_refuses(
    service: JobService, form: Form
) -> None:
    assert set(all_fields()) - set(form.controls) == {"model", *SERVER_DECIDES}
    for name in SERVER_DECIDES:
        with pytest.raises(FieldError) as refused:
            service.submit({"model": "tiny-unet3d", "prompt": "a panda", name: all_fields()[name].default})
        assert refused.value.field == name


@pytest.mark.parametrize("kind", list(KINDS))
def test_placeholders_are_the_selected_models_defaults(form: Form, kind: str) -> None:
    look = dict(zip(form.look, form.look_for(_tiny(kind)), strict=True))
    spec = form.models[_tiny(kind)].spec
    steps = look[form.controls["steps"].component]
    assert steps["placeholder"] == str(spec.defaults.steps) and steps["visible"]
    assert look[form.controls["num_frames"].component]["placeholder"] == str(spec.defaults.num_frames)
    assert look[form.controls["seed"].component]["placeholder"] == "random"


def test_a_typed_zero_is_sent_as_zero_and_an_empty_field_is_left_out(form: Form) -> None:
    steps, elevations = form.controls["steps"], form.controls["elevations"]
    assert (
        steps.request_value("0") == 0 and steps.request_value(" ") is OMIT and steps.request_value("") is OMIT
    )
    assert steps.request_value("1.5") == 1.5 and steps.request_value("many") == "many"  # the schema refuses
    assert elevations.request_value("0") == [0] and elevations.request_value("0, 10,20") == [0, 10, 20]
    assert form.controls["guidance"].request_value("0") == 0
    assert form.controls["watermark"].request_value("") is OMIT
    assert form.controls["watermark"].request_value("off") is False
    assert form.controls["formats"].request_value([]) == []  # refused by the schema, not taken as mp4


def _sample(info: FieldInfo) -> Any:
    """A value of the field that is not its default."""
    if info.type == "choice":
        return info.choices[-1]
    if info.type == "choices":
        return list(info.choices[:2])
    samples = {"int": 3, "float": 0.5, "bool": not info.default, "text": "x y", "numbers": [0.0, 12.5]}
    return {**samples, "texts": ["a.safetensors:0.5", "b"]}[info.type]


def test_a_recorded_request_fills_the_form_and_is_sent_back_unchanged(form: Form) -> None:
    picked = "tiny-unet3d"
    recorded = {name: _sample(info) for name, info in all_fields().items() if name in form.controls}
    uploads = {name: None for name in upload_fields() if name in form.controls}
    recorded |= {"model": picked, "upscale": None, **uploads}
    values = form.filled_from(recorded, uploads)
    sent = form.request_fields(values)
    taken = {name for name in recorded if name in KINDS["unet3d"].taken or name == "model"}
    expected = {name: value for name, value in recorded.items() if name in taken and value is not None}
    assert sent == expected


def test_models_without_weights_are_marked_and_say_how_to_get_them(every_kind: Path) -> None:
    models = offered_models(every_kind)
    assert models["tiny-svd"].available and models["tiny-svd"].label == "tiny-svd"
    missing = models["svd"]
    assert not missing.available and missing.label == "svd (weights missing)"
    assert "<code>videogen download svd</code>" in missing.note()
    assert list(models)[: len(KINDS)] == sorted(_tiny(kind) for kind in KINDS)  # those with weights first
