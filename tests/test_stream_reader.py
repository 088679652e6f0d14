"""What DynamoDB Streams does on AWS and no local backend shows: shards split (a parent closes,
children appear and carry the writes after it) and iterators expire after 15 minutes unread.
A stand-in for the dynamodbstreams client plays both, with AWS's documented answers."""
from __future__ import annotations

from botocore.exceptions import ClientError

from checker.migrate.stream import StreamReader

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/songs/stream/2026-12-02T00:00:00.000"


def record(sequence: int, track: str) -> dict:
    return {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": str(sequence),
                                                "Keys": {"userId": {"S": "u"}, "trackId": {"S": track}}}}


class Streams:
    """Shards of records; an open shard's iterator goes on answering; a closed one ends with no
    NextShardIterator. `expire` names iterators to refuse once with ExpiredIteratorException."""

    def __init__(self):
        self.shards: dict = {}           # id -> {"records": [...], "closed": bool, "parent": id or None}
        self.expire: set = set()
        self.issued = 0
        self.iterators: dict = {}        # iterator -> (shard, index of the next record)

    def shard(self, shard_id: str, parent=None) -> None:
        self.shards[shard_id] = {"records": [], "closed": False, "parent": parent}

    def describe_stream(self, StreamArn, ExclusiveStartShardId=None):
        shards = []
        for shard_id, shard in self.shards.items():
            numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in shard["records"]] or [0]
            sequence_range = {"StartingSequenceNumber": str(min(numbers))}
            if shard["closed"]:
                sequence_range["EndingSequenceNumber"] = str(max(numbers))
            shards.append({"ShardId": shard_id, "SequenceNumberRange": sequence_range,
                           **({"ParentShardId": shard["parent"]} if shard["parent"] else {})})
        return {"StreamDescription": {"StreamArn": StreamArn, "Shards": shards}}

    def _issue(self, shard_id: str, index: int) -> str:
        self.issued += 1
        iterator = f"it-{self.issued}"
        self.iterators[iterator] = (shard_id, index)
        return iterator

    def get_shard_iterator(self, StreamArn, ShardId, ShardIteratorType, SequenceNumber=None):
        records = self.shards[ShardId]["records"]
        index = {"TRIM_HORIZON": 0, "LATEST": len(records)}.get(ShardIteratorType)
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            index = next(n for n, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == SequenceNumber) + 1
        return {"ShardIterator": self._issue(ShardId, index)}

    def get_records(self, ShardIterator, Limit=1000):
        if ShardIterator in self.expire:
            self.expire.discard(ShardIterator)
            raise ClientError({"Error": {"Code": "ExpiredIteratorException", "Message": "Iterator expired"}},
                              "GetRecords")
        shard_id, index = self.iterators[ShardIterator]
        shard = self.shards[shard_id]
        records = shard["records"][index:index + Limit]
        end = index + len(records)
        if shard["closed"] and end >= len(shard["records"]):
            return {"Records": records}                    # closed and read to its end: no NextShardIterator
        return {"Records": records, "NextShardIterator": self._issue(shard_id, end)}


def tracks(records: list) -> list:
    return [r["dynamodb"]["Keys"]["trackId"]["S"] for r in records]


def test_a_split_shard_is_read_to_its_end_and_its_children_from_their_start():
    streams = Streams()
    streams.shard("parent")
    reader = StreamReader(streams, ARN)
    reader.start(at_latest=True)
    streams.shards["parent"]["records"] += [record(1, "t1"), record(2, "t2")]
    streams.shards["parent"]["closed"] = True            # the split: the parent closes...
    streams.shard("child-a", parent="parent")             # ...and two children carry what follows
    streams.shard("child-b", parent="parent")
    streams.shards["child-a"]["records"] += [record(3, "t3")]
    streams.shards["child-b"]["records"] += [record(4, "t4"), record(5, "t5")]
    seen = []
    for _ in range(12):                                   # children are found within 10 polls
        seen += reader.poll()
    assert sorted(tracks(seen)) == ["t1", "t2", "t3", "t4", "t5"]      # every write, once
    assert reader.positions == {"parent": "closed", "child-a": "3", "child-b": "5"}
    streams.shards["child-b"]["records"] += [record(6, "t6")]
    resumed = StreamReader(streams, ARN, dict(reader.positions))      # the next run, from the ledger
    resumed.start(at_latest=False)
    assert tracks(resumed.poll()) == ["t6"]


def one_shard() -> tuple:
    """A stream of one shard and a reader started at its tip, as before a copy."""
    streams = Streams()
    streams.shard("only")
    reader = StreamReader(streams, ARN)
    reader.start(at_latest=True)
    return streams, reader


def test_an_expired_iterator_is_reopened_after_the_last_record_read():
    streams, reader = one_shard()
    streams.shards["only"]["records"] += [record(1, "t1"), record(2, "t2")]
    assert tracks(reader.poll()) == ["t1", "t2"]
    streams.shards["only"]["records"] += [record(3, "t3")]
    streams.expire.add(reader.iterators["only"])          # 15 minutes unread (a long copy, a slow verify)
    assert reader.poll() == []                            # reopened AFTER_SEQUENCE_NUMBER 2, not from LATEST
    assert tracks(reader.poll()) == ["t3"]


def test_an_iterator_that_expires_before_any_record_was_read_reads_from_the_shard_start():
    """No position yet: TRIM_HORIZON (a replay is idempotent; LATEST would skip writes)."""
    streams, reader = one_shard()
    streams.shards["only"]["records"] += [record(1, "t1")]
    streams.expire.add(reader.iterators["only"])
    reader.poll()
    assert tracks(reader.poll()) == ["t1"]
