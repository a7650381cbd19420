"""Alembic's environment for the store: run the revisions on the connection hipanalytics passes
(``config.attributes["connection"]``), on the database URL of the configuration, or offline as a
SQL script (``hipanalytics store upgrade --sql``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    _run(config.attributes["connection"])
else:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()
