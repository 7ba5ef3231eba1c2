"""Every Request field reaches every front-end from its one declaration: a flag of `videogen generate`
with its description, a described and constrained property of the running server's /openapi.json,
and a row of the fields reference (docs/fields.md, which must be what the schema says today)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from videogen.cli import app
from videogen.families import KINDS
from videogen.field_reference import markdown
from videogen.fields import all_fields

REFERENCE = Path(__file__).parents[2] / "docs" / "fields.md"
FIELDS = list(all_fields().values())


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def help_blocks() -> dict[str, str]:
    """``videogen generate --help``, one whitespace-normalised block per option (or argument)."""
    result = CliRunner().invoke(app, ["generate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    blocks = re.split(r"\n│ +(?=-|prompt)", result.stdout)[1:]
    cleaned = [words(re.sub(r"[│╭╰─╮╯]", " ", block)) for block in blocks]
    return {block.split()[0]: block for block in cleaned}


@pytest.mark.parametrize("info", FIELDS, ids=[info.name for info in FIELDS])
def test_every_field_is_a_described_option_of_generate(info, help_blocks) -> None:
    key = "prompt" if info.name == "prompt" else info.flag
    assert key in help_blocks, f"{info.name} has no {key} in `videogen generate --help`"
    block = help_blocks[key]
    assert words(info.description) in block
    if info.range_text and info.name != "prompt":
        assert info.range_text in block
    if info.name != "prompt":
        assert "default:" in block


def test_every_field_is_described_with_its_constraints_in_the_servers_openapi(live_server) -> None:
    schema = live_server.client.get("/openapi.json").json()["components"]["schemas"]["Request"]
    properties = schema["properties"]
    assert list(properties) == [info.name for info in FIELDS]
    for info in FIELDS:
        prop = properties[info.name]
        assert prop["description"] == info.description, info.name
        assert prop["x-group"] == info.group and prop["x-kinds"] == list(info.kinds), info.name
        branches = prop.get("anyOf", [prop])
        typed = next(branch for branch in branches if branch.get("type") != "null")
        if info.choices:
            items = typed.get("items", typed)
            allowed = items["enum"] if "enum" in items else [items["const"]]  # one choice: a const
            assert tuple(allowed) == info.choices, info.name
        for bound, key in ((info.minimum, "minimum"), (info.maximum, "maximum")):
            if bound is not None:
                exclusive = info.exclusive_minimum if key == "minimum" else info.exclusive_maximum
                name = f"exclusive{key.capitalize()}" if exclusive else key
                assert {**typed, **prop}.get(name) == bound, (info.name, name, prop)


def test_the_fields_reference_is_what_the_schema_says() -> None:
    assert REFERENCE.read_text() == markdown(), "run `videogen fields --markdown > docs/fields.md`"
    for info in FIELDS:
        assert f"| `{info.name}`" in REFERENCE.read_text()


def test_a_kind_takes_fewer_choices_only_where_its_family_says_so() -> None:
    """SVD and SV3D sample with Euler only: the table says so, and submit refuses the others."""
    from videogen.errors import FieldError
    from videogen.request import Request, resolve_request

    scheduler = all_fields()["scheduler"]
    assert scheduler.choices_for("svd") == ("euler",) and scheduler.choices_for("unet3d") == scheduler.choices
    for kind in KINDS.values():
        for name, allowed in kind.choices.items():
            assert set(allowed) < set(all_fields()[name].choices)
    with pytest.raises(FieldError, match="scheduler: 'ddim' is not allowed; svd takes only euler"):
        resolve_request(Request(model="svd", image="still.png", scheduler="ddim"))


def test_every_property_of_every_answer_is_described(live_server) -> None:
    schemas = live_server.client.get("/openapi.json").json()["components"]["schemas"]
    undescribed = [
        f"{name}.{prop}"
        for name, schema in schemas.items()
        for prop, body in schema.get("properties", {}).items()
        if not body.get("description")
    ]
    assert undescribed == []
