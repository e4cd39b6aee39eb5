"""The worker compiles the workflow modules' bytecode once, even where imports write none (PYTHONDONTWRITEBYTECODE):
the sandbox imports a workflow's module afresh for every run, and without bytecode compiles its source each time."""

import importlib.util
import sys
from pathlib import Path

import worker
from workflows import registry


def test_every_workflow_module_gets_its_bytecode_and_an_import_reads_it(tmp_path, monkeypatch):
    (tmp_path / "registry.py").write_text("ALL_WORKFLOWS = []\n")
    (tmp_path / "a_flow.py").write_text("STEPS = 3\n")
    monkeypatch.setattr(registry, "__file__", str(tmp_path / "registry.py"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # as PYTHONDONTWRITEBYTECODE=1 sets it

    assert worker.cache_workflow_bytecode()

    for source in ("registry.py", "a_flow.py"):
        assert Path(importlib.util.cache_from_source(str(tmp_path / source))).is_file()
    spec = importlib.util.spec_from_file_location("a_flow", tmp_path / "a_flow.py")
    assert spec is not None and spec.loader is not None
    compiled = spec.loader.get_code("a_flow")  # from the bytecode: the loader compiles only without it
    assert compiled is not None and compiled.co_filename == str(tmp_path / "a_flow.py")
    (tmp_path / "a_flow.py").write_text("STEPS = 4\n# changed\n")
    assert worker.cache_workflow_bytecode()  # a changed module is compiled again
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.STEPS == 4
