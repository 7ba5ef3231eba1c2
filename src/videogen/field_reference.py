"""The reference of request fields (YAML keys, CLI flags, REST JSON keys), written from the schema.

``videogen fields`` prints it; ``docs/fields.md`` is its Markdown form, checked by a test to be what
the schema says today.
"""

from __future__ import annotations

from videogen.families import KINDS
from videogen.fields import FieldInfo, all_fields, grouped
from videogen.request import GROUPS

#: short column names for the kinds of model (a kind not named here is shown by its name)
SHORT_NAMES = {
    "unet3d": "T2V",
    "svd": "SVD",
    "sv3d_u": "SV3D_u",
    "sv3d_p": "SV3D_p",
    "wan_t2v": "Wan",
    "wan_ti2v": "Wan TI2V",
    "wan_a14b": "Wan A14B",
    "wan_i2v": "Wan I2V",
    "wan_flf2v": "Wan FLF2V",
    "wan_a14b_i2v": "Wan A14B I2V",
}


def value_text(info: FieldInfo, kind: str | None = None) -> str:
    """What a field takes (for ``kind``'s models): its choices, ``numbers``, or its type with unit
    and range."""
    choices = info.choices if kind is None else info.choices_for(kind)
    if choices:
        joined = " \\| ".join(f"`{choice}`" for choice in choices)
        return f"list of {joined}" if info.type == "choices" else joined
    named = {"numbers": "number or list of numbers", "texts": "list of text", "bool": "true / false"}
    kind = named.get(info.type, info.type)
    facts = " ".join(part for part in (info.range_text, info.unit) if part)
    return f"{kind}, {facts}" if facts else kind


def markdown() -> str:
    """Every field by group: key and flag, what it takes, default, the kinds of model that read it."""
    columns = {name: SHORT_NAMES.get(name, name) for name in KINDS}
    kinds = "; ".join(f"{columns[name]}: {kind.label}" for name, kind in KINDS.items())
    lines = [
        "# Request fields",
        "",
        "<!-- written by `videogen fields --markdown`; a test checks it is up to date -->",
        "",
        "One set of names everywhere: YAML config keys and REST JSON keys are the field names, CLI flags",
        "are the same names with dashes (`num_frames` -> `--num-frames`). Unknown keys are errors, and a",
        "field the chosen model does not read is refused, naming it. An empty value takes the default",
        "shown; `0` means 0.",
        "",
        f"Models: {kinds}.",
    ]
    for group, infos in grouped(list(all_fields().values())).items():
        lines += ["", f"## {GROUPS[group]}", ""]
        lines += ["| field (flag) | takes | default | " + " | ".join(columns.values()) + " | meaning |"]
        lines += ["|---" * (4 + len(columns)) + "|"]
        for info in infos:
            flag = f" (`{info.flag}`)" if info.flag != "--" + info.name.replace("_", "-") else ""
            marks = " | ".join("x" if info.taken_by(kind) else "" for kind in columns)
            cells = [f"`{info.name}`{flag}", value_text(info), info.default_text(), marks]
            lines.append("| " + " | ".join(cells + [info.description.replace("|", "\\|")]) + " |")
    return "\n".join(lines) + "\n"
