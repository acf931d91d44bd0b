"""`make test`'s runner (tests/parallel.py): how it deals test files to its forked workers."""
from __future__ import annotations

import pytest

import parallel
from conftest import ROOT


def test_every_file_is_dealt_once_costliest_first_to_the_least_loaded_worker(monkeypatch):
    monkeypatch.setattr(parallel, "SECONDS", {"a.py": 3.0, "b.py": 2.0, "c.py": 2.0, "d.py": 1.0})
    shares = parallel.deal(["d.py", "c.py", "b.py", "a.py"], 2)
    assert sorted(sorted(s) for s in shares) == [["a.py", "d.py"], ["b.py", "c.py"]]  # 3 + 1 and 2 + 2: no core idles
    assert parallel.deal(["a.py"], 4) == [["a.py"]]  # no empty worker is forked


def test_every_test_file_that_loads_the_sdk_has_a_measured_cost():
    """A file missing from both lists is dealt as one second: the shares drift out of balance unnoticed."""
    files = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert files - set(parallel.WITHOUT_SDK) - set(parallel.SECONDS) == set()
    assert set(parallel.WITHOUT_SDK) | set(parallel.SECONDS) <= files  # no stale names either


@pytest.mark.slow
def test_a_failing_test_in_any_worker_fails_the_run_and_is_printed(tmp_path, monkeypatch, capfd):
    (tmp_path / "test_fine.py").write_text("def test_fine():\n    assert True\n")
    (tmp_path / "test_broken.py").write_text("def test_broken():\n    assert 1 == 2\n")
    (tmp_path / "test_also_fine.py").write_text("def test_also_fine():\n    assert True\n")
    monkeypatch.setattr(parallel, "WITHOUT_SDK", ["test_fine.py", "test_broken.py", "test_also_fine.py"])
    assert parallel.main(["-q", "-p", "no:cacheprovider"], tests=tmp_path) == 1
    out = capfd.readouterr().out
    assert "FAILED" in out and "test_broken.py::test_broken" in out
    assert "== all workers: 2 passed, 1 failed in" in out

    (tmp_path / "test_broken.py").unlink()
    assert parallel.main(["-q", "-p", "no:cacheprovider"], tests=tmp_path) == 0
    assert "== all workers: 2 passed in" in capfd.readouterr().out
