"""The `migrations` check: an environment with a pending migration (a table migration not
switched, a data migration not applied) is not what the checklist describes yet."""
from __future__ import annotations

from ..context import CheckContext
from ..fixes import migrate_command
from ..results import CheckResult, Status


def check_migrations(ctx: CheckContext, log=None) -> list:
    from ..migrate import DataMigration, load_data_migrations, pending
    environment = ctx.environment
    if environment is None:
        return [CheckResult("migrations", "migrations", Status.SKIP, "no environment to read migrations from")]
    declared = any(t.migrate_from for t in environment.tables) or load_data_migrations(environment)
    if not declared:
        return [CheckResult("migrations", "migrations", Status.SKIP,
                            "not in the checklist: no migrations declared (tables.*.migrate_from, "
                            "migrations/NNNN_name.py)")]
    from ..live import describe_tables
    from ..migrate.declared import load_table_migrations
    from ..migrate.run import unknown_source_message, unknown_sources
    from ..model import LiveTable
    sources = [m.source for m in load_table_migrations(environment)]
    described = describe_tables(environment.dynamodb(), sources) if sources else {}
    results = [CheckResult(f"migrations:{m.id}", "migrations", Status.FAIL, unknown_source_message(m))
               for m in unknown_sources(environment, described)]
    for migration, entry in pending(environment, {name: LiveTable(name, found) for name, found in described.items()}):
        state = f"ledger: {entry.status}" if entry else "not started"
        what = (f"data migration on {migration.table}" if isinstance(migration, DataMigration)
                else f"{migration.source} -> {migration.target.name}")
        results.append(CheckResult(f"migrations:{migration.id}", "migrations", Status.FAIL,
                                   f"migration {migration.id} is pending ({what}; {state})",
                                   remediation="run it", checker_command="migrate"
                                   if isinstance(migration, DataMigration) else migrate_command(migration.target)))
    return results or [CheckResult("migrations", "migrations", Status.PASS, "every declared migration is done")]
