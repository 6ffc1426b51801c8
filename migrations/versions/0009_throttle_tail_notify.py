"""The live tail's NOTIFY is sent at most once per interval per session.

A transaction that has sent ``NOTIFY`` takes one lock for the whole server at
commit and keeps it until its commit is on disk, so with a notification in
every transaction concurrent writers commit one at a time: with 8 or more
writers committing one event each, the 0008 trigger cut inserts to 0.4x
(``bench/notify_cost.py``). ``system_events_notify()`` now notifies only when
its session has not done so for ``sysevents.notify_interval`` seconds (0.1
unless set: ``ALTER DATABASE ... SET sysevents.notify_interval = '0'`` notifies
on every statement again). An insert that did not notify is still read soon:
a woken tail looks again 20, 60, 140, 300 ms later, and polls every
``tail_poll`` seconds besides.

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

# Session settings (not transaction-local): an aborted transaction takes its
# set_config back with it, so its session notifies again next time. A setting
# that is not a number is ignored rather than failing the insert.
THROTTLED = f"""
CREATE OR REPLACE FUNCTION system_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    number constant text := '^[0-9]+(\\.[0-9]*)?$';
    at double precision := extract(epoch FROM clock_timestamp());
    last_text text := current_setting('sysevents.notified_at', true);
    gap_text text := current_setting('sysevents.notify_interval', true);
    last double precision;
    gap double precision := 0.1;
BEGIN
    IF gap_text ~ number THEN
        gap := gap_text::double precision;
    END IF;
    IF last_text ~ number THEN
        last := last_text::double precision;
    END IF;
    IF last IS NULL OR at - last >= gap OR at < last THEN
        PERFORM set_config('sysevents.notified_at', at::text, false);
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
