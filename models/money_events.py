"""Inputs of the money-events workflow (workflows/money_events.py) and its evaluation activity."""

import uuid

from pydantic import BaseModel, Field


class MoneyEvent(BaseModel):
    cause: str = Field(max_length=40, examples=["deposit", "withdrawal", "transfer", "payment_returned", "import"])
    ref: str = Field(max_length=200, description="what moved it: a journal entry, a payment, an import")


class MoneyEventsInput(BaseModel):
    user_id: uuid.UUID
    pending: list[MoneyEvent] = Field(default_factory=list, description="signals carried over a continue-as-new")
    handled: int = 0  # events evaluated by earlier runs of the chain, for the record


class EvaluateMoneyEvents(BaseModel):
    user_id: uuid.UUID
    events: list[MoneyEvent]


class EvaluationOutcome(BaseModel):
    alerts_raised: int
