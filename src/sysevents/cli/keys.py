"""``sysevents keys create|list|revoke``: API keys, kept in the event store's database."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from datetime import datetime

from sysevents._connect import connect
from sysevents.audit import KEY_CREATED, KEY_REVOKED, key_record
from sysevents.errors import ConfigurationError, SyseventsError
from sysevents.keys import ApiKey, KeyRing, expiry_in, new_key, parse_scopes, static_keys
from sysevents.settings import Settings
from sysevents.store import EventRepository


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``keys`` command and its subcommands."""
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    keys.add_argument("--database-url", help="the store (default: SYSEVENTS_DATABASE_URL)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key; it is printed on the last line")
    create.add_argument("--name", required=True, help="a name for the key (unique)")
    create.add_argument(
        "--scope", required=True, help="its scopes: read, write, admin, comma-separated"
    )
    create.add_argument("--expires", help="a lifetime: 36h, 90d, 52w (default: never)")
    actions.add_parser("list", help="list the keys (never the keys themselves)")
    revoke = actions.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``keys`` subcommand."""
    if args.keys_command == "create":
        scopes = parse_scopes(args.scope)
        expires = expiry_in(args.expires) if args.expires else None
        if settings.database_url.startswith("memory:"):
            return _stateless(args.name, scopes, expires)
    return asyncio.run(_run(args, settings))


def _stateless(name: str, scopes: frozenset[str], expires: datetime | None) -> int:
    """A key for a store that keeps none: it goes into ``SYSEVENTS_API_KEYS``."""
    if expires is not None:
        raise ConfigurationError("keys given in SYSEVENTS_API_KEYS cannot expire")
    text, _, _ = new_key()
    print("the memory store keeps no keys: add this entry to SYSEVENTS_API_KEYS")
    print(f"{name}:{'+'.join(sorted(scopes))}:{text}")
    print("the key (shown only now):")
    print(text)
    return 0


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with connect(settings=settings) as repo:
        store = repo.keys
        if store is None:
            raise ConfigurationError(f"{settings.database_url.split(':')[0]}:// keeps no API keys")
        if args.keys_command == "create":
            scopes = parse_scopes(args.scope)
            expires = expiry_in(args.expires) if args.expires else None
            if settings.api_keys is not None:
                KeyRing(None, static_keys(settings.api_keys.get_secret_value())).refuse_static_name(
                    args.name
                )
            key, text = await store.create_key(args.name, scopes, expires)
            await _record(repo, KEY_CREATED, key)
            print(f"created the key {key.name!r}: {_describe(key)}")
            print("store it now: it is shown only once, and kept only as a hash")
            print(text)
        elif args.keys_command == "list":
            keys = await store.list_keys()
            if not keys:
                print("no keys: create one with `sysevents keys create --name NAME --scope admin`")
            for key in keys:
                print(f"{key.name:30} se_{key.key_id}_…  {_describe(key)}")
        else:
            key = await store.revoke_key(args.name)
            await _record(repo, KEY_REVOKED, key)
            print(f"revoked the key {key.name!r}: it stops working within a few seconds")
    return 0


async def _record(repo: EventRepository, event_type: str, key: ApiKey) -> None:
    """Record the change as an event; who acted is the command line's user."""
    actor = f"cli:{_user()}"
    record = key_record(event_type, key.key_id, key.name, list(key.scopes), key.expires_at, actor)
    try:
        await repo.add(record, caller=actor)
    except SyseventsError as exc:  # the change stands: say it was not recorded
        print(f"sysevents: the change was made but not recorded: {exc}", file=sys.stderr)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _describe(key: ApiKey) -> str:
    state = "revoked" if key.revoked_at else "expired" if not key.usable() else "active"
    expiry = f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else ""
    return f"{state}, scopes {'+'.join(sorted(key.scopes))}{expiry}"
