"""What the project declares: data migrations (migrations/NNNN_name.py beside the checklist) and
table migrations (`tables: {NEW: {migrate_from: OLD}}`), loaded and checked, and what running
one returns."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..errors import CheckerError
from ..text import clip
from .ledger import LedgerEntry, MigrationStatus

if TYPE_CHECKING:
    from ..environment import Environment
    from ..model import ExpectedTable


class _Delete:
    def __repr__(self) -> str:
        return "checker.migrate.DELETE"


DELETE = _Delete()   # what a data migration's transform returns for "delete this item"
MIGRATION_FILE = re.compile(r"(\d{4})_[A-Za-z0-9_]+\.py")
RETRIES = 5          # re-reads of an item that changed under a data migration's update
SAMPLES = 5          # keys a dry run shows


@dataclass(frozen=True)
class DataMigration:
    id: str              # the file's stem: 0001_backfill_genre
    path: Path
    table: str           # a spec's TableName
    transform: Optional[Callable]   # None until imported(): plan, status and check never execute the file
    sha256: str


@dataclass(frozen=True)
class TableMigration:
    target: ExpectedTable  # the new spec, named for the environment
    source: str           # the live table it copies, named for the environment
    transform: Optional[Callable] = None     # None until with_functions(): plan and status never import it
    transform_name: Optional[str] = None
    reverse: Optional[Callable] = None       # target item -> source item: what rollback copies back with
    reverse_name: Optional[str] = None
    ledger_id: str = ""      # a rollback's own ledger item (table:NEW:rollback); else the id below

    @property
    def id(self) -> str:
        return self.ledger_id or f"table:{self.target.spec_name}"


@dataclass
class MigrationResult:
    id: str
    kind: str             # "data" | "table"
    status: MigrationStatus
    detail: str
    read: int = 0
    written: int = 0
    keys: list = field(default_factory=list)      # keys a dry run would change / that differ
    warnings: list = field(default_factory=list)
    switched: bool = False   # migrate: this run pointed the function at another table (the smoke checks follow);
                             # status: the ledger says the function points at the target

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "status": str(self.status), "detail": self.detail,
                "read": self.read, "written": self.written, "keys": self.keys, "warnings": self.warnings,
                "switched": self.switched}


# -- loading ----------------------------------------------------------------------------------
def migrations_directory(environment: Environment) -> Optional[Path]:
    if environment.checklist is None:
        return None
    return Path(environment.checklist.file).parent / "migrations"


def _import_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"checker_migration_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise CheckerError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a user's module: any failure (sys.exit too) is one line
        raise CheckerError(f"{path}: importing it raised {type(exc).__name__}: {clip(str(exc), 200)}") from None
    return module


def load_data_migrations(environment: Environment) -> list:
    """Every migrations/NNNN_name.py, in order, read without being executed (its id, sha256 and
    TABLE, a string literal; a module-level transform): `plan`, `status` and `check` must not run
    a file that loops at import or exits. Only regular files are read (a FIFO would block). Any
    malformed one is an error naming it. `imported()` executes one, when `migrate` runs it."""
    import ast
    directory = migrations_directory(environment)
    if directory is None or not directory.is_dir():
        return []
    specs = {t.spec_name: t for t in environment.tables}
    found = []
    numbers: dict = {}
    for path in sorted(directory.glob("*.py")):
        if path.name == "__init__.py":
            continue
        match = MIGRATION_FILE.fullmatch(path.name)
        if not match:
            raise CheckerError(f"{path}: a migration file is named NNNN_name.py (four digits, then letters, digits, _)")
        number = match.group(1)
        if number in numbers:
            raise CheckerError(f"{path}: number {number} is taken by {numbers[number]}; numbers are strictly increasing")
        numbers[number] = path.name
        if not path.is_file():
            raise CheckerError(f"{path}: not a regular file (a FIFO, a device, a dangling link?): migrations are files")
        content = path.read_bytes()
        try:
            tree = ast.parse(content, filename=str(path))
        except (SyntaxError, ValueError) as exc:
            raise CheckerError(f"{path}: not valid Python: {clip(str(exc), 200)}") from None
        table = next((node.value.value for node in tree.body if isinstance(node, ast.Assign)
                      and any(isinstance(t, ast.Name) and t.id == "TABLE" for t in node.targets)
                      and isinstance(node.value, ast.Constant)), None)
        if not isinstance(table, str) or table not in specs:
            raise CheckerError(f"{path}: TABLE must be a string naming a spec's TableName (one of "
                               f"{', '.join(sorted(specs))}), written as a literal: checker reads it without running "
                               f"the file; found {clip(repr(table), 80)}")
        defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))} | {
            t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
        if "transform" not in defined:
            raise CheckerError(f"{path}: needs a function transform(item) returning the new item, None or "
                               "checker.migrate.DELETE")
        found.append(DataMigration(path.stem, path, table, None, hashlib.sha256(content).hexdigest()))
    return found


def imported(migration: DataMigration) -> DataMigration:
    """The migration with its transform, its file executed now (as it was read: a file changed
    since is refused, its ledger entry would not say what ran)."""
    if hashlib.sha256(migration.path.read_bytes()).hexdigest() != migration.sha256:
        raise CheckerError(f"{migration.path}: changed while checker read it; run checker migrate again")
    module = _import_file(migration.path)
    transform = getattr(module, "transform", None)
    if getattr(module, "TABLE", None) != migration.table or not callable(transform):
        raise CheckerError(f"{migration.path}: when run, TABLE is not {migration.table!r} or transform is not a "
                           "function: TABLE a literal, transform(item) a function")
    return dataclasses.replace(migration, transform=transform)


def with_functions(environment: Environment, migration: TableMigration) -> TableMigration:
    """The table migration with its transform and reverse imported (only `migrate` runs them)."""
    base = Path(environment.checklist.file).parent if environment.checklist else Path(".")
    directories = [base, base / "migrations"]
    return dataclasses.replace(
        migration, transform=load_callable(migration.transform_name, directories) if migration.transform_name else None,
        reverse=load_callable(migration.reverse_name, directories) if migration.reverse_name else None)


def load_callable(reference: str, directories: list) -> Callable:
    """`module:function`, the module's file found in the checklist's folder (or migrations/) and
    loaded from there, never from sys.modules (two projects' `shape.py` are two modules), else an
    installed module."""
    module_name, _, function_name = reference.partition(":")
    relative = Path(*module_name.split("."))
    path = next((p for d in directories for p in (Path(d) / f"{relative}.py", Path(d) / relative / "__init__.py")
                 if p.is_file()), None)
    if path is not None:
        module = _import_file(path)
    else:
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a user's module (sys.exit too)
            raise CheckerError(f"transform {reference}: importing {module_name} raised {type(exc).__name__}: "
                               f"{clip(str(exc), 200)} (looked in {', '.join(str(d) for d in directories)} first)") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise CheckerError(f"transform {reference}: {module_name} has no function {function_name}")
    return function


def load_table_migrations(environment: Environment) -> list:
    """Every `migrate_from` of the checklist, its transform and reverse named, not imported."""
    migrations = []
    for table in environment.tables:
        if not table.migrate_from:
            continue
        migrations.append(TableMigration(table, table.migrate_from, None, table.transform, None, table.reverse))
    return migrations


def has_data_migrations(environment: Environment) -> bool:
    directory = migrations_directory(environment)
    return directory is not None and directory.is_dir() and any(directory.glob("*.py"))


def key_names_of(table) -> tuple:
    return tuple(k["AttributeName"] for k in table.spec.request["KeySchema"])


def changed_file(migration: DataMigration, entry: LedgerEntry) -> CheckerError:
    return CheckerError(f"{migration.path}: changed since it was applied (sha256 {entry.sha256[:12]}... then, "
                        f"{migration.sha256[:12]}... now); an applied data migration is forward-only: restore "
                        "the file and write a new migration")
