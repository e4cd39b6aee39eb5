"""Deterministic workflow code only: no I/O, no clocks, no randomness outside the SDK's."""

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
from workflows.email_resend import EmailResendWorkflow
from workflows.interest_posting import InterestPostingWorkflow
from workflows.loan import LoanWorkflow
from workflows.month_end_posting import MonthEndPostingWorkflow
from workflows.monthly_statements import MonthlyStatementsWorkflow
from workflows.retention import RetentionWorkflow

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
]
