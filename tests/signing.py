"""Signing keys of the test session: the services' and a client's, in a private folder.

Every process of the session (services built in-process and those started as programs)
reads its key file from the environment, as a deployment would.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sous_common.trust import Signer

FOLDER = Path(tempfile.mkdtemp(prefix="sous-test-keys-"))


def _signer(principal: str, file: str) -> Signer:
    signer = Signer.generate(principal)
    signer.save(FOLDER / file)
    return signer


SCHEDULER = _signer("sous-scheduler", "scheduler.pem")
"""The scheduler's key; the scheduler trusts it as itself (test stand-ins send with it)."""
REGISTRY = _signer("sous-domain-registry", "domain-registry.pem")
"""The registry's key; it publishes it in its own grant."""
ADMIN = _signer("admin", "admin.pem")
"""The bootstrap admin's key (the CLI's, in tests)."""

ENVIRONMENT = {
    "SOUS_SCHEDULER_SIGNING_KEY_FILE": str(FOLDER / "scheduler.pem"),
    "SOUS_DOMAIN_REGISTRY_SIGNING_KEY_FILE": str(FOLDER / "domain-registry.pem"),
    "SOUS_DOMAIN_REGISTRY_ADMIN_PUBLIC_KEY": ADMIN.public_key,
    "SOUS_SIGNING_KEY_FILE": str(FOLDER / "admin.pem"),
    "SOUS_PRINCIPAL": "admin",
}
"""What the session's processes read."""


def signed_headers(value: bytes, signer: Signer = SCHEDULER) -> list[tuple[str, bytes]]:
    """Return Kafka headers signing `value` (type header left to the caller)."""
    return [(k, v.encode()) for k, v in signer.headers(value).items()]
