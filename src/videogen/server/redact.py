"""Server paths out of what clients read: job records name files relative to the data directory.

A message such as ``image: '/srv/videogen/uploads/ab.png' does not exist`` becomes
``image: 'uploads/ab.png' does not exist``, and a model folder ``/models/tiny-unet3d`` becomes
``<models>/tiny-unet3d``, so errors tell the client what went wrong without mapping the server.
"""

from __future__ import annotations

import re
from pathlib import Path

from videogen.server.settings import Settings


def _spellings(folder: Path) -> set[str]:
    """The absolute ways a message may spell ``folder``: as given, made absolute, links resolved."""
    forms = {folder, folder.absolute(), folder.resolve()}
    return {str(form) for form in forms if form.is_absolute() and str(form) != "/"}


def _replace(text: str, folder: str, inside: str, alone: str) -> str:
    """``folder/x`` becomes ``inside + x``, and ``folder`` where it ends a path becomes ``alone``
    (not ``folder-old`` or ``folder.db``, which are other files)."""
    pattern = re.compile(re.escape(folder) + r"(/|(?![\w\-]|\.\w))")
    return pattern.sub(lambda match: inside if match.group(1) else alone, text)


def redact_paths(text: str, settings: Settings) -> str:
    """``text`` with the data directory's absolute path made relative (``<data>`` where it stands
    alone) and the models folder's replaced by ``<models>``."""
    names = {form: ("", "<data>") for form in _spellings(settings.data_dir)}
    if settings.models_dir is not None:
        names.update({form: ("<models>/", "<models>") for form in _spellings(settings.models_dir)})
    # Longest first, so a folder inside another is replaced by its own name.
    for form in sorted(names, key=len, reverse=True):
        text = _replace(text, form, *names[form])
    return text
