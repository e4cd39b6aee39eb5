"""Loan applications: a workflow each (`loan-<id>`), the id derived from the Idempotency-Key."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import Response as RawResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities.loan_servicing import quote
from activities.loans import first_due_date
from api.crud import required
from api.deps import CurrentUser, DbDep, IdempotencyKey, ReadSessionDep, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError, not_found
from api.fields import BusinessDateTime, Money, MoneyFilter, MoneyOrZero, line_rules, multiline_rules
from api.pagination import Page, PageDep, paginate
from core import access, audit
from core import search_attributes as sa
from core.access import Entity
from core.approval_routes import no_route, route_for
from core.business_time import business_today
from core.cache import reference
from core.loan_books import installment_balances, installment_rows
from core.task_queues import queue_for
from core.temporal import published
from domain.payments import request_hash
from finance.amortization import AmortizationMethod, Frequency, LoanTerms, build_schedule
from finance.daycount import DayCount
from finance.money import CENT
from models.approvals import ApprovalState, InformationInput
from models.external_accounts import ExternalAccount, ExternalAccountStatus
from models.ledger import LedgerAccount
from models.loans import Loan, LoanInput, LoanStatus, PayoffQuote, RepaymentInput, RepaymentResult
from models.users import KycStatus, User
from workflows.approval import ApprovalWorkflow
from workflows.loan import LoanWorkflow

router = APIRouter(prefix="/loans", tags=["loans"])

_LOAN_NS = uuid.UUID("2d7a1c64-1f0e-4b8e-9a52-3c6d5e7f8091")
LOANS: Table = Loan.__table__  # type: ignore[attr-defined]  # set by SQLAlchemy; SQLModel does not declare it


class LoanIn(BaseModel):
    """The route of approvals follows the amount and the applicant's member type, which is on their record (staff
    set it): a `member_type` here, like any unknown field, is refused."""

    model_config = ConfigDict(extra="forbid")

    product_id: uuid.UUID
    amount: Money
    term: int = Field(ge=1, le=600, description="number of installments", examples=[36])
    purpose: Annotated[str, *line_rules(500)] = Field(default="", examples=["Car purchase"])
    monthly_income: Money = Field(examples=["5200.00"])
    monthly_debt: MoneyOrZero = Decimal("0.00")
    deposit_account_id: uuid.UUID = Field(description="the applicant's account the loan is booked to and repaid from")
    external_account_id: uuid.UUID | None = Field(
        default=None, description="the applicant's verified bank account: the loan is paid out to it by ACH credit"
    )
    auto_debit: bool = Field(
        default=False, description="pull each installment from external_account_id by ACH debit on its due date"
    )
    applicant_id: uuid.UUID | None = Field(default=None, description="an officer applying on a member's behalf")


class LoanOut(BaseModel):
    id: uuid.UUID
    status: str
    workflow_status: str | None = None
    org_id: uuid.UUID
    applicant_id: uuid.UUID
    product_id: uuid.UUID
    amount: Decimal
    term: int
    purpose: str
    member_type: str
    annual_rate: Decimal = Field(description="the terms the loan was written on, kept when its product changes")
    amortization: str
    frequency: str
    day_count: str
    grace_days: int
    late_fee: Decimal
    deposit_account_id: uuid.UUID
    loan_account_id: uuid.UUID | None
    external_account_id: uuid.UUID | None
    auto_debit: bool
    disbursement_payment_id: uuid.UUID | None
    days_past_due: int
    aging_bucket: str | None
    credit_score: int | None
    decline_reason: str | None
    status_detail: str | None = Field(default=None, description="why the loan waits where it is (operators)")
    approval_request_id: uuid.UUID | None
    first_due_date: date | None
    workflow_id: str
    created_at: datetime
    disbursed_at: datetime | None
    has_agreement: bool = False


class InstallmentOut(BaseModel):
    number: int
    due_date: date
    payment: Decimal
    interest: Decimal
    principal: Decimal
    balance: Decimal
    late_fee: Decimal
    paid: Decimal = Field(description="the sum of what the repayments allocated to this installment")
    fee_paid: Decimal
    interest_paid: Decimal
    principal_paid: Decimal
    owed: Decimal = Field(description="late fee, interest and principal still unpaid")
    paid_at: datetime | None = None
    late_fee_assessed_at: datetime | None = None
    auto_debit_payment_id: uuid.UUID | None = None


class InformationIn(BaseModel):
    text: Annotated[str, *multiline_rules(4000, 1)] = Field(
        examples=["Payslips for the last three months are attached."]
    )


def loan_out(loan: Loan, workflow_status: str | None = None) -> LoanOut:
    return LoanOut(
        **loan.model_dump(exclude={"agreement_pdf"}),
        workflow_status=workflow_status,
        has_agreement=loan.agreement_pdf is not None,
    )


async def visible_loan(session, user: User, loan_id: uuid.UUID) -> Loan:
    loan: Loan = await access.visible(session, user, Entity.loan, loan_id)
    return loan


@router.post(
    "",
    response_model=LoanOut,
    status_code=201,
    summary="Apply for a loan (the applicant, or an officer on a member's behalf)",
)
async def apply(
    body: LoanIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    db: DbDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
):
    applicant_id = body.applicant_id or user.id
    access.check_apply_for(user, applicant_id)
    loan_id, digest = uuid.uuid5(_LOAN_NS, f"{user.id}:{key}"), request_hash(body)
    existing = await session.get(Loan, loan_id)
    if existing is None:
        applicant = access.check_acts_for(user, await session.get(User, applicant_id), applicant_id)
        if applicant.kyc_status != KycStatus.verified:  # eligibility checks it again when the loan starts
            raise AppError(
                422,
                "kyc_not_verified",
                f"the applicant's KYC is {applicant.kyc_status}: a loan needs it verified (see /members/{{id}}/kyc)",
                {"kyc_status": applicant.kyc_status},
            )
        product = await reference.loan_product(db, body.product_id)
        if product is None or not product.active:
            raise not_found("loan product", body.product_id)
        problems = {}
        if not product.min_amount <= body.amount <= product.max_amount:
            problems["amount"] = f"must be between {product.min_amount} and {product.max_amount}"
        if not product.min_term <= body.term <= product.max_term:
            problems["term"] = f"must be between {product.min_term} and {product.max_term}"
        if problems:
            raise AppError(422, "outside_product_limits", "the loan does not fit the product", problems)
        if await route_for(db, body.amount, applicant.member_type) is None:
            raise AppError(
                422,
                "no_approval_route",
                no_route(body.amount, applicant.member_type),
                {"amount": body.amount, "member_type": applicant.member_type},
            )
        if body.amount < body.term * CENT:  # no schedule has installments of less than a cent
            raise AppError(
                422,
                "amount_too_small_for_term",
                f"{body.amount} over {body.term} installments is less than a cent each",
                {"amount": f"must be at least {body.term * CENT}"},
            )
        try:  # e.g. installments that would not even cover the first period's interest
            build_schedule(
                LoanTerms(
                    principal=body.amount,
                    annual_rate=product.annual_rate,
                    term_periods=body.term,
                    method=AmortizationMethod(product.amortization),
                    frequency=Frequency(product.frequency),
                    day_count=DayCount(product.day_count),
                    first_due_date=first_due_date(business_today(settings)),
                )
            )
        except ValueError as error:
            raise AppError(
                422,
                "no_schedule_fits",
                f"no repayment schedule fits these terms: {error}",
                {"amount": str(body.amount), "term": body.term},
            ) from error
        account = await session.get(LedgerAccount, body.deposit_account_id)
        if account is None or account.owner_id != applicant_id or account.type == "loan" or account.status != "active":
            raise AppError(
                422,
                "invalid_deposit_account",
                "the deposit account must be an active checking or savings account of the applicant",
            )
        if account.currency != "USD":
            raise AppError(
                422,
                "currency_not_supported",
                f"loans are in US dollars: the deposit account holds {account.currency}",
                {"deposit_account_id": str(account.id), "currency": account.currency},
            )
        if body.auto_debit and body.external_account_id is None:
            raise AppError(422, "external_account_required", "auto-debit needs external_account_id")
        if body.external_account_id is not None:
            external = await session.get(ExternalAccount, body.external_account_id)
            if external is None or external.org_id != applicant.org_id:
                raise access.not_visible(
                    user, Entity.external_account, body.external_account_id, exists=external is not None
                )
            # The applicant's own bank account only, whoever applies (A1): never another member's, nor the
            # organization's.
            access.check_use_external(user, external, applicant.id)
            if external.status != ExternalAccountStatus.verified:
                raise AppError(
                    422,
                    "external_account_not_usable",
                    f"the external account is {external.status}",
                    {"external_account_id": external.id},
                )
        inserted = (
            await session.execute(
                pg_insert(LOANS)
                .values(
                    id=loan_id,
                    org_id=applicant.org_id,
                    applicant_id=applicant_id,
                    product_id=product.id,
                    amount=body.amount,
                    term=body.term,
                    purpose=body.purpose,
                    member_type=applicant.member_type,
                    monthly_income=body.monthly_income,
                    monthly_debt=body.monthly_debt,
                    deposit_account_id=account.id,
                    status=LoanStatus.submitted,
                    annual_rate=product.annual_rate,
                    amortization=product.amortization,
                    frequency=product.frequency,
                    day_count=product.day_count,
                    grace_days=product.grace_days,
                    late_fee=product.late_fee,
                    external_account_id=body.external_account_id,
                    auto_debit=body.auto_debit,
                    created_by=user.id,
                    idempotency_key=key,
                    request_hash=digest,
                    workflow_id=f"loan-{loan_id}",
                )
                .on_conflict_do_nothing()
                .returning(LOANS.c.id)
            )
        ).first()
        if inserted:
            await audit.record(
                session,
                actor=user.email,
                actor_id=user.id,
                action="loan.submitted",
                entity_type="loan",
                entity_id=loan_id,
                after={
                    "amount": str(body.amount),
                    "term": body.term,
                    "product_id": str(product.id),
                    "applicant_id": str(applicant_id),
                },
            )
        await session.commit()
    loan = required(await session.get(Loan, loan_id), "the loan")
    await session.refresh(loan)
    if loan.request_hash != digest:
        raise AppError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
            {"loan_id": loan.id},
        )
    if existing is not None:
        response.status_code = 200
    await session.commit()  # no pooled connection held across the call to Temporal
    await client.start_workflow(
        LoanWorkflow.run,
        LoanInput(
            loan_id=loan.id,
            min_credit_score=settings.loan_min_credit_score,
            max_debt_to_income=settings.loan_max_debt_to_income,
            day_seconds=settings.loan_day_seconds,
            business_timezone=settings.business_timezone,
            rounds_per_run=settings.loan_rounds_per_run,
            late_return_window_seconds=settings.ach_late_return_window.total_seconds(),
        ),
        id=loan.workflow_id,
        task_queue=queue_for(settings, LoanWorkflow),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Loan ${loan.amount:,.2f} over {loan.term} installments"
        + (f": {loan.purpose}" if loan.purpose else ""),
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.LOAN_STATUS, LoanStatus.submitted.value),
                SearchAttributePair(sa.LOAN_AMOUNT, float(loan.amount)),
                SearchAttributePair(sa.APPLICANT_ID, str(loan.applicant_id)),
                SearchAttributePair(sa.ORG_ID, str(loan.org_id)),
            ]
        ),
    )
    return loan_out(loan)


@router.get("/{loan_id}", response_model=LoanOut, summary="A loan: the database row and what its workflow says")
async def get_loan(loan_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep):
    loan = await visible_loan(session, user, loan_id)
    await session.commit()
    return loan_out(loan, await published(client, loan.workflow_id, sa.LOAN_STATUS))


@router.get("", response_model=Page[LoanOut], summary="Loans you can see, newest first")
async def list_loans(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    status: LoanStatus | None = None,
    aging_bucket: Literal["1-30", "31-60", "61-90", "90+"] | None = None,
    in_arrears: bool | None = None,
    applicant_id: uuid.UUID | None = None,
    product_id: uuid.UUID | None = None,
    min_amount: MoneyFilter | None = None,
    max_amount: MoneyFilter | None = None,
    created_from: Annotated[BusinessDateTime | None, Query(description="inclusive")] = None,
    created_to: Annotated[BusinessDateTime | None, Query(description="exclusive")] = None,
):
    statement = access.scope(user, Entity.loan, select(Loan))
    for column, value in ((Loan.status, status), (Loan.applicant_id, applicant_id), (Loan.product_id, product_id)):
        if value is not None:
            statement = statement.where(column == value)
    if aging_bucket is not None:
        statement = statement.where(Loan.aging_bucket == aging_bucket)
    if in_arrears is not None:
        statement = statement.where(Loan.days_past_due > 0 if in_arrears else Loan.days_past_due == 0)
    if min_amount is not None:
        statement = statement.where(Loan.amount >= min_amount)
    if max_amount is not None:
        statement = statement.where(Loan.amount <= max_amount)
    if created_from:
        statement = statement.where(Loan.created_at >= created_from)
    if created_to:
        statement = statement.where(Loan.created_at < created_to)
    items, total = await paginate(session, statement, page, [col(Loan.created_at).desc(), Loan.id])
    return Page(items=[loan_out(loan) for loan in items], total=total, limit=page.limit, offset=page.offset)


@router.get("/{loan_id}/schedule", response_model=list[InstallmentOut], summary="The repayment schedule")
async def get_schedule(loan_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    loan = await visible_loan(session, user, loan_id)
    rows = await installment_rows(session, loan.id)
    balances = await installment_balances(session, loan.id, rows)
    return [
        InstallmentOut(
            **row.model_dump(),
            paid=balance.paid_total,
            fee_paid=balance.paid_of("fee"),
            interest_paid=balance.paid_of("interest"),
            principal_paid=balance.paid_of("principal"),
            owed=balance.owed,
        )
        for row, balance in zip(rows, balances, strict=True)
    ]


@router.get("/{loan_id}/agreement.pdf", response_class=RawResponse, summary="The signed-off agreement (PDF)")
async def get_agreement(loan_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    loan = await visible_loan(session, user, loan_id)
    if loan.agreement_pdf is None:
        raise AppError(
            404, "no_agreement_yet", "the agreement is written once the loan is approved", {"status": loan.status}
        )
    return RawResponse(
        loan.agreement_pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="loan-{loan.id}.pdf"'},
    )


@router.post(
    "/{loan_id}/withdraw",
    response_model=LoanOut,
    summary="Withdraw an application before approval",
    responses={
        409: {
            "description": "not withdrawable: `details.status` is where the loan stands (e.g. "
            "declined or approved before the withdrawal took effect)"
        }
    },
)
async def withdraw(loan_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep):
    loan = await visible_loan(session, user, loan_id)
    access.check_withdraw_loan(user, loan)
    await session.commit()
    try:
        status = await client.get_workflow_handle(loan.workflow_id).execute_update(LoanWorkflow.withdraw)
    except WorkflowUpdateFailedError as exc:
        raise AppError(
            409, "not_withdrawable", str(getattr(exc.cause, "message", exc.cause)), {"status": loan.status}
        ) from exc
    except RPCError as exc:
        raise AppError(409, "not_withdrawable", "the loan's workflow is no longer running", str(exc)) from exc
    if status != LoanStatus.withdrawn:  # the loan ended another way, or was approved, before the withdrawal took
        raise AppError(
            409, "not_withdrawable", f"the loan was {status} before the withdrawal took effect", {"status": status}
        )
    session.expire_all()
    return loan_out(required(await session.get(Loan, loan_id), "the loan"))


@router.post(
    "/{loan_id}/information",
    response_model=ApprovalState,
    summary="Answer an approver's request for more information: the level reopens for everyone at it",
)
async def provide_information(
    loan_id: uuid.UUID, body: InformationIn, session: SessionDep, user: CurrentUser, client: TemporalDep
):
    loan = await visible_loan(session, user, loan_id)
    if loan.approval_request_id is None:
        raise AppError(409, "no_information_requested", "no information has been requested")
    await session.commit()
    try:
        state = await client.get_workflow_handle(f"approval-{loan.approval_request_id}").execute_update(
            ApprovalWorkflow.provide_information, InformationInput(provided_by=user.id, text=body.text)
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        code = getattr(cause, "type", None) or "rejected"
        raise AppError(
            403 if code == "not_the_applicant" else 409, code, str(getattr(cause, "message", cause))
        ) from exc
    except RPCError as exc:
        raise AppError(409, "request_closed", "the approval is no longer running", str(exc)) from exc
    if state.status not in ("open", "info_requested"):  # closed (withdrawn) before the answer reopened it
        raise AppError(
            409,
            "request_closed",
            f"the request was {state.status} before your answer reopened it",
            {"status": state.status},
        )
    return state


class RepaymentIn(BaseModel):
    amount: Money
    mode: Literal["installment", "prepayment", "payoff"] = Field(
        default="installment",
        description="installment: to the next installments (late fees, interest, then "
        "principal); prepayment: principal only, the installments not yet due nor "
        "started are recomputed; "
        "payoff: the amount of today's payoff quote, which closes the loan",
    )


REPAYMENT_REFUSALS = {
    "loan_not_active": 409,
    "insufficient_funds": 422,
    "payoff_amount_mismatch": 409,
    "use_payoff": 422,
    "overpayment": 422,
    "invalid_repayment": 422,
    "invalid_prepayment": 422,
}


@router.post(
    "/{loan_id}/repayments",
    response_model=RepaymentResult,
    summary="Repay from the applicant's deposit account (Idempotency-Key: a retry is one repayment)",
)
async def repay(
    loan_id: uuid.UUID,
    body: RepaymentIn,
    key: IdempotencyKey,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
):
    loan = await visible_loan(session, user, loan_id)
    access.check_repay_loan(user, loan)
    await session.commit()
    try:
        return await client.get_workflow_handle(loan.workflow_id).execute_update(
            LoanWorkflow.repay,
            RepaymentInput(
                loan_id=loan.id, amount=body.amount, mode=body.mode, key=key, paid_by=user.id, paid_by_email=user.email
            ),
        )
    except WorkflowUpdateFailedError as exc:
        cause: Any = exc.cause
        while getattr(cause, "cause", None) is not None and not getattr(cause, "type", None):
            cause = cause.cause  # an activity's refusal arrives wrapped in an ActivityError
        code = getattr(cause, "type", None) or "repayment_refused"
        raise AppError(REPAYMENT_REFUSALS.get(code, 409), code, str(getattr(cause, "message", cause))) from exc
    except RPCError as exc:
        raise AppError(409, "loan_not_active", "the loan's workflow is not running", str(exc)) from exc


@router.get("/{loan_id}/payoff-quote", response_model=PayoffQuote, summary="What clears the loan today")
async def payoff_quote(loan_id: uuid.UUID, session: SessionDep, user: CurrentUser, settings: SettingsDep):
    loan = await visible_loan(session, user, loan_id)
    if loan.status != LoanStatus.active:
        raise AppError(409, "loan_not_active", f"the loan is {loan.status}")
    return await quote(session, loan, business_today(settings))
