"""Every side effect: Postgres, HTTP clients, SMTP, PDFs. One class per resource, holding its client."""

from temporalio.client import Client

from activities.ach import AchActivities
from core.config import Settings
from core.db import Database
from core.email import EmailSender
from activities.notifications import NotificationActivities
from activities.payments import PaymentActivities


def all_activities(db: Database, settings: Settings, client: Client) -> list:
    payments = PaymentActivities(db)
    ach = AchActivities(db, settings, client)
    notifications = NotificationActivities(db, EmailSender(settings))
    return [payments.post_book_transfer,
            ach.validate_ach_payment, ach.queue_payment, ach.cancel_payment, ach.build_file, ach.upload_file,
            ach.record_submitted, ach.record_settled, ach.complete_payment, ach.apply_return,
            notifications.notify_org_admins, notifications.notify_users]
