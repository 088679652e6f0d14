"""A table migration's copy on DynamoDB's own engine: ExportTableToPointInTime to S3, then
ImportTable, which creates the target itself (`--via s3 --bucket B`).

For a table past what one machine should scan: the export reads the source's PITR backup, not
the table (no read capacity spent), and the import writes the new table without write capacity;
both are billed by size (per GB exported and imported) and take minutes even for a small table,
so below a few GB the parallel Scan is faster and cheaper. What TableCreationParameters cannot
carry (a stream, tags, deletion protection, the table class) is applied after the import by apply's
own diff; an LSI cannot be imported at all: refused.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

from ..errors import CheckerError, call, pages
from ..poll import REAL, Backoff, Clock, Deadline, poll

if TYPE_CHECKING:
    from ..environment import Environment

EXPORT_POLLS = Backoff(0.2, 15.0)
CREATION_FIELDS = ("AttributeDefinitions", "KeySchema", "BillingMode", "ProvisionedThroughput",
                   "OnDemandThroughput", "SSESpecification", "GlobalSecondaryIndexes")


def creation_parameters(spec: dict) -> dict:
    """ImportTable's TableCreationParameters from a CreateTable request."""
    if spec.get("LocalSecondaryIndexes"):
        raise CheckerError(f"{spec['TableName']}: has local secondary indexes, which ImportTable cannot create; "
                           "migrate it with the parallel Scan (without --via s3)")
    return {"TableName": spec["TableName"], **{k: spec[k] for k in CREATION_FIELDS if k in spec}}


def wait_for(describe: Callable[[], dict], status_field: str, what: str, deadline: Optional[Deadline],
             echo: Callable[[str], None], clock: Clock = REAL) -> dict:
    """DescribeExport / DescribeImport until it is no longer IN_PROGRESS (a progress line every
    30 s after the first 30), or the migration's --timeout."""
    beats = [30.0]

    def progress(description: dict, elapsed: float) -> None:
        if elapsed > beats[0]:
            echo(f"{what}: IN_PROGRESS for {elapsed:.0f} s")
            beats[0] += 30.0
    waited = poll(describe, lambda d: d.get(status_field) not in ("IN_PROGRESS", None), EXPORT_POLLS, deadline,
                  each=progress, clock=clock)
    if not waited.done or waited.value is None:
        raise CheckerError(f"{what} still IN_PROGRESS at the migration's --timeout; run again to go on waiting")
    return waited.value


def export_and_import(environment: Environment, source: str, spec: dict, bucket: str, prefix: str,
                      deadline: Optional[Deadline] = None, echo: Callable[[str], None] = lambda line: None,
                      clock: Clock = REAL) -> dict:
    """Export `source` to s3://bucket/prefix and import it as the table `spec` describes: the
    import's description."""
    parameters = creation_parameters(spec)
    client = environment.dynamodb()
    described = call(client, "DescribeTable", "dynamodb", TableName=source)["Table"]
    backups = call(client, "DescribeContinuousBackups", "dynamodb", TableName=source)["ContinuousBackupsDescription"]
    if (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus") != "ENABLED":
        echo(f"turning on point-in-time recovery on {source} (an export reads its backup)")
        call(client, "UpdateContinuousBackups", "dynamodb", TableName=source,
             PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    echo(f"exporting {source} to s3://{bucket}/{prefix}")
    started = call(client, "ExportTableToPointInTime", "dynamodb", TableArn=described["TableArn"], S3Bucket=bucket,
                   S3Prefix=prefix, ExportFormat="DYNAMODB_JSON")["ExportDescription"]
    exported = wait_for(lambda: call(client, "DescribeExport", "dynamodb", ExportArn=started["ExportArn"])["ExportDescription"],
                    "ExportStatus", f"export of {source}", deadline, echo, clock)
    if exported.get("ExportStatus") != "COMPLETED":
        raise CheckerError(f"the export of {source} ended {exported.get('ExportStatus')}: "
                           f"{exported.get('FailureMessage') or exported.get('FailureCode') or 'no reason given'}")
    data = data_prefix(environment.client("s3"), bucket, prefix)
    echo(f"importing s3://{bucket}/{data} into {spec['TableName']}")
    imported = call(client, "ImportTable", "dynamodb", S3BucketSource={"S3Bucket": bucket, "S3KeyPrefix": data},
                    InputFormat="DYNAMODB_JSON", InputCompressionType="GZIP",
                    TableCreationParameters=parameters)["ImportTableDescription"]
    done = wait_for(lambda: call(client, "DescribeImport", "dynamodb", ImportArn=imported["ImportArn"])["ImportTableDescription"],
                "ImportStatus", f"import into {spec['TableName']}", deadline, echo, clock)
    if done.get("ImportStatus") != "COMPLETED" or int(done.get("ErrorCount") or 0):
        why = done.get("FailureMessage") or "see its CloudWatch log"
        raise CheckerError(f"the import into {spec['TableName']} ended {done.get('ImportStatus')} with "
                           f"{int(done.get('ErrorCount') or 0)} error(s): {why}")
    return done


def data_prefix(s3, bucket: str, prefix: str) -> str:
    """The export's `.../data/` folder, found by listing (the manifests beside it would count as
    import errors)."""
    folders = sorted({key.rsplit("/", 1)[0] + "/" for page in pages(s3, "ListObjectsV2", "s3", Bucket=bucket, Prefix=prefix)
                      for key in (o["Key"] for o in page.get("Contents", [])) if "/data/" in key})
    if len(folders) != 1:
        raise CheckerError(f"s3://{bucket}/{prefix}: expected one export's data/ folder, found {len(folders)}")
    return folders[0]
