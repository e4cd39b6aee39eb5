"""Every side effect: Postgres, HTTP clients, SMTP, PDFs. One class per resource, holding its client."""

from core.db import Database
from activities.payments import PaymentActivities


def all_activities(db: Database) -> list:
    payments = PaymentActivities(db)
    return [payments.post_book_transfer]
