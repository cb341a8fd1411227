"""The ACL model: deploy/README.md shows it as it is, and it grants only what DESIGN §2 needs."""

from __future__ import annotations

from sous.kafka_access import ACCESS, Grant, Operation, ResourceType, grants, markdown_table
from sous_contracts.topics import CATALOG, ORDER_RUN_COMMANDS, REGISTRY_COMMANDS, STEP_EVENTS
from tests.conftest import ROOT


def test_readme_table_is_fresh() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert markdown_table() in readme, "paste `python -m sous.kafka_security table` into it"


def test_every_topic_but_spec_bundles_has_a_writer_and_names_carry_the_prefix() -> None:
    # Spec bundles come through the registry's REST API; a CI system on Kafka gets its own.
    written = {t for a in ACCESS for t in a.writes}
    assert written == set(CATALOG) - {REGISTRY_COMMANDS}
    staged = grants(prefix="staging.")
    assert (
        Grant(ResourceType.GROUP, "staging.sous-executor", "User:sous-executor", Operation.READ)
        in staged
    )
    assert all(g.resource.startswith("staging.") for g in staged)


def test_external_principals_write_one_topic_and_read_none() -> None:
    external = {a.principal: a for a in ACCESS if a.principal.startswith("example-")}
    assert external["example-order-client"].writes == (ORDER_RUN_COMMANDS,)
    assert all(not a.reads and not a.groups for a in external.values())
    assert STEP_EVENTS not in external["example-domain-publisher"].writes
