"""Migrations: data migrations (scripts that change items in place) and table migrations (a new
table from a new spec, every item copied and verified, then the app's binding switched).

A data migration is `migrations/NNNN_name.py` beside the checklist:

    TABLE = "liked_songs"              # a spec's TableName
    def transform(item):               # plain Python values (TypeDeserializer's)
        if "genre" in item:
            return None                # no change
        return {**item, "genre": "unknown"}

`transform` returns the new item, None for no change, or `checker.migrate.DELETE` (only with
`--allow-deletes`). Each changed item is one UpdateItem that sets or removes only the changed
attributes, conditioned on their old values (a whole-item condition is impossible: expressions
are capped at 4 KB, items reach 400 KB); when the item changed meanwhile, it is read again and
transformed again. A transform must therefore be idempotent: `transform(transform(x))` changes
nothing. Data migrations are forward-only: a file changed after it was applied is refused.

A table migration is declared, not scripted: `tables: {X: {migrate_from: Y}}` in the checklist
(see docs/migrations.md). Everything goes through the ledger (ledger.py).
"""
from __future__ import annotations

from .options import MigrateOptions

# The rest loads when first used (PEP 562): the CLI imports MigrateOptions when it starts, and the
# engine below it (boto3, jsonschema, yaml) comes only with a command that migrates.
DECLARED = ("DELETE", "DataMigration", "TableMigration", "has_data_migrations", "load_data_migrations")
RUN = ("describe_pending", "pending", "pending_changes", "rollback_table", "run_pending", "status")

__all__ = ["MigrateOptions", *DECLARED, *RUN]


def __getattr__(name: str):
    if name not in DECLARED + RUN:   # first: `from . import run` below asks for submodules by this route
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import declared, run
    return getattr(declared if name in DECLARED else run, name)
