"""A gateway payment's side effects (workflows/gateway_payment.py): the gateway's HTTP API (initialize, verify) and
the posting on Postgres, once.

The posting is one transaction under the payment row's lock: the journal entry `gateway:<payment id>` (GL gateway
clearing debited; the loan's deposit account or the bill's account credited), the bill marked paid, the row
succeeded. A retry, a second webhook or a verify racing the webhook finds the row closed and writes nothing. A loan's
repayment is then applied from the deposit account by the loan's own workflow (its `repay` update, the manual
repayment's path), keyed by the payment: once, whatever retries happen."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from core import audit, ledger
from core.business_time import business_today
from core.config import Settings
from core.db import Database
from finance.money import format_usd
from models.bills import BillStatus
from models.gateway import (
    GL_GATEWAY_CLEARING,
    OPEN_STATUSES,
    POSTABLE_STATUSES,
    Checkout,
    GatewayOutcome,
    GatewayPayment,
    GatewayPaymentInput,
    GatewayPurpose,
    GatewayResult,
    GatewayStatus,
)
from models.loans import Loan, RepaymentInput, RepaymentResult
from models.notifications import NotifyUsers

MINOR_PER_UNIT = 100  # cents: the gateway counts money in minor units


def minor_units(amount: Decimal) -> int:
    return int(amount * MINOR_PER_UNIT)


def entry_key(payment_id) -> str:
    return f"gateway:{payment_id}"


def repayment_key(payment_id) -> str:
    """The loan repayment's Idempotency-Key (the loan workflow's `repay`): one repayment per gateway payment."""
    return f"gateway:{payment_id}"


class GatewayActivities:
    def __init__(self, db: Database, settings: Settings, client: Client):
        self.db, self.settings, self.client = db, settings, client

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.settings.gateway_base_url,
            timeout=self.settings.http_timeout,
            headers={"Authorization": f"Bearer {self.settings.gateway_secret_key.get_secret_value()}"},
        )

    async def _payment(self, session, payment_id, lock: bool = False) -> GatewayPayment:
        payment = await session.get(GatewayPayment, payment_id, with_for_update=lock or None)
        assert payment is not None, f"gateway payment {payment_id} has no row"
        return payment

    @activity.defn
    async def open_checkout(self, req: GatewayPaymentInput) -> Checkout:
        """The transaction initialized at the gateway under our reference (the gateway's idempotency key: a retry
        answers the same checkout) and its checkout stored on the row; the stored one when it is there already."""
        async with self.db.session() as session:
            payment = await self._payment(session, req.payment_id)
        if payment.access_code is not None or payment.status not in OPEN_STATUSES:
            return self._checkout(payment)
        async with self._http() as http:
            response = await http.post(
                "/gateway/transaction/initialize",
                json={
                    "amount": minor_units(payment.amount),
                    "currency": payment.currency,
                    "reference": payment.reference,
                    "callback_url": f"{self.settings.gateway_callback_url}/{payment.id}",
                    "metadata": {"payment_id": str(payment.id), "purpose": payment.purpose},
                },
            )
        if response.status_code >= 500 or response.status_code in (401, 429):
            # The gateway's outage, or our key being rotated: retried (the activity's policy bounds it).
            raise ApplicationError(f"the gateway answered {response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            raise ApplicationError(
                f"the gateway refused the transaction ({response.status_code}): {response.text[:300]}",
                type="gateway_refused",
                non_retryable=True,
            )
        data = response.json()["data"]
        async with self.db.session() as session, session.begin():
            payment = await self._payment(session, req.payment_id, lock=True)
            if payment.access_code is None:
                payment.access_code, payment.authorization_url = data["access_code"], data["authorization_url"]
                if payment.status == GatewayStatus.initializing:
                    payment.status = GatewayStatus.pending
                session.add(payment)
            return self._checkout(payment)

    @staticmethod
    def _checkout(payment: GatewayPayment) -> Checkout:
        return Checkout(
            payment_id=payment.id,
            status=payment.status,
            reference=payment.reference,
            authorization_url=payment.authorization_url,
            access_code=payment.access_code,
            failure=payment.failure,
        )

    @activity.defn
    async def verify_transaction(self, req: GatewayPaymentInput) -> GatewayOutcome:
        """What the gateway says of our reference now (the webhook is late or lost)."""
        async with self.db.session() as session:
            payment = await self._payment(session, req.payment_id)
        async with self._http() as http:
            response = await http.get(f"/gateway/transaction/verify/{payment.reference}")
        if response.status_code == 404:  # never initialized there (a gateway that forgot it): nothing was paid
            return GatewayOutcome(payment_id=payment.id, source="verify", status="abandoned")
        if response.status_code != 200:
            raise ApplicationError(f"the gateway's verify answered {response.status_code}: {response.text[:200]}")
        data = response.json()["data"]
        status = data.get("status")
        return GatewayOutcome(
            payment_id=payment.id,
            source="verify",
            status=status if status in ("success", "failed", "abandoned") else "pending",
            amount_minor=data.get("amount"),
            currency=data.get("currency"),
        )

    @activity.defn
    async def record_outcome(self, outcome: GatewayOutcome) -> GatewayResult:
        """The payment closed by what the gateway says, once: paid (posted), failed or abandoned (the payer to be
        told), or flagged when the gateway's amount or currency is not ours. A payment already closed is answered
        as it is (a second webhook, a verify racing the webhook)."""
        async with self.db.session() as session, session.begin():
            payment = await self._payment(session, outcome.payment_id, lock=True)
            if outcome.status == "success":
                if payment.status not in POSTABLE_STATUSES:
                    return self._result(payment)
                return await self._post(session, payment, outcome)
            if outcome.status in ("failed", "abandoned") and payment.status in OPEN_STATUSES:
                failure = outcome.failure or (
                    "declined at the gateway's checkout" if outcome.status == "failed" else "not paid at the checkout"
                )
                await self._close(session, payment, GatewayStatus(outcome.status), failure, outcome)
                result = self._result(payment)
                result.notify = self._failure_notice(payment)
                return result
            return self._result(payment)

    async def _post(self, session, payment: GatewayPayment, outcome: GatewayOutcome) -> GatewayResult:
        charged = None if outcome.amount_minor is None else Decimal(outcome.amount_minor) / MINOR_PER_UNIT
        payment.gateway_amount, payment.gateway_currency = charged, (outcome.currency or "")[:3] or None
        if charged != payment.amount or outcome.currency != payment.currency:
            await self._close(
                session,
                payment,
                GatewayStatus.flagged,
                f"the gateway reports {outcome.amount_minor} minor units {outcome.currency} paid, we asked "
                f"{minor_units(payment.amount)} {payment.currency}: not posted, for an operator to reconcile",
                outcome,
            )
            return self._result(payment)
        if payment.purpose == GatewayPurpose.bill and await self._bill_taken(session, payment):
            await self._close(
                session,
                payment,
                GatewayStatus.flagged,
                "paid after it was given up, while another card payment of the bill is open or paid: not posted, "
                "for an operator to refund or apply",
                outcome,
            )
            return self._result(payment)
        target = await self._credited_account(session, payment)
        # The money came in the payment's currency; into an account of another one the ledger refuses it (flagged).
        await ledger.ensure_gl_accounts(session, payment.currency)
        clearing = await ledger.gl_account(session, GL_GATEWAY_CLEARING, payment.currency)
        try:
            async with session.begin_nested():
                entry_id, _ = await ledger.post_entry(
                    session,
                    idempotency_key=entry_key(payment.id),
                    entry_type="gateway_payment",
                    description=f"Card payment {payment.reference} ({payment.purpose}) through the gateway",
                    effective_date=business_today(self.settings),
                    legs=[ledger.Leg(clearing, payment.amount), ledger.Leg(target, -payment.amount)],
                )
        except ledger.LedgerError as refused:  # e.g. the account closed since: money received, nowhere to put it
            await self._close(session, payment, GatewayStatus.flagged, f"not posted: {refused}"[:500], outcome)
            return self._result(payment)
        payment.journal_entry_id = entry_id
        if payment.purpose == GatewayPurpose.bill:
            await self._bill_paid(session, payment)
        await self._close(session, payment, GatewayStatus.succeeded, None, outcome)
        return self._result(payment)

    @staticmethod
    async def _bill_taken(session, payment: GatewayPayment) -> bool:
        """Another card payment of the bill is open or paid (this one was abandoned, then paid late): posting this
        one too would pay the bill twice (and break the one-per-bill index)."""
        other = await session.execute(
            text(
                "SELECT 1 FROM gateway_payments WHERE bill_id = :bill AND id <> :id "
                "AND status IN ('initializing', 'pending', 'succeeded')"
            ),
            {"bill": payment.bill_id, "id": payment.id},
        )
        return other.first() is not None

    async def _credited_account(self, session, payment: GatewayPayment):
        if payment.purpose == GatewayPurpose.loan_repayment:
            loan = await session.get(Loan, payment.loan_id)
            assert loan is not None
            return loan.deposit_account_id
        row = (
            await session.execute(text("SELECT account_id FROM bills WHERE id = :id"), {"id": payment.bill_id})
        ).one()
        return row.account_id

    async def _bill_paid(self, session, payment: GatewayPayment) -> None:
        bill = (
            await session.execute(
                text("SELECT id, status, payment_id FROM bills WHERE id = :id FOR UPDATE"), {"id": payment.bill_id}
            )
        ).one()
        ours = bill.status == BillStatus.processing and bill.payment_id == payment.id
        if not (ours or bill.status in (BillStatus.upcoming, BillStatus.overdue)):
            return  # paid another way meanwhile: the money is on the bill's account all the same
        now = datetime.now(UTC)
        await session.execute(
            text(
                "UPDATE bills SET status = 'paid', paid_at = :now, payment_id = :payment, updated_at = :now "
                "WHERE id = :id"
            ),
            {"now": now, "payment": payment.id, "id": bill.id},
        )
        await audit.record(
            session,
            actor=f"system:{activity.info().workflow_id}",
            actor_id=None,
            action="bill.paid",
            entity_type="bill",
            entity_id=bill.id,
            before={"status": bill.status},
            after={"status": "paid", "gateway_payment_id": str(payment.id), "reference": payment.reference},
        )

    async def _close(
        self, session, payment: GatewayPayment, status: GatewayStatus, failure: str | None, outcome: GatewayOutcome
    ) -> None:
        before = payment.status
        payment.status, payment.failure, payment.closed_at = status, failure, datetime.now(UTC)
        payment.confirmed_by = outcome.source if outcome.source in ("webhook", "verify") else None
        session.add(payment)
        if status in (GatewayStatus.failed, GatewayStatus.abandoned) and payment.purpose == GatewayPurpose.bill:
            # The bill was held (processing) for this checkout: it is due again.
            await session.execute(
                text(
                    "UPDATE bills SET status = CASE WHEN due_date < :today THEN 'overdue' ELSE 'upcoming' END, "
                    "updated_at = now() WHERE id = :id AND status = 'processing' AND payment_id = :payment"
                ),
                {"today": business_today(self.settings), "id": payment.bill_id, "payment": payment.id},
            )
        await audit.record(
            session,
            actor=f"system:{activity.info().workflow_id}",
            actor_id=None,
            action=f"gateway_payment.{status}",
            entity_type="gateway_payment",
            entity_id=payment.id,
            before={"status": before},
            after={
                "status": status,
                "failure": failure,
                "source": outcome.source,
                "event_id": outcome.event_id,
                "gateway_amount_minor": outcome.amount_minor,
                "gateway_currency": outcome.currency,
                "journal_entry_id": str(payment.journal_entry_id) if payment.journal_entry_id else None,
            },
        )

    @staticmethod
    def _result(payment: GatewayPayment) -> GatewayResult:
        return GatewayResult(
            payment_id=payment.id,
            status=payment.status,
            failure=payment.failure,
            journal_entry_id=payment.journal_entry_id,
            apply_to_loan=payment.status == GatewayStatus.succeeded
            and payment.purpose == GatewayPurpose.loan_repayment
            and payment.repayment_entry_id is None,
        )

    @staticmethod
    def _failure_notice(payment: GatewayPayment) -> NotifyUsers:
        what = "loan repayment" if payment.purpose == GatewayPurpose.loan_repayment else "bill payment"
        return NotifyUsers(
            user_ids=[payment.payer_id],
            kind="gateway_payment_failed",
            template="gateway_payment_failed",
            entity_type="gateway_payment",
            entity_id=str(payment.id),
            dedupe_key=f"gateway-payment-failed:{payment.id}",
            context={
                "what": what,
                "amount": format_usd(payment.amount),
                "reference": payment.reference,
                "status": payment.status,
                "reason": payment.failure or payment.status,
                "link": f"/api/v1/gateway-payments/{payment.id}",
            },
        )

    @activity.defn
    async def apply_loan_repayment(self, req: GatewayPaymentInput) -> GatewayResult:
        """The posted money, now on the borrower's deposit account, applied to the loan by the loan's workflow (its
        `repay` update, as a manual repayment), keyed by the payment: once. A refusal (the loan closed meanwhile, an
        overpayment) leaves the money on deposit and says so on the payment; retrying would not change it."""
        async with self.db.session() as session:
            payment = await self._payment(session, req.payment_id)
            loan = await session.get(Loan, payment.loan_id)
            assert loan is not None
        if payment.status != GatewayStatus.succeeded or payment.repayment_entry_id is not None:
            return self._result(payment)
        repayment = RepaymentInput(
            loan_id=loan.id,
            amount=payment.amount,
            mode=payment.repayment_mode or "installment",
            key=repayment_key(payment.id),
            paid_by=payment.payer_id,
            paid_by_email=f"system:gateway {payment.reference}",
        )
        refusal = None
        try:
            result = await self.client.get_workflow_handle(loan.workflow_id).execute_update(
                "repay", repayment, id=f"gateway-{payment.id}", result_type=RepaymentResult
            )
        except WorkflowUpdateFailedError as exc:
            cause: Any = exc.cause
            while getattr(cause, "cause", None) is not None and not getattr(cause, "type", None):
                cause = cause.cause  # an activity's refusal arrives wrapped in an ActivityError
            refusal = f"{getattr(cause, 'type', None) or 'refused'}: {getattr(cause, 'message', cause)}"
        except RPCError as exc:
            refusal = f"the loan's workflow is not running: {exc.message}"
        async with self.db.session() as session, session.begin():
            payment = await self._payment(session, req.payment_id, lock=True)
            if refusal is not None:
                payment.failure = f"repayment not applied ({refusal}); the money stays on the deposit account"[:500]
            else:
                payment.repayment_entry_id = result.journal_entry_id
            session.add(payment)
            await audit.record(
                session,
                actor=f"system:{activity.info().workflow_id}",
                actor_id=None,
                action="gateway_payment.repayment_refused" if refusal else "gateway_payment.repayment_applied",
                entity_type="gateway_payment",
                entity_id=payment.id,
                after={
                    "loan_id": str(loan.id),
                    "refusal": refusal,
                    "repayment_entry_id": str(payment.repayment_entry_id),
                },
            )
            return self._result(payment)
