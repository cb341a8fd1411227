"""`sous keys`: the key pair a principal signs its Kafka commands with, and its publication.

Commands that start, cancel or change something (`sous run`, `cancel`, `emit`) are signed
with `SOUS_SIGNING_KEY_FILE` as principal `SOUS_PRINCIPAL`; the registry publishes the
principal's public key, and the consumers refuse what does not verify against it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from sous.registry_client import TokenOpt, UrlOpt, call, fail

if TYPE_CHECKING:
    from sous_common.trust import Signer

console = Console()
err = Console(stderr=True)
keys_app = typer.Typer(help="Signing keys: create one, publish or withdraw its public half.")

KEY_FILE = "SOUS_SIGNING_KEY_FILE"
PRINCIPAL = "SOUS_PRINCIPAL"


def cli_signer() -> Signer:
    """Return the signer of this shell (`SOUS_PRINCIPAL`, `SOUS_SIGNING_KEY_FILE`).

    Exits 2 saying what to set when either is missing or unreadable.
    """
    path, principal = os.environ.get(KEY_FILE), os.environ.get(PRINCIPAL)
    if not path or not principal:
        err.print(
            f"[red]signing needs {PRINCIPAL} and {KEY_FILE}[/]: commands on Kafka are signed."
            " Create a key with `sous keys new FILE`, publish it with `sous keys add FILE`,"
            f" then set {PRINCIPAL}=<your principal> {KEY_FILE}=FILE"
        )
        raise typer.Exit(2)
    from sous_common.trust import Signer  # here: cryptography is slow to import for `--help`

    try:
        return Signer.load(principal, Path(path))
    except ValueError as exc:
        err.print(f"[red]{KEY_FILE}:[/] {exc}")
        raise typer.Exit(2) from exc


@keys_app.command("new")
def new(
    file: Path = typer.Argument(help="Where to write the private key (PEM, mode 0600)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Create an Ed25519 key pair; print the public key to publish."""
    if file.exists() and not force:
        err.print(f"[red]{file} exists[/]; pass --force to replace it")
        raise typer.Exit(1)
    from sous_common.trust import Signer

    signer = Signer.generate("-")
    signer.save(file)
    console.print(signer.public_key)


def _public(key: str) -> str:
    from sous_common.trust import Signer

    path = Path(key)
    if path.is_file():
        try:
            return Signer.load("-", path).public_key
        except ValueError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc
    return key


def _change(
    route: str, key: str, principal: str | None, url: str | None, token: str | None
) -> None:
    body = {"public_key": _public(key), **({"principal": principal} if principal else {})}
    r = call("POST", route, url, token, json=body)
    if r.status_code != 200:
        fail(r)
    held = r.json()
    console.print(f"{held['principal']}: {len(held['keys'])} published key(s)")


KeyArg = typer.Argument(help="A private key file (its public half is sent) or a public key.")
PrincipalOpt = typer.Option(None, "--principal", help="Whose key (default: the token's own).")


@keys_app.command("add")
def add(
    key: str = KeyArg,
    principal: str | None = PrincipalOpt,
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Publish a public key with a principal's grant."""
    _change("/v1/keys", key, principal, url, token)


@keys_app.command("remove")
def remove(
    key: str = KeyArg,
    principal: str | None = PrincipalOpt,
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Withdraw a public key; messages it signs are refused from then on."""
    _change("/v1/keys/remove", key, principal, url, token)
