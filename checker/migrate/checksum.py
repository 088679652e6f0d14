"""An order-independent checksum of a table's items, in buckets, so two tables can be compared
in flat memory and the keys that differ found without holding either table.

Each item's digest is the sha256 of its canonical form (numbers normalised, so 1.0 and 1 and
1E+0 agree; sets sorted; binary as base64; map keys sorted). A bucket (one of 256, chosen by the
item's key) holds a count and the sum of its items' digests modulo 2**128: the sum does not
depend on the order the Scan segments deliver in, and a duplicated or missing item changes it.
Buckets that differ are read again, only they, key by key (differing_keys).
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

from ..items import canonical
from .copy import Scan

BUCKETS = 256
MODULUS = 2 ** 128
SKIP = object()     # what a transform's "leave it out" is here


def digest(value) -> bytes:
    return hashlib.sha256(json.dumps(canonical(value), sort_keys=True, separators=(",", ":")).encode()).digest()


def key_name(key: dict) -> str:
    """A plain key as one string, equal for equal keys (differing_keys' `origins` are keyed so)."""
    return json.dumps(canonical(key), sort_keys=True)


def key_of(item: dict, key_names: tuple) -> dict:
    return {name: item[name] for name in key_names if name in item}


@dataclass
class Checksum:
    counts: list = field(default_factory=lambda: [0] * BUCKETS)
    sums: list = field(default_factory=lambda: [0] * BUCKETS)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, item: dict, key_names: tuple) -> None:
        bucket = digest(key_of(item, key_names))[0]
        value = int.from_bytes(digest(item)[:16], "big")
        with self.lock:
            self.counts[bucket] += 1
            self.sums[bucket] = (self.sums[bucket] + value) % MODULUS

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def total(self) -> str:
        """One hex string standing for the whole table (recorded in the ledger)."""
        return hashlib.sha256(json.dumps([self.counts, self.sums]).encode()).hexdigest()

    def differing_buckets(self, other: Checksum) -> list:
        return [b for b in range(BUCKETS) if (self.counts[b], self.sums[b]) != (other.counts[b], other.sums[b])]


Transform = Optional[Callable[[dict], object]]   # a plain item -> the item expected on the other side, or SKIP


def _plain_items(items: list) -> list:
    from boto3.dynamodb.types import TypeDeserializer
    deserializer = TypeDeserializer()
    return [{k: deserializer.deserialize(v) for k, v in item.items()} for item in items]


def table_checksum(scan: Scan, key_names: tuple, transform: Transform = None) -> Checksum:
    """The checksum of every item `scan` reads (after `transform`, when given)."""
    checksum = Checksum()

    def handle(segment: int, items: list) -> int:
        for item in _plain_items(items):
            expected = transform(item) if transform else item
            if expected is not SKIP:
                checksum.add(expected, key_names)   # type: ignore[arg-type]
        return 0
    scan.run(handle)
    return checksum


def differing_keys(source: Scan, target: Scan, key_names: tuple, buckets: list, transform: Transform = None,
                   limit: Optional[int] = 20, origins: Optional[dict] = None, source_key_names: tuple = (),
                   extra: Optional[list] = None) -> list:
    """Up to `limit` (None: all) keys (as plain values) whose items differ, are missing or are
    extra, read again from the differing `buckets` only. `origins` (with the source's
    `source_key_names`), for a transform that makes a new key: filled with {key_name(key): the
    source key it came from}. `extra`: filled with those of them only the target holds."""
    wanted = set(buckets)

    def digests(scan: Scan, mapping: Transform) -> dict:
        found: dict = {}
        lock = threading.Lock()

        def handle(segment: int, items: list) -> int:
            for item in _plain_items(items):
                expected = mapping(item) if mapping else item
                if expected is SKIP:
                    continue
                key = key_of(expected, key_names)   # type: ignore[arg-type]
                if digest(key)[0] in wanted:
                    name = key_name(key)
                    with lock:
                        found[name] = (key, digest(expected))
                        if mapping is not None and origins is not None:
                            origins[name] = key_of(item, source_key_names)
            return 0
        scan.run(handle)
        return found
    mine, theirs = digests(source, transform), digests(target, None)
    keys = [mine[k][0] if k in mine else theirs[k][0] for k in sorted(set(mine) | set(theirs))
            if (mine.get(k) or (None, None))[1] != (theirs.get(k) or (None, None))[1]]
    if extra is not None:
        extra += [theirs[k][0] for k in sorted(set(theirs) - set(mine))][:limit]
    return keys[:limit]
