"""The worker compiles the workflow modules' bytecode once, even where imports write none (PYTHONDONTWRITEBYTECODE):
the sandbox imports a workflow's module afresh for every run, and without bytecode compiles its source each time."""

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

import pytest

import worker
from workflows import registry


def test_every_workflow_module_gets_its_bytecode_and_an_import_reads_it(tmp_path, monkeypatch):
    (tmp_path / "registry.py").write_text("ALL_WORKFLOWS = []\n")
    flow = tmp_path / "a_flow.py"
    flow.write_text("STEPS = 3\n")
    monkeypatch.setattr(registry, "__file__", str(tmp_path / "registry.py"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # as PYTHONDONTWRITEBYTECODE=1 sets it

    assert worker.cache_workflow_bytecode()
    for source in ("registry.py", "a_flow.py"):
        assert Path(importlib.util.cache_from_source(str(tmp_path / source))).is_file()

    def compiling(*args, **kwargs):
        raise AssertionError("the loader compiled the source: no valid bytecode")

    def import_flow():
        spec = importlib.util.spec_from_file_location("a_flow", flow)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    with monkeypatch.context() as patched:
        patched.setattr(importlib.machinery.SourceFileLoader, "source_to_code", compiling)
        assert import_flow().STEPS == 3  # read from the bytecode
        flow.write_text("STEPS = 4  # changed\n")
        later = os.stat(flow).st_mtime + 10  # a later change, whatever the clock's resolution
        os.utime(flow, (later, later))
        with pytest.raises(AssertionError, match="compiled the source"):
            import_flow()  # stale bytecode is not read: the loader would compile the source
    assert worker.cache_workflow_bytecode()  # compiled again (py_compile compiles through the same loader method)
    with monkeypatch.context() as patched:
        patched.setattr(importlib.machinery.SourceFileLoader, "source_to_code", compiling)
        assert import_flow().STEPS == 4
