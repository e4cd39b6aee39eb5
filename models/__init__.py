"""SQLModel tables; importing this package registers them all on SQLModel.metadata (alembic needs that)."""

from models.ach import AchEntry, AchFile, AchTraceCounter, AchWindow, BankEvent, EmailOutbox, Notification
from models.audit import AuditLog
from models.bills import Bill, BillReminder
from models.interest import (AccrualRun, InterestAccrual, InterestPosting, InterestPostingRun, SavingsAccount,
                             SavingsProduct)
from models.loans import (ApprovalDecision, ApprovalRequest, ApprovalRule, Loan, LoanAllocation, LoanInstallment,
                          LoanProduct, LoanRepayment)
from models.external_accounts import ExternalAccount, LinkedItem
from models.ledger import Hold, JournalEntry, LedgerAccount, Posting
from models.payments import Payment, PaymentEvent
from models.statements import Statement
from models.users import Organization, RefreshToken, User

__all__ = ["ApprovalDecision", "ApprovalRequest", "ApprovalRule", "Loan", "LoanAllocation", "LoanInstallment", "LoanProduct",
           "LoanRepayment", "AchEntry", "AchFile", "AchTraceCounter", "AchWindow", "BankEvent", "EmailOutbox", "Notification", "AuditLog", "ExternalAccount", "LinkedItem", "Hold", "JournalEntry", "LedgerAccount", "Posting",
           "Payment", "PaymentEvent", "Organization", "RefreshToken", "User", "Bill", "BillReminder", "Statement",
           "AccrualRun", "InterestAccrual", "InterestPosting", "InterestPostingRun", "SavingsAccount", "SavingsProduct"]
