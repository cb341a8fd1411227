"""Who may write and read which topic and consumer group: the Kafka ACL model of a deployment.

One entry per principal (a SASL user). Brokers get exactly these grants and nothing else
(`allow.everyone.if.no.acl.found=false`); the operator account is a super user and needs none.
ACLs complete the message signatures of DESIGN §5.11: a principal allowed to write a topic
still has its messages verified by their consumers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from sous_contracts.topics import (
    DEAD_LETTERS,
    DOMAIN_EVENTS,
    LINEAGE,
    ORDER_RUN_COMMANDS,
    REGISTRY_CHANGELOG,
    REGISTRY_COMMANDS,
    RUN_EVENTS,
    STEP_COMMANDS,
    STEP_EVENTS,
    TEST_COMMANDS,
    TEST_RESULTS,
    Topic,
)

ADMIN = "sous-admin"
"""The super user: creates topics and ACLs, and is the broker's own identity."""


@dataclass(frozen=True)
class Access:
    """What one principal may do; topics and groups are named without the deployment prefix."""

    principal: str
    who: str
    writes: tuple[Topic, ...] = ()
    reads: tuple[Topic, ...] = ()
    groups: tuple[str, ...] = ()


def _service(name: str, who: str, writes: tuple[Topic, ...], reads: tuple[Topic, ...]) -> Access:
    # A service's principal and its consumer group share the name `Runtime` gives the group.
    # Every service dead-letters what it cannot accept.
    return Access(f"sous-{name}", who, (*writes, DEAD_LETTERS), reads, (f"sous-{name}",))


ACCESS: tuple[Access, ...] = (
    _service(
        "domain-registry",
        "domain-registry service (REST gateway, run read-model)",
        writes=(REGISTRY_CHANGELOG, ORDER_RUN_COMMANDS, DOMAIN_EVENTS),
        reads=(REGISTRY_COMMANDS, RUN_EVENTS, STEP_EVENTS, TEST_RESULTS),
    ),
    _service(
        "scheduler",
        "scheduler service",
        writes=(
            STEP_COMMANDS,
            TEST_COMMANDS,
            RUN_EVENTS,
            DOMAIN_EVENTS,
            ORDER_RUN_COMMANDS,
            STEP_EVENTS,  # read marks (DESIGN §5.10)
            LINEAGE,  # OpenLineage RunEvents
        ),
        reads=(
            ORDER_RUN_COMMANDS,
            RUN_EVENTS,  # nested children's ends
            STEP_EVENTS,
            TEST_RESULTS,
            DOMAIN_EVENTS,
            REGISTRY_CHANGELOG,
        ),
    ),
    _service("executor", "executor service", writes=(STEP_EVENTS,), reads=(STEP_COMMANDS,)),
    _service("test-runner", "test-runner service", writes=(TEST_RESULTS,), reads=(TEST_COMMANDS,)),
    _service(
        "console",
        "ops console (reads events; acts through the registry)",
        writes=(),
        reads=(RUN_EVENTS, STEP_EVENTS, TEST_RESULTS, DOMAIN_EVENTS, REGISTRY_CHANGELOG),
    ),
    Access(
        "example-order-client",
        "example: an external system that starts and cancels order runs",
        writes=(ORDER_RUN_COMMANDS,),
    ),
    Access(
        "example-domain-publisher",
        "example: a domain run by another tool, publishing its completion events",
        writes=(DOMAIN_EVENTS,),
    ),
)


class ResourceType(IntEnum):
    """Kafka's ACL resource type codes (the wire values)."""

    TOPIC = 2
    GROUP = 3


class Operation(IntEnum):
    """Kafka's ACL operation codes; READ and WRITE imply DESCRIBE."""

    READ = 3
    WRITE = 4


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL on a literal resource name, from any host."""

    resource_type: ResourceType
    resource: str
    principal: str
    operation: Operation

    def __str__(self) -> str:
        return f"{self.principal} {self.operation.name} {self.resource_type.name} {self.resource}"


def grants(access: tuple[Access, ...] = ACCESS, prefix: str = "") -> frozenset[Grant]:
    """Return every ACL the model asks for, with topic and group names under `prefix`."""
    out: set[Grant] = set()
    for a in access:
        user = f"User:{a.principal}"
        for topic in a.writes:
            out.add(Grant(ResourceType.TOPIC, topic.full_name(prefix), user, Operation.WRITE))
        for topic in a.reads:
            out.add(Grant(ResourceType.TOPIC, topic.full_name(prefix), user, Operation.READ))
        for group in a.groups:
            out.add(Grant(ResourceType.GROUP, f"{prefix}{group}", user, Operation.READ))
    return frozenset(out)


def chart_values(access: tuple[Access, ...] = ACCESS) -> str:
    """Return the `acl:` block of the Helm chart's values.yaml: each service's grants.

    Only the services: external principals are the deployment's own to create.
    """
    lines = ["acl:"]
    for a in access:
        if not a.principal.startswith("sous-"):
            continue
        lines.append(f"  {a.principal.removeprefix('sous-')}:")
        for key, items in (("writes", a.writes), ("reads", a.reads), ("groups", a.groups)):
            shown = [i.name if isinstance(i, Topic) else i for i in items]
            lines.append(f"    {key}: [{', '.join(shown)}]")
    return "\n".join(lines) + "\n"


def markdown_table(access: tuple[Access, ...] = ACCESS) -> str:
    """Return the model as the Markdown table deploy/README.md carries."""

    def names(items: tuple[Topic, ...] | tuple[str, ...]) -> str:
        shown = [i.name if isinstance(i, Topic) else i for i in items]
        return "<br>".join(f"`{n}`" for n in shown) or "—"

    lines = [
        "| principal | who | writes | reads | consumer groups |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| `{a.principal}` | {a.who} | {names(a.writes)} | {names(a.reads)} | {names(a.groups)} |"
        for a in access
    ]
    return "\n".join(lines) + "\n"
