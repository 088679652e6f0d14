"""The pure diff: (what the specs expect, what DynamoDB has) -> the list of changes.

No I/O and no boto3 here, so every rule is a plain function of two dicts and is tested as such.
Each automatic Change carries the exact API call that carries it out (`operation`, `params`), so
`apply` does precisely what `plan` showed and nothing else. A change that would lose data or that
DynamoDB cannot make in place (key schemas, LSIs, attribute types, an index's keys or projection,
an index that is not in the spec) is reported with `automatic=False`: it needs a person. So is
turning anything off (deletion protection, a stream, TTL, PITR): checker never disables.

A field the spec leaves out means "don't care" and is not compared; every field it states is.
Changes that can throttle the app (a billing-mode switch, lower capacity) carry
`gate=CAPACITY_GATE`: apply makes them only when asked to. A stated field the diff cannot compare
becomes a NOT_COMPARED entry, so the plan names it instead of skipping it quietly.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from .model import CAPACITY_GATE, NOT_COMPARED, NOT_READY, Action, Change, ExpectedTable, Gate, LiveTable, table_state


def diff_tables(expected: list[ExpectedTable], live: dict[str, LiveTable]) -> list[Change]:
    """`live` holds the expected tables and the tables they migrate from."""
    changes: list[Change] = []
    for table in expected:
        current = live.get(table.name)
        source = live.get(table.migrate_from) if table.migrate_from else None
        if (current is None or not current.exists) and source is not None and source.exists:
            changes.append(migrate_table_change(table))
        elif current is None or not current.exists:
            changes += owned(table, _create_table(table))
        else:
            changes += owned(table, diff_table(table, current))
    return changes


def owned(table: ExpectedTable, changes: list) -> list:
    """A template's table: its deploy makes every automatic change, not apply (policy's OWNED):
    a table apply created would make the stack's next deploy fail with "already exists"."""
    if not table.owner:
        return changes
    return [dataclasses.replace(c, owner=table.owner) if c.automatic else c for c in changes]


def migrate_table_change(table: ExpectedTable, state: str = "") -> Change:
    """The target of a table migration is created, filled and switched to by `checker migrate`,
    never by apply (an empty table the app was pointed at would lose every item it reads)."""
    detail = (f"migrate-table {table.migrate_from} -> {table.name}{f' ({state})' if state else ''}: "
              f"`checker migrate --offline` creates it, copies and verifies every item, then switches the "
              "function's binding; if its key attributes change, the app's code must change with it "
              "(--no-switch, then deploy)")
    return Change(table.name, Action.MIGRATE_TABLE, detail, False)


def _create_table(table: ExpectedTable) -> list[Change]:
    request = table.spec.request
    indexes = [i["IndexName"] for i in request.get("GlobalSecondaryIndexes", [])]
    detail = "table does not exist; create it" + (f" with index(es) {', '.join(indexes)}" if indexes else "")
    changes = [Change(table.name, Action.CREATE_TABLE, detail, True, "CreateTable", dict(request))]
    return changes + _ttl_and_pitr(table, None) + _not_compared(table.name, request)


def _key_signature(key_schema: list, types: dict) -> list:
    return [(k["AttributeName"], k["KeyType"], types.get(k["AttributeName"])) for k in key_schema]


def _describe_keys(key_schema: list, types: dict) -> str:
    return ", ".join(f"{name} {kind} {typ or '?'}" for name, kind, typ in _key_signature(key_schema, types))


def _projection_signature(projection: dict) -> tuple:
    return projection.get("ProjectionType"), tuple(sorted(projection.get("NonKeyAttributes", [])))


def _billing_mode(description: dict) -> str:
    return (description.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")


def _throughput(value: dict) -> tuple:
    value = value or {}
    return value.get("ReadCapacityUnits", 0), value.get("WriteCapacityUnits", 0)


def diff_table(table: ExpectedTable, current: LiveTable) -> list[Change]:
    name = table.name
    spec = table.spec.request
    live = current.description
    assert live is not None, "diff_table compares an existing table; diff_tables handles missing ones"
    spec_types = {a["AttributeName"]: a["AttributeType"] for a in spec["AttributeDefinitions"]}
    live_types = {a["AttributeName"]: a["AttributeType"] for a in live.get("AttributeDefinitions", [])}
    # DynamoDB lists every key attribute; a backend that drops some (moto after UpdateTable) must
    # not make a matching key look different, so an attribute it omits is read as the spec's type.
    key_types = {**spec_types, **live_types}
    changes: list[Change] = []

    want_keys = _key_signature(spec["KeySchema"], spec_types)
    have_keys = _key_signature(live.get("KeySchema", []), key_types)
    if want_keys != have_keys:
        changes.append(Change(
            name, Action.REPLACE_TABLE,
            f"key schema is ({_describe_keys(live.get('KeySchema', []), key_types)}), spec wants "
            f"({_describe_keys(spec['KeySchema'], spec_types)}); key schemas are fixed at creation: "
            "migrate the data into a new table by hand", False))

    changes += _diff_local_indexes(name, spec, live, spec_types, key_types)

    billing_change = _diff_billing(name, spec, live)
    changes += billing_change
    if not billing_change and _billing_mode(live) == "PROVISIONED":
        changes += _diff_throughput(name, spec, live)
    if not billing_change and _billing_mode(live) == "PAY_PER_REQUEST":
        changes += _diff_on_demand(name, spec, live)

    changes += _diff_global_indexes(name, spec, live, spec_types, key_types, live_types, billing_change)
    changes += _diff_stream(name, spec, live)
    changes += _diff_sse(name, spec, live)
    changes += _diff_table_class(name, spec, live)
    changes += _diff_deletion_protection(name, spec, live)
    changes += _diff_tags(name, spec, current)
    changes += _ttl_and_pitr(table, current)
    changes += _not_compared(name, spec)
    changes += _not_ready(name, live)
    return changes


def _not_ready(name: str, live: dict) -> list[Change]:
    """Tables and indexes still building: in sync with the spec, but the app cannot use them yet
    (a Query on a backfilling index fails)."""
    state = table_state(name, live)
    if state.ready:
        return []
    return [Change(name, NOT_READY, f"{state.summary()}: not usable yet (`checker wait` waits for it)", False,
                   target="TableStatus")]


def _diff_local_indexes(name, spec, live, spec_types, live_types) -> list[Change]:
    want = {i["IndexName"]: i for i in spec.get("LocalSecondaryIndexes", [])}
    have = {i["IndexName"]: i for i in live.get("LocalSecondaryIndexes", [])}
    changes = []
    for index_name in sorted(set(want) | set(have)):
        w, h = want.get(index_name), have.get(index_name)
        if w and h and (_key_signature(w["KeySchema"], spec_types) == _key_signature(h["KeySchema"], live_types)
                        and _projection_signature(w["Projection"]) == _projection_signature(h["Projection"])):
            continue
        state = "is missing" if h is None else "is not in the spec" if w is None else "differs from the spec"
        changes.append(Change(name, Action.REPLACE_TABLE,
                              f"local secondary index {index_name} {state}; LSIs are fixed at creation: "
                              "migrate the data into a new table by hand", False))
    return changes


def _diff_billing(name, spec, live) -> list[Change]:
    want = spec.get("BillingMode", "PROVISIONED")
    have = _billing_mode(live)
    if want == have:
        return []
    params = {"TableName": name, "BillingMode": want}
    detail = f"billing mode is {have}, spec wants {want}"
    if want == "PROVISIONED":
        params["ProvisionedThroughput"] = spec["ProvisionedThroughput"]
        spec_indexes = {i["IndexName"]: i for i in spec.get("GlobalSecondaryIndexes", [])}
        live_index_names = [i["IndexName"] for i in live.get("GlobalSecondaryIndexes", [])]
        unknown = [n for n in live_index_names if n not in spec_indexes]
        if unknown:
            return [Change(name, Action.UPDATE_BILLING,
                           f"{detail}, but index(es) {', '.join(unknown)} are not in the spec so their "
                           "throughput is unknown: switch the billing mode by hand", False)]
        updates = [{"Update": {"IndexName": n, "ProvisionedThroughput": spec_indexes[n]["ProvisionedThroughput"]}}
                   for n in live_index_names]
        if updates:
            params["GlobalSecondaryIndexUpdates"] = updates
    return [Change(name, Action.UPDATE_BILLING, detail + "; switching can throttle the app or change its cost",
                   True, "UpdateTable", params, gate=CAPACITY_GATE, target="BillingMode")]


def _capacity_gate(want: tuple, have: tuple) -> Gate:
    """Lowering any capacity can throttle the app (and AWS limits decreases a day): opt-in."""
    return CAPACITY_GATE if any(w < h for w, h in zip(want, have, strict=True)) else Gate.NONE


def _diff_throughput(name, spec, live) -> list[Change]:
    changes = []
    want, have = _throughput(spec.get("ProvisionedThroughput")), _throughput(live.get("ProvisionedThroughput"))
    if want != have:
        changes.append(Change(
            name, Action.UPDATE_THROUGHPUT, f"throughput is {have[0]} RCU / {have[1]} WCU, spec wants {want[0]} / {want[1]}",
            True, "UpdateTable", {"TableName": name, "ProvisionedThroughput": spec["ProvisionedThroughput"]},
            gate=_capacity_gate(want, have), target="ProvisionedThroughput"))
    live_indexes = {i["IndexName"]: i for i in live.get("GlobalSecondaryIndexes", [])}
    for index in spec.get("GlobalSecondaryIndexes", []):
        current = live_indexes.get(index["IndexName"])
        if current is None:
            continue
        want, have = _throughput(index.get("ProvisionedThroughput")), _throughput(current.get("ProvisionedThroughput"))
        if want != have:
            changes.append(Change(
                name, Action.UPDATE_INDEX_THROUGHPUT,
                f"index {index['IndexName']} throughput is {have[0]} RCU / {have[1]} WCU, spec wants {want[0]} / {want[1]}",
                True, "UpdateTable",
                {"TableName": name, "GlobalSecondaryIndexUpdates": [{"Update": {
                    "IndexName": index["IndexName"], "ProvisionedThroughput": index["ProvisionedThroughput"]}}]},
                gate=_capacity_gate(want, have), target=index["IndexName"]))
    return changes


def _on_demand_limits(value: Optional[dict]) -> tuple:
    """(max reads, max writes); absent or -1 is "no limit", compared as infinity."""
    value = value or {}
    return tuple(float("inf") if value.get(k, -1) in (-1, None) else value[k]
                 for k in ("MaxReadRequestUnits", "MaxWriteRequestUnits"))


def _diff_on_demand(name, spec, live) -> list[Change]:
    """OnDemandThroughput (the table's and each GSI's), only where the spec states it."""
    changes = []
    if "OnDemandThroughput" in spec:
        want, have = _on_demand_limits(spec["OnDemandThroughput"]), _on_demand_limits(live.get("OnDemandThroughput"))
        if want != have:
            changes.append(Change(name, Action.UPDATE_ON_DEMAND_LIMITS,
                                  f"on-demand maximums are {_limits_text(have)}, spec wants {_limits_text(want)}",
                                  True, "UpdateTable", {"TableName": name, "OnDemandThroughput": spec["OnDemandThroughput"]},
                                  gate=_capacity_gate(want, have), target="OnDemandThroughput"))
    live_indexes = {i["IndexName"]: i for i in live.get("GlobalSecondaryIndexes", [])}
    for index in spec.get("GlobalSecondaryIndexes", []):
        current = live_indexes.get(index["IndexName"])
        if current is None or "OnDemandThroughput" not in index:
            continue
        want, have = _on_demand_limits(index["OnDemandThroughput"]), _on_demand_limits(current.get("OnDemandThroughput"))
        if want != have:
            changes.append(Change(
                name, Action.UPDATE_INDEX_ON_DEMAND_LIMITS,
                f"index {index['IndexName']} on-demand maximums are {_limits_text(have)}, spec wants {_limits_text(want)}",
                True, "UpdateTable", {"TableName": name, "GlobalSecondaryIndexUpdates": [{"Update": {
                    "IndexName": index["IndexName"], "OnDemandThroughput": index["OnDemandThroughput"]}}]},
                gate=_capacity_gate(want, have), target=index["IndexName"]))
    return changes


def _limits_text(limits: tuple) -> str:
    return " / ".join("unlimited" if v == float("inf") else f"{v:g}" for v in limits) + " (reads / writes)"


def _diff_global_indexes(name, spec, live, spec_types, key_types, live_types, billing_change) -> list[Change]:
    want = {i["IndexName"]: i for i in spec.get("GlobalSecondaryIndexes", [])}
    have = {i["IndexName"]: i for i in live.get("GlobalSecondaryIndexes", [])}
    changes = []
    for index_name, index in want.items():
        current = have.get(index_name)
        if current is None:
            changes.append(_with_billing(_create_index(name, index, spec_types, live_types), billing_change))
            continue
        if _key_signature(index["KeySchema"], spec_types) != _key_signature(current["KeySchema"], key_types):
            changes.append(Change(
                name, Action.REPLACE_INDEX,
                f"index {index_name} keys are ({_describe_keys(current['KeySchema'], key_types)}), spec wants "
                f"({_describe_keys(index['KeySchema'], spec_types)}); an index's keys are fixed: delete and "
                "recreate it by hand", False))
        elif _projection_signature(index["Projection"]) != _projection_signature(current.get("Projection", {})):
            changes.append(Change(
                name, Action.REPLACE_INDEX,
                f"index {index_name} projection is {_projection_signature(current.get('Projection', {}))[0]}, spec wants "
                f"{_projection_signature(index['Projection'])[0]}; a projection is fixed: delete and recreate "
                "the index by hand", False))
    for index_name in have:
        if index_name not in want:
            changes.append(Change(name, Action.RETIRING_INDEX,
                                  f"index {index_name} exists but is not in the spec; left in place (checker never "
                                  "deletes an index): once nothing reads it, drop it by hand: aws dynamodb update-table "
                                  f"--table-name {name} --global-secondary-index-updates "
                                  f"'[{{\"Delete\":{{\"IndexName\":\"{index_name}\"}}}}]'", False,
                                  target=f"index:{index_name}"))
    return changes


def _with_billing(change: Change, billing_change: list) -> Change:
    """An index is created in the table's billing mode: with a billing switch pending, the index
    (shaped for the spec's mode) waits for the switch, which apply sends first, as AWS requires
    (an on-demand table refuses an index with ProvisionedThroughput, and the reverse). Held
    with it, or a manual step with it."""
    if not billing_change or not change.automatic:
        return change
    switch = billing_change[0]
    if not switch.automatic:
        return dataclasses.replace(change, automatic=False, operation=None, params={},
                                   detail=f"{change.detail}, after the billing switch, which is a manual step")
    return dataclasses.replace(change, gate=switch.gate, detail=f"{change.detail} (after the billing switch)")


def _create_index(name, index, spec_types, live_types) -> Change:
    key_names = [k["AttributeName"] for k in index["KeySchema"]]
    conflicts = [n for n in key_names if n in live_types and live_types[n] != spec_types[n]]
    if conflicts:
        return Change(name, Action.CREATE_INDEX,
                      f"index {index['IndexName']} is missing, but attribute(s) {', '.join(conflicts)} already have "
                      "another type on this table: resolve by hand", False)
    # The live definitions are repeated alongside the new index's: DynamoDB merges them, and a
    # backend that replaces them instead (moto) keeps the table's own keys defined.
    definitions = {**live_types, **{n: spec_types[n] for n in key_names}}
    params = {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in definitions.items()],
        "GlobalSecondaryIndexUpdates": [{"Create": index}],
    }
    return Change(name, Action.CREATE_INDEX, f"index {index['IndexName']} does not exist; create it", True,
                  "UpdateTable", params, target=index["IndexName"])


def _diff_stream(name, spec, live) -> list[Change]:
    if "StreamSpecification" not in spec:
        return []  # don't care
    want = spec.get("StreamSpecification") or {}
    have = live.get("StreamSpecification") or {}
    want_on, have_on = bool(want.get("StreamEnabled")), bool(have.get("StreamEnabled"))
    if want_on and not have_on:
        return [Change(name, Action.UPDATE_STREAM, f"stream is off, spec wants {want['StreamViewType']}", True,
                       "UpdateTable", {"TableName": name, "StreamSpecification": want}, target="StreamSpecification")]
    if have_on and not want_on:
        return [Change(name, Action.UPDATE_STREAM, f"stream {have.get('StreamViewType')} is on, spec wants it off; "
                       "checker never turns a stream off (its consumers lose their records): do it by hand "
                       "if intended", False, target="StreamSpecification")]
    if want_on and want.get("StreamViewType") != have.get("StreamViewType"):
        return [Change(name, Action.UPDATE_STREAM, f"stream view type is {have.get('StreamViewType')}, spec wants "
                       f"{want['StreamViewType']}; changing it means disabling the stream first: do it by hand", False)]
    return []


def _sse_state(sse: dict) -> tuple:
    """("KMS", key) for a customer- or AWS-managed KMS key, ("AWS_OWNED", None) for the default."""
    if sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING") and sse.get("SSEType", "KMS") == "KMS":
        return "KMS", sse.get("KMSMasterKeyArn")
    return "AWS_OWNED", None


def _diff_sse(name, spec, live) -> list[Change]:
    if "SSESpecification" not in spec:
        return []
    want_spec = spec["SSESpecification"]
    want = "KMS" if want_spec.get("Enabled") else "AWS_OWNED"
    have, have_key = _sse_state(live.get("SSEDescription") or {})
    wanted_key = want_spec.get("KMSMasterKeyId")
    if want == have and not (want == "KMS" and wanted_key and wanted_key.startswith("arn:") and wanted_key != have_key):
        return []
    if have == "KMS" and want == "AWS_OWNED":
        return [Change(name, Action.UPDATE_SSE, f"encryption at rest uses KMS key {have_key}, spec wants an AWS owned "
                       "key; checker never lowers protection: do it by hand if intended", False,
                       target="SSESpecification")]
    params = {"TableName": name, "SSESpecification": dict(want_spec)}
    if want == "KMS":
        params["SSESpecification"].setdefault("SSEType", "KMS")
    shown = f"KMS key {have_key}" if have == "KMS" else "an AWS owned key"
    wanted = f"KMS key {wanted_key}" if wanted_key else ("an AWS managed KMS key" if want == "KMS" else "an AWS owned key")
    return [Change(name, Action.UPDATE_SSE, f"encryption at rest uses {shown}, spec wants {wanted}", True,
                   "UpdateTable", params, target="SSESpecification")]


def _diff_table_class(name, spec, live) -> list[Change]:
    if "TableClass" not in spec:
        return []
    have = (live.get("TableClassSummary") or {}).get("TableClass", "STANDARD")
    if have == spec["TableClass"]:
        return []
    return [Change(name, Action.UPDATE_TABLE_CLASS, f"table class is {have}, spec wants {spec['TableClass']}", True,
                   "UpdateTable", {"TableName": name, "TableClass": spec["TableClass"]}, target="TableClass")]


def _diff_deletion_protection(name, spec, live) -> list[Change]:
    if "DeletionProtectionEnabled" not in spec:
        return []
    want, have = bool(spec["DeletionProtectionEnabled"]), bool(live.get("DeletionProtectionEnabled"))
    if want == have:
        return []
    if want:
        return [Change(name, Action.ENABLE_DELETION_PROTECTION, "deletion protection is off; turn it on", True,
                       "UpdateTable", {"TableName": name, "DeletionProtectionEnabled": True},
                       target="DeletionProtectionEnabled")]
    return [Change(name, Action.DISABLE_DELETION_PROTECTION, "deletion protection is on, spec wants it off; checker "
                   "never turns it off: do it by hand if intended", False, target="DeletionProtectionEnabled")]


def _diff_tags(name, spec, current: LiveTable) -> list[Change]:
    """Tags the spec names must be there with its values; other tags on the table are left alone."""
    if "Tags" not in spec:
        return []
    have = current.tags or {}
    wrong = [t for t in spec["Tags"] if have.get(t["Key"]) != t["Value"]]
    if not wrong:
        return []
    shown = ", ".join(f"{t['Key']} (is {have[t['Key']]!r}, spec wants {t['Value']!r})" if t["Key"] in have
                      else f"{t['Key']} (missing)" for t in wrong)
    arn = current.description.get("TableArn", "") if current.description else ""
    return [Change(name, Action.TAG_TABLE, f"tags differ: {shown}", True, "TagResource",
                   {"ResourceArn": arn, "Tags": wrong}, target="Tags")]


# Fields of CreateTable the diff compares (or that name the table); any other stated field is named
# as not compared. A test keeps this in step with botocore's CreateTable model.
COMPARED_FIELDS = {"TableName", "AttributeDefinitions", "KeySchema", "LocalSecondaryIndexes",
                   "GlobalSecondaryIndexes", "BillingMode", "ProvisionedThroughput", "StreamSpecification",
                   "SSESpecification", "Tags", "TableClass", "DeletionProtectionEnabled", "OnDemandThroughput"}
NOT_COMPARED_INDEX_FIELDS = {"WarmThroughput"}


def _not_compared(name, spec) -> list[Change]:
    fields = [f for f in spec if f not in COMPARED_FIELDS]
    fields += [f"GlobalSecondaryIndexes[{i['IndexName']}].{f}" for i in spec.get("GlobalSecondaryIndexes", [])
               for f in i if f in NOT_COMPARED_INDEX_FIELDS]
    kms_key = (spec.get("SSESpecification") or {}).get("KMSMasterKeyId")
    if kms_key and not kms_key.startswith("arn:"):
        fields.append("SSESpecification.KMSMasterKeyId (only a key ARN can be compared with DescribeTable's)")
    return [Change(name, NOT_COMPARED, f"{f} is stated in the spec but checker cannot compare it: check it by hand",
                   False, target=f) for f in fields]


def _ttl_and_pitr(table: ExpectedTable, current: Optional[LiveTable]) -> list[Change]:
    name = table.name
    changes = []
    unreadable = current.unreadable if current else {}
    for target, what in (("TTL", "TTL"), ("PITR", "point-in-time recovery")):
        if target in unreadable:
            changes.append(Change(name, NOT_COMPARED, f"{what} could not be read ({unreadable[target]}): "
                                  "check it by hand", False, target=target))
    if table.ttl_attribute and "TTL" not in unreadable:
        ttl = (current.ttl if current else None) or {}
        status, attribute = ttl.get("TimeToLiveStatus", "DISABLED"), ttl.get("AttributeName")
        if status in ("ENABLED", "ENABLING") and attribute != table.ttl_attribute:
            changes.append(Change(name, Action.UPDATE_TTL, f"TTL is on attribute {attribute}, checklist wants "
                                  f"{table.ttl_attribute}; disable TTL by hand first (AWS allows one change an hour)",
                                  False))
        elif status not in ("ENABLED", "ENABLING"):
            changes.append(Change(name, Action.ENABLE_TTL, f"TTL is {status.lower()}; enable it on {table.ttl_attribute}",
                                  True, "UpdateTimeToLive",
                                  {"TableName": name, "TimeToLiveSpecification": {
                                      "Enabled": True, "AttributeName": table.ttl_attribute}}, target="TTL"))
    if table.point_in_time_recovery and "PITR" not in unreadable:
        pitr = (current.pitr if current else None) or {}
        status = pitr.get("PointInTimeRecoveryStatus", "DISABLED")
        if status != "ENABLED":
            changes.append(Change(name, Action.ENABLE_PITR, f"point-in-time recovery is {status.lower()}; enable it",
                                  True, "UpdateContinuousBackups",
                                  {"TableName": name, "PointInTimeRecoverySpecification": {
                                      "PointInTimeRecoveryEnabled": True}}, target="PITR"))
    return changes
