"""One cutoff window's entries as one or more NACHA files within the limits a bank sets per file.

Pure code. Batches are split, in order, where a file would pass its limit of entry and addenda records (NACHA
files commonly stop at 10,000) or of dollars (debits plus credits); a batch cut there continues in the next file
under a new batch number. A single entry above the dollar limit goes alone in its file (it cannot be split). Trace
sequences run on across the files, so every entry of the window has its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, time
from decimal import Decimal

from finance.nacha import BatchSpec, EntrySpec, NachaError, NachaFile, build_file

FILE_ID_MODIFIERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class FileLimits:
    max_records: int = 10_000  # entry detail + addenda records per file
    max_amount: Decimal | None = None  # debits + credits per file; None: no limit

    def __post_init__(self) -> None:
        if self.max_records < 2:
            raise NachaError("a file must hold at least 2 entry records")  # an entry and its addenda
        if self.max_amount is not None and self.max_amount <= 0:
            raise NachaError("the per-file dollar limit must be positive")


def _records(entry: EntrySpec) -> int:
    return 1 + (entry.addenda_info is not None)


def split_batches(batches: Sequence[BatchSpec], limits: FileLimits) -> list[list[BatchSpec]]:
    """The batches of each file, in order, each file within `limits`."""
    files: list[list[BatchSpec]] = []
    current: list[BatchSpec] = []
    records, amount = 0, Decimal(0)
    for batch in batches:
        taken: list[EntrySpec] = []
        for entry in batch.entries:
            over_records = records + _records(entry) > limits.max_records
            over_amount = limits.max_amount is not None and amount + entry.amount > limits.max_amount
            if (over_records or over_amount) and (records or taken):
                if taken:
                    current.append(replace(batch, entries=tuple(taken)))
                files.append(current)
                current, taken, records, amount = [], [], 0, Decimal(0)
            taken.append(entry)
            records += _records(entry)
            amount += entry.amount
        if taken:
            current.append(replace(batch, entries=tuple(taken)))
    if current:
        files.append(current)
    return files


def entry_count(batches: Sequence[BatchSpec]) -> int:
    return sum(len(b.entries) for b in batches)


def build_files(
    *,
    odfi_routing: str,
    odfi_name: str,
    company_id: str,
    company_name: str,
    creation_date: date,
    creation_time: time | None,
    batches: Sequence[BatchSpec],
    limits: FileLimits,
    first_trace_sequence: int = 1,
) -> list[NachaFile]:
    """The window's files: file id modifiers A, B, C... (files created the same day), batch numbers from 1 in each
    file, trace sequences from `first_trace_sequence` across all of them."""
    planned = split_batches(batches, limits)
    if len(planned) > len(FILE_ID_MODIFIERS):
        raise NachaError(f"{len(planned)} files in one window: more than {len(FILE_ID_MODIFIERS)} file id modifiers")
    files, sequence = [], first_trace_sequence
    for modifier, file_batches in zip(FILE_ID_MODIFIERS, planned, strict=False):
        files.append(
            build_file(
                odfi_routing=odfi_routing,
                odfi_name=odfi_name,
                company_id=company_id,
                company_name=company_name,
                creation_date=creation_date,
                creation_time=creation_time,
                batches=file_batches,
                file_id_modifier=modifier,
                first_trace_sequence=sequence,
            )
        )
        sequence += entry_count(file_batches)
    return files
