"""The plan: the pure diff of the specs against what live.py reads, plus the migrations not yet
done. Above both the reads and the migrations package, below the facade."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .diff import diff_tables
from .live import describe_tables, read_tables
from .model import LiveTable

if TYPE_CHECKING:
    from .environment import Environment


def read_plan(environment: Environment, for_apply: bool = False) -> list:
    """Every difference between the environment's specs and live DynamoDB (Change objects).
    Never writes. `for_apply`: the plan apply sends at once, which may list tables rather than
    describe each missing one (live.read_tables). The tables migrations copy from are read too,
    and the migrations not yet done are part of the plan."""
    from .migrate import has_data_migrations, pending_changes
    client = environment.dynamodb()
    tables = environment.tables
    live = read_tables(client, tables, list_first=for_apply)
    sources = sorted({t.migrate_from for t in tables if t.migrate_from and t.migrate_from not in live})
    live |= {name: LiveTable(name, found) for name, found in describe_tables(client, sources).items()}
    from .errors import CheckerError
    from .migrate.run import unknown_source_message, unknown_sources
    described = {name: table.description if table.exists else None for name, table in live.items()}
    if unknown := unknown_sources(environment, described):
        raise CheckerError(unknown_source_message(unknown[0]))
    changes = diff_tables(tables, live)
    if any(t.migrate_from for t in tables) or has_data_migrations(environment):
        changes += pending_changes(environment, live)
    return changes
