"""Who may do what, on REST and on Kafka alike: principals, scopes, signed messages (DESIGN §5.11).

A message that starts, cancels or changes something carries two headers: `sous-principal`,
the principal that signed it, and `sous-signature`, the base64 Ed25519 signature of the
record's value bytes. The consumer verifies the signature against the principal's public
keys, published by the registry on its changelog in the principal's grant, then checks
the scope the message needs, exactly as the REST API would. A principal holding `admin`
on every domain (the registry, the scheduler) may act for another: the message's
`principal` field then names who asked, and that principal's scopes are checked.
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sous_common.decoding import Refusal
from sous_contracts.backfills import BackfillRejected, CancelBackfill, RetryBackfill, StartBackfill
from sous_contracts.envelope import Envelope
from sous_contracts.registry import ApplySpecs
from sous_contracts.runs import CancelOrderRun, DomainRunCompleted, OrderRunRejected, StartOrderRun
from sous_contracts.steps import StepEventsMark

Scope = Literal["read", "run", "publish-events", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "run", "publish-events", "admin")
ANY_DOMAIN = "*"

PRINCIPAL_HEADER = "sous-principal"
SIGNATURE_HEADER = "sous-signature"
SIGNED_TYPES = frozenset(
    str(m.model_fields["type"].default)
    for m in (
        StartOrderRun,
        CancelOrderRun,
        DomainRunCompleted,
        ApplySpecs,
        StartBackfill,
        CancelBackfill,
        RetryBackfill,
    )
)
"""Message types a consumer accepts only signed by a principal holding the scope."""
MARK_TYPES = frozenset({str(StepEventsMark.model_fields["type"].default)})
"""Signed as well, and verified only by the scheduler, whose own marks they are."""


def signed(message_type: str) -> bool:
    """True for the message types a sender signs (the others are never verified)."""
    return message_type in SIGNED_TYPES or message_type in MARK_TYPES


UNAUTHORIZED = "unauthorized"
"""The dead letter's `error_kind` for a message refused by these checks."""


@dataclass(frozen=True)
class Principal:
    """A caller: its scopes by domain (`*` for every domain) and its public keys."""

    name: str
    scopes: dict[str, list[str]] = field(default_factory=dict)
    keys: tuple[str, ...] = ()

    def may(self, scope: Scope, domain: str | None) -> bool:
        """True when the principal holds `scope` (or `admin`) on `domain` or on `*`."""
        for key in (ANY_DOMAIN, domain):
            held = self.scopes.get(key or ANY_DOMAIN, [])
            if scope in held or "admin" in held:
                return True
        return False

    def readable(self, domains: list[str]) -> list[str]:
        """Return the domains the principal may read."""
        return [d for d in domains if self.may("read", d)]

    @classmethod
    def from_grant(cls, name: str, spec: dict[str, Any]) -> Principal:
        """Return the principal a grant entity of the changelog describes."""
        return cls(name, dict(spec.get("scopes", {})), tuple(spec.get("keys", ())))

    @property
    def acts_for_others(self) -> bool:
        """True for an admin of every domain, which may sign on behalf of another principal."""
        return "admin" in self.scopes.get(ANY_DOMAIN, [])


def denial(principal: Principal, scope: Scope, domain: str | None) -> str | None:
    """Return why `principal` may not use `scope` on `domain`, or None when it may."""
    if principal.may(scope, domain):
        return None
    where = f"domain '{domain}'" if domain else "every domain ('*')"
    return f"principal '{principal.name}' lacks scope '{scope}' on {where}"


def public_key_problem(text: str) -> str | None:
    """Return what is wrong with a public key (base64 of the raw 32 bytes), or None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "public key is not base64"
    if len(raw) != 32:
        return f"public key is {len(raw)} bytes; an Ed25519 public key is 32"
    return None


@functools.lru_cache(maxsize=1024)
def _public(text: str) -> Ed25519PublicKey | None:
    if public_key_problem(text) is not None:
        return None
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


class Signer:
    """A principal's private key: signs record values for the two headers."""

    def __init__(self, principal: str, key: Ed25519PrivateKey) -> None:
        self.principal = principal
        self._key = key

    @classmethod
    def generate(cls, principal: str) -> Signer:
        """Return a signer with a new key pair."""
        return cls(principal, Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, principal: str, path: Path) -> Signer:
        """Read a PEM (PKCS#8) Ed25519 private key.

        Raises:
            ValueError: the file is not such a key (its path is named).
        """
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: the key is not an Ed25519 key")
        return cls(principal, key)

    def save(self, path: Path) -> None:
        """Write the private key as PEM, readable by its owner only."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_bytes(pem)

    @property
    def public_key(self) -> str:
        """The public key to publish: base64 of its raw 32 bytes."""
        raw = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode()

    def headers(self, value: bytes) -> dict[str, str]:
        """Return the principal and signature headers of a record value."""
        signature = base64.b64encode(self._key.sign(value)).decode()
        return {PRINCIPAL_HEADER: self.principal, SIGNATURE_HEADER: signature}


def load_signer(principal: str, path: Path | None, variable: str) -> Signer:
    """Return a service's signer from its key file.

    Raises:
        ValueError: no key file is configured, or it holds no Ed25519 key; says which.
    """
    if path is None:
        raise ValueError(
            f"{variable} is not set: {principal} signs the commands and events it sends."
            f" Create a key with `sous keys new FILE` and set {variable}=FILE"
        )
    return Signer.load(principal, path)


class TrustStore(Protocol):
    """What a consumer knows to judge a signed message; each service answers from its tables."""

    async def principal(self, name: str) -> Principal | None:
        """Return a principal with its published keys and scopes, or None when unknown."""
        ...

    async def domain_known(self, domain: str) -> bool:
        """True when the catalog holds the domain."""
        ...

    async def run_domain(self, order_run_id: Any) -> str | None:
        """Return the domain of a run (or of a backfill), or None when unknown here."""
        ...

    async def refresh(self, since: datetime) -> bool:
        """Catch up with grants published up to `since`; False when nothing could change."""
        ...


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return bytes(value).decode("ascii", errors="replace") if value is not None else None
    return None


def _refuse(message: Envelope, reason: str) -> Refusal:
    event: Envelope | None = None
    if isinstance(message, StartOrderRun | CancelOrderRun):
        event = OrderRunRejected(
            producer="sous-trust",
            order_run_id=message.order_run_id,
            reason=reason,
            domain=getattr(message, "domain", None),
            recipe=getattr(message, "recipe", None),
        )
    elif isinstance(message, StartBackfill | CancelBackfill | RetryBackfill):
        event = BackfillRejected(
            producer="sous-trust",
            backfill_id=message.backfill_id,
            command=message.type,
            reason=reason,
            domain=getattr(message, "domain", None),
            recipe=getattr(message, "recipe", None),
        )
    return Refusal(f"{message.type} refused: {reason}", UNAUTHORIZED, event=event)


def bundle_scopes(files: dict[str, str]) -> list[tuple[Scope, str | None]]:
    """Return the scopes applying a bundle needs.

    `admin` on each domain whose folder it holds, and on every domain when it holds kitchens.
    """
    domains = sorted({p.split("/")[0] for p in files if p.split("/")[0] != "kitchens"})
    needed: list[tuple[Scope, str | None]] = [("admin", d) for d in domains]
    if any(p.startswith("kitchens/") for p in files):
        needed.append(("admin", None))
    return needed


def first_denial(principal: Principal, needed: list[tuple[Scope, str | None]]) -> str | None:
    """Return the first scope of `needed` the principal lacks, as a sentence, or None."""
    for scope, domain in needed:
        if (why := denial(principal, scope, domain)) is not None:
            return why
    return None


async def _needed(message: Envelope, store: TrustStore) -> list[tuple[Scope, str | None]] | str:
    """Return the scopes a message needs, or why it names nothing acceptable."""
    if isinstance(message, StartOrderRun | StartBackfill):
        return [("run", message.domain)]
    if isinstance(message, CancelBackfill | RetryBackfill):
        return [("run", await store.run_domain(message.backfill_id))]
    if isinstance(message, CancelOrderRun):
        return [("run", await store.run_domain(message.order_run_id))]
    if isinstance(message, DomainRunCompleted):
        if not await store.domain_known(message.domain):
            return f"unknown domain '{message.domain}'"
        return [("publish-events", message.domain)]
    if isinstance(message, ApplySpecs):
        return bundle_scopes(message.files)
    if isinstance(message, StepEventsMark):
        return [("admin", None)]  # only the scheduler marks what it has read
    return f"{message.type} is not a signed message type"


async def verify(message: Envelope, value: bytes, headers: Any, store: TrustStore) -> Envelope:
    """Return the message with its principal established, or raise why it is refused.

    A refusal that newer grants could lift (a key, a scope or a domain published a moment
    ago, still on its way to this consumer) is judged once more after `store.refresh`.

    Raises:
        Refusal: unsigned, signed by an unknown principal or with a key not its own,
            naming a principal the signer may not act for, lacking the scope it needs,
            or about an unknown domain; `event` holds the rejection to publish, if any.
    """
    name = _header(headers, PRINCIPAL_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not name or not signature:
        raise _refuse(
            message, f"unsigned: the '{PRINCIPAL_HEADER}' and '{SIGNATURE_HEADER}' headers are"
        )
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(message, f"the signature of principal '{name}' is not base64") from None
    judged = await _judge(message, value, name, raw, store)
    if isinstance(judged, str) and await store.refresh(message.occurred_at):
        judged = await _judge(message, value, name, raw, store)
    if isinstance(judged, str):
        raise _refuse(message, judged)
    return judged


async def _judge(
    message: Envelope, value: bytes, name: str, signature: bytes, store: TrustStore
) -> Envelope | str:
    signer = await store.principal(name)
    if signer is None or not signer.keys:
        return f"principal '{name}' has no published key"
    if not any(_verifies(key, signature, value) for key in signer.keys):
        return f"the signature does not verify with the keys of '{name}'"
    named: str | None = getattr(message, "principal", None)
    who = signer
    if named is not None and named != signer.name:
        if not signer.acts_for_others:
            return f"principal '{name}' signed it but it names '{named}'"
        who = await store.principal(named) or Principal(named)
    needed = await _needed(message, store)
    if isinstance(needed, str):
        return needed
    if (why := first_denial(who, needed)) is not None:
        return why
    if "principal" in type(message).model_fields and named is None:
        return message.model_copy(update={"principal": signer.name})
    return message


def _verifies(key: str, signature: bytes, value: bytes) -> bool:
    public = _public(key)
    if public is None:
        return False
    try:
        public.verify(signature, value)
    except InvalidSignature:
        return False
    return True
