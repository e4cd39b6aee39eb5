"""The pure parts of bills: keys and ids derived from the business key, the status a due date means, and the
reminder and auto-pay emails."""

import uuid
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from activities.bills import autopay_payment_id, autopay_workflow_id, due_status, reminder_context, reminder_key
from core.email import render
from models.bills import BillStatus

BILL = SimpleNamespace(
    id=uuid.UUID("11111111-2222-3333-4444-555555555555"),
    payee_name="City Power & Light",
    amount=Decimal("1234.5"),
    due_date=date(2026, 12, 15),
    memo="",
    autopay=False,
)


def test_autopay_ids_are_the_bill_and_due_date():
    bill, due = BILL.id, date(2026, 12, 15)
    assert autopay_workflow_id(bill, due) == f"bill-autopay-{bill}-2026-12-15"
    assert autopay_payment_id(bill, due) == autopay_payment_id(bill, date(2026, 12, 15))
    assert autopay_payment_id(bill, due) != autopay_payment_id(bill, date(2027, 1, 15))
    assert autopay_payment_id(bill, due) != autopay_payment_id(uuid.uuid4(), due)
    assert reminder_key(bill, due, 3) == f"bill-reminder:{bill}:2026-12-15:3"


def test_a_due_date_before_today_is_overdue():
    today = date(2026, 11, 21)
    assert due_status(date(2026, 11, 20), today) == BillStatus.overdue
    assert due_status(today, today) == due_status(date(2026, 11, 22), today) == BillStatus.upcoming


def test_reminder_says_how_many_days_are_left_and_escapes_html():
    subject, text, html = render("bill_reminder", reminder_context(BILL, 3))
    assert subject == "Bill due in 3 days: City Power & Light $1,234.50"
    assert "due in 3 days" in text and "Auto-pay is off" in text and "/api/v1/bills/" + str(BILL.id) in text
    assert "City Power &amp; Light" in html and "Memo" not in html
    assert render("bill_reminder", reminder_context(BILL, 1))[0].startswith("Bill due in 1 day:")
    assert render("bill_reminder", reminder_context(BILL, 0))[0] == "Bill due today: City Power & Light $1,234.50"
    overdue = render(
        "bill_reminder", reminder_context(SimpleNamespace(**{**vars(BILL), "memo": "Nov", "autopay": True}), -2)
    )
    assert overdue[0].startswith("Bill overdue:") and "Memo:      Nov" in overdue[1] and "Auto-pay is on" in overdue[1]


def test_autopay_failure_names_the_reason():
    subject, text, html = render(
        "bill_autopay_failed",
        {
            "payee": "Gym",
            "amount": "$31.03",
            "due_date": "2031-01-05",
            "status": "upcoming",
            "payment_status": "returned",
            "reason": "R03 No account/unable to locate account",
            "link": "/api/v1/bills/1",
        },
    )
    assert subject == "Auto-pay of your bill to Gym ($31.03) did not go through"
    assert "R03 No account/unable to locate account" in text and "R03" in html
