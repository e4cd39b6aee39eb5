"""Arguments and result of the credit check activity (the sandbox bureau's report, trimmed to what a loan
decision reads)."""

import uuid
from decimal import Decimal

from pydantic import BaseModel


class CreditCheckInput(BaseModel):
    loan_id: uuid.UUID  # makes the bureau's idempotency key, so a retried check is one report
    applicant_id: uuid.UUID
    full_name: str
    amount: Decimal


class CreditReport(BaseModel):
    report_id: str
    score: int  # 300..850
    band: str  # excellent, good, fair, poor, very_poor
    delinquencies: int
    bankruptcy: bool
