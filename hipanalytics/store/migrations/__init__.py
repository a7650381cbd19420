"""The store's schema migrations (Alembic): one revision file per change under ``versions/``.

A clinic's IT upgrades a shared PostgreSQL store the way it upgrades any Alembic-managed
database: back it up, then ``hipanalytics store upgrade --store URL`` (or ``--sql`` for the SQL
script to review and run by hand). A SQLite store on one machine is upgraded when it is opened.
See :mod:`hipanalytics.store.migrate` and docs/store.md.

Adding a revision: copy the newest file in ``versions/``, give it the next number as
``revision``, the previous one as ``down_revision``, write ``upgrade()`` with Alembic operations
(columns and tables spelt out, never generated from :func:`hipanalytics.records.table_spec` at run
time: a revision is a frozen record of one step), set ``SCHEMA_VERSION`` in the revision and
:data:`hipanalytics.store.migrate.HEAD`, and extend ``tests/test_migrations.py``.
"""
