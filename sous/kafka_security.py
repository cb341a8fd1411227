"""SCRAM credentials and ACLs for a SASL-secured broker (deploy/local/infra.sh `up --secure`).

    python -m sous.kafka_security credentials DIR   # ensure DIR/<principal>.env; print the
                                                    # StorageTool `--add-scram` values
    python -m sous.kafka_security apply-acls        # make the model's principals' ACLs equal it
    python -m sous.kafka_security table             # the ACL table of deploy/README.md
    python -m sous.kafka_security values            # the `acl:` block of the Helm values

`apply-acls` connects as the super user described by the `SOUS_KAFKA_*` environment and
uses `SOUS_KAFKA_TOPIC_PREFIX` for topic and group names.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest

from sous.kafka_access import ACCESS, ADMIN, Grant, chart_values, markdown_table
from sous.kafka_access import grants as model_grants
from sous_common.kafka import aiokafka_options
from sous_common.settings import KafkaSettings

MECHANISM = "SCRAM-SHA-512"

# Wire codes for the parts of an ACL the model keeps fixed.
_ANY = 1
_LITERAL = 3
_ALLOW = 3
_ALL_HOSTS = "*"

Acl = tuple[int, str, int, str, str, int, int]
"""An ACL as the broker lists it: type, name, pattern type, principal, host, operation, kind."""


def principals() -> list[str]:
    """Return every SASL user of a secured local broker, the super user first."""
    return [ADMIN, *(a.principal for a in ACCESS)]


def ensure_credentials(folder: Path) -> dict[str, str]:
    """Give every principal a password, kept in `folder/<principal>.env` (mode 0600).

    Each file holds the `SOUS_KAFKA_*` lines a client of that principal needs (besides the
    bootstrap servers), so `set -a; . sous-executor.env` makes a shell that principal.
    Existing files are kept: the broker stored their passwords when its storage was formatted.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    passwords: dict[str, str] = {}
    for name in principals():
        path = folder / f"{name}.env"
        if not path.exists():
            lines = (
                "SOUS_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
                f"SOUS_KAFKA_SASL_MECHANISM={MECHANISM}",
                f"SOUS_KAFKA_SASL_USERNAME={name}",
                # URL-safe characters only: no quoting needed in env files or JAAS strings.
                f"SOUS_KAFKA_SASL_PASSWORD={secrets.token_urlsafe(24)}",
            )
            path.touch(mode=0o600)
            path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        passwords[name] = password_in(path)
    return passwords


def password_in(path: Path) -> str:
    """Return the SASL password of a principal's env file."""
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "SOUS_KAFKA_SASL_PASSWORD":
            return value
    raise ValueError(f"{path}: no SOUS_KAFKA_SASL_PASSWORD line")


def _wire(grant: Grant) -> Acl:
    return (
        int(grant.resource_type),
        grant.resource,
        _LITERAL,
        grant.principal,
        _ALL_HOSTS,
        int(grant.operation),
        _ALLOW,
    )


async def _current(client: AIOKafkaClient, node: int) -> set[Acl]:
    response: Any = await client.send(
        node, DescribeAclsRequest(_ANY, None, _ANY, None, None, _ANY, _ANY)
    )
    if response.error_code:
        raise RuntimeError(f"describing ACLs failed: {response.error_message}")
    return {
        (rtype, name, pattern, *acl)
        for rtype, name, pattern, acls in response.resources
        for acl in acls
    }


async def apply_acls(settings: KafkaSettings, wanted: frozenset[Grant]) -> tuple[int, int]:
    """Create the missing ACLs and delete the model's principals' others; (created, deleted).

    ACLs of principals outside the model (other applications on a shared cluster) stay.
    """
    client = AIOKafkaClient(**aiokafka_options(settings))
    await client.bootstrap()
    try:
        node = client.get_random_node()
        ours = {f"User:{name}" for name in principals()}
        current = {acl for acl in await _current(client, node) if acl[3] in ours}
        target = {_wire(g) for g in wanted}
        for acl in sorted(target - current):
            response: Any = await client.send(node, CreateAclsRequest(*acl))
            for code, message in response.creation_responses:
                if code:
                    raise RuntimeError(f"creating ACL {acl} failed: {code} {message}")
        # A grant the model no longer lists is a grant too many: remove it.
        for acl in sorted(current - target):
            response = await client.send(node, DeleteAclsRequest(*acl))
            for code, message, _ in response.filter_responses:
                if code:
                    raise RuntimeError(f"deleting ACL {acl} failed: {code} {message}")
        return len(target - current), len(current - target)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> None:
    """Run one of the commands in the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m sous.kafka_security")
    commands = parser.add_subparsers(dest="command", required=True)
    creds = commands.add_parser("credentials", help="ensure passwords; print --add-scram values")
    creds.add_argument("folder", type=Path)
    commands.add_parser("apply-acls", help="make the model's principals' ACLs equal it")
    commands.add_parser("table", help="print the ACL table")
    commands.add_parser("values", help="print the `acl:` block of the Helm chart's values")
    args = parser.parse_args(argv)

    if args.command == "credentials":
        for name, password in ensure_credentials(args.folder).items():
            print(f"{MECHANISM}=[name={name},password={password}]")
    elif args.command == "apply-acls":
        settings = KafkaSettings()
        created, deleted = asyncio.run(
            apply_acls(settings, model_grants(prefix=settings.topic_prefix))
        )
        print(f"ACLs: {created} created, {deleted} deleted", file=sys.stderr)
    elif args.command == "values":
        print(chart_values(), end="")
    else:
        print(markdown_table(), end="")


if __name__ == "__main__":
    main()
