"""The Request fields as the front-ends see them: one ``FieldInfo`` per field, read off the schema.

The CLI builds its ``generate`` options from these, the UI its controls, ``videogen fields`` the
reference of YAML keys; the OpenAPI document is the schema's own JSON schema. Nothing here is
written by hand per field: a field added to ``Request`` (and to its families' tables) appears in
every front-end.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen

from videogen.catalog import Defaults, ModelSpec
from videogen.families import KINDS, kinds_taking
from videogen.request import GROUPS, Request

Type = Literal["text", "int", "float", "bool", "choice", "numbers", "choices", "texts"]
#: fields whose empty value the model's catalog defaults decide
MODEL_DECIDES = frozenset(f.name for f in fields(Defaults))


@dataclass(frozen=True)
class FieldInfo:
    """One Request field: what it is, how it is entered, its range, and who takes it."""

    name: str
    group: str
    description: str
    type: Type
    #: the allowed values of a choice (or of each item of a list of choices)
    choices: tuple[str, ...]
    default: Any
    unit: str | None
    minimum: float | None
    maximum: float | None
    #: whether the bounds themselves are excluded (``gt``/``lt``)
    exclusive_minimum: bool
    exclusive_maximum: bool
    max_items: int | None
    advanced: bool
    #: the CLI option, e.g. ``--num-frames``
    flag: str
    #: the kinds of model that read it (``videogen.families.KINDS``)
    kinds: tuple[str, ...]
    #: who decides a value left empty, when neither the schema nor the catalog has one
    decided_by: str | None
    #: a file input: "image" or "video" (on the server, the id of an upload of that kind)
    upload: str | None

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()

    @property
    def range_text(self) -> str:
        """``1 to 1000``, ``> 0 and <= 1``, ``at least 1``, or ``""``."""
        low, high = self.minimum, self.maximum
        if low is None and high is None:
            return ""
        if low is not None and high is not None and not (self.exclusive_minimum or self.exclusive_maximum):
            return f"{_number(low)} to {_number(high)}"
        parts = []
        if low is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '>='} {_number(low)}")
        if high is not None:
            parts.append(f"{'<' if self.exclusive_maximum else '<='} {_number(high)}")
        return " and ".join(parts)

    def default_text(self, spec: ModelSpec | None = None) -> str:
        """What applies when the field is left out: the schema's default, ``spec``'s model's, or
        who decides it."""
        value = self.default if spec is None else self.model_default(spec)
        if value is None:
            if self.decided_by is not None:
                return self.decided_by
            return "the model's" if self.name in MODEL_DECIDES else "none"
        return shown(value)

    def model_default(self, spec: ModelSpec) -> Any:
        """The value ``spec``'s model uses when the field is left empty (None where nothing applies)."""
        if self.default is not None:
            return self.default
        if self.name in MODEL_DECIDES:
            return getattr(spec.defaults, self.name)
        return {"revision": spec.revision, "variant": spec.variant}.get(self.name)

    def taken_by(self, kind: str) -> bool:
        return kind in self.kinds

    def choices_for(self, kind: str) -> tuple[str, ...]:
        """The choices ``kind``'s models take (some take fewer than the schema allows)."""
        return KINDS[kind].choices.get(self.name, self.choices)


def shown(value: Any) -> str:
    """A field's value as people write it: on/off, comma-separated lists."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _number(value: float) -> str:
    if isinstance(value, int) and value > 2**32 and value.bit_count() == 1:
        return f"2^{value.bit_length() - 1}"  # the seed's bound
    return f"{value:g}" if isinstance(value, float) else str(value)


def _field_info(name: str) -> FieldInfo:
    field = Request.model_fields[name]
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    kind, choices = _entry(field.annotation)
    bounds = _bounds(field.metadata)
    if "minimum" in extra:  # checked by a validator, declared for the schema
        bounds.setdefault("ge", extra["minimum"])
    return FieldInfo(
        name=name,
        group=str(extra["x-group"]),
        description=field.description or "",
        type=kind,
        choices=choices,
        default=field.get_default(call_default_factory=True),
        unit=extra.get("x-unit"),  # type: ignore[arg-type]
        minimum=bounds.get("ge", bounds.get("gt")),
        maximum=bounds.get("le", bounds.get("lt")),
        exclusive_minimum="gt" in bounds,
        exclusive_maximum="lt" in bounds,
        max_items=bounds.get("max_length") if kind in ("numbers", "choices") else None,
        advanced=bool(extra.get("x-advanced", False)),
        flag=str(extra.get("x-flag", "--" + name.replace("_", "-"))),
        kinds=tuple(kinds_taking(name)),
        decided_by=extra.get("x-default"),  # type: ignore[arg-type]
        upload=extra.get("x-upload"),  # type: ignore[arg-type]
    )


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    """A field's constraints by pydantic's names (ge, gt, le, lt, max_length)."""
    bounds: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, Ge):
            bounds["ge"] = item.ge
        elif isinstance(item, Gt):
            bounds["gt"] = item.gt
        elif isinstance(item, Le):
            bounds["le"] = item.le
        elif isinstance(item, Lt):
            bounds["lt"] = item.lt
        elif isinstance(item, MaxLen):
            bounds["max_length"] = item.max_length
    return bounds


def _entry(annotation: Any) -> tuple[Type, tuple[str, ...]]:
    """How a field's type is entered: its control type, and its choices."""
    inner = _strip(annotation)
    origin = typing.get_origin(inner)
    if origin is list:
        item = _strip(typing.get_args(inner)[0])
        if typing.get_origin(item) is Literal:
            return "choices", typing.get_args(item)
        return ("texts" if item is str else "numbers"), ()
    if origin is Literal:
        return "choice", typing.get_args(inner)
    return {bool: "bool", int: "int", float: "float"}.get(inner, "text"), ()  # type: ignore[return-value]


def _strip(annotation: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _strip(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _strip(inner)
    return annotation


@cache
def all_fields() -> dict[str, FieldInfo]:
    """Every Request field, in the schema's order."""
    return {name: _field_info(name) for name in Request.model_fields}


def upload_fields() -> dict[str, str]:
    """The file inputs: field name -> the kind of file ("image" or "video")."""
    return {name: info.upload for name, info in all_fields().items() if info.upload}


def field_info(name: str) -> FieldInfo:
    return all_fields()[name]


def fields_of_kind(kind: str) -> list[FieldInfo]:
    """The fields a kind of model takes, in the schema's order."""
    taken = KINDS[kind].taken
    return [info for info in all_fields().values() if info.name in taken]


def grouped(infos: list[FieldInfo]) -> dict[str, list[FieldInfo]]:
    """Fields by group, in ``GROUPS`` order (groups with no field left out)."""
    groups: dict[str, list[FieldInfo]] = {group: [] for group in GROUPS}
    for info in infos:
        groups[info.group].append(info)
    return {group: members for group, members in groups.items() if members}
