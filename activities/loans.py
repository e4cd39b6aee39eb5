"""Loan side effects on Postgres: eligibility, the stored schedule, the approval request (routed by the rules
in the database), the agreement PDF, the disbursement, a credit check blocked by our own bureau credentials, and
status changes with their audit rows. Schedules and the agreement use the loan's own terms (copied from the
product at application). Each one is safe to run again: it finds what it already wrote."""

import asyncio
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.approval_requests import insert_approval_request
from core import audit, ledger
from core.approval_routes import no_route, route_for
from core.business_time import business_today
from core.config import Settings
from core.crypto import FileCipher
from core.db import Database
from core.loan_books import installment_rows
from core.storage import storage_from_settings
from core.task_queues import queue_for
from documents.loan_agreement import AgreementData, render_loan_agreement
from domain import webhooks
from domain.documents import store_generated
from domain.money_events import money_changed_for_entry
from finance.amortization import (
    AmortizationMethod,
    Frequency,
    Installment,
    LoanTerms,
    Schedule,
    build_schedule,
    periodic_payment,
)
from finance.daycount import DayCount
from models.approvals import ApprovalInput, LevelSpec
from models.documents import DocumentKind, OwnerType
from models.loans import (
    CreditCheckBlocked,
    Eligibility,
    Loan,
    LoanInput,
    LoanProduct,
    LoanStatus,
    LoanStatusUpdate,
    LoanSummary,
)
from models.notifications import NotifyUsers
from models.users import Role, User

_LOAN_ACCOUNT_NS = uuid.UUID("5b0f3c1e-2a54-4c3e-9d3a-7c1e2f4b6a80")
_AGREEMENT_NS = uuid.UUID("8d2c4e61-7b3a-4f0e-9a15-3e6b2d9c1f07")  # the agreement document's and version's ids
# A loan in one of these stays there: a late write (the approval's progress racing a withdrawal) never reopens it.
ENDED = {
    LoanStatus.closed,
    LoanStatus.declined,
    LoanStatus.rejected,
    LoanStatus.on_hold,
    LoanStatus.withdrawn,
    LoanStatus.failed,
}


def first_due_date(start: date) -> date:
    """A month after the start, on the same day (clamped to the month's end by the schedule code)."""
    month = start.month % 12 + 1
    year = start.year + (start.month == 12)
    day = min(start.day, 28)
    return date(year, month, day)


def terms_of(loan: Loan, first_due: date) -> LoanTerms:
    """The loan's own terms (copied from the product at application), never the product's current ones."""
    return LoanTerms(
        principal=loan.amount,
        annual_rate=loan.annual_rate,
        term_periods=loan.term,
        method=AmortizationMethod(loan.amortization),
        frequency=Frequency(loan.frequency),
        first_due_date=first_due,
        day_count=DayCount(loan.day_count),
    )


def invalid_terms(error: ValueError) -> ApplicationError:
    """No schedule can be built on these terms (less than a cent per installment, a loan that never amortizes):
    retrying cannot change that, so the loan fails with the reason."""
    return ApplicationError(
        f"no repayment schedule fits these terms: {error}", type="InvalidLoanTerms", non_retryable=True
    )


class LoanActivities:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self.documents = storage_from_settings(settings)
        self.file_cipher = FileCipher.from_settings(settings)

    async def _loan(self, session, loan_id: uuid.UUID, lock: bool = False) -> Loan:
        statement = select(Loan).where(Loan.id == loan_id)
        loan = (await session.exec(statement.with_for_update() if lock else statement)).first()
        if loan is None:
            raise ApplicationError(f"loan {loan_id} does not exist", non_retryable=True)
        return loan

    @activity.defn
    async def set_status(self, update: LoanStatusUpdate) -> None:
        async with self.db.session() as session, session.begin():
            loan = await self._loan(session, update.loan_id, lock=True)
            if loan.status == update.status or loan.status in ENDED:
                return
            before = {"status": loan.status}
            loan.status, loan.updated_at = update.status, datetime.now(UTC)
            loan.status_detail = None  # it said why the loan waited at its former status
            if update.reason is not None:
                loan.decline_reason = update.reason
            if update.credit_score is not None:
                loan.credit_score = update.credit_score
            session.add(loan)
            await audit.record(
                session,
                actor=f"system:{activity.info().workflow_id}",
                actor_id=None,
                action=f"loan.{update.status}",
                entity_type="loan",
                entity_id=loan.id,
                before=before,
                after={"status": update.status, "reason": update.reason, "credit_score": update.credit_score},
            )
            # A status may come back (pending_approval after info_requested): the transition is keyed by the
            # activity that made it, which a retry keeps (and a retry finds the status set, above).
            info = activity.info()
            key = f"{update.status}:{info.workflow_run_id}:{info.activity_id}"
            await webhooks.emit_loan(session, loan.id, loan.org_id, update.status, before["status"], key, update.reason)

    @activity.defn
    async def credit_check_blocked(self, blocked: CreditCheckBlocked) -> NotifyUsers | None:
        """The bureau refuses our own credentials: the loan stays in credit_check with the reason on its row
        (written and audited once), and the operators to tell are returned: the organization's operators and
        the superusers, who own the bureau configuration."""
        async with self.db.session() as session, session.begin():
            loan = await self._loan(session, blocked.loan_id, lock=True)
            detail = f"credit check waiting: {blocked.message}"[:500]
            if loan.status_detail != detail:
                loan.status_detail, loan.updated_at = detail, datetime.now(UTC)
                session.add(loan)
                await audit.record(
                    session,
                    actor=f"system:{activity.info().workflow_id}",
                    actor_id=None,
                    action="loan.credit_check_blocked",
                    entity_type="loan",
                    entity_id=loan.id,
                    after={"status": loan.status, "detail": detail},
                )
            operators = (
                await session.exec(
                    select(User.id).where(
                        User.is_active,
                        (User.role == Role.superuser) | ((User.role == Role.operator) & (User.org_id == loan.org_id)),
                    )
                )
            ).all()
        if not operators:
            return None
        return NotifyUsers(
            user_ids=list(operators),
            kind="credit_check_blocked",
            template="credit_check_blocked",
            context={
                "loan_id": str(loan.id),
                "status": blocked.status or "refused",
                "message": blocked.message,
                "link": f"/api/v1/loans/{loan.id}",
            },
            entity_type="loan",
            entity_id=str(loan.id),
            dedupe_key=f"credit-check-blocked:{loan.id}",
        )

    @activity.defn
    async def summary(self, loan_id: uuid.UUID) -> LoanSummary:
        async with self.db.session() as session:
            loan = await self._loan(session, loan_id)
            applicant = await session.get(User, loan.applicant_id)
            assert applicant is not None
            return LoanSummary(
                loan_id=loan.id,
                status=loan.status,
                amount=loan.amount,
                applicant_id=loan.applicant_id,
                org_id=loan.org_id,
                applicant_name=applicant.full_name,
            )

    @activity.defn
    async def check_eligibility(self, req: LoanInput) -> Eligibility:
        """KYC done, debt-to-income with the new installment within the limit, no loan in arrears."""
        async with self.db.session() as session:
            loan = await self._loan(session, req.loan_id)
            applicant = await session.get(User, loan.applicant_id)
            if applicant is None or not applicant.is_active or applicant.kyc_status != "verified":
                return Eligibility(eligible=False, reason="the applicant's KYC is not verified")
            try:
                installment = periodic_payment(loan.amount, loan.annual_rate, loan.term, Frequency(loan.frequency))
            except ValueError as error:
                raise invalid_terms(error) from error
            monthly = (
                installment
                * {"monthly": Decimal(1), "biweekly": Decimal(26) / 12, "weekly": Decimal(52) / 12}[loan.frequency]
            )
            if loan.monthly_income <= 0:
                return Eligibility(eligible=False, reason="no income stated")
            dti = ((loan.monthly_debt + monthly) / loan.monthly_income).quantize(Decimal("0.0001"))
            if dti > req.max_debt_to_income:
                return Eligibility(
                    eligible=False,
                    debt_to_income=dti,
                    reason=f"debt-to-income {dti:.2%} is above {req.max_debt_to_income:.0%}",
                )
            in_arrears = (
                await session.execute(
                    text(  # days_past_due is kept by each loan's servicing
                        "SELECT count(*) FROM loans WHERE applicant_id = :a AND status = 'active' AND days_past_due > 0"
                    ),
                    {"a": loan.applicant_id},
                )
            ).scalar_one()
            if in_arrears:
                return Eligibility(eligible=False, debt_to_income=dti, reason="the applicant has a loan in arrears")
            return Eligibility(eligible=True, debt_to_income=dti)

    @activity.defn
    async def store_schedule(self, loan_id: uuid.UUID) -> LoanSummary:
        """Computes the schedule from the loan's terms (first due date a month from today) and stores it once."""
        async with self.db.session() as session, session.begin():
            loan = await self._loan(session, loan_id, lock=True)
            first_due = loan.first_due_date or first_due_date(business_today(self.settings))
            try:
                schedule = build_schedule(terms_of(loan, first_due))
            except ValueError as error:
                raise invalid_terms(error) from error
            loan.first_due_date = first_due
            session.add(loan)
            await session.execute(
                text(
                    """INSERT INTO loan_installments (id, loan_id, number, due_date, payment, interest, principal, balance)
                   SELECT gen_random_uuid(), :loan, n, d, p, i, pr, b
                   FROM unnest(CAST(:numbers AS int[]), CAST(:dates AS date[]), CAST(:payments AS numeric[]),
                               CAST(:interest AS numeric[]), CAST(:principal AS numeric[]), CAST(:balance AS numeric[]))
                        AS s(n, d, p, i, pr, b)
                   ON CONFLICT ON CONSTRAINT loan_installments_once DO NOTHING"""
                ),
                {
                    "loan": loan.id,
                    "numbers": [i.number for i in schedule.installments],
                    "dates": [i.due_date for i in schedule.installments],
                    "payments": [i.payment for i in schedule.installments],
                    "interest": [i.interest for i in schedule.installments],
                    "principal": [i.principal for i in schedule.installments],
                    "balance": [i.balance for i in schedule.installments],
                },
            )
            applicant = await session.get(User, loan.applicant_id)
            assert applicant is not None
            return LoanSummary(
                loan_id=loan.id,
                status=loan.status,
                amount=loan.amount,
                applicant_id=loan.applicant_id,
                org_id=loan.org_id,
                applicant_name=applicant.full_name,
                installments=len(schedule.installments),
                first_payment=schedule.installments[0].payment,
                total_interest=schedule.total_interest,
            )

    @activity.defn
    async def create_approval_request(self, loan_id: uuid.UUID) -> ApprovalInput:
        """Routes the loan (its amount, the applicant's member type when they applied) through the rules in the
        database and records the request (once per loan); NoApprovalRule when no active rule routes it."""
        async with self.db.session() as session, session.begin():
            loan = await self._loan(session, loan_id, lock=True)
            request_id = uuid.uuid5(_LOAN_ACCOUNT_NS, f"approval:{loan.id}")
            existing = (
                await session.execute(
                    text("SELECT rule_id, levels, final_outcome FROM approval_requests WHERE id = :id"),
                    {"id": request_id},
                )
            ).first()
            if existing is None:
                rule = await route_for(self.db, loan.amount, loan.member_type)
                if rule is None:  # the rules changed since the application was accepted
                    raise ApplicationError(
                        no_route(loan.amount, loan.member_type), type="NoApprovalRule", non_retryable=True
                    )
                levels = [level.model_dump(mode="json") for level in rule.levels]
                await insert_approval_request(
                    session,
                    request_id=request_id,
                    subject_type="loan",
                    subject_id=loan.id,
                    title=f"Loan {loan.amount:,.2f} for {loan.purpose or 'a member'}",
                    org_id=loan.org_id,
                    amount=loan.amount,
                    applicant_id=loan.applicant_id,
                    submitted_by=loan.created_by,
                    rule_id=rule.id,
                    levels=levels,
                    final_outcome=rule.final_outcome,
                )
                loan.approval_request_id = request_id
                session.add(loan)
                rule_levels, outcome = levels, rule.final_outcome
            else:
                rule_levels, outcome = existing.levels, existing.final_outcome
            return ApprovalInput(
                request_id=request_id,
                org_id=loan.org_id,
                title=f"Loan ${loan.amount:,.2f}" + (f": {loan.purpose}" if loan.purpose else ""),
                amount=loan.amount,
                applicant_id=loan.applicant_id,
                submitted_by=loan.created_by,
                levels=[LevelSpec(**level) for level in rule_levels],
                final_outcome=outcome,
                task_queue=queue_for(self.settings, "ApprovalWorkflow"),
            )

    @activity.defn
    async def disburse(self, loan_id: uuid.UUID) -> None:
        """Opens the loan's receivable account and moves the principal into the member's deposit account; then
        tells the member's money-events workflow (again on a retry, harmlessly)."""
        entry_id = await self._disburse(loan_id)
        if entry_id is not None:
            await money_changed_for_entry(activity.client(), self.db, entry_id, "loan_disbursement", self.settings)

    async def _disburse(self, loan_id: uuid.UUID) -> uuid.UUID | None:
        async with self.db.session() as session, session.begin():
            loan = await self._loan(session, loan_id, lock=True)
            if loan.disbursed_at is not None:
                return await ledger.entry_id_of(session, f"loan:{loan.id}:disburse")
            loan_account = uuid.uuid5(_LOAN_ACCOUNT_NS, f"loan-account:{loan.id}")
            await session.execute(
                text(
                    """INSERT INTO ledger_accounts (id, name, kind, type, normal_balance, currency, org_id, owner_id, status)
                   VALUES (:id, :name, 'internal', 'loan', 'debit', 'USD', :org, :owner, 'active')
                   ON CONFLICT DO NOTHING"""
                ),
                {
                    "id": loan_account,
                    "name": f"Loan {str(loan.id)[:8]}",
                    "org": loan.org_id,
                    "owner": loan.applicant_id,
                },
            )
            entry_id, _ = await ledger.post_entry(
                session,
                idempotency_key=f"loan:{loan.id}:disburse",
                entry_type="loan_disbursement",
                description=f"Disbursement of loan {loan.id}",
                effective_date=business_today(self.settings),
                legs=[ledger.Leg(loan_account, loan.amount), ledger.Leg(loan.deposit_account_id, -loan.amount)],
            )
            loan.loan_account_id, loan.disbursed_at = loan_account, datetime.now(UTC)
            session.add(loan)
            await audit.record(
                session,
                actor=f"system:{activity.info().workflow_id}",
                actor_id=None,
                action="loan.disbursed",
                entity_type="loan",
                entity_id=loan.id,
                after={
                    "amount": str(loan.amount),
                    "loan_account_id": str(loan_account),
                    "deposit_account_id": str(loan.deposit_account_id),
                },
            )
            return entry_id

    @activity.defn
    async def render_agreement(self, loan_id: uuid.UUID) -> int:
        """Renders the agreement PDF from the loan's own terms, its stored schedule and the decisions, and stores
        it with the loan. Deterministic output: a re-run writes the same bytes."""
        async with self.db.session() as session, session.begin():
            loan = await self._loan(session, loan_id, lock=True)
            product = await session.get(LoanProduct, loan.product_id)  # its name only: the terms are the loan's
            applicant = await session.get(User, loan.applicant_id)
            assert product is not None and applicant is not None
            schedule = Schedule.of(
                [
                    Installment(
                        number=i.number,
                        due_date=i.due_date,
                        payment=i.payment,
                        interest=i.interest,
                        principal=i.principal,
                        balance=i.balance,
                    )
                    for i in await installment_rows(session, loan.id)
                ]
            )
            decisions = (
                await session.execute(
                    text(
                        "SELECT d.level, d.role, u.full_name, d.at FROM approval_decisions d JOIN users u ON u.id = "
                        "d.approver_id WHERE d.request_id = :r AND d.decision = 'approve' "
                        "AND d.round = (SELECT max(round) FROM approval_decisions l WHERE l.request_id = d.request_id "
                        "AND l.level = d.level) ORDER BY d.level, d.at"
                    ),  # the round that passed the level counted
                    {"r": loan.approval_request_id},
                )
            ).all()
            org_name = (
                await session.execute(text("SELECT name FROM organizations WHERE id = :o"), {"o": loan.org_id})
            ).scalar_one()
            data = AgreementData(
                lender_name=org_name,
                borrower_name=applicant.full_name,
                borrower_id=str(applicant.id),
                loan_id=str(loan.id),
                product_name=product.name,
                principal=loan.amount,
                annual_rate=loan.annual_rate,
                term_periods=loan.term,
                frequency=Frequency(loan.frequency),
                method=AmortizationMethod(loan.amortization),
                day_count=DayCount(loan.day_count),
                first_due_date=loan.first_due_date,
                grace_days=loan.grace_days,
                late_fee=loan.late_fee,
                disbursement_account=f"deposit account ****{str(loan.deposit_account_id)[-4:]}",
                schedule=tuple(schedule.installments),
                total_interest=schedule.total_interest,
                total_of_payments=schedule.total_payments,
                generated_on=loan.created_at.date(),
                approvals=tuple(
                    f"Level {d.level} {d.role.replace('_', ' ')}: approved by {d.full_name} on {d.at:%b %d, %Y}"
                    for d in decisions
                ),
            )
            # reportlab is pure Python (~50 ms of CPU a loan): in a thread, so the worker's event loop, which runs
            # the workflow tasks and local activities (an approver waiting on a decision), is not held meanwhile.
            loan.agreement_pdf = await asyncio.to_thread(render_loan_agreement, data)
            session.add(loan)
            # Also a document of the loan (kind loan_agreement) behind the document storage: ids derived from the
            # loan, so a retry of this activity finds the version it stored and writes no second one.
            await store_generated(
                session,
                self.documents,
                self.file_cipher,
                document_id=uuid.uuid5(_AGREEMENT_NS, f"document:{loan.id}"),
                version_id=uuid.uuid5(_AGREEMENT_NS, f"version:{loan.id}"),
                org_id=loan.org_id,
                owner=(OwnerType.loan, loan.id),
                kind=DocumentKind.loan_agreement,
                title=f"Loan agreement {loan.id}",
                filename=f"loan-agreement-{loan.id}.pdf",
                content_type="application/pdf",
                content=loan.agreement_pdf,
            )
            return len(loan.agreement_pdf)
