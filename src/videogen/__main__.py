"""``python -m videogen`` is the same as the ``videogen`` command."""

from videogen.cli import app

app()
