"""``sysevents seal-key`` (the key digests are signed with) and ``sysevents verify``."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sysevents._connect import connect
from sysevents.errors import ConfigurationError
from sysevents.integrity.signing import Signer, load_public
from sysevents.integrity.verify import verify
from sysevents.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``seal-key`` and ``verify`` commands."""
    seal_key = commands.add_parser(
        "seal-key", help="make a key to sign digests with, and print its public half"
    )
    seal_key.add_argument(
        "--public-only",
        action="store_true",
        help="print the public half of the key in SYSEVENTS_SEAL_KEY instead",
    )
    seal_key.add_argument("--public-key-file", help="also write the public half to this file")
    check = commands.add_parser(
        "verify",
        help="check the digests against the stored events: exit 0 if nothing was changed "
        "behind sysevents' back, 1 if something was",
    )
    check.add_argument("--database-url", help="the store (default: SYSEVENTS_DATABASE_URL)")
    check.add_argument(
        "--since", help="only digests sealed from then: ISO 8601 (UTC if no offset) or 36h, 90d"
    )
    check.add_argument(
        "--public-key",
        metavar="FILE",
        help="the seal key's public half (PEM); default: derived from SYSEVENTS_SEAL_KEY",
    )


def since_of(text: str, now: datetime | None = None) -> datetime:
    """A time given as ISO 8601 (UTC if no offset) or as an age: ``36h``, ``90d``, ``2w``."""
    from sysevents.retention import parse_age

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            return (now or datetime.now(UTC)) - parse_age(text)
        except ValueError:
            raise ConfigurationError(
                f"--since {text!r} is neither a time (2026-12-01T00:00:00Z) nor an age (90d)"
            ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def run_seal_key(args: argparse.Namespace, settings: Settings) -> int:
    """Make a seal key (or show the public half of the configured one)."""
    if args.public_only:
        if settings.seal_key is None:
            raise ConfigurationError("no seal key: set SYSEVENTS_SEAL_KEY")
        signer = Signer.from_text(settings.seal_key.get_secret_value())
    else:
        signer = Signer.generate()
        print("# The seal key: give it to the service that seals (and keep it from the database)")
        print(f"SYSEVENTS_SEAL_KEY={signer.text()}")
        print(f"# Its public half (key {signer.key_id}), for `sysevents verify --public-key FILE`:")
    pem = signer.public_pem()
    print(pem, end="")
    if args.public_key_file:
        Path(args.public_key_file).write_text(pem)
    return 0


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Verify the digest chain of a store; 0 if nothing was tampered with, else 1."""
    public: Ed25519PublicKey | None = None
    if args.public_key:
        try:
            text = Path(args.public_key).read_text()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the public key: {exc}") from None
        public = load_public(text)
    elif settings.seal_key is not None:
        public = Signer.from_text(settings.seal_key.get_secret_value()).public
    since = since_of(args.since) if args.since else None
    return asyncio.run(_verify(settings, public, since))


async def _verify(
    settings: Settings, public: Ed25519PublicKey | None, since: datetime | None
) -> int:
    quiet = settings.updated(fold_interval=0, seal_interval=0, redis_url=None)
    async with connect(settings=quiet) as repo:
        seals = repo.seals
        if seals is None:
            raise ConfigurationError(
                f"{settings.database_url.split(':')[0]}:// keeps no digests: verify the store "
                "the service writes to"
            )
        report = await verify(seals, public_key=public, since=since)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1
