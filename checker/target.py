"""Where a command acts, as one value: the specs and checklist it reads, the environment, and the
AWS options given over the environment's own. Built once from the command line (or by a deploy
script), passed down unchanged, and printed back as the options that reproduce it, so every
command checker suggests (fix lines, hints, `checker local`'s) points where this one did.
"""
from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .secrets import masked_url

DEFAULT_CHECKLIST = "checklist.yaml"
DEFAULT_SPECS = "table_specs"
DEFAULT_RETRY_MODE = None      # None: botocore's own (AWS_RETRY_MODE, the profile, else "standard")
DEFAULT_MAX_ATTEMPTS = None


FLAGS = {"specs_dir": "--specs", "checklist_path": "--checklist", "env": "--env", "region": "--region",
         "profile": "--profile", "endpoint_url": "--endpoint-url", "table_prefix": "--table-prefix",
         "table_suffix": "--table-suffix", "retry_mode": "--retry-mode", "max_attempts": "--max-attempts"}


@dataclass(frozen=True)
class Target:
    """The options of one command as given (None: not given). What they resolve to (the
    checklist's environment, its region and prefix, the specs directory it names) is the
    Project's; this value only says what was asked for, so that it can be said again."""

    specs_dir: Optional[Path] = None
    checklist_path: Optional[Path] = None
    env: Optional[str] = None
    region: Optional[str] = None
    profile: Optional[str] = None
    endpoint_url: Optional[str] = None
    table_prefix: Optional[str] = None
    table_suffix: Optional[str] = None
    retry_mode: Optional[str] = DEFAULT_RETRY_MODE
    max_attempts: Optional[int] = DEFAULT_MAX_ATTEMPTS
    # the command's --timeout: how long this run may take, not where it acts (never printed back)
    timeout: Optional[float] = field(default=None, compare=False)

    def with_env(self, env: Optional[str]) -> Target:
        return dataclasses.replace(self, env=env)

    def under(self, group: Target) -> Target:
        """These options given after a subcommand, over those its group was given (`checker
        migrate --env prod status`): one target, whichever side an option was written on. The
        same option given on both sides with different values is a ValueError naming it."""
        merged = {}
        for item in dataclasses.fields(self):
            own, given = getattr(self, item.name), getattr(group, item.name)
            if item.compare and own is not None and given is not None and own != given:
                flag = FLAGS.get(item.name, item.name)
                raise ValueError(f"{flag} is given twice, {given} and {own}: give it once")
            merged[item.name] = own if own is not None else given
        return Target(**merged)

    def to_cli(self, env: Optional[str] = None) -> str:
        """The options that make another checker command act here (`env`: the environment
        resolved, when the checklist's default_env chose it). The endpoint's credentials are masked."""
        pairs = [("--specs", str(self.specs_dir) if self.specs_dir is not None else None),
                 ("--checklist", str(self.checklist_path) if self.checklist_path is not None else None),
                 ("--env", self.env or env), ("--region", self.region), ("--profile", self.profile),
                 ("--endpoint-url", masked_url(self.endpoint_url) if self.endpoint_url else None),
                 ("--table-prefix", self.table_prefix), ("--table-suffix", self.table_suffix),
                 ("--retry-mode", self.retry_mode),
                 ("--max-attempts", str(self.max_attempts) if self.max_attempts is not None else None)]
        return " ".join(f"{flag} {shlex.quote(value)}" for flag, value in pairs if value is not None)

    def command(self, subcommand: str, env: Optional[str] = None) -> str:
        """A whole `checker ...` line acting where this target does."""
        return " ".join(filter(None, ["checker", subcommand, self.to_cli(env)]))

    def checklist_file(self) -> Optional[Path]:
        """The checklist to read: the one named, else checklist.yaml when it exists."""
        if self.checklist_path is not None:
            return Path(self.checklist_path)
        default = Path(DEFAULT_CHECKLIST)
        return default if default.exists() else None


def checklist_path(path) -> Optional[Path]:
    """The checklist to use: the one named (which must exist), else checklist.yaml if present;
    False: none."""
    from .errors import CheckerError
    if path is False:
        return None
    if path is None:
        default = Path(DEFAULT_CHECKLIST)
        return default if default.exists() else None
    path = Path(path)
    if not path.exists():
        raise CheckerError(f"{path}: checklist not found")
    return path


def environment_names(target: Target) -> list:
    """Every environment of the target's checklist, in its order (for --all-envs)."""
    from .checklist import load_checklist
    from .errors import CheckerError
    path = checklist_path(target.checklist_path)
    if path is None:
        raise CheckerError(f"--all-envs needs a checklist ({DEFAULT_CHECKLIST} or --checklist FILE)")
    return list(load_checklist(path, sections=("environments",)).environments)


def checklist_header(path: Path) -> dict:
    """What must be known before the checklist can be loaded in full: the specs directory it
    names, its default_env and its environments' names (a malformed file fails here, whole)."""
    from .checklist import read_checklist_document
    from .specs import SpecError
    document, problems = read_checklist_document(path)
    if problems:
        raise SpecError(problems)
    if not isinstance(document, dict):
        return {}
    environments = document.get("environments")
    return {"specs": document.get("specs") if isinstance(document.get("specs"), str) else None,
            "default_env": document.get("default_env") if isinstance(document.get("default_env"), str) else None,
            "environments": list(environments) if isinstance(environments, dict) else [],
            # what a template's parameters resolve to (checker/iac), read before the specs are
            "templates": {name: {key: settings.get(key) for key in ("parameters", "stack", "region", "profile",
                                                                   "role_arn", "endpoint_url")}
                          for name, settings in (environments.items() if isinstance(environments, dict) else ())
                          if isinstance(settings, dict)},
            "local": document.get("local") if isinstance(document.get("local"), dict) else {},
            "require": entry.get("require") if isinstance(entry := document.get("entry_point"), dict) else None}


def template_context(target: Target, header: dict, env: Optional[str], account_of=None):
    """What a template's parameters and pseudo-parameters are in `env` (checker/iac);
    `account_of`: reads AWS::AccountId when a template asks for it (offline: None)."""
    from .iac import TemplateContext
    settings = (header.get("templates") or {}).get(env or "") or {}
    parameters = settings.get("parameters")
    return TemplateContext(parameters={str(k): v for k, v in parameters.items()} if isinstance(parameters, dict) else {},
                           region=target.region or (settings.get("region") if isinstance(settings.get("region"), str)
                                                    else None),
                           stack=settings.get("stack") if isinstance(settings.get("stack"), str) else None,
                           environment=env or "", account_of=account_of)


def specs_directory(target: Target, checklist: Optional[Path], header: dict) -> Path:
    """--specs when given; else the checklist's `specs:` (relative to the checklist); else
    table_specs beside the checklist (or here, without one). A file: a template (checker/iac)."""
    if target.specs_dir is not None:
        return Path(target.specs_dir)
    base = checklist.parent if checklist is not None else Path(".")
    specs = header.get("specs")
    if specs is None:
        return base / DEFAULT_SPECS
    from .checklist import specs_path_problem
    from .errors import CheckerError
    problem = specs_path_problem(specs)
    if problem:
        raise CheckerError(f"{checklist}: $.specs: {problem}")
    return base / specs
