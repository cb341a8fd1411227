"""Pure decisions of monitors: who listens, what a check sends, when a trigger is held."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from sous_contracts.common import DatasetRef, Outputs, RunStatus
from sous_contracts.runs import DomainRunCompleted
from sous_contracts.specs import DomainSpec, MonitorSpec, RecipeSpec
from sous_scheduler.domain.monitors import (
    Health,
    Monitor,
    check_command,
    hold_reason,
    listening,
    monitors_of,
    written,
)
from sous_scheduler.domain.params import ParamError
from tests.scheduler.world import T0, context_at

CTX = context_at(T0)

FRESH = {
    "name": "fresh",
    "check": {
        "kind": "freshness",
        "table": "${params.schema}.revenue",
        "column": "at",
        "max_age": "1h",
    },
}


def monitor(name: str = "rev", **spec) -> Monitor:
    body = {"dataset": "finance.revenue", "schedule": "*/5 * * * *", "tests": [FRESH], **spec}
    return Monitor("finance", name, MonitorSpec.model_validate(body))


def done(**kw) -> DomainRunCompleted:
    fields = {
        "domain": "finance",
        "recipe": "revenue",
        "variation": "prod",
        "kitchen": "prod",
        "status": RunStatus.SUCCEEDED,
        "order_run_id": uuid.uuid4(),
        **kw,
    }
    return DomainRunCompleted(**fields)


def test_monitor_needs_one_start_and_reads_a_cron_string() -> None:
    assert monitor().spec.schedule is not None
    assert monitor().spec.schedule.cron == "*/5 * * * *"
    with pytest.raises(ValidationError, match="exactly one of 'schedule' or 'on'"):
        MonitorSpec.model_validate({"dataset": "a.b", "tests": [FRESH]})
    with pytest.raises(ValidationError, match=r"only \$\{params.x\} placeholders"):
        MonitorSpec.model_validate(
            {"dataset": "${event.x}", "schedule": "* * * * *", "tests": [FRESH]}
        )
    domain = DomainSpec.model_validate({"domain": "finance", "monitors": {"rev": monitor().spec}})
    assert [m.monitor_id for m in monitors_of([("finance", domain)])] == ["finance/rev"]


def test_listening_matches_upstream_in_the_monitors_kitchen() -> None:
    on = monitor("after", schedule=None, on={"domain": "finance", "recipe": "revenue"})
    dev = monitor("dev", schedule=None, kitchen="dev", on={"domain": "finance"})
    cron = monitor("cron")
    assert listening([on, dev, cron], done()) == [on]
    assert listening([on, dev, cron], done(kitchen="dev")) == [dev]
    assert listening([on], done(status=RunStatus.FAILED)) == []


def test_check_command_resolves_params_and_marks_the_monitor() -> None:
    check_id = uuid.uuid4()
    cmd = check_command(
        monitor(connection="warehouse", dataset="${params.schema}.revenue"),
        params={"schema": "fin"},
        connections={"warehouse": "secret:wh"},
        check_id=check_id,
        ctx=CTX,
    )
    assert (cmd.monitor, cmd.dataset, cmd.recipe, cmd.step) == (
        "rev",
        "fin.revenue",
        "monitors",
        "rev",
    )
    assert cmd.order_run_id == cmd.suite_id == cmd.step_run_id == check_id
    assert cmd.tests[0].check["table"] == "fin.revenue"
    assert cmd.connections["default"] == "secret:wh"
    with pytest.raises(ParamError):
        check_command(monitor(), params={}, connections={}, check_id=check_id, ctx=CTX)


def test_written_datasets_of_an_upstream_run() -> None:
    recipe = RecipeSpec.model_validate(
        {
            "recipe": "revenue",
            "steps": {
                "a": {"run": {"kind": "noop"}, "outputs": ["${params.s}.revenue", "x.y"]},
                "b": {"run": {"kind": "noop"}, "outputs": ["${params.missing}.z"]},
            },
        }
    )
    event = done(params={"s": "fin"}, outputs=Outputs(datasets=[DatasetRef(uri="s3://b/k")]))
    assert written(recipe, event) == ["fin.revenue", "s3://b/k", "x.y"]


@pytest.mark.parametrize(
    ("health", "datasets", "reason"),
    [
        ({"finance/rev": Health("finance.revenue", True)}, ["finance.revenue"], None),
        (
            {"finance/rev": Health("finance.revenue", False, ["fresh"])},
            ["finance.revenue"],
            "monitor finance/rev on finance.revenue failed (fresh)",
        ),
        ({}, ["finance.revenue"], "monitor finance/rev on finance.revenue has no result yet"),
        ({"finance/rev": Health("finance.revenue", False, ["fresh"])}, ["other.table"], None),
        ({}, ["other.table"], None),
    ],
)
def test_hold_reason(health, datasets, reason) -> None:
    assert hold_reason(datasets, {"finance/rev": "finance.revenue"}, health) == reason
    # No monitor watches the datasets (none in this kitchen): nothing holds.
    assert hold_reason(datasets, {}, health) is None


def test_hold_reason_names_every_failing_monitor() -> None:
    watching = {"finance/a": "finance.revenue", "sales/b": "sales.orders"}
    health = {"finance/a": Health("finance.revenue", False, ["x", "y"])}
    assert hold_reason(["finance.revenue", "sales.orders"], watching, health) == (
        "monitor finance/a on finance.revenue failed (x, y); "
        "monitor sales/b on sales.orders has no result yet"
    )


def test_a_check_depends_on_its_context_alone() -> None:
    made = [
        check_command(
            monitor(),
            params={"schema": "fin"},
            connections={},
            check_id=uuid.UUID(int=1),
            ctx=context_at(T0),
        )
        for _ in range(2)
    ]
    assert made[0] == made[1]
    assert made[0].occurred_at == T0
