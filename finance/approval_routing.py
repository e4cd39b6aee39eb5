"""Approval routing as data (PRODUCT.md §4.4): which rule, and so which levels of approvers, a request goes
through, by amount and member type. Pure: no I/O, safe inside workflows.

A rule matches when it is active, ``min_amount <= amount <= max_amount`` (no ``max_amount``: no upper bound)
and its ``member_type`` is None (any) or the request's. Of the matching rules the lowest ``priority`` wins;
on a tie a rule for this member type beats a generic one, then the name (then the id) decides, so the
choice never depends on the order of the list.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ApproverRole", "FinalOutcome", "Level", "Rule", "route"]


class ApproverRole(StrEnum):
    loan_officer = "loan_officer"
    branch_manager = "branch_manager"
    credit_committee = "credit_committee"
    org_admin = "org_admin"


class FinalOutcome(StrEnum):
    """What happens to a request when the last escalation's deadline passes without a decision."""

    decline = "decline"
    hold = "hold"


MAX_LEVEL_SECONDS = 366 * 24 * 3600


class Level(BaseModel):
    """One level of approval: `quorum` people of `role` approve within `deadline_seconds` of the level
    opening; a reminder goes out after `reminder_seconds` (0: none); at the deadline the level escalates
    to `escalation_role` (None: straight to the rule's final outcome)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: ApproverRole = Field(examples=["credit_committee"])
    quorum: int = Field(default=1, ge=1, le=100, examples=[2], description="approvals needed, e.g. 2 of 3 members")
    # At most a year: a workflow timer (a timedelta) must be able to hold it.
    deadline_seconds: int = Field(gt=0, le=MAX_LEVEL_SECONDS, examples=[172800])
    reminder_seconds: int = Field(
        default=0, ge=0, le=MAX_LEVEL_SECONDS, examples=[86400], description="< deadline_seconds; 0: none"
    )
    escalation_role: ApproverRole | None = Field(default=None, examples=["branch_manager"])

    @field_validator("reminder_seconds")
    @classmethod
    def _reminder_before_deadline(cls, reminder: int, info) -> int:
        deadline = info.data.get("deadline_seconds")
        if deadline is not None and reminder >= deadline:
            raise ValueError(f"reminder_seconds must be less than deadline_seconds ({deadline})")
        return reminder


class Rule(BaseModel):
    """A routing rule; `Rule.model_validate(approval_rule_row)` builds one from the table's row."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: uuid.UUID
    name: str
    priority: int
    min_amount: Decimal = Field(strict=True)  # strict: a Decimal, never a float
    max_amount: Decimal | None = Field(strict=True)
    member_type: str | None
    levels: tuple[Level, ...] = Field(min_length=1)
    final_outcome: FinalOutcome
    active: bool = True

    def matches(self, amount: Decimal, member_type: str) -> bool:
        return (
            self.active
            and self.min_amount <= amount
            and (self.max_amount is None or amount <= self.max_amount)
            and self.member_type in (None, member_type)
        )


def _precedence(rule: Rule) -> tuple:
    return rule.priority, rule.member_type is None, rule.name, str(rule.id)


def route(rules: list[Rule], amount: Decimal, member_type: str) -> Rule | None:
    """The rule a request of `amount` for a member of `member_type` goes through; None when none matches."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError(f"amount must be finite, not {amount}")
    matching = [rule for rule in rules if rule.matches(amount, member_type)]
    return min(matching, key=_precedence, default=None)
