"""The generation form, built from the Request fields' metadata: nothing here is written per field.

One form serves every kind of model: picking a model shows the controls its kind takes
(``videogen.families``), in ``GROUPS`` order with the advanced ones folded away, and sets each
placeholder to what that model does when the field is left empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from videogen.fields import FieldInfo, all_fields, grouped, upload_fields
from videogen.request import GROUPS
from videogen.server.ui.controls import OMIT, Control, build_control, elem_id, help_text
from videogen.server.ui.models import Offered

#: fields a server never takes from a client (``admit`` refuses them): it decides where outputs go
SERVER_DECIDES = frozenset({"out_dir"})
#: groups shown open when the page loads
OPEN_GROUPS = ("shape", "sampling")
#: file fields: the browser uploads a file, the form sends the upload's id
UPLOADS = tuple(upload_fields())


@dataclass
class Form:
    model: gr.Dropdown
    model_note: gr.HTML
    #: every field's control but the model picker's, by field name
    controls: dict[str, Control]
    #: each folding block of the form and the fields inside it (hidden when none of them applies)
    sections: list[tuple[gr.components.Component, list[str]]]
    submit: gr.Button
    error: gr.HTML
    models: dict[str, Offered] = field(default_factory=dict)

    @property
    def inputs(self) -> set[gr.components.Component]:
        return {self.model, *(control.component for control in self.controls.values())}

    @property
    def look(self) -> list[gr.components.Component]:
        """What changes with the selected model: the note, every control and every section."""
        controls = [control.component for control in self.controls.values()]
        return [self.model_note, *controls, *(section for section, _ in self.sections)]

    def kind_of(self, model_id: str) -> str:
        return self.models[model_id].spec.kind

    def look_for(self, model_id: str | None) -> list[Any]:
        """Updates for ``look``: the controls ``model_id``'s kind takes shown, the others hidden."""
        model = self.models.get(model_id or "")
        if model is None:
            return [gr.skip()] * len(self.look)
        kind = model.spec.kind
        updates: list[Any] = [model.note()]
        updates += [c.update_for(model.spec, c.info.taken_by(kind)) for c in self.controls.values()]
        for _, names in self.sections:
            updates.append(gr.update(visible=any(self.controls[name].info.taken_by(kind) for name in names)))
        return updates

    def request_fields(self, values: dict[gr.components.Component, Any]) -> dict[str, Any]:
        """The request the form holds: the fields the model's kind takes, empty ones left out.

        Uploads are still local file paths here (``UPLOADS``); the caller uploads them.
        """
        model_id = values[self.model]
        fields: dict[str, Any] = {"model": model_id}
        kind = self.kind_of(model_id) if model_id in self.models else None
        for name, control in self.controls.items():
            if kind is not None and not control.info.taken_by(kind):
                continue
            value = control.request_value(values[control.component])
            if value is not OMIT:
                fields[name] = value
        return fields

    def filled_from(self, request: dict[str, Any], files: dict[str, str | None]) -> dict[Any, Any]:
        """Control values showing a recorded ``request``; ``files`` holds the uploads' local paths."""
        values: dict[Any, Any] = {}
        if request.get("model") in self.models:
            values[self.model] = request["model"]
        for name, control in self.controls.items():
            value = files.get(name) if name in UPLOADS else request.get(name)
            values[control.component] = control.control_value(value)
        return values


def form_fields() -> list[FieldInfo]:
    """The fields the form has a control for: those some kind takes, but the server's own."""
    return [info for info in all_fields().values() if info.kinds and info.name not in SERVER_DECIDES]


def build_form(models: dict[str, Offered]) -> Form:
    """Lay the form out (inside the caller's Blocks) as it looks for the first model."""
    first = next(iter(models.values()))
    kind = first.spec.kind
    model = gr.Dropdown(
        [(m.label, m.id) for m in models.values()], value=first.id, label="Model", elem_id=elem_id("model")
    )
    note = gr.HTML(first.note(), elem_id="model-note")
    controls: dict[str, Control] = {}
    sections: list[tuple[gr.components.Component, list[str]]] = []
    submit = error = None
    infos = [info for info in form_fields() if info.name != "model"]
    for group, members in grouped(infos).items():
        title = GROUPS[group]
        block = gr.Group() if group == "inputs" else gr.Accordion(title, open=group in OPEN_GROUPS)
        with block:
            for info in members:
                if not info.advanced:
                    controls[info.name] = _control(info, first, kind, models)
            advanced = [info for info in members if info.advanced]
            if advanced:
                with gr.Accordion(f"More {title.lower()} settings", open=False) as more:
                    for info in advanced:
                        controls[info.name] = _control(info, first, kind, models)
                sections.append((more, [info.name for info in advanced]))
        sections.append((block, [info.name for info in members]))
        if group == "inputs":
            submit = gr.Button("Generate", variant="primary", elem_id="generate")
            error = gr.HTML("", elem_id="form-error")
    assert submit is not None and error is not None, "the inputs group holds the prompt"
    return Form(model, note, controls, sections, submit, error, dict(models))


def _control(info: FieldInfo, first: Offered, kind: str, models: dict[str, Offered]) -> Control:
    visible = info.taken_by(kind)
    common = {"label": info.label, "info": help_text(info, first.spec), "elem_id": elem_id(info.name)}
    upload = {"label": info.label, "elem_id": elem_id(info.name), "visible": visible}  # no help line
    if info.upload == "image":
        return Control(info, gr.Image(type="filepath", sources=["upload", "clipboard"], **upload), "upload")
    if info.upload == "video":
        return Control(info, gr.Video(sources=["upload"], **upload), "upload")
    if info.name == "upscale":
        upscalers = [(m.label, m.id) for m in models.values() if "v2v" in m.spec.tasks]
        picker = gr.Dropdown([("none", ""), *upscalers], value="", visible=visible, **common)
        return Control(info, picker, "choice")
    return build_control(info, first.spec, visible)
