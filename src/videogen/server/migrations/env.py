"""Alembic environment: runs on the connection that ``videogen.server.database.migrate`` hands over.

A new revision is written the same way: build the Config as ``migrate`` does, put a connection to an
up-to-date database in ``config.attributes["connection"]`` and call
``alembic.command.revision(config, message, autogenerate=True)``.
"""

from __future__ import annotations

from alembic import context

from videogen.server.store import Base

connection = context.config.attributes["connection"]
# Batch mode lets later migrations alter SQLite tables (which lack most ALTER TABLE forms).
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
