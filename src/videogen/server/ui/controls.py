"""One Gradio control per Request field, chosen from the field's metadata (``videogen.fields``).

A control turns what the browser sends into the field's request value, and a recorded request
back into what the control shows. An empty control leaves the field out, so the model's default
applies (shown as the placeholder); anything typed, ``0`` included, goes to the server as typed and
is validated there exactly as the CLI's and the REST API's values are. Numbers are typed into text
boxes: a browser's number input shows an empty value as 0 and rounds integers past 2**53.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import gradio as gr

from videogen.catalog import ModelSpec
from videogen.fields import FieldInfo

#: "leave the field out" (the model's or the schema's default applies)
OMIT = object()
#: text fields written over several lines
MULTILINE = {"prompt": 3, "negative_prompt": 2}
#: the value of a dropdown's "default" entry
DEFAULT_CHOICE = ""
TRI_STATE = {"on": True, "off": False}


def elem_id(name: str) -> str:
    """The HTML id of a field's control (browser tests find controls by it)."""
    return f"field-{name.replace('_', '-')}"


def shown_value(value: Any) -> str:
    """A default as the placeholder shows it: ``0.65``, ``mp4, gif``, ``on``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(map(shown_value, value))
    return str(value)


def default_for(info: FieldInfo, spec: ModelSpec | None) -> str:
    """What an empty control means for ``spec``'s model."""
    value = None if spec is None else info.model_default(spec)
    return info.default_text() if value is None else shown_value(value)


def help_text(info: FieldInfo, spec: ModelSpec | None) -> str:
    """The line under a control: what it does, its range and unit, and what empty means here."""
    parts = [info.description]
    if info.range_text or info.unit:
        parts.append(" ".join(part for part in (info.range_text, info.unit) if part) + ".")
    if info.type == "numbers":
        parts.append("One value, or several separated by commas.")
    if info.type == "texts":
        parts.append("One a line.")
    parts.append(f"Default: {default_for(info, spec)}.")
    return " ".join(parts)


@dataclass
class Control:
    """A field's control: how it is built, read and filled."""

    info: FieldInfo
    component: gr.components.Component
    #: how it is entered: see ``entry_of``; ``upload`` for a file the form uploads at submit
    entry: str

    @property
    def name(self) -> str:
        return self.info.name

    def request_value(self, value: Any) -> Any:
        """The field's value in a request, or OMIT for an empty control."""
        entry = self.entry
        if entry not in ("checkbox", "checkboxes") and (value is None or str(value).strip() == ""):
            return OMIT
        if entry == "number":
            return typed_number(value)
        if entry == "numbers":
            return [typed_number(item) for item in re.split(r"[,\s]+", value.strip()) if item]
        if entry == "lines":
            return [line.strip() for line in value.splitlines() if line.strip()]
        if entry == "choice" or (entry == "text" and self.name not in MULTILINE):
            return value.strip()
        if entry == "tri-state":
            return TRI_STATE[value]
        return value

    def control_value(self, value: Any) -> Any:
        """What the control shows for a recorded request value (``None``: the field was left out)."""
        entry = self.entry
        if entry in ("number", "text", "numbers"):
            return "" if value is None else shown_value(value)
        if entry == "lines":
            return "" if value is None else "\n".join(value)
        if entry in ("choice", "tri-state"):
            if value is None:
                return DEFAULT_CHOICE
            return shown_value(value) if entry == "tri-state" else value
        if entry == "checkbox":
            return bool(self.info.default if value is None else value)
        if entry == "checkboxes":
            return list(self.info.default if value is None else value)
        return value

    def update_for(self, spec: ModelSpec, visible: bool) -> dict[str, Any]:
        """The control's look for the selected model: shown or not, and what empty means."""
        update: dict[str, Any] = {"visible": visible}
        if self.entry != "upload":
            update["info"] = help_text(self.info, spec)
        if self.entry in ("number", "text", "numbers", "lines"):
            update["placeholder"] = default_for(self.info, spec)
        return gr.update(**update)


def typed_number(text: str) -> int | float | str:
    """``"8"`` -> 8, ``"0.5"`` -> 0.5; anything else stays text, for the schema to refuse in its words."""
    text = text.strip()
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            continue
    return text


def entry_of(info: FieldInfo) -> str:
    """How the field is entered: number, text, numbers, lines (one value a line), choice, tri-state,
    checkbox or checkboxes (the form builds uploads and model pickers itself)."""
    if info.type in ("int", "float"):
        return "number"
    if info.type == "bool":
        return "checkbox" if info.default is not None else "tri-state"
    if info.type == "choices":
        return "checkboxes"
    return {"choice": "choice", "numbers": "numbers", "texts": "lines"}.get(info.type, "text")


def build_control(info: FieldInfo, spec: ModelSpec | None, visible: bool) -> Control:
    """The control for ``info``, as it looks for ``spec``'s model."""
    common: dict[str, Any] = {
        "label": info.label,
        "info": help_text(info, spec),
        "elem_id": elem_id(info.name),
        "visible": visible,
    }
    placeholder = default_for(info, spec)
    entry = entry_of(info)
    if entry == "checkbox":
        component: gr.components.Component = gr.Checkbox(value=bool(info.default), **common)
    elif entry == "checkboxes":
        component = gr.CheckboxGroup(list(info.choices), value=list(info.default), **common)
    elif entry in ("choice", "tri-state"):
        choices = list(info.choices) if entry == "choice" else list(TRI_STATE)
        if info.default is None:
            choices = [("default", DEFAULT_CHOICE), *choices]
        value = DEFAULT_CHOICE if info.default is None else info.default
        component = gr.Dropdown(choices, value=value, **common)
    else:
        lines = MULTILINE.get(info.name, 2 if entry == "lines" else 1)
        component = gr.Textbox(value="", placeholder=placeholder, lines=lines, max_lines=12, **common)
    return Control(info, component, entry)
