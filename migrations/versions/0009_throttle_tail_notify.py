"""The live tail's NOTIFY is sent at most once per interval per session.

A transaction that has sent ``NOTIFY`` takes one lock for the whole server at
commit and keeps it until its commit is on disk, so with a notification in
every transaction concurrent writers commit one at a time: with 8 or more
writers committing one event each, the 0008 trigger cut inserts to 0.3-0.5x
(``bench/notify_cost.py``). ``system_events_notify()`` now notifies only when
its session has not done so for ``sysevents.notify_interval`` seconds: a plain
decimal such as ``0.5``, 0.1 unless set; ``0`` notifies on every statement
again, ``off`` never (tails then rely on their polls; a two-phase transaction
needs it, as PostgreSQL refuses to prepare one that notified). An insert
that did not notify is still read soon: a woken tail looks again 20, 60, 140,
300 ms later, and polls every ``tail_poll`` seconds besides.

Revision ID: 0009
Revises: 0008
Create Date: 2025-05-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "sysevents_events"

# Session settings (not transaction-local): a rolled-back transaction or
# savepoint takes its set_config back with it, so its session notifies again
# next time. A setting that is not a plain decimal is ignored rather than
# failing the insert; numeric, not float, so the text never takes an exponent.
THROTTLED = f"""
CREATE OR REPLACE FUNCTION system_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    plain_decimal constant text := '^[0-9]{{1,12}}(\\.[0-9]{{1,9}})?$';
    now_s numeric := extract(epoch FROM clock_timestamp());
    last_text text := current_setting('sysevents.notified_at', true);
    interval_text text := current_setting('sysevents.notify_interval', true);
    last_s numeric;
    interval_s numeric := 0.1;
BEGIN
    IF interval_text = 'off' THEN
        RETURN NULL;
    END IF;
    IF interval_text ~ plain_decimal THEN
        interval_s := interval_text::numeric;
    END IF;
    IF last_text ~ plain_decimal THEN
        last_s := last_text::numeric;
    END IF;
    IF last_s IS NULL OR now_s - last_s >= interval_s OR now_s < last_s THEN
        PERFORM set_config('sysevents.notified_at', now_s::text, false);
        PERFORM pg_notify('{CHANNEL}', '');
    END IF;
    RETURN NULL;
END $$
"""
EVERY_STATEMENT = (
    "CREATE OR REPLACE FUNCTION system_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
)


def upgrade() -> None:
    op.execute(THROTTLED)


def downgrade() -> None:
    op.execute(EVERY_STATEMENT)
