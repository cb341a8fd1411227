"""Why a run starts, as the scheduler writes it: commands, nested steps, trigger joins."""

from __future__ import annotations

import uuid

import pytest

from sous_contracts.common import RunStatus
from sous_contracts.runs import DomainRunCompleted, RunCause, StartOrderRun
from sous_contracts.specs import TriggerSpec
from sous_scheduler.domain.plan import command_cause
from sous_scheduler.domain.triggers import Listener, trigger_cause

PARENT = uuid.uuid4()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"principal": "alice"}, RunCause(kind="command", principal="alice")),
        (
            {"principal": "sous-scheduler", "parent_order_run_id": PARENT, "parent_step": "fx"},
            RunCause(
                kind="nested",
                principal="sous-scheduler",
                parent_order_run_id=PARENT,
                parent_step="fx",
            ),
        ),
    ],
)
def test_a_command_is_its_own_cause_unless_a_parent_sent_it(extra, expected) -> None:
    cmd = StartOrderRun(order_run_id=uuid.uuid4(), domain="a", recipe="r", **extra)
    assert command_cause(cmd) == expected


def test_a_join_names_every_upstream_once_and_an_external_run_by_its_message() -> None:
    def done(domain: str, run: uuid.UUID | None) -> DomainRunCompleted:
        return DomainRunCompleted(
            domain=domain, recipe="r", kitchen="prod", status=RunStatus.SUCCEEDED, order_run_id=run
        )

    first, second, external = done("a", uuid.uuid4()), done("b", uuid.uuid4()), done("x", None)
    spec = TriggerSpec.model_validate(
        {
            "name": "both",
            "all": [{"domain": "a"}, {"domain": "b"}],
            "within": "1h",
            "variation": "p",
        }
    )
    cause = trigger_cause(Listener("j", "follow", 0, spec), [first, second, first, external])
    assert cause.trigger == "j/follow#both"
    assert cause.upstream_order_run_ids == [first.order_run_id, second.order_run_id]
    assert cause.upstream_message_ids == [first.message_id, second.message_id, external.message_id]
    assert [u[0] for u in cause.upstream] == cause.upstream_order_run_ids
