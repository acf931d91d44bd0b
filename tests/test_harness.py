"""The harness's hold on the Pulumi SDK's private parts (tools/harness.py SDK_INTERNALS): the installed SDK has
each, and an SDK that drops or changes one fails loudly, naming it."""
from __future__ import annotations

import sys
import types

import pytest

from pulumi.runtime import resource as presource
from pulumi.runtime import rpc
from tools import harness
from tools.harness import Internal


def test_the_installed_sdk_has_every_internal_the_harness_uses():
    assert harness.sdk_problems() == []
    assert {(i.module, i.cls, i.name) for i in harness.SDK_INTERNALS} >= {
        ("pulumi.runtime.sync_await", None, "_sync_await"), ("pulumi.runtime.mocks", None, "_sync_await"),
        ("pulumi.runtime.resource", None, "_get_stack_trace"), ("pulumi.runtime.rpc", None, "_special_sig_key"),
        ("pulumi.runtime.mocks", "MockMonitor", "RegisterResource")}


def test_a_missing_internal_fails_loudly_naming_it(monkeypatch):
    monkeypatch.delattr(rpc, "_special_sig_key")
    with pytest.raises(RuntimeError) as e:
        harness.check_sdk()
    assert "pulumi.runtime.rpc._special_sig_key (marks a secret on the wire) is gone" in str(e.value)
    assert f"checked with {harness.SDK_TESTED}" in str(e.value)


def test_a_changed_signature_is_named(monkeypatch):
    monkeypatch.setattr(presource, "_get_stack_trace", lambda depth: None)
    assert harness.sdk_problems() == [
        "pulumi.runtime.resource._get_stack_trace (swapped: no source positions) takes (depth), not ()"]


@pytest.fixture
def fake(monkeypatch):
    module = types.ModuleType("fake_sdk")
    exec("KEY = 'abc'\ndef helper(a, b):\n    return a\ndef caller():\n    return helper(1, 2)\n"
         "class Monitor:\n    def Register(self, request):\n        return helper(request, 0)\n", module.__dict__)
    monkeypatch.setitem(sys.modules, "fake_sdk", module)
    return module


def test_each_kind_of_change_is_told_apart(fake, monkeypatch):
    assert Internal("fake_sdk", "KEY", "k", value="abc").problem() is None
    assert Internal("fake_sdk", "KEY", "k", value="xyz").problem() == "fake_sdk.KEY (k) is 'abc', not 'xyz'"
    assert Internal("fake_sdk", "helper", "h", ("a", "b"), called_by="module").problem() is None
    assert Internal("fake_sdk", "helper", "h", ("a", "b"), called_by="Monitor").problem() is None
    assert Internal("fake_sdk", "Register", "r", ("self", "request"), cls="Monitor").problem() is None
    assert Internal("fake_sdk", "Gone", "g", cls="Monitor").problem() == "fake_sdk.Monitor.Gone (g) is gone"
    assert Internal("fake_sdk", "x", "g", cls="NoClass").problem() == "fake_sdk.NoClass.x (g) is gone"
    monkeypatch.setattr(fake, "caller", lambda: 1)
    assert Internal("fake_sdk", "helper", "h", called_by="module").problem() == (
        "fake_sdk.helper (h) is no longer called by fake_sdk's module code: swapping it does nothing")
