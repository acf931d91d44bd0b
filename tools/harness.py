"""Run the real Pulumi program in-process under the SDK's mock engine and record every registration.

The record (type, name, parent, dependencies, inputs as sent on the wire, resource options) is the
offline plan and what the tests assert on. Two known pitfalls are handled (docs/facts.md §6): the
resource-references feature is switched off (mocked runs with resource inputs otherwise hang or fail
with "attached to a different loop", pulumi/pulumi#6561), and `Call` is implemented so component
methods work. A run is made cheaper (the suite runs the program ~120 times) in ways the record cannot
see: monitor RPCs run inline instead of on a thread, no source positions, and a failed run's orphaned
futures are not logged (see `_fast_sdk`, `_quiet_unretrieved`). The SDK's private parts this takes are listed in
SDK_INTERNALS and checked on import: a release that drops or changes one fails here, naming it.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import runpy
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pulumi
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import resource as presource
from pulumi.runtime import rpc
from pulumi.runtime.proto import callback_pb2, provider_pb2, resource_pb2, source_pb2
from pulumi.runtime.settings import ROOT, SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

ROOT_DIR = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
COMPUTED = "<computed>"
# What the mocked data sources answer per region: the zone names (`aws.getAvailabilityZones`) and which
# zones offer which GPU instance types (`aws.ec2.getInstanceTypeOfferings`, DescribeInstanceTypeOfferings).
# Illustrative, not AWS's truth: zone names map to different physical zones in every account, and
# offerings change; a real `pulumi preview` asks AWS. Types not listed are offered in every zone. The
# shape matters to the plan: GPU types are in some zones only, so the program must choose zones by
# offering, not take the first N names.
ZONES: dict[str, str] = {"us-east-1": "abcdef", "us-east-2": "abc", "us-west-2": "abcd", "eu-west-1": "abc",
                         "eu-central-1": "abc", "ap-northeast-1": "acd", "ap-southeast-2": "abc"}
OFFERINGS: dict[str, dict[str, str]] = {
    "us-east-1": {"p4d.24xlarge": "acd", "p4de.24xlarge": "ac", "p5.48xlarge": "acf", "p5e.48xlarge": "ac",
                  "p5en.48xlarge": "acf"},
    "us-east-2": {"p4d.24xlarge": "ab", "p4de.24xlarge": "", "p5.48xlarge": "abc", "p5en.48xlarge": "c"},
    "us-west-2": {"p4d.24xlarge": "abc", "p4de.24xlarge": "b", "p5.48xlarge": "abd", "p5e.48xlarge": "b",
                  "p5en.48xlarge": "bd"},
    "eu-west-1": {"p4d.24xlarge": "ac", "p5.48xlarge": "ab"},
}


# --- the SDK internals this harness relies on ---------------------------------------------------------------
# Private (underscored or undocumented) parts of the Pulumi SDK the harness reads, calls, subclasses or swaps for
# a run. Each is checked when the harness is imported, so an SDK release that drops or changes one fails at once,
# naming it, instead of recording a subtly different plan. requirements.lock pins the SDK they were read from.
SDK_TESTED = "3.272.0"


@dataclass(frozen=True)
class Internal:
    """`module.name` (or `module.cls.name`) as the harness uses it: a callable with these parameters, a wire
    constant, or a global that the module's own code (or `cls`'s methods) calls, which the harness swaps for a run."""

    module: str
    name: str
    why: str
    params: tuple[str, ...] | None = None  # a callable's parameter names, in order
    value: str | None = None  # a wire constant's value
    cls: str | None = None  # `name` is this class's attribute
    called_by: str | None = None  # "module" or a class of the module whose code must call `name`

    def problem(self) -> str | None:
        import importlib
        import inspect

        owner: Any = importlib.import_module(self.module)
        where = ".".join(filter(None, (self.module, self.cls, self.name))) + f" ({self.why})"
        if self.cls is not None:
            owner = getattr(owner, self.cls, None)
        if owner is None or not hasattr(owner, self.name):
            return f"{where} is gone"
        obj = getattr(owner, self.name)
        if self.value is not None and obj != self.value:
            return f"{where} is {obj!r}, not {self.value!r}"
        if self.params is not None:
            params = tuple(inspect.signature(obj).parameters)
            if params != self.params:
                return f"{where} takes ({', '.join(params)}), not ({', '.join(self.params)})"
        if self.called_by is not None:
            module = importlib.import_module(self.module)
            scope = vars(module) if self.called_by == "module" else vars(getattr(module, self.called_by, object))
            if not any(_calls(f.__code__, self.name) for f in scope.values() if hasattr(f, "__code__")):
                return f"{where} is no longer called by {self.module}'s {self.called_by} code: swapping it does nothing"
        return None


def _calls(code: Any, name: str) -> bool:
    """Whether `code` or a function nested in it (a closure, a coroutine's inner function) reads global `name`."""
    return name in code.co_names or any(_calls(c, name) for c in code.co_consts if hasattr(c, "co_names"))


_MOCKS, _RPC = "pulumi.runtime.mocks", "pulumi.runtime.rpc"
SDK_INTERNALS = (
    Internal("pulumi.runtime.sync_await", "_sync_await", "runs the program and resolves outputs", ("awaitable",)),
    Internal("pulumi.runtime.sync_await", "_ensure_event_loop", "the loop the SDK runs on", ()),
    Internal(_MOCKS, "_sync_await", "swapped for _now: the mock monitor serializes inline", called_by="MockMonitor"),
    Internal("pulumi.runtime.resource", "_get_stack_trace", "swapped: no source positions", (), called_by="module"),
    Internal("pulumi.runtime.resource", "_get_callbacks", "swapped: transforms registered in this process", (),
             called_by="module"),
    Internal("pulumi.runtime._callbacks", "register_transform", "what _LocalCallbacks stands in for",
             ("self", "transform"), cls="_CallbackServicer"),
    Internal("pulumi.runtime.stack", "run_pulumi_func", "runs __main__.py as the engine would", ("func",)),
    Internal("pulumi.runtime.settings", "ROOT", "the stack resource, for its outputs"),
    Internal("pulumi.runtime.settings", "SETTINGS", "its `outputs` are cleared between runs, its `monitor` read"),
    Internal(_RPC, "_special_sig_key", "marks a secret on the wire", value="4dabf18193072939515e22adb298388d"),
    Internal(_RPC, "_special_secret_sig", "a secret's signature", value="1b47061264138c4ac30d75fd1eb44270"),
    Internal(_RPC, "UNKNOWN", "an unknown value on the wire", value="04da6b54-80e4-46f7-96ec-b56ff0331ba9"),
    Internal(_RPC, "deserialize_properties", "reads a registration's inputs",
             ("props_struct", "keep_unknowns", "keep_internal")),
    Internal(_MOCKS, "__init__", "the recording monitor's base keeps `mocks`", ("self", "mocks"), cls="MockMonitor"),
    Internal(_MOCKS, "RegisterResource", "recorded, then answered by the base", ("self", "request"),
             cls="MockMonitor"),
    Internal(_MOCKS, "GetDeploymentInfo", "resource references switched off", ("self", "request"),
             cls="MockMonitor"),
    Internal(_MOCKS, "SupportsFeature", "resource references switched off", ("self", "request"), cls="MockMonitor"),
)


def sdk_problems() -> list[str]:
    return [p for p in (i.problem() for i in SDK_INTERNALS) if p]


def check_sdk() -> None:
    """Fail loudly, naming each part, when the installed SDK lacks or changed what the harness relies on."""
    from importlib import metadata

    if problems := sdk_problems():
        raise RuntimeError(f"pulumi {metadata.version('pulumi')} (the harness was checked with {SDK_TESTED}): "
                           + "; ".join(problems) + ". Pin pulumi back (requirements.lock) or update tools/harness.py")


check_sdk()

# Packaged (remote) components run inside their plugin: the mock engine sees one registration and none of the
# custom resources they create. A `transforms` option on one reaches those children in a real deployment; the
# record shows what each transform makes of the child named here (its type, the component's inputs as props).
REMOTE_CHILDREN: dict[str, tuple[str, ...]] = {"eks:index:ManagedNodeGroup": ("aws:eks/nodeGroup:NodeGroup",)}


def _hex(*parts: str, n: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def _plain(v: Any) -> Any:
    """Make a deserialized wire value JSON-friendly; unknowns (preview) become "<computed>"."""
    if isinstance(v, str) and v == rpc.UNKNOWN:
        return COMPUTED
    if isinstance(v, dict):
        if rpc._special_sig_key in v and v.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(v.get("value"))
        return {k: _plain(v[k]) for k in sorted(v)}  # wire maps are unordered; records should diff cleanly
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and v.is_integer():
        return int(v)  # the wire carries every number as a double
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


class PlausibleMocks(pmocks.Mocks):
    """Outputs a real deployment would have (ARNs, IDs, endpoint, kubeconfig), derived from inputs, in the
    stack's region."""

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region

    def new_resource(self, args: pmocks.MockResourceArgs):
        region = self.region
        t, name, inputs = args.typ, args.name, dict(args.inputs)
        rid = f"{name}-{_hex(t, name, n=8)}"
        out: dict[str, Any] = dict(inputs)
        short = t.split(":")[1].split("/")[0] if ":" in t else t
        if t.startswith("aws:"):
            kind = t.split(":")[-1]
            rid = {
                "Vpc": f"vpc-{_hex(name)}", "Subnet": f"subnet-{_hex(name)}", "Eip": f"eipalloc-{_hex(name)}",
                "NatGateway": f"nat-{_hex(name)}", "InternetGateway": f"igw-{_hex(name)}",
                "RouteTable": f"rtb-{_hex(name)}", "SecurityGroup": f"sg-{_hex(name)}",
                "LaunchTemplate": f"lt-{_hex(name)}", "Key": _uuid(name),
            }.get(kind, rid)
            out.setdefault("arn", f"arn:aws:{short}:{region}:{ACCOUNT}:{kind.lower()}/{inputs.get('name', rid)}")
            if kind == "Role":
                out["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{inputs.get('name', rid)}"
                out.setdefault("name", inputs.get("name", rid))
            if kind == "Policy":
                out["arn"] = f"arn:aws:iam::{ACCOUNT}:policy/{inputs.get('name', rid)}"
            if kind == "Key":
                out.update(keyId=rid, arn=f"arn:aws:kms:{region}:{ACCOUNT}:key/{rid}")
            if kind == "Queue":
                qn = inputs.get("name", rid)
                out.update(arn=f"arn:aws:sqs:{region}:{ACCOUNT}:{qn}", url=f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{qn}",
                           name=qn)
            if kind == "EventRule":
                out.update(arn=f"arn:aws:events:{region}:{ACCOUNT}:rule/{inputs.get('name', rid)}",
                           name=inputs.get("name", rid))
            if kind == "LaunchTemplate":
                out.update(latestVersion=1)
        elif t == "eks:index:Cluster":
            cname = inputs.get("name", name)
            endpoint = f"https://{_hex(cname, n=32).upper()}.gr7.{region}.eks.amazonaws.com"
            kube = _kubeconfig(cname, endpoint)
            out.update(kubeconfig=kube, kubeconfigJson=json.dumps(kube),
                       clusterSecurityGroupId=f"sg-{_hex(cname, 'cluster')}",
                       nodeSecurityGroupId=f"sg-{_hex(cname, 'cluster')}",
                       oidcProviderArn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.{region}.amazonaws.com/id/{_hex(cname, n=32).upper()}",
                       oidcIssuer=f"https://oidc.eks.{region}.amazonaws.com/id/{_hex(cname, n=32).upper()}")
        elif t.startswith("kubernetes:"):
            meta = dict(inputs.get("metadata") or {})
            meta.setdefault("name", name)
            out["metadata"] = meta
            rid = f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")
            if t == "kubernetes:helm.sh/v3:Release":
                out.update(status={"status": "deployed", "name": inputs.get("name", name),
                                   "namespace": inputs.get("namespace"), "version": inputs.get("version")})
        return rid, out

    def zones(self) -> list[str]:
        return [f"{self.region}{c}" for c in ZONES.get(self.region, "abc")]

    def call(self, args: pmocks.MockCallArgs):
        tok, region = args.token, self.region
        if tok == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = self.zones()
            short = "".join(w[0] for w in region.split("-")[:-1]) + region.rsplit("-", 1)[-1]
            return {"names": names, "zoneIds": [f"{short}-az{i}" for i in range(1, len(names) + 1)], "id": region}
        if tok == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
            wanted = [v for f in args.args.get("filters") or [] if f.get("name") == "instance-type"
                      for v in f.get("values") or []]
            table = OFFERINGS.get(region, {})
            pairs = [(t, z) for t in sorted(set(wanted)) for z in self.zones()
                     if t not in table or z[-1] in table[t]]
            return {"instanceTypes": [t for t, _ in pairs], "locations": [z for _, z in pairs],
                    "locationTypes": ["availability-zone"] * len(pairs), "id": region}
        if tok == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDAEXAMPLE",
                    "id": ACCOUNT}
        if tok == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if tok == "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "id": region}
        return {}


def _uuid(name: str) -> str:
    h = _hex(name, n=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _kubeconfig(cluster: str, endpoint: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "aws",
        "clusters": [{"name": "kubernetes", "cluster": {"server": endpoint,
                                                         "certificate-authority-data": "LS0tLS1CRUdJTi..."}}],
        "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
        "users": [{"name": "aws", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster, "--output", "json"]}}}],
    }


def waits_for(record: Mapping[str, Any]) -> set[str]:
    """URNs a registration (as `Registration.to_json()`) is created after and deleted before: its
    dependencies, its parent and its provider (a provider reference is `<urn>::<id>`)."""
    deps = set(record["dependencies"]) | {record["parent"] or ""}
    if record.get("provider"):
        deps.add(record["provider"].rsplit("::", 1)[0])
    return deps - {"", record["urn"]}


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    remote: bool
    provider: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: dict[str, Any]
    options: dict[str, Any]

    def waits_for(self) -> set[str]:
        return waits_for(self.to_json())

    def to_json(self) -> dict:
        return {"urn": self.urn, "type": self.type, "name": self.name, "parent": self.parent or None,
                "custom": self.custom, "remote": self.remote, "provider": self.provider or None,
                "dependencies": self.dependencies, "propertyDependencies": self.property_dependencies,
                "inputs": self.inputs, "options": self.options}


class _LocalCallbacks:
    """Where the SDK registers a resource's transforms: kept in this process for the mock engine to apply,
    instead of the gRPC server a real engine calls back (no listener, nothing to shut down, fork-safe)."""

    def __init__(self) -> None:
        self.transforms: dict[str, Callable[..., Any]] = {}

    def register_transform(self, transform: Callable[..., Any]) -> callback_pb2.Callback:
        token = hashlib.sha256(repr(id(transform)).encode()).hexdigest()[:16]
        self.transforms[token] = transform
        return callback_pb2.Callback(token=token, target="mock")


class RecordingMonitor(pmocks.MockMonitor):
    """A MockMonitor that keeps each RegisterResource request as a `Registration`."""

    def __init__(self, mocks: pmocks.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.callbacks = _LocalCallbacks()

    def _children(self, request: Any) -> dict[str, Any]:
        """What the request's transforms make of the children a packaged component creates: per child type,
        the options they add (ignoreChanges) and the inputs they add or change."""
        out: dict[str, Any] = {}
        known = self.callbacks.transforms
        fns = [known[cb.token] for cb in request.transforms if cb.token in known]
        for child in REMOTE_CHILDREN.get(request.type, ()) if fns else ():
            given = rpc.deserialize_properties(request.object)
            props, opts = dict(given), pulumi.ResourceOptions()
            for fn in fns:
                result = fn(pulumi.ResourceTransformArgs(custom=True, type_=child, name=request.name, props=props,
                                                         opts=opts))
                if result is not None:
                    props, opts = dict(result.props), result.opts
            out[child] = {"ignoreChanges": list(opts.ignore_changes or []),
                          "inputs": {k: _plain(v) for k, v in sorted(props.items()) if given.get(k) != v}}
        return out

    def RegisterResource(self, request):
        resp = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return resp
        _ensure_event_loop()
        ct = request.customTimeouts
        self.registrations.append(Registration(
            urn=resp.urn, type=request.type, name=request.name, parent=request.parent,
            custom=bool(request.custom), remote=bool(request.remote), provider=request.provider,
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={k: sorted(v.urns) for k, v in request.propertyDependencies.items()},
            inputs=_plain(rpc.deserialize_properties(request.object)),
            options={"protect": bool(request.protect), "deleteBeforeReplace": bool(request.deleteBeforeReplace),
                     "customTimeouts": {k: v for k, v in (("create", ct.create), ("update", ct.update),
                                                         ("delete", ct.delete)) if v},
                     "ignoreChanges": list(request.ignoreChanges), "retainOnDelete": bool(request.retainOnDelete),
                     "deletedWith": request.deletedWith or None,
                     "replaceOnChanges": list(request.replaceOnChanges),
                     **({"children": children} if (children := self._children(request)) else {})},
        ))
        return resp

    def Call(self, request):
        _ensure_event_loop()
        args = rpc.deserialize_properties(request.args)
        ret = self.mocks.call(pmocks.MockCallArgs(token=request.tok, args=args, provider=request.provider))
        ret = ret[0] if isinstance(ret, tuple) else ret
        return provider_pb2.CallResponse(**{"return": _now(rpc.serialize_properties(ret, {}))})

    def SupportsFeature(self, request):
        has = request.id not in ("outputValues", "resourceReferences")
        return type("SupportsFeatureResponse", (object,), {"hasSupport": has})

    def GetDeploymentInfo(self, request):
        info = super().GetDeploymentInfo(request)
        keep = [f for f in info.supportedFeatures if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES]
        return resource_pb2.DeploymentInfo(supportedFeatures=keep)


@dataclass
class Run:
    stack: str
    project: str
    preview: bool
    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def by_type(self, t: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == t]

    def one(self, t: str, name: str | None = None) -> Registration:
        found = [r for r in self.registrations if r.type == t and (name is None or r.name == name)]
        if len(found) != 1:
            raise LookupError(f"expected one {t} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def get(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)


def config_to_engine(config: Mapping[str, Any]) -> dict[str, str]:
    """Stack-file values as the engine passes them: strings, structured values JSON-encoded."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


class _InlineExecutor(ThreadPoolExecutor):
    """Runs what the SDK hands to the loop's default executor (each monitor RPC) at once, on the loop's own
    thread. Safe because the mock monitor answers from memory and never blocks, and the SDK awaits the RPC's
    future either way. It saves the thread hop per RPC, where two threads convoy on the GIL (~20% of a
    run). The mock serializes its answer with `_now`, never by pumping the running loop: a nested pump
    per RPC nests as deep as the registrations in flight (RecursionError in a 40-pool stack)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - the awaiting coroutine re-raises it, as with a thread
            fut.set_exception(e)
        return fut


def _now(awaitable: Any) -> Any:
    """The result of a coroutine that never waits, run here to its end: what serializing the mock's plain
    answers (dicts, lists, strings, numbers) is. Anything else is awaited as the SDK's `_sync_await` does."""
    if not asyncio.iscoroutine(awaitable):
        return _sync_await(awaitable)
    try:
        awaitable.send(None)
    except StopIteration as done:
        return done.value
    awaitable.close()
    raise RuntimeError("serializing a mock answer waited on something: the mocks answer plain values only")


def _no_stack_trace() -> source_pb2.StackTrace:
    """What the SDK sends as the source position of each registration: nothing. A real engine shows it in
    diagnostics; the mock monitor ignores it and the record leaves it out, and walking and formatting the
    Python stack per resource is ~10% of a run."""
    return source_pb2.StackTrace()


def _no_debug_log(msg: str, *args: Any, **kwargs: Any) -> None:
    """What the SDK's debug channel gets: nothing. The SDK logs a few lines per registration, each built into
    a protobuf request for an engine that, mocked, hands it to Python's logging, which drops it (~10% of a
    run); warnings and errors still go through."""


def _quiet_unretrieved(loop: Any, context: dict) -> None:
    """A failed run leaves futures whose exception nobody awaits (every registration downstream of the
    failure). asyncio logs each with its whole chained traceback when the garbage collector finds it, which
    after one failed run cost seconds (~200,000 lines of log) inside whatever ran next. `Run.error` already
    holds the failure, so these are dropped (whenever the collector finds them: the handler stays on the
    loop); anything else goes to asyncio's default handler."""
    if str(context.get("message", "")).endswith("exception was never retrieved"):
        return
    loop.default_exception_handler(context)


async def _local_callbacks() -> _LocalCallbacks:
    monitor = SETTINGS.monitor
    assert isinstance(monitor, RecordingMonitor), "transforms are registered with the recording monitor only"
    return monitor.callbacks


@contextmanager
def _fast_sdk() -> Iterator[None]:
    """The inline executor (and `_now` for the mock's serializing), the empty stack trace and the silent debug
    channel, for one run only (restored after, so the SDK is unchanged for anything else in the process). The
    record is byte-identical with and without them (checked: the plan JSON and text of the dev stack, examples/ and
    tests/stacks/good, preview and up). Also for one run: transforms are registered with the recording monitor
    (`_LocalCallbacks`), which applies them to a packaged component's children for the record."""
    loop = _ensure_event_loop()
    executor, trace, sync_await = _InlineExecutor(max_workers=1), presource._get_stack_trace, pmocks._sync_await
    debug, callbacks = pulumi.log.debug, presource._get_callbacks
    previous = getattr(loop, "_default_executor", None)
    loop.set_default_executor(executor)
    presource._get_stack_trace, pmocks._sync_await, pulumi.log.debug = _no_stack_trace, _now, _no_debug_log
    presource._get_callbacks = _local_callbacks
    try:
        yield
    finally:
        presource._get_stack_trace, pmocks._sync_await, pulumi.log.debug = trace, sync_await, debug
        presource._get_callbacks = callbacks
        loop._default_executor = previous  # type: ignore[attr-defined]


def run_program(config: Mapping[str, Any], *, stack: str = "dev", project: str = "gpu-slicing",
                preview: bool = True, program: Callable[[], Any] | None = None) -> Run:
    """Run `__main__.py` (or `program`) under mocks with `config`; never raises, see `Run.error`."""
    if str(ROOT_DIR) not in sys.path:
        sys.path.insert(0, str(ROOT_DIR))
    ROOT.set(None)
    mocks = PlausibleMocks(str(config.get("aws:region") or DEFAULT_REGION))
    monitor = RecordingMonitor(mocks)
    pmocks.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(config_to_engine(config))
    SETTINGS.outputs.clear()
    run = Run(stack=stack, project=project, preview=preview)
    main = program or (lambda: runpy.run_path(str(ROOT_DIR / "__main__.py"), run_name="__main__"))
    cwd = os.getcwd()
    _ensure_event_loop().set_exception_handler(_quiet_unretrieved)
    try:
        os.chdir(ROOT_DIR)
        with _fast_sdk():
            _sync_await(run_pulumi_func(main))
    except BaseException as e:  # noqa: BLE001 - reported to the caller with what was registered
        run.error = e
    finally:
        os.chdir(cwd)
    run.registrations = list(monitor.registrations)
    root = ROOT.get()
    if root is not None and run.error is None:
        for k, v in getattr(root, "outputs", {}).items():
            try:
                run.outputs[k] = _plain(_sync_await(_resolve(v)))
            except Exception as e:  # noqa: BLE001 - an output that cannot resolve is shown, not fatal
                run.outputs[k] = f"<error: {e}>"
    return run


async def _resolve(v: Any) -> Any:
    out = pulumi.Output.from_input(v)
    known = await out.is_known()
    return await out.future() if known else COMPUTED
