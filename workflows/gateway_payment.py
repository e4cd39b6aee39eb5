"""A card payment through the gateway (`gateway-payment-<id>`, started by POST /gateway-payments): the checkout
opened at the gateway (the API waits on the `checkout` update for its URL), then the outcome from whichever comes
first, the gateway's signed webhook (a signal) or our verify call once GATEWAY_VERIFY_AFTER has passed without one
(re-verified with backoff while the checkout is still unpaid, up to GATEWAY_VERIFY_ATTEMPTS; then abandoned).

Paid: posted once (activities/gateway.py: the entry's unique key, the row's lock), then a loan repayment applied by the
loan's workflow. Declined or abandoned: the payment closed and the payer told. A webhook delivered twice, or racing
the verify, is one more outcome for a payment already closed: no effect. A webhook after the workflow ended starts it
again by signal-with-start (the same id); that run finds the row closed, or posts a payment it had given up on."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.gateway import GatewayActivities
    from activities.notifications import NotificationActivities
    from models.gateway import OPEN_STATUSES, Checkout, GatewayOutcome, GatewayPaymentInput, GatewayResult

DB_STEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)),
)
# The gateway's API: retried a few times, then the checkout is failed (initialize) or verified again later (verify).
GATEWAY_CALL: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=20),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        maximum_interval=timedelta(seconds=5),
        maximum_attempts=5,
        non_retryable_error_types=["gateway_refused"],
    ),
)


@workflow.defn
class GatewayPaymentWorkflow:
    def __init__(self) -> None:
        self._outcomes: list[GatewayOutcome] = []
        self._checkout: Checkout | None = None
        self._state = "opening the checkout"

    @workflow.signal
    def gateway_event(self, outcome: GatewayOutcome) -> None:
        """The gateway's webhook, verified and recorded by the API."""
        self._outcomes.append(outcome)

    @workflow.update
    async def checkout(self) -> Checkout:
        """The checkout once the gateway has opened it (or refused to)."""
        await workflow.wait_condition(lambda: self._checkout is not None)
        assert self._checkout is not None
        return self._checkout

    @workflow.query
    def state(self) -> str:
        return self._state

    @workflow.run
    async def run(self, req: GatewayPaymentInput) -> GatewayResult:
        try:
            checkout = await workflow.execute_activity_method(GatewayActivities.open_checkout, req, **GATEWAY_CALL)
        except ActivityError as error:
            failure = f"the gateway did not open the checkout: {getattr(error.cause, 'message', error.cause)}"
            result = await self._record(
                GatewayOutcome(payment_id=req.payment_id, source="initialize", status="failed", failure=failure[:500])
            )
            self._checkout = Checkout(
                payment_id=req.payment_id, status=result.status, reference="", failure=result.failure
            )
            return await self._finish(req, result)
        self._checkout = checkout
        if checkout.status not in OPEN_STATUSES and not self._outcomes:
            self._set(f"{checkout.status}: nothing more to do")  # started again for an outcome already had
            return GatewayResult(payment_id=req.payment_id, status=checkout.status)
        self._set(f"waiting for the payment at {checkout.authorization_url}")

        wait, attempts = timedelta(seconds=req.verify_after_seconds), 0
        while True:
            try:
                await workflow.wait_condition(lambda: bool(self._outcomes), timeout=wait)
                outcome = self._outcomes.pop(0)
            except TimeoutError:
                attempts += 1
                outcome = await self._verify(req)
                if outcome.status == "pending" and attempts >= req.verify_attempts:
                    outcome = outcome.model_copy(update={"status": "abandoned"})
            if outcome.status == "pending":
                wait = timedelta(
                    seconds=min(req.verify_interval_seconds * 2 ** (attempts - 1), req.verify_max_interval_seconds)
                )
                self._set(f"still unpaid after verify {attempts} of {req.verify_attempts}; again in {wait}")
                continue
            result = await self._record(outcome)
            if result.status not in OPEN_STATUSES:
                result = await self._finish(req, result)
                if workflow.patched("gateway-outcomes-after-close"):
                    # A webhook that came while the payment was being closed (its payer told) is handled here, not
                    # dropped with the run: a success after an abandon still posts, once (activities/gateway.py).
                    while self._outcomes:
                        later = await self._record(self._outcomes.pop(0))
                        if later.status != result.status:
                            result = await self._finish(req, later)
                return result

    async def _verify(self, req: GatewayPaymentInput) -> GatewayOutcome:
        try:
            return await workflow.execute_activity_method(GatewayActivities.verify_transaction, req, **GATEWAY_CALL)
        except ActivityError:  # the gateway is down: an unpaid answer, so the next attempt comes with the backoff
            return GatewayOutcome(payment_id=req.payment_id, source="verify", status="pending")

    async def _record(self, outcome: GatewayOutcome) -> GatewayResult:
        return await workflow.execute_activity_method(GatewayActivities.record_outcome, outcome, **DB_STEP)

    async def _finish(self, req: GatewayPaymentInput, result: GatewayResult) -> GatewayResult:
        if result.apply_to_loan:
            result = await workflow.execute_activity_method(
                GatewayActivities.apply_loan_repayment,
                req,
                start_to_close_timeout=timedelta(seconds=90),
                retry_policy=DB_STEP["retry_policy"],
            )
        if result.notify is not None:
            await workflow.execute_activity_method(
                NotificationActivities.notify_users, result.notify, start_to_close_timeout=timedelta(seconds=60)
            )
        self._set(f"{result.status}" + (f": {result.failure}" if result.failure else ""))
        return result

    def _set(self, state: str) -> None:
        self._state = state
        workflow.set_current_details(state)
