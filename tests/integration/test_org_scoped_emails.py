"""Operators' emails carry only their organization's figures: the month-end interest posting tells each
organization's operators what was posted to that organization's accounts, and only bank-wide staff (superusers)
get the bank-wide totals. Over real SMTP (tests/mailbox.py)."""

import uuid
from datetime import timedelta

from sqlalchemy import text

from models.interest import InterestPostingInput
from tests.conftest import SUPERUSER, make_org
from workflows.interest_posting import InterestPostingWorkflow

PERIOD, FIRST, LAST = "2023-04", "2023-04-01", "2023-04-30"


async def seed_posting(db, org_id: str, amounts: list[str]) -> None:
    """Savings accounts of the organization with the period accrued (one day carries the month's interest)."""
    product, ids = uuid.uuid4(), [uuid.uuid4() for _ in amounts]
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO savings_products (id, name, annual_rate, day_count, active) "
                "VALUES (:id, :name, 0.05, 'actual/365', true)"
            ),
            {"id": product, "name": f"Seeded {product.hex[:8]}"},
        )
        for account, amount in zip(ids, amounts, strict=True):
            await session.execute(
                text(
                    "INSERT INTO ledger_accounts (id, name, kind, type, normal_balance, currency, status, org_id) "
                    "VALUES (:id, 'Seeded savings', 'internal', 'savings', 'credit', 'USD', 'active', :org)"
                ),
                {"id": account, "org": uuid.UUID(org_id)},
            )
            # Detached from its product after the month: other tests' accrual runs skip it, the posting does not.
            await session.execute(
                text("INSERT INTO savings_accounts (account_id, product_id) VALUES (:id, NULL)"), {"id": account}
            )
            await session.execute(
                text(
                    "INSERT INTO interest_accruals (account_id, day, product_id, balance, amount) "
                    "VALUES (:id, CAST(:day AS date), :product, 0, CAST(:amount AS numeric))"
                ),
                {"id": account, "day": FIRST, "product": product, "amount": amount},
            )
        await session.execute(
            text(
                "INSERT INTO accrual_runs (day, accounts, accrued) SELECT d::date, 0, 0 FROM generate_series(CAST(:first "
                "AS date), CAST(:last AS date), interval '1 day') AS d ON CONFLICT DO NOTHING"
            ),
            {"first": FIRST, "last": LAST},
        )


def body(message) -> str:
    return message["Subject"] + "\n" + message.get_body(("plain",)).get_content()


async def test_an_operator_is_emailed_only_their_organizations_posting_figures(
    http, su, db, worker, temporal_env, settings, mailbox
):
    org_a, org_b = await make_org(http, su, roles=("operator",)), await make_org(http, su, roles=("operator",))
    await seed_posting(db, org_a.id, ["12.34", "0.66"])  # A: 2 accounts, $13.00
    await seed_posting(db, org_b.id, ["777.77"])  # B: 1 account, $777.77; the bank: 3 accounts, $790.77
    summary = await temporal_env.client.execute_workflow(
        InterestPostingWorkflow.run,
        InterestPostingInput(period=PERIOD),
        id=f"interest-posting-{PERIOD}",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(seconds=120),
    )
    assert (summary.accounts, str(summary.total)) == (3, "790.77")

    operator_a, operator_b = org_a.users["operator"]["email"], org_b.users["operator"]["email"]
    to_a = await mailbox.wait_for(lambda m: operator_a in m["To"] and PERIOD in m["Subject"])
    to_b = await mailbox.wait_for(lambda m: operator_b in m["To"] and PERIOD in m["Subject"])
    bank = await mailbox.wait_for(lambda m: SUPERUSER[0] in m["To"] and PERIOD in m["Subject"])
    assert "$13.00" in body(to_a) and "2 accounts" in body(to_a)
    assert "$777.77" in body(to_b) and "1 accounts" in body(to_b)
    assert "$790.77" in body(bank) and "3 accounts" in body(bank)
    # Neither operator sees the other organization's figures nor the bank's totals, in any email of the period.
    for address, foreign in (
        (operator_a, ("$777.77", "$790.77", "3 accounts")),
        (operator_b, ("$13.00", "$790.77", "3 accounts")),
    ):
        received = [m for m in mailbox.to(address) if PERIOD in m["Subject"]]
        assert len(received) == 1, [m["Subject"] for m in received]
        for figure in foreign:
            assert figure not in body(received[0]), (address, figure, body(received[0]))
