"""Connecting to Temporal: every client and worker uses the pydantic converter (Decimal, date, UUID), summaries
that fit the server's limit, and the tracing interceptor when tracing is on."""

from datetime import timedelta

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from core import tracing
from core.config import Settings
from core.workflow_summary import SummaryLimit


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        # Summaries clamped to what the server takes (core/workflow_summary.py); traces when tracing is on.
        interceptors=[SummaryLimit(), *tracing.client_interceptors()],
    )


async def published(client: Client, workflow_id: str, key: SearchAttributeKey, timeout=timedelta(seconds=3)):
    """What a workflow last published in a search attribute (its status, say), as the Temporal server keeps it:
    answered by the server itself, never by a query to a worker, so a read never waits on a busy or absent worker.
    None when the server does not answer in time or no longer has the workflow (the database row still stands)."""
    try:
        return (
            await client.get_workflow_handle(workflow_id).describe(rpc_timeout=timeout)
        ).typed_search_attributes.get(key)
    except RPCError:
        return None
