"""What topics read together carry: one union per consumer that reads several topics.

A consumer is a fetch loop and a group member of its own, so services read related topics
with one. These are the unions their handlers decode, kept here once.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sous_contracts.backfills import BackfillRejected, BackfillUpdated
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.runs import (
    DomainRunCompleted,
    JoinWindowExpired,
    OrderRunDeduplicated,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    OrderRunStarted,
    TriggerHeld,
)
from sous_contracts.steps import (
    StepEventsMark,
    StepFinished,
    StepHeartbeat,
    StepSkipped,
    StepStarted,
)
from sous_contracts.tests import TestResult, TestSuiteFinished

RunFlow = Annotated[
    OrderRunRejected
    | OrderRunQueued
    | OrderRunStarted
    | OrderRunFinished
    | BackfillUpdated
    | BackfillRejected
    | OrderRunDeduplicated
    | JoinWindowExpired
    | TriggerHeld
    | StepStarted
    | StepHeartbeat
    | StepFinished
    | StepEventsMark
    | StepSkipped
    | TestResult
    | TestSuiteFinished,
    Field(discriminator="type"),
]
"""What the run events, step events and test results topics carry."""

Outside = Annotated[DomainRunCompleted | RegistryEntityChanged, Field(discriminator="type")]
"""What the domain events and the registry changelog carry."""
