"""Every committed workflow history (tests/replay/histories, captured from the integration suite) replays against
today's workflow code. A change that would break a running workflow fails here: make it behind
`workflow.patched(...)` or as a new workflow type, then refresh the corpus (README: changing a workflow safely)."""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.replay.corpus import load
from tests.replay.variants import UnpatchedBookTransferWorkflow
from workflows.registry import ALL_WORKFLOWS

CORPUS = load()
# Paths that must stay in the corpus whatever a refresh selects: (workflow type, feature of tests/replay/corpus.py).
REQUIRED = [
    ("ApprovalWorkflow", "activity:update_request:notify=escalated"),
    ("ApprovalWorkflow", "update:decide:decision=request_info"),
    ("ApprovalWorkflow", "update:provide_information"),
    ("ApprovalWorkflow", "signal:withdraw"),
    ("LoanWorkflow", "continued_as_new"),
    ("LoanWorkflow", "started_as_continuation"),
    ("LoanWorkflow", "child:ApprovalWorkflow"),
    ("LoanWorkflow", "update:withdraw"),
    ("LoanWorkflow", "activity:credit_check_blocked"),
    ("LoanWorkflow", "signal:payment_progress:status=reversed"),
    ("LoanWorkflow", "activity:reverse_auto_debit"),
    ("AchPaymentWorkflow", "activity:apply_return:settled=False"),
    ("AchPaymentWorkflow", "activity:apply_return:settled=True"),  # a return after settlement
    ("AchPaymentWorkflow", "activity:apply_return:completed=True"),  # after completion: reversed
    ("AchPaymentWorkflow", "activity:notify_org_admins -> activity:queue_payment"),  # re-presented
    ("AchPaymentWorkflow", "signal_out:payment_progress:represent=True"),
    ("AchPaymentWorkflow", "signal:file_rejected -> activity:queue_payment"),
    ("AchPaymentWorkflow", "activity:set_aside_bank_events"),
    ("AchPaymentWorkflow", "update:cancel"),
    ("AchPaymentWorkflow", "crash:activity_retried"),  # a worker SIGKILLed mid-activity
    ("AchPaymentWorkflow", "crash:workflow_task_timed_out"),
    ("WebhookDeliveryWorkflow", "activity:park_webhook_event"),  # retried for the configured time: a dead letter
    ("WebhookDeliveryWorkflow", "signal:wake"),
    # Since the patches: the short database steps as local activities, and the same workflows from before them.
    ("AchPaymentWorkflow", "patch:ach-local-db-steps"),
    ("AchPaymentWorkflow", "local_activity:queue_payment"),
    ("AchPaymentWorkflow", "local_activity:apply_return"),
    ("AchPaymentWorkflow", "local_activity:cancel_payment"),
    ("ApprovalWorkflow", "patch:approval-local-steps"),
    ("ApprovalWorkflow", "local_activity:record_decision"),
    ("AchBatchWorkflow", "activity:release_unsent_file"),
    ("BillAutopayWorkflow", "signal:payment_progress:represent=True"),
    ("BillAutopayWorkflow", "signal:payment_progress:status=reversed"),
    ("BankEventDeliveryWorkflow", "activity:deliver_bank_event"),
    ("InterestPostingWorkflow", "continued_as_new"),
    ("InterestPostingWorkflow", "child:DailyAccrualWorkflow"),  # missed accrual days caught up
    ("InterestPostingWorkflow", "crash:activity_retried"),
    ("BillRunWorkflow", "continued_as_new"),
    ("BookTransferWorkflow", "crash:activity_retried"),
]


async def replay_failures(corpus, *workflows, interceptors=()) -> dict[str, BaseException]:
    """Replays the histories on the workflow classes given (today's, by default): the failures by file."""
    paths = {captured.run_id: f"{path.parent.name}/{path.name}" for path, captured in corpus}
    assert len(paths) == len(corpus), "two histories of one run"

    async def histories():
        for _, captured in corpus:
            yield captured.to_history()

    replayer = Replayer(
        workflows=list(workflows or ALL_WORKFLOWS), data_converter=pydantic_data_converter, interceptors=interceptors
    )
    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    return {paths[run_id]: error for run_id, error in results.replay_failures.items()}


async def test_every_history_replays_on_todays_code():
    assert CORPUS, "no committed history: make replay-histories"
    failures = await replay_failures(CORPUS)
    assert not failures, f"{len(failures)} of {len(CORPUS)} histories no longer replay: " + "; ".join(
        f"{path}: {type(error).__name__}: {error}" for path, error in failures.items()
    )


async def test_every_history_replays_with_the_tracing_interceptor():
    """Tracing on adds the interceptor to the worker (core/tracing.py): histories replay with it (one per workflow
    type, to keep it quick: the interceptor acts the same on every history)."""
    one_each = list({c.workflow_type: (path, c) for path, c in CORPUS}.values())
    tracer = TracerProvider().get_tracer("replay")
    failures = await replay_failures(
        one_each, interceptors=[TracingInterceptor(tracer, always_create_workflow_spans=True)]
    )
    assert not failures, "; ".join(f"{path}: {type(error).__name__}: {error}" for path, error in failures.items())


def test_every_workflow_type_has_histories():
    types = {c.workflow_type for _, c in CORPUS}
    missing = [
        w.__temporal_workflow_definition.name
        for w in ALL_WORKFLOWS
        if w.__temporal_workflow_definition.name not in types
    ]
    assert not missing, f"no committed history of {missing}: refresh the corpus (make replay-histories)"


@pytest.mark.parametrize("workflow_type,feature", REQUIRED, ids=[f"{t}:{f}" for t, f in REQUIRED])
def test_the_corpus_keeps_the_unlucky_paths(workflow_type, feature):
    assert any(c.workflow_type == workflow_type and feature in c.features for _, c in CORPUS), (
        f"no {workflow_type} history shows {feature!r}"
    )


async def test_an_unpatched_change_fails_the_replay():
    transfers = [(path, c) for path, c in CORPUS if c.workflow_type == "BookTransferWorkflow"]
    assert transfers
    failures = await replay_failures(transfers, UnpatchedBookTransferWorkflow)
    assert len(failures) == len(transfers)
    assert all(isinstance(error, NondeterminismError) for error in failures.values()), failures
