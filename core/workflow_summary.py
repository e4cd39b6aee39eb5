"""A workflow's static summary, kept within what the Temporal server accepts.

The server refuses a start whose summary payload is over 400 bytes (its `limit.userMetadataSummarySize`), and many
summaries name what a user typed: an organization's or an account's name, a file name, a payee, an email address.
A long or non-ASCII one (200 characters of Greek are 400 bytes) turned a valid request into a failed start, a 500.
Every client of ours (core/temporal.connect) clamps the summaries it sends with `SummaryLimit`: cut at a character
boundary and marked with "…", never refused; the workflow's search attributes and details keep the full facts.
"""

import json
from typing import Any

from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)

# Below the server's 400 bytes: the payload also carries its encoding's metadata and the JSON string's quotes.
SUMMARY_BYTES = 320
ELLIPSIS = "…"


def encoded_size(text: str) -> int:
    """The summary's bytes as the data converter writes them: a JSON string, UTF-8, escapes included."""
    return len(json.dumps(text, ensure_ascii=False).encode())


def fit_summary(text: str | None, limit: int = SUMMARY_BYTES) -> str | None:
    """`text` itself when it fits in `limit` bytes, else its longest prefix that fits with "…" after it."""
    if text is None or encoded_size(text) <= limit:
        return text
    low, high = 0, len(text)  # the longest prefix that fits, by bisection on characters
    while low < high:
        middle = (low + high + 1) // 2
        if encoded_size(text[:middle].rstrip() + ELLIPSIS) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ELLIPSIS


class _Outbound(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        input.static_summary = fit_summary(input.static_summary)
        return await super().start_workflow(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        start = input.start_workflow_input
        start.static_summary = fit_summary(start.static_summary)
        return await super().start_update_with_start_workflow(input)


class SummaryLimit(Interceptor):
    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Outbound(next)
