"""Running the declared migrations of one environment: what is pending, the run under the
ledger's lease (table migrations first, then data migrations in order), status and rollback."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

from ..errors import CheckerError
from ..poll import REAL, Clock, within
from .data import run_data_migration
from .declared import (
    DataMigration,
    MigrationResult,
    TableMigration,
    changed_file,
    imported,
    load_data_migrations,
    load_table_migrations,
    with_functions,
)
from .hard_stop import HardStop
from .ledger import MigrationStatus, caller_arn, ledger_of
from .options import MigrateOptions

if TYPE_CHECKING:
    from ..environment import Environment


# -- what is pending --------------------------------------------------------------------------
def pending(environment: Environment, live: Optional[dict] = None) -> list:
    """[(migration, ledger entry or None)] of every migration not finished in this environment:
    table migrations whose source exists and that are not switched, data migrations not applied."""
    from ..live import describe_tables
    from .ledger import APPLIED, SWITCHED
    entries = ledger_of(environment).entries()
    found = []
    table_migrations = load_table_migrations(environment)
    if live is None:
        described = describe_tables(environment.dynamodb(), [m.source for m in table_migrations])
    else:
        described = {m.source: (live[m.source].description if m.source in live else None) for m in table_migrations}
    for migration in table_migrations:
        entry = entries.get(migration.id)
        if described.get(migration.source) is not None and MigrationStatus.of(entry) is not SWITCHED:
            found.append((migration, entry))
    for data in load_data_migrations(environment):
        entry = entries.get(data.id)
        if entry and entry.status is APPLIED and entry.sha256 != data.sha256:
            raise changed_file(data, entry)
        if MigrationStatus.of(entry) is not APPLIED:
            found.append((data, entry))
    return found


def unknown_sources(environment: Environment, described: dict) -> list:
    """Table migrations whose `migrate_from` names no live table and no spec of the checklist's
    (`described`: {live name: description or None}): a typo, never a new environment (where the
    source's spec creates it), and never a reason to create the target empty."""
    specs = {t.name for t in environment.tables}
    return [m for m in load_table_migrations(environment)
            if described.get(m.source) is None and m.source not in specs]


def unknown_source_message(migration: TableMigration) -> str:
    return (f"tables.{migration.target.spec_name}.migrate_from: {migration.source} is no live table in this "
            "environment and no spec of the checklist's: a typo? Name the table the app uses now (the prefix and "
            "suffix are added); nothing is created until it does")


def pending_changes(environment: Environment, live: dict) -> list:
    """plan's entries for pending migrations (a missing target's is the diff's already)."""
    from ..diff import migrate_table_change
    from ..model import Action, Change
    changes = []
    for migration, entry in pending(environment, live):
        state = f"ledger: {entry.status}" if entry else "not started"
        if isinstance(migration, TableMigration):
            target = live.get(migration.target.name)
            if target is not None and target.exists:
                changes.append(migrate_table_change(migration.target, state))
        else:
            table = next(t.name for t in environment.tables if t.spec_name == migration.table)
            changes.append(Change(table, Action.MIGRATE_DATA, f"data migration {migration.id} ({state}): "
                                  "`checker migrate` applies it", False))
    return changes


# -- running them ------------------------------------------------------------------------------
def describe_pending(todo: list) -> list:
    """One phrase per pending migration, for a prompt."""
    return [m.id if isinstance(m, DataMigration) else f"{m.source} -> {m.target.name}" for m, _ in todo]


def run_pending(environment: Environment, todo: list, options: MigrateOptions,
                echo: Callable[[str], None] = lambda line: None, clock: Clock = REAL) -> list:
    """Every migration of `todo` (from pending()): table migrations first, then data migrations
    in order, under the ledger's lease; a dry run writes nothing, the ledger included."""
    offline_only = [m for m, _ in todo if isinstance(m, TableMigration) and m.target.catch_up != "stream"]
    if offline_only and not options.offline and not options.dry_run:
        raise CheckerError(f"table migration(s) pending: {', '.join(f'{m.source} -> {m.target.name}' for m in offline_only)}; "
                           "without `catch_up: stream` a copy is offline: stop the app's writes to the source, then "
                           "pass --offline")
    deadline = within(options.timeout, clock) if options.timeout else None
    ledger = ledger_of(environment)
    # the user's code is executed from here on, and only here (plan, status and check read the files):
    # its imports as much as its transforms, so under the hard stop both
    with hard_stop(options, deadline, ledger, echo):
        tables = [with_functions(environment, m) for m, _ in todo if isinstance(m, TableMigration)]
        datas = [imported(m) for m, _ in todo if isinstance(m, DataMigration)]
        return _run(environment, ledger, tables, datas, options, deadline, echo, clock)


def _run(environment: Environment, ledger, tables: list, datas: list, options: MigrateOptions, deadline,
         echo: Callable[[str], None], clock: Clock) -> list:
    """run_pending's migrations, their code imported: a dry run, or each run under the lease."""
    from .table import TableMigrationRun
    if options.dry_run:
        return [MigrationResult(m.id, "table", MigrationStatus.DRY_RUN, f"would create {m.target.name} if missing, "
                                f"copy {m.source} into it, verify every item, then switch") for m in tables] + [
            run_data_migration(environment, ledger, m, dry_run=True, allow_deletes=options.allow_deletes,
                               segments=options.segments, echo=echo) for m in datas]
    ledger.ensure()
    results = []
    with ledger.lease(caller_arn(environment)):
        for migration in tables:
            results.append(TableMigrationRun(environment, ledger, migration, options, deadline, echo=echo, clock=clock).run())
        for data in datas:
            results.append(run_data_migration(environment, ledger, data, allow_deletes=options.allow_deletes,
                                              deadline=deadline, segments=options.segments, echo=echo,
                                              page_limit=options.page_items, clock=clock))
    return results


def hard_stop(options: Optional[MigrateOptions], deadline, ledger, echo: Callable[[str], None]):
    """The CLI's last resort against user code that never returns (hard_stop.py); in a library
    caller's process, nothing."""
    import contextlib
    if options is None or not options.stop_hard:
        return contextlib.nullcontext()
    return HardStop(deadline, ledger.release, echo)


def status(environment: Environment) -> list:
    """Every declared migration and its ledger status (read-only; no ledger: all pending)."""
    entries = ledger_of(environment).entries()
    results = []
    for migration in [*load_table_migrations(environment), *load_data_migrations(environment)]:
        entry = entries.get(migration.id)
        if isinstance(migration, DataMigration):
            kind, where = "data", migration.table
        else:
            kind, where = "table", f"{migration.source} -> {migration.target.name}"
        counted = f", {entry.items_read:,} read, {entry.items_written:,} written" if entry else ""
        fenced = f"; fenced: {entry.fence.describe()}" if entry is not None and entry.fence is not None else ""
        state = MigrationStatus.of(entry)
        read, written = (entry.items_read, entry.items_written) if entry is not None else (0, 0)
        results.append(MigrationResult(migration.id, kind, state, f"{where}{counted}{fenced}", read, written,
                                       switched=state is MigrationStatus.SWITCHED))
    return results


def rollback_table(environment: Environment, migration_id: str, echo: Callable[[str], None] = lambda line: None,
                   options: Optional[MigrateOptions] = None, clock: Clock = REAL) -> MigrationResult:
    from .table import rollback
    ledger = ledger_of(environment)
    declared = find_table_migration(environment, migration_id)
    if not ledger.exists():     # nothing ever migrated here: no lease to take on a table that is not there
        raise CheckerError(f"{migration_id}: nothing to roll back (no migration ledger in this environment: nothing "
                           "was migrated here); only a switched table migration rolls back")
    with hard_stop(options, None, ledger, echo):   # importing the reverse, or running it, may never return
        migration = with_functions(environment, declared)
        with ledger.lease(caller_arn(environment)):
            return rollback(environment, ledger, migration, options, echo=echo, clock=clock)


def find_table_migration(environment: Environment, migration_id: str) -> TableMigration:
    migrations = load_table_migrations(environment)
    found = next((m for m in migrations if m.id == migration_id), None)
    if found is None:
        known = ", ".join(m.id for m in migrations) or "none"
        raise CheckerError(f"{migration_id}: no table migration of that id in the checklist (known: {known})")
    return found
