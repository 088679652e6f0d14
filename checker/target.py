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
