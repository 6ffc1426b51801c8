"""The retention policy: which events expire, and when. Storage-agnostic.

A policy is a list of rules ``SELECTOR=AGE``: SELECTOR is ``*``, a severity
name, or ``type:GLOB`` (``*`` any run of characters, ``?`` one character);
AGE is a number with ``h``, ``d`` or ``w``. An event is governed by the most
specific rule that matches it: a type rule over a severity rule over ``*``;
among type rules the glob with the most literal characters wins, then the
one written first. An event no rule governs is kept forever. An event
expires when its ``timestamp`` is older than its rule's age.

Stores apply a policy with ``apply_retention`` (see ``sysevents.store``);
``sysevents.upkeep`` applies and records it; this module only decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from .model import OwnRecord, Severity

__all__ = [
    "RETENTION_EVENT",
    "RetentionPolicy",
    "RetentionReport",
    "Rule",
    "RuleOutcome",
]

RETENTION_EVENT = "sysevents.retention"
"""The type of the event recording what one application of the policy removed."""

_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_AGE = re.compile(r"([0-9]{1,6})([hdw])")
_SEVERITIES = {s.value: s for s in Severity}
RuleKind = Literal["type", "severity", "all"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a policy: the events it selects, and how long they are kept."""

    kind: RuleKind
    pattern: str
    """The type glob, the severity name, or ``*``."""
    age: timedelta
    text: str
    """The rule as written (normalised), e.g. ``type:deploy.*=7d``."""

    @property
    def specificity(self) -> tuple[int, int]:
        """How specific the selector is: rules with a larger value win."""
        rank = {"type": 2, "severity": 1, "all": 0}[self.kind]
        literal = len(self.pattern.replace("*", "").replace("?", "")) if self.kind == "type" else 0
        return rank, literal

    def selects(self, event_type: str, severity: Severity | str) -> bool:
        """Whether the selector matches (whether or not a more specific rule wins)."""
        if self.kind == "all":
            return True
        if self.kind == "severity":
            return str(getattr(severity, "value", severity)) == self.pattern
        return _glob_regex(self.pattern).fullmatch(event_type) is not None

    def like_pattern(self) -> str:
        """The type glob as a SQL ``LIKE`` pattern (a backslash escapes)."""
        out = []
        for char in self.pattern:
            if char == "*":
                out.append("%")
            elif char == "?":
                out.append("_")
            elif char in "%_\\":
                out.append("\\" + char)
            else:
                out.append(char)
        return "".join(out)


def _glob_regex(glob: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob), re.DOTALL
    )


def parse_age(text: str) -> timedelta:
    """An age such as ``36h``, ``7d`` or ``52w`` (``ValueError`` if it is not one)."""
    match = _AGE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"age {text!r} is not a positive number of h, d or w (e.g. 36h, 7d, 52w)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _parse_rule(text: str) -> Rule:
    selector, sep, age_text = text.strip().rpartition("=")
    selector = selector.strip()
    if not sep or not selector:
        raise ValueError(f"rule {text.strip()!r} is not SELECTOR=AGE (e.g. debug=7d)")
    age = parse_age(age_text)
    age_text = age_text.strip()
    if selector == "*":
        return Rule("all", "*", age, f"*={age_text}")
    if selector.startswith("type:"):
        glob = selector.removeprefix("type:")
        if not glob or len(glob) > 100 or any(ord(c) < 32 for c in glob):
            raise ValueError(f"type glob {glob!r} must be 1 to 100 printable characters")
        return Rule("type", glob, age, f"type:{glob}={age_text}")
    if selector in _SEVERITIES:
        return Rule("severity", selector, age, f"{selector}={age_text}")
    raise ValueError(
        f"selector {selector!r} is not *, a severity ({', '.join(_SEVERITIES)}) or type:GLOB"
    )


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The rules of a policy, most specific first (see the module's documentation)."""

    rules: tuple[Rule, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> RetentionPolicy:
        """The policy written as ``SELECTOR=AGE,...``; empty or ``None``: keep everything.

        Raises ``ValueError`` naming the rule that cannot be read.
        """
        rules: list[Rule] = []
        seen: set[tuple[str, str]] = set()
        for part in (text or "").split(","):
            if not part.strip():
                continue
            rule = _parse_rule(part)
            if (rule.kind, rule.pattern) in seen:
                raise ValueError(f"selector of {rule.text!r} is given twice")
            seen.add((rule.kind, rule.pattern))
            rules.append(rule)
        # sorted() is stable: equally specific rules keep the order written.
        return cls(tuple(sorted(rules, key=lambda r: r.specificity, reverse=True)))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __str__(self) -> str:
        return ",".join(rule.text for rule in self.rules)

    def rule_for(self, event_type: str, severity: Severity | str) -> Rule | None:
        """The rule governing an event of this type and severity, if any."""
        for rule in self.rules:
            if rule.selects(event_type, severity):
                return rule
        return None

    def expired(
        self, event_type: str, severity: Severity | str, timestamp: datetime, now: datetime
    ) -> bool:
        """Whether an event with these values has expired at ``now``."""
        rule = self.rule_for(event_type, severity)
        return rule is not None and timestamp < now - rule.age

    def whole_before(self, now: datetime) -> datetime | None:
        """A time before which every event has expired, whatever it is; ``None`` if none.

        Only with a ``*`` rule: without it, some events are kept forever.
        """
        if not any(rule.kind == "all" for rule in self.rules):
            return None
        return now - max(rule.age for rule in self.rules)


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What one rule removed (or would remove)."""

    rule: str
    cutoff: datetime
    """Events governed by the rule with a ``timestamp`` before this expire."""
    removed: int


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one application of a policy removed, rule by rule."""

    now: datetime
    dry_run: bool
    rules: tuple[RuleOutcome, ...] = ()
    partitions_dropped: tuple[str, ...] = field(default=())
    """PostgreSQL: the time partitions removed whole."""
    busy: bool = False
    """Another process was applying the policy: this one did nothing."""

    @classmethod
    def from_counts(
        cls,
        policy: RetentionPolicy,
        now: datetime,
        counts: Mapping[str, int],
        *,
        dry_run: bool,
        partitions: Iterable[str] = (),
    ) -> RetentionReport:
        """A report with one outcome per rule of ``policy`` (``counts`` by rule text)."""
        return cls(
            now=now,
            dry_run=dry_run,
            rules=tuple(
                RuleOutcome(rule.text, now - rule.age, counts.get(rule.text, 0))
                for rule in policy.rules
            ),
            partitions_dropped=tuple(partitions),
        )

    @property
    def removed(self) -> int:
        """Events removed by every rule together."""
        return sum(outcome.removed for outcome in self.rules)

    def lines(self) -> list[str]:
        """The report as lines of text, one per rule, then the partitions."""
        verb = "would remove" if self.dry_run else "removed"
        out = [
            f"{o.rule}: {verb} {o.removed} event(s) older than {o.cutoff.isoformat()}"
            for o in self.rules
        ]
        out += [f"dropped partition {name}" for name in self.partitions_dropped]
        if self.busy:
            out.append("another process is applying the retention policy: nothing done here")
        elif not self.rules:
            out.append("no retention policy: every event is kept")
        return out

    def as_event(self) -> OwnRecord:
        """The event recording this report (``sysevents.retention``)."""
        return OwnRecord(
            event_type=RETENTION_EVENT,
            message=f"retention removed {self.removed} event(s)",
            source="sysevents",
            details=self.details(),
        )

    def details(self) -> dict[str, Any]:
        """The report as JSON-ready details."""
        return {
            "removed": self.removed,
            "rules": {
                o.rule: {"removed": o.removed, "cutoff": o.cutoff.isoformat()} for o in self.rules
            },
            "partitions_dropped": list(self.partitions_dropped),
        }
