import uuid
from decimal import Decimal
from typing import ClassVar

import pytest
from pydantic import ValidationError

from finance.approval_routing import Level, Rule, route

D = Decimal
OFFICER = Level(
    role="loan_officer", quorum=1, deadline_seconds=172800, reminder_seconds=86400, escalation_role="branch_manager"
)
MANAGER = Level(
    role="branch_manager", quorum=1, deadline_seconds=172800, reminder_seconds=86400, escalation_role="credit_committee"
)
COMMITTEE = Level(
    role="credit_committee", quorum=2, deadline_seconds=172800, reminder_seconds=86400, escalation_role="branch_manager"
)


def rule(
    name: str,
    low: str,
    high: str | None,
    levels=(OFFICER,),
    priority: int = 100,
    member_type: str | None = None,
    active: bool = True,
    outcome: str = "decline",
) -> Rule:
    return Rule(
        id=uuid.uuid5(uuid.NAMESPACE_URL, name),
        name=name,
        priority=priority,
        min_amount=D(low),
        max_amount=None if high is None else D(high),
        member_type=member_type,
        levels=levels,
        final_outcome=outcome,
        active=active,
    )


# As migration 0003 inserts them.
DEFAULTS = [
    rule("Up to 10,000: a loan officer", "0.01", "10000.00", (OFFICER,), 100),
    rule(
        "Up to 100,000: officer, then branch manager", "10000.01", "100000.00", (OFFICER, MANAGER), 200, outcome="hold"
    ),
    rule(
        "Above 100,000: officer, manager, then 2 of 3 of the credit committee",
        "100000.01",
        None,
        (OFFICER, MANAGER, COMMITTEE),
        300,
        outcome="hold",
    ),
]


@pytest.mark.parametrize(
    "amount, roles",
    [
        ("0.01", ["loan_officer"]),
        ("10000.00", ["loan_officer"]),
        ("10000.01", ["loan_officer", "branch_manager"]),
        ("100000.00", ["loan_officer", "branch_manager"]),
        ("100000.01", ["loan_officer", "branch_manager", "credit_committee"]),
        ("999999999.99", ["loan_officer", "branch_manager", "credit_committee"]),
    ],
)
def test_the_default_rules_route_by_amount(amount, roles):
    chosen = route(DEFAULTS, D(amount), "consumer")
    assert [level.role for level in chosen.levels] == roles


def test_above_100k_the_committee_needs_two_votes_and_the_outcome_is_hold():
    chosen = route(DEFAULTS, D("100000.01"), "business")
    assert chosen.levels[-1].quorum == 2 and chosen.final_outcome == "hold"


def test_the_order_of_the_list_does_not_matter():
    for amount in ("5", "50000", "500000"):
        assert route(DEFAULTS, D(amount), "consumer") == route(list(reversed(DEFAULTS)), D(amount), "consumer")


def test_a_rule_for_the_member_type_beats_a_generic_one_of_the_same_priority():
    business = rule("Zz business only: committee", "0.01", "10000.00", (COMMITTEE,), 100, member_type="business")
    rules = [*DEFAULTS, business]
    assert route(rules, D("500.00"), "business") == business
    assert route(rules, D("500.00"), "consumer") == DEFAULTS[0]


def test_lower_priority_wins_before_specificity_then_the_name_breaks_ties():
    urgent = rule("Z generic, first", "0.01", None, priority=1)
    assert route([*DEFAULTS, urgent], D("500.00"), "consumer") == urgent
    twin_a, twin_b = rule("A twin", "0.01", None, priority=1), rule("B twin", "0.01", None, priority=1)
    assert route([twin_b, twin_a], D("1.00"), "consumer") == twin_a


def test_inactive_rules_are_ignored():
    retired = rule("Retired", "0.01", "10000.00", (COMMITTEE,), priority=1, active=False)
    assert route([*DEFAULTS, retired], D("500.00"), "consumer") == DEFAULTS[0]
    assert route([retired], D("500.00"), "consumer") is None


def test_gaps_and_other_member_types_route_nowhere():
    gappy = [rule("Small", "0.01", "1000.00"), rule("Large", "5000.00", None)]
    assert route(gappy, D("1000.01"), "consumer") is None
    assert route(gappy, D("0.00"), "consumer") is None
    assert route(gappy, D("4999.99"), "consumer") is None
    assert route(gappy, D("5000.00"), "consumer").name == "Large"
    assert route([rule("Only business", "0.01", None, member_type="business")], D("1"), "consumer") is None
    assert route([], D("1"), "consumer") is None


@pytest.mark.parametrize("amount", [10000.0, 10000, "10000.00"])
def test_the_amount_must_be_a_decimal(amount):
    with pytest.raises(TypeError):
        route(DEFAULTS, amount, "consumer")


def test_non_finite_amounts_are_refused():
    with pytest.raises(ValueError):
        route(DEFAULTS, D("NaN"), "consumer")


def test_rule_amounts_must_be_decimals():
    with pytest.raises(ValidationError):
        Rule(
            id=uuid.uuid4(),
            name="float",
            priority=1,
            min_amount=0.01,
            max_amount=None,
            member_type=None,
            levels=(OFFICER,),
            final_outcome="decline",
        )


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"role": "teller"}, "role"),
        ({"quorum": 0}, "quorum"),
        ({"deadline_seconds": 0}, "deadline_seconds"),
        ({"reminder_seconds": -1}, "reminder_seconds"),
        ({"reminder_seconds": 172800}, "reminder_seconds"),
        ({"escalation_role": "member"}, "escalation_role"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_levels_are_validated(bad, field):
    with pytest.raises(ValidationError) as caught:
        Level(**{**OFFICER.model_dump(), **bad})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_a_rule_is_built_from_a_row_and_survives_a_json_round_trip():
    class Row:  # what the approval_rules table gives: levels as JSON objects, amounts as Decimals
        id, name, priority, min_amount, max_amount = uuid.uuid4(), "Row", 5, D("0.01"), D("10.00")
        member_type, final_outcome, active = None, "decline", True
        levels: ClassVar[list[dict]] = [OFFICER.model_dump(mode="json")]

    built = Rule.model_validate(Row())
    assert built.levels == (OFFICER,)
    assert Rule.model_validate_json(built.model_dump_json()) == built
