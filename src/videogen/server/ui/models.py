"""The models the UI offers: every model this server knows, marked where its weights are missing."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from videogen.catalog import ModelSpec
from videogen.families import KINDS
from videogen.loading import is_cached
from videogen.models_dir import available_models


@dataclass(frozen=True)
class Offered:
    """One model in the model dropdown."""

    spec: ModelSpec
    #: its weights are on this server (a job for it would otherwise be refused)
    available: bool

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def label(self) -> str:
        return self.id if self.available else f"{self.id} (weights missing)"

    def note(self) -> str:
        """HTML under the dropdown: what the model does, and how to get weights that are missing."""
        name = html.escape(self.id)
        text = f"<b>{html.escape(KINDS[self.spec.kind].label)}.</b> {html.escape(self.spec.description)}"
        if not self.available:
            text += (
                f"<p class='weights-missing'><b>The weights of {name} are not on this server.</b> Run "
                f"<code>videogen download {name}</code> on the server, then reload this page.</p>"
            )
        return f"<div class='model-note' data-model='{name}' data-kind='{self.spec.kind}'>{text}</div>"


def offered_models(models_dir: Path | None) -> dict[str, Offered]:
    """Models by id: those with weights here first (the server's own folders before the catalog's)."""
    models = [Offered(spec, is_cached(spec)) for spec in available_models(models_dir).values()]
    models.sort(key=lambda m: (not m.available, m.spec.local_dir is None))
    return {model.id: model for model in models}
