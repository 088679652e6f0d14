"""`checker export`: adopt an environment that already exists, live tables in, specs out.

`spec_from_table` is pure: DescribeTable's `Table` (and the table's tags) in, the CreateTable
request that would make that table out, with only the fields CreateTable takes and the table
states, named without the environment's prefix/suffix. An on-demand table gets no 0/0
throughput; a stream, encryption or table class appear only when the table has them, so `plan`
against the same account says "In sync" for the exported files.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .checklist import TABLE_NAME
from .errors import CheckerError, call
from .text import clip, escape_controls

if TYPE_CHECKING:
    from .environment import Environment


def _throughput(value: Optional[dict]) -> dict:
    value = value or {}
    return {"ReadCapacityUnits": value.get("ReadCapacityUnits", 0), "WriteCapacityUnits": value.get("WriteCapacityUnits", 0)}


def _on_demand(value: Optional[dict]) -> Optional[dict]:
    limits = {k: v for k, v in (value or {}).items() if k in ("MaxReadRequestUnits", "MaxWriteRequestUnits") and v != -1}
    return limits or None


def _index(index: dict, provisioned: bool, local: bool = False) -> dict:
    out = {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"],
           "Projection": {k: v for k, v in index.get("Projection", {}).items() if k in ("ProjectionType", "NonKeyAttributes")}}
    if not local:
        if provisioned:
            out["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
        elif _on_demand(index.get("OnDemandThroughput")):
            out["OnDemandThroughput"] = _on_demand(index.get("OnDemandThroughput"))
    return out


def spec_from_table(table: dict, spec_name: str, tags: Optional[dict] = None, aws_managed_keys=frozenset()) -> dict:
    billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    provisioned = billing == "PROVISIONED"
    key_names = {k["AttributeName"] for k in table["KeySchema"]}
    for index in table.get("GlobalSecondaryIndexes", []) + table.get("LocalSecondaryIndexes", []):
        key_names |= {k["AttributeName"] for k in index["KeySchema"]}
    spec: dict = {
        "TableName": spec_name,
        "AttributeDefinitions": [a for a in table.get("AttributeDefinitions", []) if a["AttributeName"] in key_names],
        "KeySchema": table["KeySchema"],
    }
    if table.get("LocalSecondaryIndexes"):
        spec["LocalSecondaryIndexes"] = [_index(i, provisioned, local=True) for i in table["LocalSecondaryIndexes"]]
    if table.get("GlobalSecondaryIndexes"):
        spec["GlobalSecondaryIndexes"] = [_index(i, provisioned) for i in table["GlobalSecondaryIndexes"]]
    spec["BillingMode"] = billing
    if provisioned:
        spec["ProvisionedThroughput"] = _throughput(table.get("ProvisionedThroughput"))
    elif _on_demand(table.get("OnDemandThroughput")):
        spec["OnDemandThroughput"] = _on_demand(table.get("OnDemandThroughput"))
    stream = table.get("StreamSpecification") or {}
    if stream.get("StreamEnabled"):
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    sse = table.get("SSEDescription") or {}
    if sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING") and sse.get("SSEType", "KMS") == "KMS":
        spec["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
        if sse.get("KMSMasterKeyArn") and sse["KMSMasterKeyArn"] not in aws_managed_keys:
            # an AWS managed key's ARN is this account's: SSEType KMS without a key means it anywhere
            spec["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyArn"]
    table_class = (table.get("TableClassSummary") or {}).get("TableClass")
    if table_class and table_class != "STANDARD":
        spec["TableClass"] = table_class
    if table.get("DeletionProtectionEnabled"):  # off is the default: a spec written with false would
        spec["DeletionProtectionEnabled"] = True  # later plan turning it on as a manual "disable" step
    if tags:
        spec["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    return spec


def checklist_snippet(wishes: dict, unread: Sequence[str] = ()) -> str:
    """The checklist's `tables:` section for the TTL and PITR found ({spec name: {...}}), and a
    comment for each that could not be read (never taken for "off")."""
    notes = [f"# {line}: check it by hand" for line in unread]
    if not wishes:
        return "\n".join(notes + ["# no TTL or point-in-time recovery found on the exported tables: "
                                   "nothing to add to checklist.yaml"])
    lines = notes + ["# add to checklist.yaml:", "tables:"]
    for name, wish in sorted(wishes.items()):
        lines.append(f"  {name}:")
        lines += [f"    {key}: {'true' if value is True else value}" for key, value in wish.items()]
    return "\n".join(lines)


@dataclass(frozen=True)
class Export:
    files: list          # the spec files written
    snippet: str         # the checklist `tables:` section for the TTL and PITR found
    left_out: dict = field(default_factory=dict)   # environment name -> its tables found here, not exported


def export_tables(environment: Environment, out_dir, tables=(), force: bool = False, every: bool = False) -> Export:
    """Write a spec file per live table (those named, else every table with the environment's
    prefix/suffix, less those another environment of the checklist names by its own prefix or
    suffix unless `every`), the prefix/suffix removed; never overwrite a file without `force`."""
    from .live import describe_tables, in_parallel, read_tags

    client = environment.dynamodb()
    names, left_out = chosen_tables(environment, client, tables, every)
    out = Path(out_dir)
    descriptions = describe_tables(client, names)
    planned = []
    for name in names:
        if descriptions[name] is None:
            raise CheckerError(f"--table {name}: no such table")
        spec_name = environment.spec_name(name) or name
        target = out / f"{spec_name}.json"
        if target.exists() and not force:
            raise CheckerError(f"{target}: exists; pass --force to overwrite it")
        planned.append((name, spec_name, target))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckerError(f"{out}: cannot create the directory: {exc.strerror}") from None
    wishes: dict = {}
    unread: list = []
    specs = []
    aws_managed = aws_managed_keys(environment, [descriptions[name] for name, _, _ in planned], unread)

    def read_extras(entry: tuple) -> tuple:   # tags, TTL and PITR of one table; tables concurrently
        name, spec_name, _ = entry
        table = descriptions[name]
        missed: list = []
        return read_tags(client, table["TableArn"]), table_wishes(client, name, spec_name, missed), missed
    for (name, spec_name, target), (tags, wish, missed) in zip(planned, in_parallel(read_extras, planned), strict=True):
        # everything read before any file is written
        specs.append((target, spec_from_table(descriptions[name], spec_name, tags, aws_managed)))
        unread += missed
        if wish:
            wishes[spec_name] = wish
    written = []
    for target, spec in specs:
        try:
            target.write_text(json.dumps(spec, indent=2) + "\n")
        except OSError as exc:
            raise CheckerError(f"{target}: cannot write the spec: {exc.strerror}") from None
        written.append(target)
    return Export(written, checklist_snippet(wishes, unread), left_out)


def chosen_tables(environment: Environment, client, tables, every: bool) -> tuple:
    """(the live names to export, {another environment: its tables left out}). Every name is
    checked against DynamoDB's table-name rules before it is sent or becomes a file name: a live
    name is data, never a path (`../x`) and never raw on a terminal."""
    from .live import table_names
    from .migrate.ledger import is_ledger
    prefix, suffix = environment.table_prefix, environment.table_suffix
    names = list(tables) or [n for n in table_names(client)
                             if environment.spec_name(n) and not is_ledger(n, prefix, suffix)]   # checker's own
    for name in names:
        if not TABLE_NAME.fullmatch(str(name)):
            raise CheckerError(f"table {escape_controls(clip(str(name), 120))}: not a DynamoDB table name "
                               "(3-255 of A-Z a-z 0-9 _ - .); nothing written")
    left_out: dict = {}
    if not tables and not every:
        for name in names:
            if (owner := other_owner(environment, name)) is not None:
                left_out.setdefault(owner, []).append(name)
        taken = {n for theirs in left_out.values() for n in theirs}
        names = [n for n in names if n not in taken]
    if not names:
        raise CheckerError(f"no table to export (prefix {prefix!r}, suffix {suffix!r}); name them with --table")
    return names, left_out


def other_owner(environment: Environment, live_name: str) -> Optional[str]:
    """The checklist's other environment whose prefix/suffix this live name carries, when this
    environment's own affixes do not explain it as well: `liked_songs-prod` is prod's, not the
    table `liked_songs-prod` of a dev without a suffix. None: this environment's."""
    checklist = environment.checklist
    if checklist is None:
        return None
    own = (environment.table_prefix, environment.table_suffix)
    for name, settings in checklist.environments.items():
        affixes = (settings.table_prefix, settings.table_suffix)
        if affixes == own or affixes == ("", ""):
            continue
        if live_name.startswith(settings.table_prefix) and live_name.endswith(settings.table_suffix) \
                and len(settings.table_prefix) + len(settings.table_suffix) > len(own[0]) + len(own[1]):
            return name
    return None


def table_wishes(client, name: str, spec_name: str, unread: list) -> dict:
    """The checklist's `tables:` entry for a live table's TTL and PITR; what could not be read is
    added to `unread`, never taken for "off"."""
    from .live import read_pitr, read_ttl
    unreadable: dict = {}
    ttl = read_ttl(client, name, unreadable) or {}
    pitr = read_pitr(client, name, unreadable) or {}
    unread += [f"{spec_name}: {what} could not be read ({why})" for what, why in unreadable.items()]
    wish: dict = {}
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        wish["ttl_attribute"] = ttl.get("AttributeName")
    if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
        wish["point_in_time_recovery"] = True
    return wish


def aws_managed_keys(environment: Environment, tables: list, unread: list) -> frozenset:
    """The KMS key ARNs among the tables' that AWS manages (kms:DescribeKey says KeyManager AWS):
    an export writes those as "SSEType KMS" without the account's ARN. A key that cannot be told
    is kept, and said so."""
    arns = sorted({str(arn) for t in tables if (arn := (t.get("SSEDescription") or {}).get("KMSMasterKeyArn"))})
    managed = set()
    for arn in arns:
        try:
            metadata = call(environment.client("kms"), "DescribeKey", "kms", KeyId=arn).get("KeyMetadata") or {}
        except CheckerError as exc:
            unread.append(f"KMS key {arn}: whether AWS manages it could not be read ({exc}); its ARN is kept")
            continue
        if metadata.get("KeyManager") == "AWS":
            managed.add(arn)
    return frozenset(managed)
