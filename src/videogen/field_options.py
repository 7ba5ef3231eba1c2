"""Typer options generated from the Request fields, so ``videogen generate`` has one flag per field.

Each option's help is the field's description, its unit and range, and its choices; the default
``--help`` shows is the one that applies (the schema's, the model's, or who decides it). The options
themselves default to None, so that a flag left out never overrides a ``--config`` file.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from videogen.errors import UserError
from videogen.fields import FieldInfo, all_fields
from videogen.request import GROUPS

#: the Python type of each kind of control, as Typer reads it
OPTION_TYPES: dict[str, Any] = {
    "text": str,
    "int": int,
    "float": float,
    "bool": bool,
    "choice": str,
    "numbers": str,
    "choices": list[str],
    "texts": list[str],
}


def help_text(info: FieldInfo) -> str:
    """The field's description, then its unit and range, and its choices."""
    text = info.description
    if info.range_text:
        text += f" ({info.range_text}{' ' + info.unit if info.unit else ''})"
    elif info.unit:
        text += f" (in {info.unit})"
    if info.type == "numbers":
        text += " One number, or several separated by commas."
    if info.type in ("choices", "texts"):
        text += " Repeatable."
    return text


def field_option(info: FieldInfo, argument: str = "prompt") -> tuple[Any, typer.models.ParameterInfo]:
    """The annotation and the Typer option (or, for the field ``argument``, the argument) of one field."""
    panel = GROUPS[info.group]
    if info.name == argument:
        return str | None, typer.Argument(help=info.description, show_default=False)
    names = [f"{info.flag}/--no-{info.flag.removeprefix('--')}"] if info.type == "bool" else [info.flag]
    metavar = "[" + "|".join(info.choices) + "]" if info.choices else None
    if info.type == "texts":
        metavar = "TEXT"
    option = typer.Option(
        *names,
        help=help_text(info),
        rich_help_panel=panel,
        show_default=info.default_text(),
        metavar=metavar,
    )
    return OPTION_TYPES[info.type] | None, option


def with_field_options(
    command: Callable[..., None],
    before: list[inspect.Parameter],
    after: list[inspect.Parameter],
    argument: str = "prompt",
) -> Callable[..., None]:
    """``command`` (which takes ``**options``) with a parameter per Request field, between the
    parameters ``before`` and ``after`` (the command's own options, e.g. ``--config``); the field
    ``argument`` is the command's argument."""
    generated = []
    for info in all_fields().values():
        annotation, parameter = field_option(info, argument)
        generated.append(
            inspect.Parameter(
                info.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=None,
                annotation=Annotated[annotation, parameter],
            )
        )
    ordered = sorted(before + generated, key=lambda p: p.name != argument) + after  # the argument first
    command.__signature__ = inspect.Signature(ordered)  # type: ignore[attr-defined]
    command.__annotations__ = {parameter.name: parameter.annotation for parameter in ordered}
    return command


def request_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The Request fields given on the command line (left-out options are None), lists parsed."""
    fields = all_fields()
    given = {name: value for name, value in options.items() if name in fields and value is not None}
    for name, value in given.items():
        if fields[name].type == "numbers":
            given[name] = number_list(name, value)
    return given


def number_list(field: str, text: str) -> list[float]:
    """``"0,30,60"`` -> [0.0, 30.0, 60.0], with an error naming the field."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{field}: {text!r} is not allowed; give numbers separated by commas") from None
