"""Ed25519 seal keys: signing digests, and checking their signatures.

A seal key is 32 random bytes, given (base64) in the ``seal_key`` setting:
keep it away from the database, so that whoever can write the tables cannot
sign a digest. Its public half is a PEM file anyone may hold; ``sysevents
verify --public-key FILE`` checks the signatures with it. A key's id is the
first 8 bytes of the SHA-256 of its raw public key, in hex.

Needs the ``cryptography`` package (``pip install 'sysevents[seal]'``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sysevents.errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - the extra is part of every test install
        raise ConfigurationError(
            "signing and checking digests needs the cryptography package: "
            "pip install 'sysevents[seal]'"
        ) from None
    return ed25519


def key_id(public: Ed25519PublicKey) -> str:
    """The id of a public key (see the module)."""
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """A seal key, ready to sign digest headers."""

    private: Ed25519PrivateKey

    @classmethod
    def from_text(cls, text: str) -> Signer:
        """The key of a ``seal_key`` setting (base64 of 32 bytes)."""
        ed25519 = _ed25519()
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigurationError(
                "seal_key is the base64 of 32 bytes: make one with `sysevents seal-key`"
            )
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def generate(cls) -> Signer:
        """A new random key."""
        return cls(_ed25519().Ed25519PrivateKey.generate())

    @property
    def public(self) -> Ed25519PublicKey:
        """The public half."""
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        """The public half's id."""
        return key_id(self.public)

    def text(self) -> str:
        """The key as the ``seal_key`` setting holds it."""
        from cryptography.hazmat.primitives import serialization

        raw = self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(raw).decode()

    def public_pem(self) -> str:
        """The public half as a PEM file's text."""
        return public_pem(self.public)

    def sign(self, header: bytes) -> bytes:
        """The signature of a digest header."""
        return self.private.sign(header)


def public_pem(public: Ed25519PublicKey) -> str:
    """A public key as PEM text."""
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public(text: str) -> Ed25519PublicKey:
    """A public key from PEM text; ``ConfigurationError`` if it is not an Ed25519 one."""
    _ed25519()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(
            "the public key is not an Ed25519 public key in PEM (`sysevents seal-key` prints one)"
        )
    return key


def signature_valid(public: Ed25519PublicKey, header: bytes, signature: bytes | None) -> bool:
    """Whether ``signature`` is the key's signature of ``header``."""
    from cryptography.exceptions import InvalidSignature

    if signature is None:
        return False
    try:
        public.verify(signature, header)
    except InvalidSignature:
        return False
    return True
