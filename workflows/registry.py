"""Every workflow type, for the workers that register them (worker.py) and the replay tests.

Apart from the package's __init__ on purpose: the workflow sandbox re-imports a workflow's module, and its
package's __init__ first, for every workflow it starts or replays. An __init__ importing all seventeen modules made
each new payment pay for every module's import (three quarters of the worker's CPU under the ACH benchmark: bench/
README.md); now each pays for its own module only."""

from workflows.ach_batch import AchBatchWorkflow
from workflows.ach_payment import AchPaymentWorkflow
from workflows.approval import ApprovalWorkflow
from workflows.backup import BackupWorkflow
from workflows.bank_events import BankEventDeliveryWorkflow, BankEventSweepWorkflow
from workflows.bill_autopay import BillAutopayWorkflow
from workflows.bill_reminder import BillReminderWorkflow
from workflows.bill_run import BillRunWorkflow
from workflows.book_transfer import BookTransferWorkflow
from workflows.daily_accrual import DailyAccrualWorkflow
from workflows.document_upload import DocumentUploadWorkflow
from workflows.email_resend import EmailResendWorkflow
from workflows.export import ExportWorkflow
from workflows.fx_refresh import FxRatesRefreshWorkflow
from workflows.gateway_payment import GatewayPaymentWorkflow
from workflows.interest_posting import InterestPostingWorkflow
from workflows.kyc import KycReverificationWorkflow, KycWorkflow
from workflows.linked_import import LinkedImportWorkflow
from workflows.loan import LoanWorkflow
from workflows.maker_checker import TransactionApprovalWorkflow
from workflows.money_events import MoneyEventsWorkflow
from workflows.month_end_posting import MonthEndPostingWorkflow
from workflows.monthly_statements import MonthlyStatementsWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.report_run import ReportRunWorkflow, ScheduledReportWorkflow
from workflows.retention import RetentionWorkflow
from workflows.reversal import ReversalWorkflow
from workflows.standing_instruction import StandingInstructionRunWorkflow
from workflows.transaction_import import TransactionImportWorkflow
from workflows.webhooks import WebhookDeliveryWorkflow, WebhookDispatchWorkflow

ALL_WORKFLOWS = [
    BookTransferWorkflow,
    AchPaymentWorkflow,
    AchBatchWorkflow,
    ApprovalWorkflow,
    LoanWorkflow,
    BillRunWorkflow,
    BillAutopayWorkflow,
    BillReminderWorkflow,
    MonthlyStatementsWorkflow,
    DailyAccrualWorkflow,
    InterestPostingWorkflow,
    MonthEndPostingWorkflow,
    BankEventDeliveryWorkflow,
    BankEventSweepWorkflow,
    EmailResendWorkflow,
    BackupWorkflow,
    RetentionWorkflow,
    KycWorkflow,
    KycReverificationWorkflow,
    DocumentUploadWorkflow,
    ReversalWorkflow,
    TransactionApprovalWorkflow,
    StandingInstructionRunWorkflow,
    WebhookDispatchWorkflow,
    WebhookDeliveryWorkflow,
    ReportRunWorkflow,
    ScheduledReportWorkflow,
    ReconciliationWorkflow,
    GatewayPaymentWorkflow,
    ExportWorkflow,
    TransactionImportWorkflow,
    LinkedImportWorkflow,
    MoneyEventsWorkflow,
    FxRatesRefreshWorkflow,
]
