"""What `checker migrate` was told, in a module of its own that imports nothing heavy: the CLI
takes its options' defaults from it when it starts (`checker --help` loads no boto3, jsonschema
or yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class MigrateOptions:
    """What `checker migrate` was told (see its --help)."""

    offline: bool = False
    switch: bool = True
    dry_run: bool = False
    allow_deletes: bool = False
    allow_weaker_target: bool = False
    segments: int = 4
    capacity_share: float = 0.5
    timeout: Optional[float] = None
    page_items: int = 500
    via: str = "scan"                 # "s3": DynamoDB's export to S3 and import from it
    bucket: Optional[str] = None
    prefix: str = "checker-migrations"
    create_timeout: float = 1800      # seconds for a table migration's target to become ACTIVE
    fence_quiet: float = 3.0          # the cut-over: seconds the fenced source's stream must stay quiet
    fence_settle: float = 30.0        # ... and at most this long after the fence (more: it does not hold)
    stop_hard: bool = False           # the CLI's: a run still going GRACE_SECONDS after its timeout or an
                                      # interrupt (a transform that never returns) ends the process (hard_stop.py)
