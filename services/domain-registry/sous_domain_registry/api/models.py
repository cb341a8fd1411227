"""Request and response bodies of the REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sous_common.trust import public_key_problem
from sous_contracts.backfills import MAX_CONCURRENCY, BackfillRange
from sous_contracts.common import Outputs, Params, RunStatus, TestSummary
from sous_contracts.runs import CANCEL_REASON_MAX, IDEMPOTENCY_KEY_MAX
from sous_contracts.specs.common import ConnectionSpec, Duration, RecipeRef, SpecName
from sous_domain_registry.domain.entities import Entity


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class ApplyRequest(Body):
    """A folder of spec files to apply, all or nothing."""

    files: Annotated[
        dict[Annotated[str, Field(max_length=300)], Annotated[str, Field(max_length=1_000_000)]],
        Field(max_length=5000),
    ]
    """Path relative to the mesh root → file text (YAML specs and the SQL they name)."""
    kitchen: SpecName | None = None
    """Apply the recipes as versions of this kitchen (runs there use them); None: the base."""
    dry_run: bool = False
    """Report what would change without changing anything."""


class Change(BaseModel):
    """What an apply does to one entity."""

    entity_id: str
    action: str
    old_version: str | None
    new_version: str | None


class ApplyResponse(BaseModel):
    """Result of an apply or a dry run."""

    applied: bool
    changes: list[Change]
    affected_domains: list[str]
    """Downstream domains whose recipes the changed recipes trigger."""


class EntityOut(BaseModel):
    """One registry entity at its live version."""

    entity_id: str
    kind: str
    domain: str | None
    name: str
    version: str
    spec: dict[str, Any]


def entity_out(e: Entity) -> EntityOut:
    """Return the API form of an entity."""
    return EntityOut(
        entity_id=e.entity_id,
        kind=e.kind.value,
        domain=e.domain,
        name=e.name,
        version=e.version,
        spec=e.spec,
    )


class RunTarget(Body):
    """What a start runs: a recipe (variation) of a domain, in a kitchen, with params."""

    domain: SpecName
    recipe: SpecName
    variation: SpecName | None = None
    kitchen: SpecName | None = None
    params: Params = Field(default_factory=dict)

    def target(self) -> dict[str, Any]:
        """Return the target's fields as the start use cases take them."""
        return {
            "domain": self.domain,
            "recipe": self.recipe,
            "variation": self.variation,
            "kitchen": self.kitchen,
            "params": self.params,
        }


class StartRun(RunTarget):
    """Start an order run of a recipe variation."""

    idempotency_key: Annotated[str, Field(max_length=IDEMPOTENCY_KEY_MAX)] | None = None
    """At most one run per key in (domain, recipe, kitchen); see `IDEMPOTENCY_KEY_MAX`."""


class RunAccepted(BaseModel):
    """The command was queued; follow the run with GET /v1/runs/{id}."""

    order_run_id: uuid.UUID


class CancelRun(Body):
    """Cancel an order run."""

    reason: Annotated[str, Field(max_length=CANCEL_REASON_MAX)] = "cancelled by request"


class Completion(Body):
    """A completion event of a domain run by another tool."""

    domain: SpecName
    recipe: SpecName
    variation: SpecName | None = None
    kitchen: SpecName = "prod"
    status: RunStatus = RunStatus.SUCCEEDED
    order_run_id: uuid.UUID | None = None
    params: Params = Field(default_factory=dict)
    outputs: Outputs = Field(default_factory=Outputs)
    tests: TestSummary = Field(default_factory=TestSummary)


class EventAccepted(BaseModel):
    """The event was queued for publishing."""

    message_id: uuid.UUID


class CreateKitchen(Body):
    """Create a sandbox kitchen from a parent."""

    name: SpecName
    from_: SpecName = Field(alias="from")
    description: Annotated[str, Field(max_length=1000)] = ""
    params: Params = Field(default_factory=dict)
    connections: dict[SpecName, ConnectionSpec] = Field(default_factory=dict)
    ttl: Duration | None = None
    provision: RecipeRef | None = None
    teardown: RecipeRef | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MergeResult(BaseModel):
    """A merged sandbox: its parent now holds its specs, the sandbox is gone."""

    kitchen: str
    parent: str | None
    merged: bool
    promoted: list[Change] = []
    """Versions the parent (or, for a root parent, the base) got from the sandbox."""


class MergeCheck(BaseModel):
    """Whether a sandbox may merge now; the merge itself answers from the same check."""

    kitchen: str
    parent: str | None
    """The kitchen it would merge into (None: a root kitchen, which never merges)."""
    allowed: bool
    """True when `POST /v1/kitchens/{kitchen}/merge` would merge it now."""
    reasons: list[str] = []
    """Why not, each a sentence; a refused merge's 409 detail joins them with "; "."""


class KitchenVersion(BaseModel):
    """A recipe version applied into one kitchen (it runs there, and in kitchens below it)."""

    entity_id: str
    """`recipe:<domain>/<recipe>@<kitchen>`."""
    domain: str
    recipe: str
    version: str
    """Content hash of the kitchen's version."""
    base_version: str | None
    """The base version it stands in for; None when the base has no such recipe."""
    applied_at: datetime
    applied_by: str | None


PrincipalName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,100}$")]


class IssueToken(Body):
    """Grant scopes to a principal and issue it a token."""

    principal: PrincipalName
    scopes: dict[
        Annotated[str, Field(pattern=r"^(\*|[a-z][a-z0-9_-]{0,62})$")],
        list[Annotated[str, Field(pattern=r"^(read|run|publish-events|admin)$")]],
    ]


def _public_key(text: str) -> str:
    if (problem := public_key_problem(text)) is not None:
        raise ValueError(problem)
    return text


class PublicKey(Body):
    """A public key to add to or remove from a principal's grant."""

    public_key: Annotated[str, Field(max_length=64), AfterValidator(_public_key)]
    """Base64 of the raw 32-byte Ed25519 public key (`sous keys new` prints it)."""
    principal: PrincipalName | None = None
    """Whose key; the caller's own when absent (another's needs `admin` on every domain)."""


class PrincipalKeys(BaseModel):
    """A principal's published public keys."""

    principal: str
    keys: list[str]


class TokenIssued(BaseModel):
    """The token, shown once; only its hash is stored."""

    principal: str
    token: str


class Identity(BaseModel):
    """Who a token belongs to and the scopes it holds, by domain (`*` for every domain)."""

    principal: str
    scopes: dict[str, list[str]]


NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
DomainPath = Annotated[str, Path(pattern=NAME_PATTERN, description="Domain name.")]
RecipePath = Annotated[str, Path(pattern=NAME_PATTERN, description="Recipe name.")]
KitchenPath = Annotated[str, Path(pattern=NAME_PATTERN, description="Kitchen name.")]


class StartBackfillBody(RunTarget):
    """Run one variation of a recipe once per partition of a range."""

    range: BackfillRange
    """The partitions: `{"param": "day", "start": "2026-11-01", "end": "2026-11-07"}`, with
    an optional `step` (`1d`, `7d`, `2w` for dates, an integer for integers)."""
    concurrency: Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)] = 1
    downstream: bool = False
    """True lets the partitions' completions fire downstream triggers."""


class BackfillAccepted(BaseModel):
    """The command was queued; follow the backfill with GET /v1/backfills/{id}."""

    backfill_id: uuid.UUID
    partitions: int
    """How many partitions (runs) the range has."""
