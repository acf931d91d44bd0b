"""`make test`'s runner (tests/parallel.py): how it deals test files to its forked workers."""
from __future__ import annotations

import parallel
from conftest import ROOT


def test_every_file_is_dealt_once_costliest_first_to_the_least_loaded_worker():
    costs = {"a.py": 3.0, "b.py": 2.0, "c.py": 2.0, "d.py": 1.0}
    original = dict(parallel.SECONDS)
    try:
        parallel.SECONDS.clear()
        parallel.SECONDS.update(costs)
        shares = parallel.deal(["d.py", "c.py", "b.py", "a.py"], 2)
    finally:
        parallel.SECONDS.clear()
        parallel.SECONDS.update(original)
    assert sorted(sorted(s) for s in shares) == [["a.py", "d.py"], ["b.py", "c.py"]]  # 3 + 1 and 2 + 2: no core idles
    assert parallel.deal(["a.py"], 4) == [["a.py"]]  # no empty worker is forked


def test_every_test_file_that_loads_the_sdk_has_a_measured_cost():
    """A file missing from both lists is dealt as one second: the shares drift out of balance unnoticed."""
    files = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert files - set(parallel.WITHOUT_SDK) - set(parallel.SECONDS) == set()
    assert set(parallel.WITHOUT_SDK) | set(parallel.SECONDS) <= files  # no stale names either
