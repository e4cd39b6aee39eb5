"""Every committed workflow history (tests/replay/histories, captured from the integration suite) replays against
today's workflow code. A change that would break a running workflow fails here: make it behind
`workflow.patched(...)` or as a new workflow type, then refresh the corpus (README: changing a workflow safely)."""

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.replay.corpus import load
from tests.replay.variants import UnpatchedBookTransferWorkflow
from workflows import ALL_WORKFLOWS

CORPUS = load()
# Paths that must stay in the corpus whatever a refresh selects: (workflow type, feature of tests/replay/corpus.py).
REQUIRED = [
    ("ApprovalWorkflow", "activity:update_request:notify=escalated"),
    ("ApprovalWorkflow", "update:provide_information"),
    ("LoanWorkflow", "continued_as_new"),
    ("LoanWorkflow", "started_as_continuation"),
    ("LoanWorkflow", "child:ApprovalWorkflow"),
    ("AchPaymentWorkflow", "activity:apply_return"),
    ("AchPaymentWorkflow", "activity:apply_return -> activity:notify_org_admins"),
    ("InterestPostingWorkflow", "continued_as_new"),
    ("BillRunWorkflow", "continued_as_new"),
    ("BookTransferWorkflow", "crash:activity_retried"),
]


def replayer(*workflows) -> Replayer:
    return Replayer(workflows=list(workflows or ALL_WORKFLOWS), data_converter=pydantic_data_converter)


@pytest.mark.parametrize("captured", [c for _, c in CORPUS], ids=[f"{p.parent.name}/{p.name}" for p, _ in CORPUS])
async def test_history_replays_on_todays_code(captured):
    await replayer().replay_workflow(captured.to_history())


def test_every_workflow_type_has_histories():
    types = {c.workflow_type for _, c in CORPUS}
    missing = [w.__temporal_workflow_definition.name for w in ALL_WORKFLOWS
               if w.__temporal_workflow_definition.name not in types]
    assert not missing, f"no committed history of {missing}: refresh the corpus (make replay-histories)"


@pytest.mark.parametrize("workflow_type,feature", REQUIRED, ids=[f"{t}:{f}" for t, f in REQUIRED])
def test_the_corpus_keeps_the_unlucky_paths(workflow_type, feature):
    assert any(c.workflow_type == workflow_type and feature in c.features for _, c in CORPUS), \
        f"no {workflow_type} history shows {feature!r}"


async def test_an_unpatched_change_fails_the_replay():
    transfers = [c for _, c in CORPUS if c.workflow_type == "BookTransferWorkflow"]
    assert transfers
    result = await replayer(UnpatchedBookTransferWorkflow).replay_workflow(transfers[0].to_history(),
                                                                           raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, NondeterminismError), result.replay_failure
