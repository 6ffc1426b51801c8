"""Random sequences of operations: every backend must answer exactly as memory does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import sysevents
from sysevents import Event, EventFilter, EventPatch, EventQuery, MemoryEventRepository, NewEvent
from sysevents.model import MAX_EVENT_ID
from tests.conftest import EMPTY_EVENTS, RUN_ID
from tests.strategies import BASE, event_filters, new_events, patches, queries

CURSOR_SECRET = "stateful"
POLICIES = st.sampled_from(
    ["*=20d", "debug=1d,*=30d", "type:d*=2h", "error=3d,type:deploy=10d,info=15d", "*=1h"]
)

T = TypeVar("T")

MACHINE_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def comparable(event: Event | None) -> dict[str, Any] | None:
    """What both stores must agree on: everything but the store's clock and its ids.

    PostgreSQL ids name the event's month (see ``sysevents.stores.postgres.ids``);
    within a month they grow with each insert, as memory's do, so both list
    events of one timestamp in the same order.
    """
    return None if event is None else event.model_dump(exclude={"created_at", "id"})


def make_machine(
    open_other: Callable[[], sysevents.EventRepository],
) -> type[RuleBasedStateMachine]:
    class SameAnswers(RuleBasedStateMachine):
        """Applies each operation to memory and to the other backend, compares answers."""

        def __init__(self) -> None:
            super().__init__()
            # Hypothesis has no async rules: one loop per run, the pool bound to it.
            self.loop = asyncio.new_event_loop()
            self.memory = MemoryEventRepository(cursor_secret=CURSOR_SECRET)
            self.other = open_other()
            self.run(self.other.open())
            self.ids: list[int] = []
            self.id_map: dict[int, int] = {}  # memory's id -> the other store's

        def run(self, coro: Coroutine[Any, Any, T]) -> T:
            return self.loop.run_until_complete(coro)

        def both(
            self, call: Callable[[sysevents.EventRepository], Coroutine[Any, Any, T]]
        ) -> tuple[Any, Any]:
            return self.both_by_id(lambda repo, _: call(repo), 0)

        def both_by_id(
            self,
            call: Callable[[sysevents.EventRepository, int], Coroutine[Any, Any, T]],
            event_id: int,
        ) -> tuple[Any, Any]:
            """``call`` on each store, given memory's id and the other store's id of the event."""
            answers = []
            ids = (event_id, self.id_map.get(event_id, event_id))
            for repo, own_id in zip((self.memory, self.other), ids, strict=True):
                try:
                    answers.append(("ok", self.run(call(repo, own_id))))
                except sysevents.SyseventsError as exc:
                    answers.append(("error", type(exc).__name__))
            return answers[0], answers[1]

        def same_events(self, mine: Any, theirs: Any) -> None:
            """The same events, in the same order, each the other's counterpart."""
            assert [comparable(e) for e in mine] == [comparable(e) for e in theirs]
            assert [self.id_map.get(e.id) for e in mine] == [e.id for e in theirs]

        def teardown(self) -> None:
            try:
                self.run(self.other.close())
            finally:
                self.loop.close()

        def some_id(self, data: st.DataObject) -> int:
            choices = st.sampled_from(self.ids) if self.ids else st.nothing()
            return data.draw(
                st.one_of(
                    choices, st.integers(min_value=-2, max_value=60), st.just(MAX_EVENT_ID + 1)
                )
            )

        @initialize()
        def start_empty(self) -> None:
            assert self.run(self.other.stats()).total == 0

        @rule(new=new_events())
        def add(self, new: NewEvent) -> None:
            mine, theirs = self.both(lambda r: r.add(new))
            if mine[0] == "error":  # a type only sysevents writes: both refuse it
                assert theirs == mine
                return
            assert comparable(mine[1]) == comparable(theirs[1])
            self.ids.append(mine[1].id)
            self.id_map[mine[1].id] = theirs[1].id

        @rule(news=st.lists(new_events(), max_size=5))
        def add_many(self, news: list[NewEvent]) -> None:
            mine, theirs = self.both(lambda r: r.add_many(news))
            if mine[0] == "error":
                assert theirs == mine
                return
            assert [comparable(e) for e in mine[1]] == [comparable(e) for e in theirs[1]]
            self.ids += [e.id for e in mine[1]]
            self.id_map.update((a.id, b.id) for a, b in zip(mine[1], theirs[1], strict=True))

        @rule(data=st.data())
        def get(self, data: st.DataObject) -> None:
            event_id = self.some_id(data)
            mine, theirs = self.both_by_id(lambda r, i: r.get(i), event_id)
            assert comparable(mine[1]) == comparable(theirs[1])

        @rule(data=st.data(), patch=patches())
        def update(self, data: st.DataObject, patch: EventPatch) -> None:
            event_id = self.some_id(data)
            mine, theirs = self.both_by_id(lambda r, i: r.update(i, patch), event_id)
            assert mine[0] == theirs[0]
            if mine[0] == "ok":
                assert comparable(mine[1]) == comparable(theirs[1])
            else:
                assert mine[1] == theirs[1] == "NotFoundError"

        @rule(data=st.data())
        def delete(self, data: st.DataObject) -> None:
            event_id = self.some_id(data)
            mine, theirs = self.both_by_id(lambda r, i: r.delete(i), event_id)
            assert mine == theirs

        @rule(query=queries(), follow=st.booleans())
        def list(self, query: EventQuery, follow: bool) -> None:
            mine, theirs = self.both(lambda r: r.list(query))
            assert (mine[1].total, mine[1].total_exact) == (theirs[1].total, theirs[1].total_exact)
            self.same_events(mine[1].items, theirs[1].items)
            # Cursors hold the last id, which differs; each store follows its own.
            assert (mine[1].next_cursor is None) == (theirs[1].next_cursor is None)
            if follow and mine[1].next_cursor:
                cursors = {
                    id(self.memory): mine[1].next_cursor,
                    id(self.other): theirs[1].next_cursor,
                }
                mine, theirs = self.both(
                    lambda r: r.list(
                        query.model_copy(update={"cursor": cursors[id(r)], "offset": 0})
                    )
                )
                self.same_events(mine[1].items, theirs[1].items)

        @rule(filters=event_filters)
        def stats(self, filters: EventFilter) -> None:
            mine, theirs = self.both(lambda r: r.stats(filters))
            assert mine == theirs

        @rule(policy=POLICIES, dry_run=st.booleans())
        def retention(self, policy: str, dry_run: bool) -> None:
            rules = sysevents.RetentionPolicy.parse(policy)

            async def apply(repo: sysevents.EventRepository) -> Any:
                report = await repo.apply_retention(rules, now=BASE, dry_run=dry_run)
                return [(o.rule, o.removed) for o in report.rules]

            mine, theirs = self.both(apply)
            assert mine == theirs

        @invariant()
        def same_totals(self) -> None:
            mine, theirs = self.both(lambda r: r.stats())
            assert mine == theirs

    return SameAnswers


def run_machine(
    open_other: Callable[[], sysevents.EventRepository], before_each: Callable[[], None]
) -> None:
    machine = make_machine(open_other)

    def factory() -> RuleBasedStateMachine:
        before_each()
        return machine()

    run_state_machine_as_test(factory, settings=MACHINE_SETTINGS)


@pytest.mark.postgres
def test_postgres_answers_like_memory(postgres_url: str) -> None:
    import psycopg

    def empty() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(EMPTY_EVENTS)

    run_machine(lambda: sysevents.connect(postgres_url, cursor_secret=CURSOR_SECRET), empty)


@pytest.mark.postgres
@pytest.mark.redis
def test_cached_postgres_answers_like_memory(postgres_url: str, redis_server_url: str) -> None:
    import psycopg

    prefixes = iter(range(10**6))
    run_id = uuid.uuid4().hex[:8]

    def empty() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(EMPTY_EVENTS)

    def open_cached() -> sysevents.EventRepository:
        # A fresh prefix per run: ids restart, so an old run's entries must not be seen.
        prefix = f"sysevents-test-{RUN_ID}-stateful-{run_id}-{next(prefixes)}"
        return sysevents.connect(
            postgres_url,
            redis_url=redis_server_url,
            cache_prefix=prefix,
            cursor_secret=CURSOR_SECRET,
        )

    run_machine(open_cached, empty)


def test_sqlite_answers_like_memory(tmp_path: Path) -> None:
    files = iter(range(10**6))

    def open_sqlite() -> sysevents.EventRepository:
        # A fresh file per run: ids restart, as memory's do.
        return sysevents.connect(
            f"sqlite:///{tmp_path / f'run{next(files)}.db'}", cursor_secret=CURSOR_SECRET
        )

    run_machine(open_sqlite, lambda: None)


@pytest.mark.redis
def test_cached_sqlite_answers_like_memory(tmp_path: Path, redis_server_url: str) -> None:
    runs = iter(range(10**6))
    run_id = uuid.uuid4().hex[:8]

    def open_cached() -> sysevents.EventRepository:
        n = next(runs)
        return sysevents.connect(
            f"sqlite:///{tmp_path / f'run{n}.db'}",
            redis_url=redis_server_url,
            cache_prefix=f"sysevents-test-{RUN_ID}-stateful-sqlite-{run_id}-{n}",
            cursor_secret=CURSOR_SECRET,
        )

    run_machine(open_cached, lambda: None)
