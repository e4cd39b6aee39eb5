"""ACH side effects: validation, holds, queueing into cutoff windows, NACHA files and their upload to the
ODFI, and the ledger entries of each step. Every activity locks the payment (or the window) and does
nothing when that step was already done, so a retry or a replay after a crash never writes twice.

Ledger, per presentment p (idempotency keys `payment:<id>:<step>:<p>`):
  credit (push out):  hold on submit queue; submit  member -> ACH clearing; settle  clearing -> cash at bank
  debit  (pull in):   submit  ACH clearing -> member (with an availability hold until completed);
                      settle  cash at bank -> clearing
  return: the money goes back the way it came, from clearing (not yet settled) or cash at bank (settled).
"""

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.ach_build import DROPPED_CODE, close_window
from activities.payments import add_event, lock_payment, outcome, transition
from core import ach_files, audit, ledger
from core.business_time import business_today
from core.config import Settings
from core.crypto import AccountNumberCipher, FileCipher
from core.db import Database
from core.task_queues import queue_for
from domain.money_events import member_owners, money_changed
from finance.ach_file_plan import FileLimits
from finance.ach_returns import ReturnReaction, reaction
from finance.ach_windows import next_window
from finance.money import format_usd
from models.ach import AchFile, AchWindow
from models.external_accounts import ExternalAccount, ExternalAccountStatus
from models.ledger import GL_ACH_CLEARING, GL_CASH, AccountStatus, LedgerAccount
from models.payments import (
    CANCELABLE_STATUSES,
    FINAL_STATUSES,
    AchBatchInput,
    AchChildPayment,
    AchPaymentInput,
    BuiltEntry,
    BuiltFile,
    BuiltWindow,
    CancelRequest,
    DroppedEntry,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentStatus,
    PresentmentRef,
    QueuedPayment,
    ReleasedFile,
    ReturnInput,
    ReturnOutcome,
    UnansweredUpload,
    UploadOutcome,
)
from models.users import KycStatus, User

PAYMENTS: Table = Payment.__table__  # type: ignore[attr-defined]  # set by SQLAlchemy; SQLModel does not declare it


class PaymentRejected(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def return_notice(payment: Payment, external: ExternalAccount, code: str | None, reason: str | None) -> dict:
    """What the org admins' payment_returned email says of a return."""
    return {
        "payment_id": str(payment.id),
        "kind": "debit" if payment.kind == PaymentKind.ach_debit else "credit",
        "amount": format_usd(payment.amount),
        "account": f"{external.institution_name} ****{external.account_last4}",
        "return_code": code,
        "return_reason": reason,
        "link": f"/api/v1/payments/{payment.id}",
    }


async def check_ach_payment(
    session: AsyncSession,
    settings: Settings,
    kind: str,
    amount: Decimal,
    account: LedgerAccount,
    external: ExternalAccount,
    require_kyc: bool = True,
    check_funds: bool = True,
) -> None:
    """The rules an ACH payment must meet, for the API (before anything is written) and the workflow. A debit into a
    member's account needs the member's KYC verified when it is asked for (`require_kyc`: the API, a bill's auto-pay
    set-up); the workflow's validation does not ask again, so a debit already authorized (a loan's auto-debit, a
    bill's auto-pay) still runs while its member re-verifies. A standing instruction's set-up leaves the funds
    (`check_funds`) to each run."""
    if amount > settings.ach_max_amount:
        raise PaymentRejected("limit_exceeded", f"the amount exceeds the ACH limit of {settings.ach_max_amount}")
    if account.status != AccountStatus.active or account.type == "loan" or account.kind != "internal":
        raise PaymentRejected("account_not_usable", "the internal account is not an active deposit account")
    if account.currency != "USD":
        raise PaymentRejected("currency_not_supported", f"ACH moves US dollars: the account holds {account.currency}")
    if external.org_id != account.org_id:
        raise PaymentRejected("external_account_not_found", "the external account is not in the account's organization")
    if external.status != ExternalAccountStatus.verified:
        raise PaymentRejected("external_account_not_usable", f"the external account is {external.status}")
    if kind == PaymentKind.ach_debit and require_kyc and account.owner_id is not None:
        owner = await session.get(User, account.owner_id)
        if owner is not None and owner.kyc_status != KycStatus.verified:
            raise PaymentRejected(
                "kyc_not_verified", f"the account holder's KYC is {owner.kyc_status}: debits need it verified"
            )
    if kind == PaymentKind.ach_debit and external.debits_blocked:
        raise PaymentRejected("debits_blocked", "debits from this external account are blocked until re-authorized")
    if kind == PaymentKind.ach_credit and check_funds:
        available = (await ledger.balances(session, [account.id]))[account.id].available
        if available < amount:
            raise PaymentRejected("insufficient_funds", f"available balance {available} is less than {amount}")


async def mark_delivered(session: AsyncSession, event_id: str | None) -> None:
    """The bank event reached its payment's workflow (signalled by the webhook, or taken by the workflow in the
    transaction of its effect): the outbox has nothing left to do for it. An event set aside stays set aside."""
    if event_id:
        await session.execute(
            text(
                "UPDATE bank_events SET status = 'delivered', signaled_at = coalesce(signaled_at, "
                "now()) WHERE event_id = :id AND status = 'pending'"
            ),
            {"id": event_id},
        )


def ach_payment_input(
    settings: Settings, payment_id: uuid.UUID, kind: str, amount: Decimal, **notify
) -> AchPaymentInput:
    """The workflow input of an ACH payment: its business durations come from configuration with it."""
    return AchPaymentInput(
        payment_id=payment_id,
        kind=kind,
        amount=amount,
        return_window_seconds=settings.ach_return_window.total_seconds(),
        late_return_window_seconds=settings.ach_late_return_window.total_seconds(),
        max_representments=settings.ach_max_representments,
        **notify,
    )


class AchActivities:
    def __init__(self, db: Database, settings: Settings, client: Client, http: httpx.AsyncClient | None = None):
        self.db = db
        self.settings = settings
        self.client = client
        self.cipher = AccountNumberCipher.from_settings(settings)
        self.file_cipher = FileCipher.from_settings(settings)
        self.http = http or httpx.AsyncClient(base_url=settings.odfi_base_url, timeout=settings.http_timeout)
        self._gl: dict[str, uuid.UUID] = {}

    async def _gl_account(self, session: AsyncSession, code: str) -> uuid.UUID:
        if code not in self._gl:
            self._gl[code] = await ledger.gl_account(session, code)  # ACH moves US dollars alone
        return self._gl[code]

    @activity.defn
    async def create_ach_payment(self, req: AchChildPayment) -> AchPaymentInput:
        """The payment row of an ACH payment a workflow makes (its 'created' event and audit row with it), or
        the row already there under this id: the caller starts the payment's workflow with what comes back."""
        digest = hashlib.sha256(req.model_dump_json().encode()).hexdigest()
        async with self.db.session() as session, session.begin():
            account = await session.get(LedgerAccount, req.account_id)
            assert account is not None  # the workflow's own account, checked when it was made
            credit = req.kind == PaymentKind.ach_credit
            inserted = (
                await session.execute(
                    pg_insert(PAYMENTS)
                    .values(
                        id=req.payment_id,
                        kind=req.kind,
                        status=PaymentStatus.created,
                        amount=req.amount,
                        currency="USD",
                        from_account_id=req.account_id if credit else None,
                        to_account_id=None if credit else req.account_id,
                        external_account_id=req.external_account_id,
                        sec_code="PPD" if account.owner_id else "CCD",
                        memo=req.memo[:140],
                        org_id=req.org_id,
                        created_by=req.created_by,
                        idempotency_key=req.idempotency_key,
                        request_hash=digest,
                        workflow_id=f"payment-{req.payment_id}",
                        notify_workflow_id=req.notify_workflow_id,
                        notify_reference=req.notify_reference,
                    )
                    .on_conflict_do_nothing()
                    .returning(PAYMENTS.c.id)
                )
            ).first()
            if inserted is not None:
                await add_event(session, req.payment_id, PaymentStatus.created)
                await audit.record(
                    session,
                    actor=f"system:{activity.info().workflow_id}",
                    actor_id=None,
                    action="payment.created",
                    entity_type="payment",
                    entity_id=req.payment_id,
                    after={
                        "kind": req.kind,
                        "amount": str(req.amount),
                        "memo": req.memo,
                        "account_id": str(req.account_id),
                    },
                )
        return ach_payment_input(
            self.settings,
            req.payment_id,
            req.kind,
            req.amount,
            notify_workflow_id=req.notify_workflow_id,
            notify_reference=req.notify_reference,
        )

    @activity.defn
    async def validate_ach_payment(self, req: AchPaymentInput) -> PaymentOutcome:
        async with self.db.session() as session, session.begin():
            payment = await lock_payment(session, req.payment_id)
            if payment.status != PaymentStatus.created:
                return outcome(payment)
            account_id = self.member_account(payment)
            # A credit's balance check and hold are one under the account's lock; a debit only needs the account
            # to stay open until it is validated, which a shared lock gives without queueing behind other payments.
            await ledger.lock_accounts(session, [account_id], shared=payment.kind == PaymentKind.ach_debit)
            account = await session.get(LedgerAccount, account_id)
            external = await session.get(ExternalAccount, payment.external_account_id)
            assert account is not None and external is not None  # both checked when the payment was made
            try:
                await check_ach_payment(
                    session, self.settings, payment.kind, payment.amount, account, external, require_kyc=False
                )
            except PaymentRejected as rejected:
                await transition(
                    session, payment, PaymentStatus.failed, failure_code=rejected.code, failure_reason=rejected.reason
                )
                return outcome(payment)
            await transition(session, payment, PaymentStatus.validated)
            if payment.kind == PaymentKind.ach_credit:
                # The money must still be there at submission: hold it now (in the same transaction as the check).
                await ledger.place_hold(
                    session,
                    account_id=account_id,
                    amount=payment.amount,
                    reason=f"ACH credit {payment.id}",
                    idempotency_key=f"payment:{payment.id}:hold",
                )
                await transition(session, payment, PaymentStatus.funds_held)
            return outcome(payment)

    @activity.defn
    async def queue_payment(self, ref: PresentmentRef) -> QueuedPayment:
        """Puts the payment into the next open cutoff window and makes sure that window's batch workflow runs.
        A payment whose internal account was closed since it was made fails here, before any presentment."""
        async with self.db.session() as session, session.begin():
            payment = await lock_payment(session, ref.payment_id)
            if payment.status in FINAL_STATUSES:
                return QueuedPayment(status=payment.status, failure_reason=payment.failure_reason)
            if payment.presentments >= ref.presentment:
                # A retry: this presentment was queued already (and may be in a file by now). Queueing it
                # again would send the entry twice.
                window = await session.get(AchWindow, payment.window_id)
                assert window is not None  # queued before: it has its window
                prenote_window = await self._queued_prenote_window(session, payment)
                if payment.status != PaymentStatus.queued:
                    return QueuedPayment(
                        status=PaymentStatus.queued,
                        window_id=window.id,
                        cutoff_at=window.cutoff_at,
                        effective_date=window.effective_date,
                    )
            else:
                member = await session.get(LedgerAccount, self.member_account(payment))
                assert member is not None
                if member.status != AccountStatus.active:  # closed since it was made: nothing may post into it
                    hold = (
                        await session.execute(
                            text("SELECT id FROM holds WHERE idempotency_key = :k"), {"k": f"payment:{payment.id}:hold"}
                        )
                    ).scalar_one_or_none()
                    if hold:
                        await ledger.release_hold(session, hold)
                    await transition(
                        session,
                        payment,
                        PaymentStatus.failed,
                        failure_code="account_closed",
                        failure_reason=f"account {member.id} was closed before presentment {ref.presentment}",
                    )
                    return QueuedPayment(status=PaymentStatus.failed)
                prenote_window, not_before = await self._prenote_gate(session, payment)
                window = await self._open_window(session, not_before)
                await transition(
                    session,
                    payment,
                    PaymentStatus.queued,
                    event_key=f"queued:{ref.presentment}",
                    window_id=window.id,
                    presentments=ref.presentment,
                    effective_date=window.effective_date,
                )
        if prenote_window is not None:  # first: its cutoff comes before the payment's
            await self._ensure_batch(prenote_window)
        await self._ensure_batch(window)
        return QueuedPayment(
            status=PaymentStatus.queued,
            window_id=window.id,
            cutoff_at=window.cutoff_at,
            effective_date=window.effective_date,
        )

    async def _queued_prenote_window(self, session: AsyncSession, payment: Payment) -> AchWindow | None:
        """The window of the payment's external account's prenote while it waits to be filed (a retry starts its batch
        again, in case the first try ended before it could)."""
        window_id = (
            await session.execute(
                text("SELECT window_id FROM ach_prenotes WHERE external_account_id = :x AND status = 'queued'"),
                {"x": payment.external_account_id},
            )
        ).scalar()
        return None if window_id is None else await session.get(AchWindow, window_id)

    async def _prenote_gate(self, session: AsyncSession, payment: Payment) -> tuple[AchWindow | None, datetime | None]:
        """For the first live debit to an external account of an organization that requires prenotes: the prenote's
        window when it is queued now (None when it was already), and the time before which the debit may not be filed
        (the prenote's window cutoff plus ACH_PRENOTE_WAIT; None when no prenote is needed or it has cleared)."""
        if payment.kind != PaymentKind.ach_debit:
            return None, None
        needed = (
            await session.execute(
                text(
                    """SELECT o.require_ach_prenote AND NOT EXISTS (
                           SELECT 1 FROM ach_entries e JOIN payments p ON p.id = e.payment_id
                           WHERE p.external_account_id = :x AND p.kind = 'ach_debit' AND NOT e.rejected)
                       FROM organizations o WHERE o.id = :o"""
                ),
                {"x": payment.external_account_id, "o": payment.org_id},
            )
        ).scalar()
        if not needed:
            return None, None
        prenote_window = None
        clears_at = (
            await session.execute(
                text("SELECT clears_at FROM ach_prenotes WHERE external_account_id = :x"),
                {"x": payment.external_account_id},
            )
        ).scalar()
        if clears_at is None:
            prenote_window = await self._open_window(session)
            clears_at = prenote_window.cutoff_at + self.settings.ach_prenote_wait
            inserted = (
                await session.execute(
                    text(
                        """INSERT INTO ach_prenotes (id, external_account_id, window_id, clears_at)
                           VALUES (:id, :x, :w, :clears) ON CONFLICT (external_account_id) DO NOTHING
                           RETURNING clears_at"""
                    ),
                    {"id": uuid.uuid4(), "x": payment.external_account_id, "w": prenote_window.id, "clears": clears_at},
                )
            ).scalar()
            if inserted is None:  # another first debit queued it meanwhile
                prenote_window = None
                clears_at = (
                    await session.execute(
                        text("SELECT clears_at FROM ach_prenotes WHERE external_account_id = :x"),
                        {"x": payment.external_account_id},
                    )
                ).scalar_one()
            else:
                activity.logger.info("payment %s: prenote queued for %s", payment.id, prenote_window.id)
        return prenote_window, (clears_at if clears_at > datetime.now(UTC) else None)

    async def _open_window(self, session: AsyncSession, not_before: datetime | None = None) -> AchWindow:
        """The next open window, closing after `not_before` when given."""
        s = self.settings
        after = not_before
        while True:
            candidate = next_window(
                datetime.now(UTC),
                tz=s.business_timezone,
                cutoffs=s.ach_cutoffs,
                same_day_cutoffs=s.ach_same_day_cutoffs,
                interval=s.ach_window_interval,
                after=after,
            )
            await session.execute(
                text(
                    """INSERT INTO ach_windows (id, cutoff_at, same_day, effective_date, status)
                   VALUES (:id, :cutoff, :same_day, :effective, 'open') ON CONFLICT DO NOTHING"""
                ),
                {
                    "id": candidate.id,
                    "cutoff": candidate.cutoff_at,
                    "same_day": candidate.same_day,
                    "effective": candidate.effective_date,
                },
            )
            # FOR SHARE: closing the window (FOR UPDATE) waits for us, or we see it closed and take the next.
            window = (
                await session.exec(select(AchWindow).where(AchWindow.id == candidate.id).with_for_update(read=True))
            ).one()
            if window.status == "open":
                return window
            after = candidate.cutoff_at

    async def _ensure_batch(self, window: AchWindow) -> None:
        from workflows.ach_batch import AchBatchWorkflow  # the workflow module imports this one

        try:
            await self.client.start_workflow(
                AchBatchWorkflow.run,
                AchBatchInput(
                    window_id=window.id,
                    cutoff_at=window.cutoff_at,
                    upload_deadline_seconds=self.settings.ach_upload_deadline.total_seconds(),
                ),
                id=f"ach-batch-{window.id}",
                task_queue=queue_for(self.settings, AchBatchWorkflow),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # A batch that failed or was terminated by an operator is started again for its stranded
                # payments; one that completed has closed its window, and our payment went into its file.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                static_summary=f"ACH file for the cutoff window {window.id}",
            )
        except WorkflowAlreadyStartedError:
            pass  # that window's batch completed: it closed the window after our payment was queued

    @activity.defn
    async def cancel_payment(self, req: CancelRequest) -> PaymentOutcome:
        """Cancels only while the payment is not in a file yet; the row lock decides against the batch."""
        async with self.db.session() as session, session.begin():
            payment = await lock_payment(session, req.payment_id)
            if payment.status == PaymentStatus.canceled:
                return outcome(payment)
            if payment.status not in CANCELABLE_STATUSES:
                raise ApplicationError(
                    f"the payment is {payment.status}: too late to cancel", type="NotCancelable", non_retryable=True
                )
            await self._release_credit_hold(session, payment)
            await transition(
                session,
                payment,
                PaymentStatus.canceled,
                failure_code="canceled",
                failure_reason=f"canceled by {req.actor}",
            )
            return outcome(payment)

    @activity.defn
    async def build_file(self, req: AchBatchInput) -> BuiltFile | None:
        """Closes the window into ONE file (None when empty): for a batch workflow from before the patch
        SEVERAL_FILES, which uploads one file. Its payments are all filed, as they were then."""
        async with self.db.session() as session, session.begin():
            window = await self._lock_window(session, req.window_id)
            if window.status == "closed":
                return await self._built(session, window.file_id)
            closed = await close_window(
                session,
                settings=self.settings,
                cipher=self.cipher,
                file_cipher=self.file_cipher,
                window=window,
                limits=FileLimits(max_records=10**9),
                actor=f"system:{activity.info().workflow_id}",
                drop_unusable=False,
            )
            return await self._built(session, closed.file_ids[0] if closed.file_ids else None)

    @activity.defn
    async def build_files(self, req: AchBatchInput) -> BuiltWindow:
        """Closes the window into its files, within the bank's per-file limits (activities/ach_build.py); a retry
        after the commit finds the window closed and answers the same."""
        async with self.db.session() as session, session.begin():
            window = await self._lock_window(session, req.window_id)
            if window.status != "closed":
                await close_window(
                    session,
                    settings=self.settings,
                    cipher=self.cipher,
                    file_cipher=self.file_cipher,
                    window=window,
                    limits=FileLimits(
                        max_records=self.settings.ach_file_max_records, max_amount=self.settings.ach_file_max_amount
                    ),
                    actor=f"system:{activity.info().workflow_id}",
                )
                await session.flush()
            file_ids = (
                await session.execute(
                    text("SELECT id FROM ach_files WHERE window_id = :w ORDER BY sequence"), {"w": window.id}
                )
            ).scalars()
            dropped = (
                await session.execute(
                    text(
                        "SELECT workflow_id, presentments, failure_reason FROM payments "
                        "WHERE window_id = :w AND status = 'failed' AND failure_code = :code ORDER BY id"
                    ),
                    {"w": window.id, "code": DROPPED_CODE},
                )
            ).all()
            return BuiltWindow(
                file_ids=list(file_ids),
                dropped=[
                    DroppedEntry(workflow_id=r.workflow_id, presentment=r.presentments, reason=r.failure_reason or "")
                    for r in dropped
                ],
                dropped_id=uuid.uuid5(uuid.NAMESPACE_URL, f"ach-window:{window.id}") if dropped else None,
            )

    @activity.defn
    async def built_file(self, file_id: uuid.UUID) -> BuiltFile:
        """A file's entries, for its batch to tell each payment its trace number."""
        async with self.db.session() as session:
            built = await self._built(session, file_id)
            assert built is not None
            return built

    async def _lock_window(self, session: AsyncSession, window_id: str) -> AchWindow:
        return (await session.exec(select(AchWindow).where(AchWindow.id == window_id).with_for_update())).one()

    async def _built(self, session: AsyncSession, file_id: uuid.UUID | None) -> BuiltFile | None:
        if file_id is None:
            return None
        rows = (
            await session.execute(
                text(
                    "SELECT e.payment_id, p.workflow_id, e.trace_number, e.presentment FROM ach_entries e "
                    "JOIN payments p ON p.id = e.payment_id WHERE e.file_id = :f ORDER BY e.trace_number"
                ),
                {"f": file_id},
            )
        ).all()
        return BuiltFile(
            file_id=file_id,
            entries=[
                BuiltEntry(
                    payment_id=r.payment_id,
                    workflow_id=r.workflow_id,
                    trace_number=r.trace_number,
                    presentment=r.presentment,
                )
                for r in rows
            ],
        )

    # Answers that say nothing about the file itself: the bank is busy or down, or our credentials are wrong (an
    # operator fixes them). The same file goes again, under the same idempotency key, until the upload deadline.
    NOT_ANSWERED = frozenset({401, 403, 408, 429})

    def _odfi_headers(self, file_id: uuid.UUID | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.settings.odfi_api_key.get_secret_value()}"}
        return {**headers, "Content-Type": "text/plain", "Idempotency-Key": str(file_id)} if file_id else headers

    async def _lock_file(self, session: AsyncSession, file_id: uuid.UUID) -> AchFile:
        return (await session.exec(select(AchFile).where(AchFile.id == file_id).with_for_update())).one()

    @staticmethod
    def _mark_file(
        session: AsyncSession, ach_file: AchFile, status: str, error: str | None = None, odfi_file_id: str | None = None
    ) -> UploadOutcome:
        ach_file.status = status
        if status == "uploaded":
            ach_file.odfi_file_id, ach_file.uploaded_at = odfi_file_id, datetime.now(UTC)
        else:
            ach_file.error, ach_file.rejected_at = (error or "")[:1000], datetime.now(UTC)
        session.add(ach_file)
        return UploadOutcome(status=status, odfi_file_id=odfi_file_id, error=ach_file.error)

    @activity.defn
    async def upload_file(self, file_id: uuid.UUID) -> UploadOutcome:
        """Sends the file to the ODFI; the file id is the idempotency key, so a retry is one file there. A file the
        bank refuses (a 4xx about the file) is marked rejected and never sent again. The file's row stays locked while
        the bank is asked, so giving the file up at the deadline (confirm_upload) never races an upload in flight."""
        async with self.db.session() as session, session.begin():
            ach_file = await self._lock_file(session, file_id)
            if ach_file.status != "built":
                return UploadOutcome(status=ach_file.status, odfi_file_id=ach_file.odfi_file_id, error=ach_file.error)
            response = await self.http.post(
                "/odfi/files",
                content=ach_files.content(self.file_cipher, ach_file).encode("ascii"),
                headers=self._odfi_headers(file_id),
            )
            answer = f"{response.status_code} {response.text[:800]}"
            if response.is_success:
                return self._mark_file(session, ach_file, "uploaded", odfi_file_id=response.json()["file_id"])
            if response.status_code >= 500 or response.status_code in self.NOT_ANSWERED:
                raise ApplicationError(
                    f"the ODFI answered {answer}; sending file {file_id} again", type="UploadNotAnswered"
                )
            activity.logger.error("the ODFI rejected file %s: %s", file_id, answer)
            return self._mark_file(session, ach_file, "rejected", error=answer)

    @activity.defn
    async def confirm_upload(self, req: UnansweredUpload) -> UploadOutcome:
        """After the upload deadline: the bank has the file (an answer got lost: it is uploaded) or it has not (the
        file failed, and is never sent again). Asked under the file's lock, so no upload of it is in flight."""
        async with self.db.session() as session, session.begin():
            ach_file = await self._lock_file(session, req.file_id)
            if ach_file.status != "built":
                return UploadOutcome(status=ach_file.status, odfi_file_id=ach_file.odfi_file_id, error=ach_file.error)
            response = await self.http.get(
                "/odfi/files", params={"key": str(req.file_id)}, headers=self._odfi_headers()
            )
            if not response.is_success:
                raise ApplicationError(
                    f"the ODFI answered {response.status_code} {response.text[:300]} when asked "
                    f"for file {req.file_id}; asking again",
                    type="UploadNotAnswered",
                )
            received = [f for f in response.json()["files"] if f["key"] == str(req.file_id)]
            if received:
                return self._mark_file(session, ach_file, "uploaded", odfi_file_id=received[0]["file_id"])
            activity.logger.error("file %s not uploaded by the deadline: %s", req.file_id, req.error)
            return self._mark_file(session, ach_file, "failed", error=f"not uploaded by the deadline: {req.error}")

    @activity.defn
    async def release_unsent_file(self, file_id: uuid.UUID) -> ReleasedFile:
        """The payments of a file that never reached the bank (rejected or failed) go back to be queued for the next
        window, as the same presentment with a new entry (a credit keeps its hold), or fail with the file's error
        (a credit's hold released), by ACH_REJECTED_FILE_POLICY. Each entry is released once."""
        policy = self.settings.ach_rejected_file_policy
        window = None
        async with self.db.session() as session, session.begin():
            ach_file = await self._lock_file(session, file_id)
            if ach_file.status not in ("rejected", "failed"):
                raise ApplicationError(f"file {file_id} is {ach_file.status}: its payments stay", non_retryable=True)
            entries = (
                await session.execute(
                    text(
                        "UPDATE ach_entries SET rejected = true WHERE file_id = :f AND NOT rejected "
                        "RETURNING payment_id, trace_number"
                    ),
                    {"f": file_id},
                )
            ).all()
            reason = f"ACH file {file_id} {ach_file.status}: {ach_file.error}"[:500]
            window = await self._requeue_prenotes(session, file_id)
            for payment_id, trace in sorted(entries):  # one lock order for every file
                payment = await lock_payment(session, payment_id)
                if payment.status != PaymentStatus.submitted or payment.trace_number != trace:
                    continue
                payment.trace_number = None  # that trace never reached the bank
                if policy == "fail":
                    await self._release_credit_hold(session, payment)
                    await transition(
                        session,
                        payment,
                        PaymentStatus.failed,
                        failure_code=f"file_{ach_file.status}",
                        failure_reason=reason,
                    )
                else:
                    window = window or await self._open_window(session)
                    await transition(
                        session,
                        payment,
                        PaymentStatus.queued,
                        event_key=f"requeued:{payment.presentments}:{file_id}",
                        note={"reason": reason},
                        window_id=window.id,
                        effective_date=window.effective_date,
                    )
        if window is not None:
            await self._ensure_batch(window)
        return ReleasedFile(policy=policy, entries=ach_file.entry_count)

    async def _requeue_prenotes(self, session: AsyncSession, file_id: uuid.UUID) -> AchWindow | None:
        """The prenotes of a file that never reached the bank go in the next window (their debits, which wait for
        them to clear, fail at their cutoff rather than go without one): the window, when there were any."""
        if not (
            await session.execute(text("SELECT 1 FROM ach_prenotes WHERE file_id = :f LIMIT 1"), {"f": file_id})
        ).first():
            return None
        window = await self._open_window(session)
        await session.execute(
            text(
                "UPDATE ach_prenotes SET status = 'queued', window_id = :w, trace_number = NULL, file_id = NULL, "
                "transaction_code = NULL, clears_at = :clears WHERE file_id = :f AND status = 'sent'"
            ),
            {"w": window.id, "clears": window.cutoff_at + self.settings.ach_prenote_wait, "f": file_id},
        )
        return window

    async def _release_credit_hold(self, session: AsyncSession, payment: Payment) -> None:
        hold = (
            await session.execute(
                text("SELECT id FROM holds WHERE idempotency_key = :k"), {"k": f"payment:{payment.id}:hold"}
            )
        ).scalar_one_or_none()
        if hold:
            await ledger.release_hold(session, hold)

    async def _post(self, session, payment: Payment, step: str, presentment: int, legs: list[ledger.Leg]) -> uuid.UUID:
        entry_id, _ = await ledger.post_entry(
            session,
            idempotency_key=f"payment:{payment.id}:{step}:{presentment}",
            entry_type=f"ach_{step}",
            description=f"{payment.kind} {step} (presentment {presentment})",
            effective_date=business_today(self.settings),
            legs=legs,
            payment_id=payment.id,
        )
        return entry_id

    def member_account(self, payment: Payment) -> uuid.UUID:
        member = payment.from_account_id if payment.kind == PaymentKind.ach_credit else payment.to_account_id
        assert member is not None  # an ACH payment has its internal account on its side
        return member

    @activity.defn
    async def record_submitted(self, ref: PresentmentRef) -> PaymentOutcome:
        """Posts the presentment's member side; then tells the member's money-events workflow (budgets, alerts)."""
        done, owners = await self.post_submitted(ref)
        for owner_id in owners:  # after the commit: no signal sent while the payment's lock is held
            await money_changed(
                activity.client(), owner_id, "ach", f"{ref.payment_id}:{ref.presentment}", self.settings
            )
        return done

    async def post_submitted(self, ref: PresentmentRef) -> tuple[PaymentOutcome, list[uuid.UUID]]:
        """The posting, once; and, once it is there (now or by an earlier try), the members to tell of it
        (member_owners), read in the same transaction."""
        async with self.db.session() as session, session.begin():
            payment = await lock_payment(session, ref.payment_id)
            if payment.status == PaymentStatus.submitted and payment.presentments == ref.presentment:
                await self._post_submission(session, payment, ref.presentment)
            posted = payment.status == PaymentStatus.pending_settlement
            owners = await member_owners(session, [self.member_account(payment)]) if posted else []
            return outcome(payment), owners

    async def _post_submission(self, session: AsyncSession, payment: Payment, presentment: int) -> None:
        member, clearing = self.member_account(payment), await self._gl_account(session, GL_ACH_CLEARING)
        amount, credit = payment.amount, payment.kind == PaymentKind.ach_credit
        legs = (
            [ledger.Leg(member, amount), ledger.Leg(clearing, -amount)]
            if credit
            else [ledger.Leg(clearing, amount), ledger.Leg(member, -amount)]
        )
        entry = await self._post(session, payment, "submit", presentment, legs)
        if credit:
            hold = (
                await session.execute(
                    text("SELECT id FROM holds WHERE idempotency_key = :k"), {"k": f"payment:{payment.id}:hold"}
                )
            ).scalar_one()
            await ledger.release_hold(session, hold, status="captured")
        else:
            # Pulled money is not spendable until the return window has passed.
            await ledger.place_hold(
                session,
                account_id=member,
                amount=amount,
                reason=f"ACH debit {payment.id}",
                idempotency_key=f"payment:{payment.id}:availability:{presentment}",
            )
        await transition(
            session,
            payment,
            PaymentStatus.pending_settlement,
            event_key=f"pending_settlement:{presentment}",
            journal_entry_id=entry,
        )

    @activity.defn
    async def record_settled(self, ref: PresentmentRef) -> PaymentOutcome:
        async with self.db.session() as session, session.begin():
            payment = await lock_payment(session, ref.payment_id)
            await mark_delivered(session, ref.event_id)
            if payment.status != PaymentStatus.pending_settlement or payment.presentments != ref.presentment:
                return outcome(payment)
            cash, clearing = await self._gl_account(session, GL_CASH), await self._gl_account(session, GL_ACH_CLEARING)
            amount = payment.amount
            legs = (
                [ledger.Leg(clearing, amount), ledger.Leg(cash, -amount)]
                if payment.kind == PaymentKind.ach_credit
                else [ledger.Leg(cash, amount), ledger.Leg(clearing, -amount)]
            )
            await self._post(session, payment, "settle", ref.presentment, legs)
            await transition(
                session,
                payment,
                PaymentStatus.settled,
                event_key=f"settled:{ref.presentment}",
                settlement_date=ref.settlement_date,
            )
            return outcome(payment)

    @activity.defn
    async def complete_payment(self, ref: PresentmentRef) -> PaymentOutcome:
        async with self.db.session() as session, session.begin():
            payment = await lock_payment(session, ref.payment_id)
            if payment.status != PaymentStatus.settled:
                return outcome(payment)
            await self._release_availability(session, payment, ref.presentment)
            await transition(session, payment, PaymentStatus.completed)
            return outcome(payment)

    async def _release_availability(self, session, payment: Payment, presentment: int) -> None:
        if payment.kind == PaymentKind.ach_debit:
            hold = (
                await session.execute(
                    text("SELECT id FROM holds WHERE idempotency_key = :k"),
                    {"k": f"payment:{payment.id}:availability:{presentment}"},
                )
            ).scalar_one_or_none()
            if hold:
                await ledger.release_hold(session, hold)

    @activity.defn
    async def apply_return(self, req: ReturnInput) -> ReturnOutcome:
        """Reverses the presentment's money exactly once and reacts to the return code; then tells the member's
        money-events workflow (their payment_returned alert; again on a retry: evaluation is idempotent)."""
        async with self.db.session() as session, session.begin():
            payment = await lock_payment(session, req.payment_id)
            returned = await self.return_presentment(session, payment, req)
            owners = await member_owners(session, [self.member_account(payment)])
        ref = f"{req.payment_id}:{req.presentment}:{req.return_code}"
        for owner_id in owners:  # after the commit, as record_submitted
            await money_changed(activity.client(), owner_id, "payment_returned", ref, self.settings)
        return returned

    async def return_presentment(self, session: AsyncSession, payment: Payment, req: ReturnInput) -> ReturnOutcome:
        """apply_return's work on a payment locked by the caller (the payment's workflow, or the bank-event outbox
        for a late return after that workflow ended). The reaction (PRODUCT.md §4.3): R01/R09 re-present at most
        max_representments times, never after completion; R02/R03/R04 disable the external account;
        R05/R07/R10/R29 block its debits; other codes fail the payment; after completion every return reverses it."""
        await mark_delivered(session, req.event_id)
        done = await session.execute(
            text("SELECT 1 FROM journal_entries WHERE idempotency_key = :k"),
            {"k": f"payment:{payment.id}:return:{req.presentment}"},
        )
        external = await session.get(ExternalAccount, payment.external_account_id)
        assert external is not None  # every ACH payment has its external account
        notice = return_notice(payment, external, req.return_code, req.return_reason)
        if done.first() is not None or payment.presentments != req.presentment:  # a retry: already applied
            return ReturnOutcome(
                status=payment.status,
                represent=payment.status not in FINAL_STATUSES,
                org_id=payment.org_id,
                notice=notice,
            )
        member = self.member_account(payment)
        holder = await self._gl_account(session, GL_CASH if req.settled else GL_ACH_CLEARING)
        amount = payment.amount
        legs = (
            [ledger.Leg(holder, amount), ledger.Leg(member, -amount)]
            if payment.kind == PaymentKind.ach_credit
            else [ledger.Leg(member, amount), ledger.Leg(holder, -amount)]
        )
        await self._post(session, payment, "return", req.presentment, legs)
        await self._release_availability(session, payment, req.presentment)

        action = reaction(req.return_code)
        if action == ReturnReaction.disable_account and external.status != ExternalAccountStatus.disabled:
            external.status, external.updated_at = ExternalAccountStatus.disabled, datetime.now(UTC)
            session.add(external)
        elif action == ReturnReaction.block_debits and not external.debits_blocked:
            external.debits_blocked, external.updated_at = True, datetime.now(UTC)
            session.add(external)

        represent = (
            action == ReturnReaction.represent and not req.completed and payment.presentments <= req.max_representments
        )
        when = "after_completion" if req.completed else "after_settlement" if req.settled else "before_settlement"
        if represent:
            # Not an end: the history says it came back, and the next presentment queues it again.
            detail = {
                "return_code": req.return_code,
                "return_reason": req.return_reason,
                "represent": True,
                "presentment": req.presentment,
                "when": when,
            }
            await add_event(session, payment.id, PaymentStatus.returned, detail, f"returned:{req.presentment}")
            await audit.record(
                session,
                actor=f"system:{activity.info().workflow_id}",
                actor_id=None,
                action="payment.returned",
                entity_type="payment",
                entity_id=payment.id,
                before={"status": payment.status},
                after=detail,
            )
            payment.return_code, payment.updated_at = req.return_code, datetime.now(UTC)
            session.add(payment)
            return ReturnOutcome(status=payment.status, represent=True, org_id=payment.org_id, notice=notice)
        if req.completed:
            status = PaymentStatus.reversed
        elif action == ReturnReaction.fail:
            status = PaymentStatus.failed
        else:
            status = PaymentStatus.returned
        await transition(
            session,
            payment,
            status,
            event_key=f"{status}:{req.presentment}",
            return_code=req.return_code,
            failure_code=req.return_code,
            failure_reason=req.return_reason,
        )
        return ReturnOutcome(status=status, represent=False, org_id=payment.org_id, notice=notice)
