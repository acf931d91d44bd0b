"""`make mutate` reaches the code it scores: mutmut 3 never mutates a decorated function (only a lone @staticmethod
or @classmethod is let through), so a registration decorator such as the CrossGuard rules' `@_rule(...)` or the
offline checks' `@check` kept every rule and check body out of mutation testing while scores.md showed 100%.
Rules, checks and config validators are therefore registered by a call after their `def`, and make mutate's work
copy writes a getter or a memoised function undecorated (mutation/mutate.py `reachable`); this test keeps any
other decorator out."""
from __future__ import annotations

import ast
import re
import pytest

from conftest import ROOT, printed
from mutation.mutate import reachable

PACKAGES = ("gpu_slicing", "tools", "policy", "components")
MUTMUT_LETS_THROUGH = ("staticmethod", "classmethod")  # mutmut/mutation/file_mutation.py, alone on a function
# The mark mutmut puts on each trampoline in its work copy, where make mutate runs these tests too.
MUTMUT_TRAMPOLINE = "_mutmut_mutated"

# The decorators that may stay, with why; each hides its functions' bodies from make mutate.
ALLOWED = {
    "contextmanager": "only in tools/harness.py, which make mutate never mutates (mutation/mutate.py)",
}
ALLOWED_ONLY_IN = {"contextmanager": {"tools/harness.py"}}
# Only a module with a decorator other than these can hide a function from mutmut (@dataclass decorates classes):
# the scan parses just those, half the code, to stay a quick test.
MAY_HIDE = re.compile(r"^[ \t]*@(?!(?:dataclass|staticmethod|classmethod)\b)", re.M)


def _name(decorator: ast.expr) -> str:
    """`functools.lru_cache(maxsize=None)` -> 'functools.lru_cache': the decorator without its arguments."""
    return ast.unparse(decorator.func if isinstance(decorator, ast.Call) else decorator)


def hidden_from_mutmut(source: str) -> list[tuple[int, str, list[str]]]:
    """(line, function, decorators) of each function mutmut skips because of its decorators, nested ones too."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        decorators = [d for d in node.decorator_list if _name(d) != MUTMUT_TRAMPOLINE]
        names = [_name(d) for d in decorators]
        if decorators and not (len(decorators) == 1 and isinstance(decorators[0], ast.Name)
                               and names[0] in MUTMUT_LETS_THROUGH):
            out.append((node.lineno, node.name, names))
    return sorted(out)


def not_allowed(path: str, hidden: list[tuple[int, str, list[str]]]) -> list[str]:
    """The decorators in `hidden` (hidden_from_mutmut of the module at `path`) that ALLOWED does not admit there."""
    return [f"{path}:{line} {fn} @{d}" for line, fn, names in hidden for d in names
            if d not in ALLOWED or path not in ALLOWED_ONLY_IN.get(d, {path})]


@pytest.fixture(scope="module")
def hidden() -> dict[str, list[tuple[int, str, list[str]]]]:
    """What mutmut skips in each module of the packages, by its path from the root (parsed once)."""
    texts = {str(p.relative_to(ROOT)): p.read_text() for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}
    assert len(texts) > 40  # the packages were found
    # make mutate mutates each module as `reachable` rewrites it (a getter as `f = property(f)`, a cache likewise)
    return {path: hidden_from_mutmut(reachable(text)) for path, text in texts.items() if MAY_HIDE.search(text)}


def test_no_function_is_hidden_from_make_mutate_by_a_decorator(hidden):
    """A new registration decorator would silently take its functions out of mutation testing: register by a
    call after the `def` instead (policy/rules.py's `_rule(fn, ...)`, tools/checks.py's `check(fn)`)."""
    assert {"policy/rules.py", "tools/checks.py", "gpu_slicing/config.py"} <= set(hidden)
    assert [bad for path, found in hidden.items() for bad in not_allowed(path, found)] == []


def test_the_rules_and_checks_are_registered_undecorated(hidden):
    """The 20 CrossGuard rules and 15 offline checks (docs/checks-and-ci.md) are what issue 20's hidden bugs
    target: none of their functions may carry a decorator, or make mutate scores them without mutating them."""
    from policy.rules import RULES
    from tools.checks import CHECKS

    decorated = {fn for path in ("policy/rules.py", "tools/checks.py") for _, fn, _ in hidden[path]}
    assert (len(RULES), len(CHECKS)) == (20, 15)
    assert decorated.isdisjoint({r.fn.__name__ for r in RULES.values()} | {c.__name__ for c in CHECKS})


def test_the_finder_sees_what_mutmut_skips():
    """Hand-written cases from mutmut's rule: any decorator hides a function, except a lone @staticmethod or
    @classmethod; a decorated class's methods stay mutable."""
    probe = (
        "@_rule('x', 'y')\ndef a(): pass\n"
        "@check\ndef b(): pass\n"
        "def c(): pass\n"
        "@dataclass\nclass K:\n"
        "    @staticmethod\n    def d(): pass\n"
        "    @classmethod\n    def e(cls): pass\n"
        "    @staticmethod\n    @check\n    def f(): pass\n"
        "    @functools.lru_cache(maxsize=None)\n    def g(self): pass\n"
        "    def h(self): pass\n"
        "@_mutmut_mutated(mutants_x_i__mutmut)\ndef i(): pass\n"
    )
    assert hidden_from_mutmut(probe) == [(2, "a", ["_rule"]), (4, "b", ["check"]), (14, "f", ["staticmethod", "check"]),
                                         (16, "g", ["functools.lru_cache"])]  # the line of each `def`
    assert not_allowed("p.py", hidden_from_mutmut(probe)) == ["p.py:2 a @_rule", "p.py:4 b @check", "p.py:14 f @staticmethod",
                                          "p.py:14 f @check", "p.py:16 g @functools.lru_cache"]
    assert [bool(MAY_HIDE.search(t)) for t in ("@check\n", "    @_rule('x')\n", "@dataclass(frozen=True)\n",
                                                "    @staticmethod\n", "    @classmethod\n", "@property\n")] == \
        [True, True, False, False, False, True]
    cm = hidden_from_mutmut("@contextmanager\ndef s(): yield\n")
    assert not_allowed("tools/x.py", cm) == ["tools/x.py:2 s @contextmanager"]
    assert not_allowed("tools/harness.py", cm) == []


PROBE = (
    "import functools\n"
    "calls = []\n"
    "class K:\n"
    "    n = 3\n"
    "\n"
    "    @property\n"
    "    def twice(self) -> int:\n"
    "        \"\"\"A docstring.\"\"\"\n"
    "        if self.n > 2:\n"
    "            return 2 * self.n\n"
    "        return 0\n"
    "    # a comment between members\n"
    "    @property\n"
    "    def label(self): return f'k{self.n}'\n"
    "\n"
    "    @property\n"
    "    @functools.cache\n"
    "    def kept(self): return self.n + 1\n"
    "\n"
    "    class Inner:\n"
    "        @property\n"
    "        def deep(self): return 'in'\n"
    "\n"
    "@functools.lru_cache(maxsize=None)\n"
    "def square(x):\n"
    "    calls.append(x)\n"
    "    return x * x\n"
)


def test_make_mutate_reaches_getters_and_caches_and_keeps_what_they_return():
    """mutmut skips decorated functions (a getter's trampoline would not be a function), so make mutate's work
    copy writes each getter as a plain `def` followed by `f = property(f)`, and each memoised function as
    `f = functools.lru_cache(...)(f)`: the same module, with the bodies mutable. A function under two
    decorators is left as it is, and stays hidden."""
    rewritten = reachable(PROBE)
    for text in (PROBE, rewritten):
        ns: dict = {}
        exec(text, ns)
        k = ns["K"]()
        assert (k.twice, k.label, k.kept, ns["K"].Inner().deep) == (6, "k3", 4, "in")
        assert isinstance(ns["K"].__dict__["twice"], property)
        assert (ns["square"](4), ns["square"](4), ns["calls"]) == (16, 16, [4])  # still memoised
    assert rewritten.count("@") == 2  # only the doubly-decorated getter's two
    assert [(fn, names) for _, fn, names in hidden_from_mutmut(rewritten)] == [("kept", ["property", "functools.cache"])]
    assert "        return 0\n    twice = property(twice)\n" in rewritten
    assert "        deep = property(deep)\n" in rewritten
    assert "    return x * x\nsquare = functools.lru_cache(maxsize=None)(square)\n" in rewritten


def test_a_cache_is_empty_in_each_worker_make_mutate_forks():
    """mutmut forks a worker per mutant from a process whose test runs filled the caches: a cache kept across
    the fork would answer with the original code's value and hide the mutant."""
    program = (f"from mutation.mutate import reachable\nPROBE = {PROBE!r}\nns = {{}}\nexec(reachable(PROBE), ns)\n"
               "import os\nns['square'](3)\npid = os.fork()\n"
               "if pid == 0:\n    print('child', ns['square'].cache_info().currsize, flush=True)\n    os._exit(0)\n"
               "os.waitpid(pid, 0)\nprint('parent', ns['square'].cache_info().currsize)\n")
    assert printed(program).split("\n") == ["child 0", "parent 1"]


def test_every_allowed_decorator_is_still_in_use(hidden):
    """An allowance nobody needs any more is one a new decorator could slip through under: drop it."""
    used = {d for found in hidden.values() for _, _, names in found for d in names}
    assert set(ALLOWED) - used == set()
