"""The project's custom search attributes: registered on the dev server at start, used by workflows.

Amounts are Double here only so operators can filter (`PaymentAmount > 1000`) in the Temporal UI;
money itself never leaves Decimal.
"""

from typing import Any

from temporalio.common import SearchAttributeKey

PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
PAYMENT_KIND = SearchAttributeKey.for_keyword("PaymentKind")
PAYMENT_AMOUNT = SearchAttributeKey.for_float("PaymentAmount")
ACCOUNT_ID = SearchAttributeKey.for_keyword("AccountId")
ORG_ID = SearchAttributeKey.for_keyword("OrgId")
LOAN_STATUS = SearchAttributeKey.for_keyword("LoanStatus")
APPROVAL_LEVEL = SearchAttributeKey.for_int("ApprovalLevel")
WAITING_ON_ROLE = SearchAttributeKey.for_keyword("WaitingOnRole")
LOAN_AMOUNT = SearchAttributeKey.for_float("LoanAmount")
APPLICANT_ID = SearchAttributeKey.for_keyword("ApplicantId")
AGING_BUCKET = SearchAttributeKey.for_keyword("AgingBucket")  # set while a loan is past due: 1-30 ... 90+
KYC_STATUS = SearchAttributeKey.for_keyword("KycStatus")  # a KYC workflow's step: screening, in_review, verified...
KYC_WAITING_ON = SearchAttributeKey.for_keyword("KycWaitingOn")  # member, or the reviewer's role; unset when none

ALL: list[SearchAttributeKey[Any]] = [
    PAYMENT_STATUS,
    PAYMENT_KIND,
    PAYMENT_AMOUNT,
    ACCOUNT_ID,
    ORG_ID,
    LOAN_STATUS,
    APPROVAL_LEVEL,
    WAITING_ON_ROLE,
    LOAN_AMOUNT,
    APPLICANT_ID,
    AGING_BUCKET,
    KYC_STATUS,
    KYC_WAITING_ON,
]

_CLI_TYPES = {
    "KEYWORD": "Keyword",
    "DOUBLE": "Double",
    "INT": "Int",
    "TEXT": "Text",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
}


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags = []
    for key in ALL:
        kind = _CLI_TYPES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags
