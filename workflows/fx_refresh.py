"""FxRatesRefreshWorkflow: the provider's latest exchange rates of one base currency, stored (activities/fx.py).
Run daily by the `fx-rates-refresh` Schedule, and by the API when its cache is older than FX_CACHE_TTL (one run per
base at a time: concurrent requests join the running one by its workflow id). The provider being down is retried
by the activity's retry policy; its refusal (a bad key, an unknown currency) is not."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.fx import PROVIDER_REFUSED, FxActivities
    from models.fx import FxFetchRequest, FxFetchResult, FxRefreshInput


@workflow.defn
class FxRatesRefreshWorkflow:
    @workflow.run
    async def run(self, req: FxRefreshInput) -> FxFetchResult:
        return await workflow.execute_activity_method(
            FxActivities.fetch_rates,
            FxFetchRequest(base=req.base),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=req.retry_seconds),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(minutes=5),
                maximum_attempts=req.attempts,
                non_retryable_error_types=[PROVIDER_REFUSED],
            ),
        )
