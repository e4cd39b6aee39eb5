"""Every activity, for the workers that register them (worker.py).

Apart from the package's __init__ on purpose, as workflows/registry.py is: a workflow module imports its own
activities' module (for their references), which imported the package's __init__ and with it every activity module
and what they need (spreadsheets, PDFs, the bank's file formats): the API, which starts workflows but runs no
activity, paid for all of them at every start."""

from temporalio.client import Client

from activities.accrual import AccrualActivities
from activities.ach import AchActivities
from activities.approvals import ApprovalActivities
from activities.backups import BackupActivities
from activities.bank_events import BankEventActivities
from activities.bills import BillActivities
from activities.credit import CreditActivities
from activities.documents import DocumentActivities
from activities.exports import ExportActivities
from activities.fx import FxActivities
from activities.gateway import GatewayActivities
from activities.interest_posting import InterestPostingActivities
from activities.kyc import KycActivities
from activities.linked_imports import LinkedImportActivities
from activities.loan_servicing import LoanServicingActivities
from activities.loans import LoanActivities
from activities.maker_checker import MakerCheckerActivities
from activities.money_events import MoneyEventActivities
from activities.notifications import NotificationActivities
from activities.payments import PaymentActivities
from activities.reconciliation import ReconciliationActivities
from activities.report_runs import ReportRunActivities
from activities.retention import RetentionActivities
from activities.reversals import ReversalActivities
from activities.standing import StandingActivities
from activities.statements import StatementActivities
from activities.transaction_imports import TransactionImportActivities
from activities.webhooks import WebhookActivities
from core.config import Settings
from core.db import Database
from core.email import EmailSender


def all_activities(db: Database, settings: Settings, client: Client) -> list:
    payments = PaymentActivities(db, settings)
    ach = AchActivities(db, settings, client)
    bank_events = BankEventActivities(db, settings, client, ach)
    notifications = NotificationActivities(db, EmailSender(settings))
    approvals = ApprovalActivities(db)
    loans = LoanActivities(db, settings)
    servicing = LoanServicingActivities(db, settings)
    bills = BillActivities(db, settings, client, EmailSender(settings))
    statements = StatementActivities(db)
    credit = CreditActivities(
        settings.bureau_base_url, settings.bureau_api_key.get_secret_value(), timeout=settings.http_timeout
    )
    accrual = AccrualActivities(db, settings)
    posting = InterestPostingActivities(db, settings, notifications, client)
    backups = BackupActivities(db, settings)
    retention = RetentionActivities(db, settings)
    kyc = KycActivities(db, settings, client)
    documents = DocumentActivities(db, settings)
    reversals = ReversalActivities(db, settings)
    maker_checker = MakerCheckerActivities(db, settings)
    standing = StandingActivities(db, settings, client, notifications)
    webhooks = WebhookActivities(db, settings, client)
    report_runs = ReportRunActivities(db, settings, notifications)
    reconciliation = ReconciliationActivities(db, settings)
    gateway = GatewayActivities(db, settings, client)
    exports = ExportActivities(db, settings, notifications)
    imports = TransactionImportActivities(db, settings, notifications, client=client)
    money_events = MoneyEventActivities(db, settings, notifications)
    fx = FxActivities(db, settings)
    linked = LinkedImportActivities(db, settings)
    return [
        exports.make_export,
        exports.fail_export,
        exports.notify_export,
        imports.load_chunk,
        imports.fail_import,
        imports.categorise_import,
        imports.finish_import,
        imports.notify_import,
        linked.sync_page,
        money_events.evaluate_money_events,
        fx.fetch_rates,
        report_runs.generate_report,
        report_runs.fail_report_run,
        report_runs.notify_report_run,
        report_runs.open_scheduled_run,
        reconciliation.load_statement_lines,
        reconciliation.auto_match,
        reconciliation.reconciliation_snapshot,
        reconciliation.apply_reconciliation_action,
        reconciliation.close_reconciliation,
        gateway.open_checkout,
        gateway.verify_transaction,
        gateway.record_outcome,
        gateway.apply_loan_repayment,
        standing.pay_run,
        standing.notify_failure,
        reversals.create_reversal_approval,
        reversals.post_reversal,
        reversals.close_reversal,
        maker_checker.create_maker_checker_approval,
        maker_checker.apply_maker_checker,
        maker_checker.close_maker_checker,
        payments.post_book_transfer,
        accrual.accrue_day,
        posting.unaccrued_days,
        posting.plan_posting,
        posting.post_interest_batch,
        posting.finish_posting,
        posting.stored_summary,
        posting.notify_org_summaries,
        approvals.update_request,
        approvals.record_decision,
        loans.set_status,
        loans.summary,
        loans.check_eligibility,
        loans.store_schedule,
        loans.create_approval_request,
        loans.render_agreement,
        loans.disburse,
        loans.credit_check_blocked,
        credit.check_credit,
        servicing.apply_repayment,
        servicing.check_servicing,
        servicing.plan_disbursement,
        servicing.plan_auto_debit,
        servicing.apply_auto_debit,
        servicing.reverse_auto_debit,
        ach.create_ach_payment,
        ach.validate_ach_payment,
        ach.queue_payment,
        ach.cancel_payment,
        ach.build_file,
        ach.build_files,
        ach.built_file,
        ach.upload_file,
        ach.confirm_upload,
        ach.release_unsent_file,
        ach.record_submitted,
        ach.record_settled,
        ach.complete_payment,
        ach.apply_return,
        bank_events.deliver_bank_event,
        bank_events.set_aside_bank_events,
        bank_events.sweep_bank_events,
        notifications.notify_org_admins,
        notifications.notify_users,
        notifications.send_outbox_email,
        bills.mark_overdue,
        bills.send_reminders,
        bills.start_autopays,
        bills.signal_due_alerts,
        bills.begin_autopay,
        bills.finish_autopay,
        bills.autopay_reversed,
        statements.write_statements_batch,
        backups.take_backup,
        backups.prune_backups,
        retention.apply_retention,
        kyc.record_kyc_submission,
        kyc.screen_identity,
        kyc.set_kyc_status,
        kyc.create_kyc_review,
        kyc.kyc_review_reason,
        kyc.start_kyc_reverifications,
        documents.scan_upload,
        documents.store_upload,
        documents.discard_upload,
        webhooks.dispatch_webhook_events,
        webhooks.next_webhook_event,
        webhooks.deliver_webhook_event,
        webhooks.park_webhook_event,
    ]
