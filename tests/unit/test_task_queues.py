"""The one map from workflow type to task queue, and worker.py's --queues."""

import pytest

from core.config import Settings
from core.task_queues import QUEUE_OF_WORKFLOW, Urgency, parse_queues, queue_for
from worker import pool_limits
from workflows.ach_payment import AchPaymentWorkflow
from workflows.approval import ApprovalWorkflow
from workflows.monthly_statements import MonthlyStatementsWorkflow
from workflows.registry import ALL_WORKFLOWS


def test_every_workflow_type_has_a_queue():
    assert {w.__name__ for w in ALL_WORKFLOWS} == set(QUEUE_OF_WORKFLOW)


def test_money_keeps_the_task_queue_name_and_routine_has_its_own():
    settings = Settings(task_queue="backoffice")
    assert queue_for(settings, AchPaymentWorkflow) == queue_for(settings, AchPaymentWorkflow.run) == "backoffice"
    assert queue_for(settings, "MonthlyStatementsWorkflow") == "backoffice-routine"
    named = Settings(task_queue="backoffice", routine_task_queue="slow-lane")
    assert queue_for(named, MonthlyStatementsWorkflow) == "slow-lane"


def test_approvals_have_an_interactive_queue_of_their_own():
    assert queue_for(Settings(task_queue="backoffice"), ApprovalWorkflow) == "backoffice-interactive"
    named = Settings(task_queue="backoffice", interactive_task_queue="people-waiting")
    assert queue_for(named, "ApprovalWorkflow") == "people-waiting"
    assert queue_for(named, "LoanWorkflow") == "backoffice"  # the loan stays with money movement


def test_each_pool_has_its_own_limits():
    settings = Settings(
        worker_max_concurrent_activities=40,
        worker_max_concurrent_workflow_tasks=60,
        routine_max_concurrent_activities=4,
        routine_max_concurrent_workflow_tasks=6,
        interactive_max_concurrent_activities=8,
        interactive_max_concurrent_workflow_tasks=12,
    )
    assert pool_limits(settings, Urgency.money) == (40, 60)
    assert pool_limits(settings, Urgency.routine) == (4, 6)
    assert pool_limits(settings, Urgency.interactive) == (8, 12)


def test_queues_option():
    assert parse_queues("money,routine") == [Urgency.money, Urgency.routine]
    assert parse_queues(" routine ") == [Urgency.routine]
    assert parse_queues("interactive,money") == [Urgency.interactive, Urgency.money]
    assert parse_queues("money,money") == [Urgency.money]
    for bad in ("", "payments", "money,,bulk"):
        with pytest.raises(ValueError):
            parse_queues(bad)
