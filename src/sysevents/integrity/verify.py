"""Verifying the chain: recompute every digest from the stored events, name what differs.

For each digest, in order: its header follows the previous one's hash, its
entries match its ``events`` hash, its signature is the seal key's (when a
public key is given). Then the stored rows of its range are compared with its
entries, by id:

* a row whose fingerprint differs was *changed*: through sysevents if its
  audited updates (``sysevents.event_updated``), undone newest first, lead
  back to the sealed fingerprint; else behind the store's back;
* an entry with no row was *removed*: through sysevents if a
  ``sysevents.event_deleted`` record names it or a ``sysevents.retention``
  record's rules expired it (or dropped its month); else behind its back;
* a row with no entry was *added* behind its back (put into a sealed range);
* a row committed after a digest but created well before it (its
  ``created_at`` more than :data:`SLACK` before that digest was sealed) was
  *backdated*: added behind the store's back, made to look old.

The explanations are read from the audit records as they are stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sysevents.audit import EVENT_DELETED, EVENT_UPDATED
from sysevents.columns import COLUMNS
from sysevents.retention import RETENTION_EVENT, RetentionPolicy

from .digest import UNSIGNED, ZERO_HASH, Digest, Entry, from_micros, unpack_entries
from .signing import key_id, signature_valid
from .source import Backdating, SealStore

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SLACK = timedelta(minutes=5)
"""How long before a digest a row committed after it may have been created (a slow writer)."""
UNSEALED_CAP = 1_000_000
"""Unsealed rows counted at most."""

Kind = Literal["digest", "changed", "removed", "added", "backdated"]


@dataclass(frozen=True)
class Finding:
    """One sign of tampering."""

    kind: Kind
    seq: int
    event_id: int | None
    detail: str

    def line(self) -> str:
        """The finding as one line."""
        where = f"digest {self.seq}"
        if self.event_id is not None:
            where += f", event {self.event_id}"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class Report:
    """What ``verify`` found."""

    digests: int = 0
    events: int = 0
    first_seq: int = 0
    last_seq: int = 0
    public_key: str | None = None
    """The id of the key signatures were checked with (``None``: not checked)."""
    unsigned: int = 0
    tampered: list[Finding] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    expired: int = 0
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        """Whether nothing was changed, added or removed behind the store's back."""
        return not self.tampered

    def lines(self) -> list[str]:
        """The report, for people."""
        if self.digests == 0:
            out = ["no digest to verify: nothing is sealed yet (see seal_interval)"]
        else:
            out = [
                f"digests {self.first_seq}-{self.last_seq}: {self.digests} digest(s), "
                f"{self.events} sealed event(s)"
            ]
            if self.public_key is not None:
                out.append(f"signatures checked with key {self.public_key}")
            else:
                out.append(
                    "signatures NOT checked: give the seal key's public half with --public-key"
                )
            if self.unsigned:
                out.append(f"{self.unsigned} digest(s) unsigned (sealed without seal_key)")
        if self.updated:
            out.append(f"changed through sysevents (audited updates): {_ids(self.updated)}")
        if self.deleted:
            out.append(f"deleted through sysevents (audited deletes): {_ids(self.deleted)}")
        if self.expired:
            out.append(f"removed by retention: {self.expired} event(s)")
        if self.unsealed:
            more = "at least " if self.unsealed >= UNSEALED_CAP else ""
            out.append(f"not sealed yet: {more}{self.unsealed} event(s)")
        if self.tampered:
            out.append(f"TAMPERING: {len(self.tampered)} finding(s)")
            out += ["  " + f.line() for f in self.tampered]
        else:
            out.append("OK: nothing was changed, added or removed behind sysevents' back")
        return out


def _ids(ids: list[int], shown: int = 20) -> str:
    text = ", ".join(map(str, ids[:shown]))
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


class _Explanations:
    """The audit records that explain changes made through sysevents."""

    def __init__(self, records: Sequence[Any]) -> None:
        self.updates: dict[int, list[dict[str, Any]]] = {}
        self.deleted: set[int] = set()
        self.retention: list[tuple[RetentionPolicy, dict[str, datetime], set[str]]] = []
        for record in records:
            details = record.details or {}
            if record.event_type == EVENT_UPDATED and isinstance(details.get("event_id"), int):
                self.updates.setdefault(details["event_id"], []).append(details)
            elif record.event_type == EVENT_DELETED and isinstance(details.get("event_id"), int):
                self.deleted.add(details["event_id"])
            elif record.event_type == RETENTION_EVENT:
                self._retention(details)

    def _retention(self, details: dict[str, Any]) -> None:
        try:
            rules = details.get("rules") or {}
            cutoffs = {text: datetime.fromisoformat(o["cutoff"]) for text, o in rules.items()}
            policy = RetentionPolicy.parse(",".join(cutoffs)) if cutoffs else RetentionPolicy(())
        except (ValueError, TypeError, KeyError, AttributeError):
            return  # not a record this version wrote: it explains nothing
        dropped = {str(n) for n in details.get("partitions_dropped") or ()}
        self.retention.append((policy, cutoffs, dropped))

    def expired(self, entry: Entry) -> bool:
        """Whether a retention run removed this event."""
        when = from_micros(entry.timestamp_us)
        month = f"_p{when.year:04d}_{when.month:02d}"
        for policy, cutoffs, dropped in self.retention:
            if any(name.endswith(month) for name in dropped):
                return True
            rule = policy.rule_for(entry.event_type, entry.severity)
            if rule is not None and when < cutoffs[rule.text]:
                return True
        return False


def _value_back(name: str, value: Any) -> Any:
    """A field's value as the audit recorded it, back as the store keeps it."""
    if name == "timestamp" and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


class _Verifier:
    def __init__(self, source: SealStore, public: Ed25519PublicKey | None) -> None:
        self.source = source
        self.public = public
        self.report = Report(public_key=None if public is None else key_id(public))
        self.explain = _Explanations([])

    def found(self, kind: Kind, seq: int, event_id: int | None, detail: str) -> None:
        self.report.tampered.append(Finding(kind, seq, event_id, detail))

    def check_header(self, digest: Digest, previous: Digest | None) -> list[Entry]:
        seq = digest.seq
        if previous is not None and seq != previous.seq + 1:
            self.found("digest", seq, None, f"digests {previous.seq + 1}-{seq - 1} are missing")
        expected = ZERO_HASH if seq == 1 else (previous.hash() if previous else None)
        if expected is not None and digest.previous != expected:
            self.found("digest", seq, None, "does not name the previous digest's hash")
        if hashlib.sha256(digest.entries).digest() != digest.events_sha256:
            self.found("digest", seq, None, "its entries do not match its events hash")
        try:
            entries = list(unpack_entries(digest.entries))
        except (ValueError, UnicodeDecodeError):
            self.found("digest", seq, None, "its entries are unreadable")
            entries = []
        ids = [e.id for e in entries]
        if (len(entries), min(ids, default=0), max(ids, default=0)) != (
            digest.count,
            digest.min_id,
            digest.max_id,
        ):
            self.found("digest", seq, None, "its count or id range does not match its entries")
        if digest.key == UNSIGNED:
            self.report.unsigned += 1
            if self.public is not None:
                self.found("digest", seq, None, "unsigned, but a public key was given")
        elif self.public is not None and digest.key != self.report.public_key:
            self.found("digest", seq, None, f"says it was signed by another key ({digest.key})")
        elif self.public is not None and not signature_valid(
            self.public, digest.header(), digest.signature
        ):
            self.found("digest", seq, None, "the signature does not match: the digest was edited")
        return entries

    async def compare(self, digest: Digest, entries: list[Entry], previous: Digest | None) -> None:
        backdating = (
            None if previous is None else Backdating(previous.next_xid, previous.sealed_at - SLACK)
        )
        sealed = {e.id: e for e in entries}
        for difference in await self.source.differences(digest, entries, backdating):
            event_id = difference.id
            if difference.kind == "added":
                self.found("added", digest.seq, event_id, "in this digest's range but not sealed")
            elif difference.kind == "backdated":
                assert previous is not None
                self.found(
                    "backdated",
                    digest.seq,
                    event_id,
                    f"committed after digest {previous.seq} was sealed, but created more "
                    f"than {SLACK.total_seconds() / 60:g} minutes before",
                )
            elif difference.kind == "changed":
                await self.changed(digest.seq, sealed[event_id])
            else:
                self.removed(digest.seq, sealed[event_id])

    async def changed(self, seq: int, entry: Entry) -> None:
        updates = self.explain.updates.get(entry.id)
        current = await self.source.event(entry.id) if updates else None
        if updates and current is not None:
            fields = {c.name: getattr(current, c.name) for c in COLUMNS}
            for update in reversed(updates):
                changes = update.get("changes") or {}
                olds = {name: change.get("old") for name, change in changes.items()}
                if any(isinstance(v, dict) and set(v) == {"cut", "length"} for v in olds.values()):
                    self.report.updated.append(entry.id)  # too long to undo: believed
                    return
                fields.update({name: _value_back(name, v) for name, v in olds.items()})
                if await self.source.fingerprint_of(fields) == entry.fingerprint:
                    self.report.updated.append(entry.id)
                    return
        self.found("changed", seq, entry.id, "differs from what was sealed")

    def removed(self, seq: int, entry: Entry) -> None:
        if entry.id in self.explain.deleted:
            self.report.deleted.append(entry.id)
        elif self.explain.expired(entry):
            self.report.expired += 1
        else:
            self.found("removed", seq, entry.id, "sealed, and gone")

    async def unsealed_after(self, last: Digest | None) -> int:
        return await self.source.unsealed((0, 0) if last is None else last.last, UNSEALED_CAP)


async def verify(
    source: SealStore,
    *,
    public_key: Ed25519PublicKey | None = None,
    since: datetime | None = None,
) -> Report:
    """Check the digests (sealed at ``since`` or later: all by default) against the events."""
    checker = _Verifier(source, public_key)
    report = checker.report
    checker.explain = _Explanations(
        await source.own_records([EVENT_UPDATED, EVENT_DELETED, RETENTION_EVENT])
    )
    previous: Digest | None = None
    first = await source.digests(limit=1, since=since)
    if first and first[0].seq > 1:
        before = await source.digests(after=first[0].seq - 2, limit=1)
        previous = before[0] if before else None
    after = first[0].seq - 1 if first else 0
    while True:
        page = await source.digests(after=after, limit=100)
        for digest in page:
            entries = checker.check_header(digest, previous)
            await checker.compare(digest, entries, previous)
            report.digests += 1
            report.events += len(entries)
            report.first_seq = report.first_seq or digest.seq
            report.last_seq = digest.seq
            previous = digest
        if len(page) < 100:
            break
        after = page[-1].seq
    report.unsealed = await checker.unsealed_after(previous)
    return report
