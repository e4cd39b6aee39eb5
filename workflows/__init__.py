"""Deterministic workflow code only: no I/O, no clocks, no randomness outside the SDK's."""

from workflows.book_transfer import BookTransferWorkflow

ALL_WORKFLOWS = [BookTransferWorkflow]
