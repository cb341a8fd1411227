"""Signed messages: what a consumer accepts, and the reason it gives for what it refuses."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from sous_common.decoding import Refusal
from sous_common.trust import (
    PRINCIPAL_HEADER,
    SIGNATURE_HEADER,
    Principal,
    Signer,
    load_signer,
    verify,
)
from sous_contracts.common import RunStatus
from sous_contracts.envelope import Envelope
from sous_contracts.registry import ApplySpecs
from sous_contracts.runs import CancelOrderRun, DomainRunCompleted, OrderRunRejected, StartOrderRun

ALICE = Signer.generate("alice")
MALLORY = Signer.generate("mallory")
REGISTRY = Signer.generate("sous-domain-registry")
RUN_OF_SALES = uuid.uuid4()


class Store:
    """The registry's published grants, as a consumer sees them."""

    def __init__(self) -> None:
        self.principals = {
            "alice": Principal("alice", {"sales": ["run", "publish-events"]}, (ALICE.public_key,)),
            "mallory": Principal("mallory", {"finance": ["admin"]}, (MALLORY.public_key,)),
            "bob": Principal("bob", {"sales": ["read"]}),
            "sous-domain-registry": Principal(
                "sous-domain-registry", {"*": ["admin"]}, (REGISTRY.public_key,)
            ),
        }

    async def principal(self, name: str) -> Principal | None:
        return self.principals.get(name)

    async def domain_known(self, domain: str) -> bool:
        return domain in {"sales", "finance"}

    async def run_domain(self, order_run_id: Any) -> str | None:
        return "sales" if order_run_id == RUN_OF_SALES else None

    async def refresh(self, since: object) -> bool:
        return False


def start(**fields: Any) -> StartOrderRun:
    return StartOrderRun(order_run_id=uuid.uuid4(), domain="sales", recipe="daily", **fields)


def completed(domain: str = "sales") -> DomainRunCompleted:
    return DomainRunCompleted(
        domain=domain, recipe="load", kitchen="prod", status=RunStatus.SUCCEEDED, external=True
    )


async def check(message: Envelope, signer: Signer | None = ALICE, value: bytes | None = None):
    value = message.to_json() if value is None else value
    headers = [] if signer is None else [(k, v.encode()) for k, v in signer.headers(value).items()]
    return await verify(message, value, headers, Store())


async def refusal(message: Envelope, signer: Signer | None = ALICE, **kw: Any) -> Refusal:
    with pytest.raises(Refusal) as info:
        await check(message, signer, **kw)
    assert info.value.kind == "unauthorized"
    return info.value


async def test_a_signed_command_gets_its_signer_as_principal() -> None:
    accepted = await check(start())
    assert isinstance(accepted, StartOrderRun)
    assert accepted.principal == "alice"


async def test_an_unsigned_command_is_refused_with_an_event_naming_why() -> None:
    command = start()
    refused = await refusal(command, signer=None)
    assert "unsigned" in refused.reason
    assert PRINCIPAL_HEADER in refused.reason
    assert isinstance(refused.event, OrderRunRejected)
    assert refused.event.order_run_id == command.order_run_id
    assert refused.event.domain == "sales"
    assert "unsigned" in refused.event.reason


async def test_a_key_that_is_not_the_principals_is_refused() -> None:
    forged = Signer.generate("alice")  # claims to be alice, with a key of its own
    refused = await refusal(start(), signer=forged)
    assert "does not verify with the keys of 'alice'" in refused.reason


async def test_a_changed_value_no_longer_verifies() -> None:
    signed = start().to_json()
    tampered = signed.replace(b'"daily"', b'"other"')
    headers = [(k, v.encode()) for k, v in ALICE.headers(signed).items()]
    with pytest.raises(Refusal, match="does not verify"):
        await verify(start(), tampered, headers, Store())


async def test_garbage_signature_is_refused() -> None:
    headers = [(PRINCIPAL_HEADER, b"alice"), (SIGNATURE_HEADER, b"%%%")]
    with pytest.raises(Refusal, match="not base64"):
        await verify(start(), start().to_json(), headers, Store())


async def test_unknown_principal_and_principal_without_keys_are_refused() -> None:
    stranger = Signer.generate("stranger")
    assert "principal 'stranger' has no published key" in (await refusal(start(), stranger)).reason
    bob = Signer.generate("bob")  # bob has a grant but published no key
    assert "principal 'bob' has no published key" in (await refusal(start(), bob)).reason


async def test_a_principal_cannot_name_another() -> None:
    refused = await refusal(start(principal="admin"), signer=ALICE)
    assert "principal 'alice' signed it but it names 'admin'" in refused.reason


async def test_the_registry_acts_for_the_principal_it_names_with_that_ones_scopes() -> None:
    accepted = await check(start(principal="alice"), signer=REGISTRY)
    assert accepted.principal == "alice"
    refused = await refusal(start(principal="bob"), signer=REGISTRY)
    assert "principal 'bob' lacks scope 'run' on domain 'sales'" in refused.reason


async def test_scope_is_checked_where_the_command_acts() -> None:
    refused = await refusal(start(), signer=MALLORY)
    assert "principal 'mallory' lacks scope 'run' on domain 'sales'" in refused.reason
    cancel = CancelOrderRun(order_run_id=RUN_OF_SALES)
    assert (await check(cancel)).principal == "alice"
    assert "lacks scope 'run'" in (await refusal(cancel, signer=MALLORY)).reason


async def test_a_domain_publishes_only_its_own_completions() -> None:
    assert await check(completed("sales")) is not None
    refused = await refusal(completed("finance"), signer=ALICE)
    assert "lacks scope 'publish-events' on domain 'finance'" in refused.reason
    assert refused.event is None  # the dead letter is the only trace of a refused event


async def test_a_completion_of_an_unknown_domain_is_refused() -> None:
    refused = await refusal(completed("nowhere"), signer=REGISTRY)
    assert "unknown domain 'nowhere'" in refused.reason


async def test_apply_needs_admin_on_every_domain_of_the_bundle() -> None:
    bundle = ApplySpecs(bundle_id="b", files={"finance/domain.yaml": "domain: finance"})
    assert (await check(bundle, signer=MALLORY)).principal == "mallory"
    more = ApplySpecs(bundle_id="b", files={"finance/a.yaml": "", "sales/b.yaml": ""})
    assert "lacks scope 'admin' on domain 'sales'" in (await refusal(more, MALLORY)).reason
    kitchens = ApplySpecs(bundle_id="b", files={"kitchens/dev.yaml": "kitchen: dev"})
    assert "on every domain ('*')" in (await refusal(kitchens, MALLORY)).reason


def test_a_saved_key_loads_back_and_a_missing_one_says_what_to_set(tmp_path: Path) -> None:
    ALICE.save(tmp_path / "alice.pem")
    assert (tmp_path / "alice.pem").stat().st_mode & 0o777 == 0o600
    assert load_signer("alice", tmp_path / "alice.pem", "X").public_key == ALICE.public_key
    with pytest.raises(ValueError, match="SOUS_X_SIGNING_KEY_FILE is not set"):
        load_signer("svc", None, "SOUS_X_SIGNING_KEY_FILE")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ValueError, match=r"junk\.pem: not a readable PEM private key"):
        load_signer("svc", tmp_path / "junk.pem", "X")


class LateStore(Store):
    """A consumer whose copy of the grants lags: carol's key arrives with the catch-up."""

    def __init__(self, carol: Signer) -> None:
        super().__init__()
        self.carol = carol
        self.refreshes: list[object] = []

    async def refresh(self, since: object) -> bool:
        self.refreshes.append(since)
        self.principals["carol"] = Principal("carol", {"sales": ["run"]}, (self.carol.public_key,))
        return True


async def test_a_key_published_a_moment_ago_is_found_by_one_catch_up() -> None:
    carol = Signer.generate("carol")
    command = start()
    value = command.to_json()
    headers = [(k, v.encode()) for k, v in carol.headers(value).items()]
    store = LateStore(carol)
    assert (await verify(command, value, headers, store)).principal == "carol"
    assert store.refreshes == [command.occurred_at]
    assert (await verify(command, value, headers, store)).principal == "carol"
    assert len(store.refreshes) == 1  # known now: no second catch-up
    stranger = Signer.generate("carol")
    with pytest.raises(Refusal, match="does not verify"):
        await verify(command, value, signed_by(stranger, value), store)
    assert len(store.refreshes) == 2  # one catch-up per refusal, then the refusal stands


def signed_by(signer: Signer, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in signer.headers(value).items()]


async def test_the_scheduler_never_catches_up_further_than_now() -> None:
    from datetime import UTC, datetime, timedelta

    from sous_scheduler.adapters.trust import SchedulerTrust

    now = datetime(2026, 1, 1, tzinfo=UTC)
    asked: list[datetime] = []

    async def catch_up(since: datetime) -> bool:
        asked.append(since)
        return True

    trust = SchedulerTrust(None, Signer.generate("sous-scheduler"), catch_up, lambda: now)  # type: ignore[arg-type]
    assert await trust.refresh(now + timedelta(days=365)) is True
    assert await trust.refresh(now - timedelta(seconds=1)) is True
    assert asked == [now, now - timedelta(seconds=1)]


def test_senders_sign_only_what_a_consumer_verifies() -> None:
    from sous_common.outbox import record_headers
    from sous_contracts.steps import StepEventsMark, StepHeartbeat

    heartbeat = StepHeartbeat(
        order_run_id=uuid.uuid4(), step_run_id=uuid.uuid4(), attempt=1, worker_id="w"
    )
    assert record_headers(heartbeat, heartbeat.to_json(), ALICE) == {"type": "StepHeartbeat"}
    for message in (start(), completed(), StepEventsMark(partition=0)):
        headers = record_headers(message, message.to_json(), ALICE)
        assert headers[PRINCIPAL_HEADER] == "alice", message.type
        assert SIGNATURE_HEADER in headers
