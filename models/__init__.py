"""SQLModel tables; importing this package registers them all on SQLModel.metadata (alembic needs that)."""

from models.ach import AchEntry, AchFile, AchTraceCounter, AchWindow, BankEvent, EmailOutbox, Notification
from models.api_keys import ApiKey
from models.audit import AuditLog
from models.bills import Bill, BillReminder
from models.budgets import Budget
from models.documents import Document, DocumentVersion
from models.exports import TransactionExport
from models.external_accounts import ExternalAccount, LinkedItem
from models.gateway import GatewayEvent, GatewayPayment
from models.identity import (
    LoginLockout,
    MfaRecoveryCode,
    PasswordHistory,
    PasswordReset,
    SecurityEvent,
    UserMfa,
)
from models.interest import (
    AccrualRun,
    InterestAccrual,
    InterestPosting,
    InterestPostingRun,
    SavingsAccount,
    SavingsProduct,
)
from models.ledger import Hold, JournalEntry, LedgerAccount, Posting
from models.live import LiveSession
from models.loans import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalRule,
    Loan,
    LoanAllocation,
    LoanInstallment,
    LoanProduct,
    LoanRepayment,
)
from models.maker_checker import MakerCheckerRequest
from models.member_budgets import AlertSubscription, MemberAlert, MemberBudget, MemberBudgetAlert
from models.money import (
    Category,
    CategoryRule,
    ImportedTransaction,
    ImportRejection,
    ImportTupleCount,
    LedgerTransactionTag,
    MoneyShare,
    TransactionChange,
    TransactionImport,
)
from models.payments import Payment, PaymentEvent
from models.periods import ClosedPeriod
from models.reconciliation import Reconciliation, ReconciliationLine, ReconciliationMatch
from models.report_runs import ReportDefinition, ReportRun
from models.reversals import EntryReversal
from models.rewards import RewardAccount, RewardEarnRule, RewardEntry, RewardProgram
from models.standing import StandingInstruction, StandingInstructionRun
from models.statements import Statement
from models.users import Organization, RefreshToken, User
from models.webhooks import WebhookEvent, WebhookSubscription

__all__ = [
    "AccrualRun",
    "AchEntry",
    "AchFile",
    "AchTraceCounter",
    "AchWindow",
    "AlertSubscription",
    "ApiKey",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalRule",
    "AuditLog",
    "BankEvent",
    "Bill",
    "BillReminder",
    "Budget",
    "Category",
    "CategoryRule",
    "ClosedPeriod",
    "Document",
    "DocumentVersion",
    "EmailOutbox",
    "EntryReversal",
    "ExternalAccount",
    "GatewayEvent",
    "GatewayPayment",
    "Hold",
    "ImportRejection",
    "ImportTupleCount",
    "ImportedTransaction",
    "InterestAccrual",
    "InterestPosting",
    "InterestPostingRun",
    "JournalEntry",
    "LedgerAccount",
    "LedgerTransactionTag",
    "LinkedItem",
    "LiveSession",
    "Loan",
    "LoanAllocation",
    "LoanInstallment",
    "LoanProduct",
    "LoanRepayment",
    "LoginLockout",
    "MakerCheckerRequest",
    "MemberAlert",
    "MemberBudget",
    "MemberBudgetAlert",
    "MfaRecoveryCode",
    "MoneyShare",
    "Notification",
    "Organization",
    "PasswordHistory",
    "PasswordReset",
    "Payment",
    "PaymentEvent",
    "Posting",
    "Reconciliation",
    "ReconciliationLine",
    "ReconciliationMatch",
    "RefreshToken",
    "ReportDefinition",
    "ReportRun",
    "RewardAccount",
    "RewardEarnRule",
    "RewardEntry",
    "RewardProgram",
    "SavingsAccount",
    "SavingsProduct",
    "SecurityEvent",
    "StandingInstruction",
    "StandingInstructionRun",
    "Statement",
    "TransactionChange",
    "TransactionExport",
    "TransactionImport",
    "User",
    "UserMfa",
    "WebhookEvent",
    "WebhookSubscription",
]
