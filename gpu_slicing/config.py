"""The stack config as one typed, validated model; every default lives here.

`parse_shape(raw)` takes the `config:` mapping of a `Pulumi.<stack>.yaml` (keys with or without the
`gpu-slicing:` namespace, structured values as parsed YAML or as the JSON strings the Pulumi engine
passes) and returns a `StackConfig`, or raises `ConfigError` naming the key, the bad value and what is
allowed (`ConfigErrors`, every one of them, when several keys are wrong). It is the first step of
`gpu_slicing.stack.load_stack`, which runs before any resource is registered, so a bad stack creates nothing.

The model is pydantic v2: frozen, strict (no value is coerced to a key's type), unknown keys forbidden,
each field read from its camelCase key. Scalar values are checked by the check functions below, used as
plain validators (`_Check`), so errors keep this program's words rather than pydantic's.
"""
from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import math
import re
import typing
from typing import Any, Callable, Mapping, NamedTuple, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError, PydanticUndefined, core_schema

from . import calendar, catalog, changes, layouts
from .catalog import MigLayout
from .errors import NAMESPACE, ConfigError, did_you_mean, each, raise_all
from .network import DOCUMENTATION_RANGES

GPU_OPERATOR_VERSION = "v26.7.0"
KARPENTER_VERSION = "1.14.1"
KUBE_PROMETHEUS_STACK_VERSION = "88.5.3"  # prometheus-community chart; values reviewed in gpu_slicing/observability.py
# AL2023 EKS-optimized AMI release pinned for Karpenter nodes (`al2023@<version>`); bump deliberately.
AMI_ALIAS_VERSION = "v20261118"
# Every minor the calendar knows (the schema's enum); whether EKS still creates it depends on the date.
SUPPORTED_KUBERNETES_VERSIONS = tuple(v.minor for v in calendar.VERSIONS)
DEFAULT_KUBERNETES_VERSION = "1.35"  # in standard support until 2027-03-27; Karpenter >= 1.9 supports it
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
MAX_POOL_NODES = 100  # most nodes of one node group (maxSize) or NodePool (maxNodes)
CUDA_IMAGE = "nvidia/cuda:12.4.1-base-ubuntu22.04"

# Namespaces a stack file of this program legitimately holds: its own, the providers it uses (pulumi-eks
# drives aws and kubernetes) and Pulumi's own (`pulumi:tags`, `pulumi:disable-default-providers`). Any
# other namespace is a typo whose keys the program would silently never read.
KNOWN_NAMESPACES = (NAMESPACE, "aws", "eks", "kubernetes", "pulumi")

CAPACITY_BLOCK_WHY = ("not supported yet: a Capacity Block node group needs a launch template with the "
                      "capacity-block market type, the reservation's cr- id and the instance type in the template, "
                      "no instance types on the node group, and subnets in the block's one Availability Zone; this "
                      "program configures none of that, so the node group would fail to create")
RESERVED_WHY = ("not supported yet: Karpenter launches reserved capacity only from capacity reservations its "
                "EC2NodeClass selects (capacityReservationSelectorTerms, and for Capacity Blocks their zone), "
                "which this program does not configure, so the pool could never launch reserved nodes")

# The patterns below are matched whole (`fullmatch`): `$` alone also matches before a final newline, which a
# YAML block scalar (`name: |`) leaves in the value.
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
# Exactly the pattern of NodePool `disruption.consolidateAfter` and `template.spec.expireAfter` in the
# pinned Karpenter CRD (karpenter.sh_nodepools.yaml); `Never` turns the behaviour off.
_DURATION_RE = re.compile(r"^(([0-9]+(s|m|h))+|Never)$")
# An IAM role ARN in any partition (aws, aws-cn, aws-us-gov, ...), optionally with a path.
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[!-~]+/)?[\w+=,.@-]{1,64}$")
# GPU (and other accelerator-graphics) instance families: p3..p6, g4dn..g7e, gr6.
_GPU_FAMILY_RE = re.compile(r"^(p[0-9]|g[0-9]|gr[0-9])[a-z0-9-]*\.")
VPC_PREFIX_RANGE = (16, 28)  # the AWS limits of a VPC's IPv4 CIDR block
# AWS name limits of what the program derives from config names (pulumi auto-naming adds "-" + 7 hex).
AUTONAME_SUFFIX = "-<7 hex>"  # as long as the real suffix: 8 characters
EKS_NODEGROUP_NAME_MAX = changes.NODEGROUP_NAME_MAX
IAM_ROLE_NAME_MAX = 64
IAM_POLICY_NAME_MAX = 128
EVENTBRIDGE_RULE_NAME_MAX = 64
SQS_QUEUE_NAME_MAX = 80
K8S_LABEL_VALUE_MAX = changes.LABEL_VALUE_MAX


_HERE = "\x00"  # the key a check is given inside the model: its errors' keys are relative to the field's


class _Check:
    """Field metadata: validate the value with `fn(value, key)`, one of the checks below, in place of
    pydantic's own type check, so errors keep this program's words (and each check's JSON Schema fragment,
    `schema`, stays beside it). `fn` is looked up per call, so a test can swap it."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any, str], Any]):
        self.fn = fn

    @property
    def schema(self) -> dict:
        return self.fn.schema  # type: ignore[attr-defined]

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)

    def _validate(self, v: Any) -> Any:
        try:
            return self.fn(v, _HERE)
        except ConfigError as e:
            raise _pydantic_error(e.errors) from None


def _pydantic_error(errors: tuple[ConfigError, ...]) -> PydanticCustomError:
    """Our errors (keys relative to the field, `_HERE`) through pydantic, to be turned back by `_errors`."""
    return PydanticCustomError("config", "{allowed}", {"allowed": errors[0].allowed,
                                                       "errors": [(e.key, e.value, e.allowed) for e in errors]})


def _field(key: str, default: Any = PydanticUndefined, *, check: Callable[[Any, str], Any] | None = None,
           doc: str = "") -> Any:
    """A model field that knows its camelCase config key, how to check a raw value, and its doc."""
    if isinstance(default, (list, dict)):
        frozen = default
        info = cast(FieldInfo, Field(default_factory=lambda: type(frozen)(frozen), alias=key, description=doc))
    else:
        info = cast(FieldInfo, Field(default, alias=key, description=doc))
    if check is not None:
        info.metadata.append(_Check(check))
    return info


def _keys(cls: type[BaseModel]) -> list[str]:
    return list(_fields_by_key(cls))


def _block(key: str, cls: type[BaseModel], default: Any = PydanticUndefined, *, doc: str = "") -> Any:
    """A nested config block: a mapping (nothing under the key reads as the defaults)."""
    def mapping(v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, (Mapping, cls)):
            raise _pydantic_error((ConfigError(_HERE, v, "a mapping with keys " + ", ".join(_keys(cls))),))
        return v
    info = cast(FieldInfo, Field(default, alias=key, description=doc))
    info.metadata.append(BeforeValidator(mapping))
    return info


def _blocks(key: str, cls: type[BaseModel], *, doc: str = "") -> Any:
    """A list of config blocks, each a mapping."""
    def as_tuple(v: Any) -> Any:
        if v is None:
            return ()
        if not isinstance(v, (list, tuple)):
            raise _pydantic_error((ConfigError(_HERE, v, "a YAML list with one mapping per entry (- name: ..., keys "
                                               + ", ".join(_keys(cls)) + ")"),))
        return tuple(v)
    info = cast(FieldInfo, Field((), alias=key, description=doc))
    info.metadata.append(BeforeValidator(as_tuple))
    return info


class _Model(BaseModel):
    """A config block: frozen, strict, unknown keys refused; fields are read from their camelCase keys
    (the stack file's; `parse_shape` refuses the Python names there) and, in code, also by Python name."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", validate_by_alias=True,
                              validate_by_name=True)


# --- scalar checks: each takes (raw value, config key) and returns the parsed value -------------------
# Each also carries `schema`, the JSON Schema fragment of what it accepts (gpu_slicing.schema builds the
# stack file's schema from them): never stricter than the check, so an editor flags nothing it would accept.

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(\.{_OCTET}){{3}}"


def _schema(check: Callable, fragment: dict) -> Callable:
    """Attach `fragment` to `check` as its `schema`; called after the check's `def`, not as a decorator, which
    mutmut would skip (tests/test_mutation_reach.py)."""
    check.schema = fragment  # type: ignore[attr-defined]
    return check


def _number_read(v: Any) -> str:
    """When YAML read an unquoted scalar as a number or boolean, say so and how to quote it; else ''."""
    if isinstance(v, bool):
        return f"YAML read the boolean {str(v).lower()}, not text: quote the value; "
    if isinstance(v, float):
        return (f"YAML read the number {v!r}, not text (unquoted, trailing zeros are lost: 1.30 reads as 1.3): "
                "quote the value as you wrote it; ")
    if isinstance(v, int):
        return f"YAML read the number {v}, not text: quote it, e.g. \"{v}\"; "
    return ""


def _string(v: Any, key: str) -> str:
    if not isinstance(v, str) or not v:
        raise ConfigError(key, v, _number_read(v) + "a non-empty string")
    return v

_schema(_string, {"type": "string", "minLength": 1})


def _name(v: Any, key: str) -> str:
    if not isinstance(v, str) or not _NAME_RE.fullmatch(v):
        raise ConfigError(key, v, _number_read(v) + "a lowercase DNS label: a-z, 0-9 and '-', 1-40 characters, "
                                  "starting and ending with a letter or digit")
    return v

_schema(_name, {"type": "string", "pattern": _NAME_RE.pattern})


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(key, v, "true or false")
    return v

_schema(_bool, {"type": "boolean"})


def _int_between(lo: int, hi: int, why: str = "") -> Callable[[Any, str], int]:
    def check(v: Any, key: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ConfigError(key, v, f"an integer from {lo} to {hi}" + (f" ({why})" if why else ""))
        return v
    return _schema(check, {"type": "integer", "minimum": lo, "maximum": hi})


def _one_of(*allowed: str, why: Mapping[str, str] | None = None) -> Callable[[Any, str], str]:
    """One of `allowed`; `why` maps values refused on purpose to the reason."""
    def check(v: Any, key: str) -> str:
        if isinstance(v, str) and v in (why or {}):
            raise ConfigError(key, v, f"{(why or {})[v]}; use one of " + ", ".join(allowed))
        if v not in allowed:
            raise ConfigError(key, v, _number_read(v) + "one of " + ", ".join(allowed))
        return v
    return _schema(check, {"type": "string", "enum": list(allowed)})


def _pinned(version: str, what: str) -> Callable[[Any, str], str]:
    """The one version the program pins, and why no other is taken."""
    def check(v: Any, key: str) -> str:
        if v != version:
            raise ConfigError(key, v, _number_read(v) + f"{version}, the only version this program takes: {what} are "
                                      f"written and tested against {version}, so another version is a change to "
                                      "the program (gpu_slicing/config.py), not to a stack")
        return v
    return _schema(check, {"type": "string", "enum": [version]})


def _ipv4_network(v: Any, key: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(v, strict=True) if isinstance(v, str) else None
    except ValueError:
        net = None
    if net is None:
        raise ConfigError(key, v, "an IPv4 CIDR block such as 10.0.0.0/16 (host bits zero)")
    if net.version != 4:
        raise ConfigError(key, v, "an IPv4 CIDR block such as 10.0.0.0/16: this key takes IPv4 only")
    return net


# /16 to /20 with zero host bits (validate refuses /21 to /28 for a new VPC, and vpcCidr is absent with an
# existing one), or any address/netmask, which ip_network also reads.
_VPC_BLOCK = "|".join(f"({'|'.join(str(n) for n in range(0, 256, 2 ** (24 - p)))})\\.0/{p}" for p in range(16, 21))


def _vpc_cidr(v: Any, key: str) -> str:
    net = _ipv4_network(v, key)
    lo, hi = VPC_PREFIX_RANGE
    if not lo <= net.prefixlen <= hi:
        raise ConfigError(key, v, f"an IPv4 CIDR block from /{lo} to /{hi} (the sizes AWS allows for a VPC)")
    return str(net)

_schema(_vpc_cidr, {"type": "string", "pattern": rf"^({_OCTET}\.{_OCTET}\.({_VPC_BLOCK})|{_IPV4}/{_IPV4})$"})


# Inside a documentation range (each a /24): its first three octets and a /24 to /32 prefix (or none: /32).
_DOC_PREFIXES = "|".join(re.escape(str(n.network_address).rsplit(".", 1)[0]) for n in DOCUMENTATION_RANGES)


def _client_cidr(v: Any, key: str) -> str:
    net = _ipv4_network(v, key)
    for doc in DOCUMENTATION_RANGES:
        if net.subnet_of(doc):
            raise ConfigError(key, v, f"a range real clients are in: {doc} is a documentation range (RFC 5737), "
                                      "no real client has an address in it, so nothing (not Pulumi, not kubectl) "
                                      "could reach the API server; use your own address range, e.g. "
                                      "<your public IP>/32, or 0.0.0.0/0 (EKS still authenticates every request "
                                      "with IAM)")
    return str(net)

_schema(_client_cidr, {"type": "string", "pattern": rf"^{_IPV4}(/([0-9]|[12][0-9]|3[0-2]|{_IPV4}))?$",
                       "not": {"pattern": rf"^({_DOC_PREFIXES})\.[0-9]+(/(2[4-9]|3[0-2]))?$"}})


def _capacity_types(v: Any, key: str) -> tuple[str, ...]:
    if isinstance(v, list) and "reserved" in v:
        raise ConfigError(key, v, f"on-demand and/or spot; reserved is {RESERVED_WHY}")
    return _list_of(_one_of("on-demand", "spot"), min_len=1, unique=True)(v, key)

_schema(_capacity_types, {"type": "array", "minItems": 1, "uniqueItems": True,
                          "items": {"type": "string", "enum": ["on-demand", "spot"]}})


def _role_arn(v: Any, key: str) -> str:
    if not isinstance(v, str) or not _ROLE_ARN_RE.fullmatch(v):
        hint = (" (an assumed-role session ARN from sts get-caller-identity: give the role's own ARN, "
                "arn:aws:iam::<account>:role/<name>)" if isinstance(v, str) and ":assumed-role/" in v else "")
        raise ConfigError(key, v, "an IAM role ARN such as arn:aws:iam::123456789012:role/platform-admins" + hint)
    return v

_schema(_role_arn, {"type": "string", "pattern": _ROLE_ARN_RE.pattern})


def _prices(v: Any, key: str) -> Mapping[str, float]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise ConfigError(key, v, "a mapping of instance type to USD per hour, e.g. {p4d.24xlarge: 21.96}")
    out: dict[str, float] = {}
    errors = []  # every bad price, as for list items
    for t, price in v.items():
        if t not in catalog.INSTANCE_TYPES:
            errors.append(ConfigError(f"{key}.{t}", price, "a price for a GPU instance type this program plans: "
                                      + did_you_mean(t, catalog.INSTANCE_TYPES) + ", ".join(catalog.INSTANCE_TYPES)))
        elif (isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price)
                or price <= 0):
            errors.append(ConfigError(f"{key}.{t}", price, "a price in USD per hour, a number greater than 0"))
        else:
            out[str(t)] = float(price)
    raise_all(errors)
    return out

_schema(_prices, {"type": ["object", "null"], "propertyNames": {"enum": list(catalog.INSTANCE_TYPES)},
                  "additionalProperties": {"type": "number", "exclusiveMinimum": 0}})


def _list_of(item: Callable[[Any, str], Any], *, min_len: int = 0, unique: bool = False
             ) -> Callable[[Any, str], tuple]:
    """A list whose items each pass `item`; every bad item is reported."""
    def check(v: Any, key: str) -> tuple:
        if not isinstance(v, (list, tuple)) or len(v) < min_len:
            raise ConfigError(key, v, f"a list of at least {min_len} item(s)" if min_len else "a list")
        out, errors = each(functools.partial(item, x, f"{key}[{i}]") for i, x in enumerate(v))
        raise_all(errors)
        if unique and len(set(out)) != len(out):
            raise ConfigError(key, v, "a list without duplicates")
        return tuple(out)
    return _schema(check, {"type": "array", "items": item.schema,  # type: ignore[attr-defined]
                           **({"minItems": min_len} if min_len else {}), **({"uniqueItems": True} if unique else {})})


def _instance_type(v: Any, key: str) -> str:
    """A catalog GPU type the AMI's driver runs (refused types, e.g. p6e-gb200, say why)."""
    return catalog.check_instance_type(v, key).name

_schema(_instance_type, {"type": "string", "enum": [n for n, it in catalog.INSTANCE_TYPES.items()
                                                    if n not in catalog.REFUSED_INSTANCE_TYPES and not catalog.driver_shortfall(it)]})


_EC2_TYPE = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"


def _ec2_type(v: Any, key: str) -> str:
    if not isinstance(v, str) or not re.fullmatch(_EC2_TYPE, v):
        raise ConfigError(key, v, "an EC2 instance type such as m7i.large")
    return v


def _duration(v: Any, key: str) -> str:
    if not isinstance(v, str) or not _DURATION_RE.fullmatch(v):
        raise ConfigError(key, v, "a duration such as 10m, 1h or 720h (units s, m, h), or Never "
                                  "(the pattern of the Karpenter NodePool CRD)")
    return v

_schema(_duration, {"type": "string", "pattern": _DURATION_RE.pattern})


def _k8s_version(v: Any, key: str) -> str:
    """A minor EKS creates today (the system clock's date, `calendar.today`): one past extended support is an
    error with its dates; one in extended support plans, with a warning and its price (tools/checks)."""
    creatable = calendar.creatable()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        quoted = f"{v:.2f}"
        fix = (f"quote it: kubernetesVersion: \"{quoted}\"" if quoted in SUPPORTED_KUBERNETES_VERSIONS else
               f"quoted, {quoted} is not supported either: use one of them, e.g. kubernetesVersion: "
               f"\"{DEFAULT_KUBERNETES_VERSION}\"")
        raise ConfigError(key, v, f"a quoted EKS Kubernetes version: YAML read the number {v!r}, not text "
                                  f"(unquoted, 1.30 is the number 1.3); {fix}; "
                                  "supported: " + ", ".join(creatable))
    if v not in SUPPORTED_KUBERNETES_VERSIONS:
        raise ConfigError(key, v, "a quoted EKS Kubernetes version, one of " + ", ".join(creatable))
    if calendar.phase(v) == "ended":
        raise ConfigError(key, v, f"a version EKS still creates, one of {', '.join(creatable)}: "
                                  + calendar.describe(v))
    return v

_schema(_k8s_version, {"type": "string", "enum": list(SUPPORTED_KUBERNETES_VERSIONS)})


def _system_type(v: Any, key: str) -> str:
    v = _ec2_type(v, key)
    if v in catalog.INSTANCE_TYPES or _GPU_FAMILY_RE.match(v):
        raise ConfigError(key, v, "a general-purpose instance type such as m7i.large: the system node group "
                                  "runs add-ons and controllers (CoreDNS, Karpenter), never GPU pods, so a GPU "
                                  "instance there costs GPU prices for nothing; put GPU instances in nodeGroups "
                                  "or karpenter.nodePools")
    return v

_schema(_system_type, {"type": "string", "pattern": _EC2_TYPE,
                       "not": {"anyOf": [{"enum": list(catalog.INSTANCE_TYPES)}, {"pattern": _GPU_FAMILY_RE.pattern}]}})


def _mig_parted_entries(v: Any, key: str) -> dict:
    if not isinstance(v, Mapping) or not all(
            isinstance(n, str) and layouts.is_label_value(n) and isinstance(e, list) and e
            and all(isinstance(x, Mapping) for x in e) for n, e in v.items()):
        raise ConfigError(key, v, "a map of layout label value to its mig-parted entries, as make diff prints "
                                  "them, e.g. {all-balanced: [{devices: all, mig-enabled: true, mig-devices: "
                                  "{1g.5gb: 2, 2g.10gb: 1, 3g.20gb: 1}}]}")
    return dict(v)

_schema(_mig_parted_entries, {"type": "object", "propertyNames": layouts.LABEL_VALUE_SCHEMA,
                              "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "object"}}})


def _like(regex: str, what: str) -> Callable[[Any, str], str]:
    def check(v: Any, key: str) -> str:
        if not isinstance(v, str) or not re.fullmatch(regex, v):
            raise ConfigError(key, v, f"a string like {what}")
        return v
    return _schema(check, {"type": "string", "pattern": regex})


# --- the model ------------------------------------------------------------------------------------

class ClusterConfig(_Model):
    name: str = _field("name", check=_name, doc="EKS cluster name; also the Karpenter discovery tag value")
    kubernetes_version: str = _field("kubernetesVersion", DEFAULT_KUBERNETES_VERSION, check=_k8s_version,
                                     doc="EKS control-plane version (quote it in YAML); past extended "
                                         "support it is an error, in extended support a warning")
    endpoint_public_access: bool = _field("endpointPublicAccess", True, check=_bool,
                                          doc="expose the API endpoint publicly (restricted by publicAccessCidrs)")
    endpoint_private_access: bool = _field("endpointPrivateAccess", True, check=_bool,
                                           doc="reach the API endpoint from inside the VPC")
    public_access_cidrs: tuple[str, ...] = _field("publicAccessCidrs", (), check=_list_of(_client_cidr),
                                                  doc="IPv4 CIDRs allowed to reach a public endpoint; required "
                                                      "when public; never a documentation range (RFC 5737)")
    log_types: tuple[str, ...] = _field("logTypes", LOG_TYPES, check=_list_of(_one_of(*LOG_TYPES), unique=True),
                                        doc="control-plane log types sent to CloudWatch")
    admin_role_arns: tuple[str, ...] = _field("adminRoleArns", (), check=_list_of(_role_arn, unique=True),
                                              doc="IAM roles (a team, the CI deploy role) that get EKS access "
                                                  "entries with the cluster-admin access policy")


class NetworkConfig(_Model):
    vpc_cidr: str | None = _field("vpcCidr", None, check=_vpc_cidr,
                                  doc="IPv4 CIDR of a new VPC (default 10.0.0.0/16; /16 to /20)")
    availability_zones: int = _field("availabilityZones", 3, check=_int_between(2, 6),
                                     doc="AZs of a new VPC (one private and one public subnet each)")
    vpc_id: str | None = _field("vpcId", None, check=_string, doc="use this existing VPC instead")
    private_subnet_ids: tuple[str, ...] = _field("privateSubnetIds", (), check=_list_of(_string),
                                                 doc="existing private subnets (nodes)")
    public_subnet_ids: tuple[str, ...] = _field("publicSubnetIds", (), check=_list_of(_string),
                                                doc="existing public subnets (load balancers)")

    @property
    def existing(self) -> bool:
        return self.vpc_id is not None

    @property
    def cidr(self) -> str:
        return self.vpc_cidr or "10.0.0.0/16"


class SystemNodeGroupConfig(_Model):
    instance_type: str = _field("instanceType", "m7i.large", check=_system_type,
                                doc="instance type of the add-on/controller nodes (not a GPU type)")
    size: int = _field("size", 2, check=_int_between(2, 10), doc="node count (2+ so controllers survive a node)")


class GpuOperatorConfig(_Model):
    version: str = _field("version", GPU_OPERATOR_VERSION,
                          check=_pinned(GPU_OPERATOR_VERSION, "the chart values it is given and the MIG manager and "
                                                              "device plugin configs"),
                          doc="gpu-operator chart version (pinned; values are checked against it)")
    mig_strategy: str = _field("migStrategy", "mixed", check=_one_of("none", "single", "mixed"),
                               doc="how MIG slices are advertised: mixed = nvidia.com/mig-<profile>")
    retained_mig_layouts: Mapping[str, Any] = _field(
        "retainedMigLayouts", {}, check=_mig_parted_entries,
        doc="mig-parted entries of layout labels live nodes still carry (make diff prints them when a change drops one)")


class NodeGroupConfig(_Model):
    name: str = _field("name", check=_name, doc="managed node group name (stable: a rename replaces the nodes)")
    instance_type: str = _field("instanceType", check=_instance_type, doc="GPU instance type")
    min_size: int = _field("minSize", 0, check=_int_between(0, MAX_POOL_NODES), doc="minimum nodes")
    desired_size: int = _field("desiredSize", 1, check=_int_between(0, MAX_POOL_NODES), doc="desired nodes")
    max_size: int = _field("maxSize", 1, check=_int_between(1, MAX_POOL_NODES), doc="maximum nodes")
    disk_size_gib: int = _field("diskSizeGiB", 200, check=_int_between(50, 16384),
                                doc="encrypted gp3 root volume (CUDA images are large)")
    capacity_type: str = _field("capacityType", "ON_DEMAND",
                                check=_one_of("ON_DEMAND", "SPOT", why={"CAPACITY_BLOCK": CAPACITY_BLOCK_WHY}),
                                doc="EC2 capacity type")
    mig_layout: str = _field("migLayout", "all-disabled", check=_string,
                             doc="MIG layout label: an NVIDIA name (all-balanced, all-1g.5gb, ...) or a migLayouts key")
    sharing: Any = _field("sharing", None, doc="time-slicing: {timeSlicing: {replicas, resources}}")
    mig_layout_change: str = _field("migLayoutChange", "replace", check=_one_of("replace", "in-place"),
                                    doc="replace: a layout change is a new node group, created before the old one "
                                        "is drained; in-place relabels live nodes (needs allowDisruption)")
    update_strategy: str = _field("updateStrategy", "MINIMAL", check=_one_of("MINIMAL", "DEFAULT"),
                                  doc="how EKS rolls the nodes on an AMI, version or launch template update, one "
                                      "node at a time: MINIMAL terminates a node before launching its replacement "
                                      "(no extra GPU instances or quota; the pool is a node short meanwhile), "
                                      "DEFAULT launches replacements first (up to twice the zones at once)")
    allocation: str = _field("allocation", "devicePlugin", check=_one_of("devicePlugin", "dra"),
                             doc="how pods get the slices: devicePlugin (extended resources) or dra (ResourceClaims "
                                 "through the NVIDIA DRA driver, EKS 1.34+; docs/dra.md)")


class NodePoolConfig(_Model):
    name: str = _field("name", check=_name, doc="Karpenter NodePool name (stable: a rename drains its nodes)")
    instance_types: tuple[str, ...] = _field("instanceTypes", check=_list_of(_instance_type, min_len=1, unique=True),
                                             doc="GPU instance types (one GPU model when MIG is used)")
    capacity_types: tuple[str, ...] = _field("capacityTypes", ("on-demand",),
                                             check=_capacity_types,
                                             doc="karpenter.sh/capacity-type values")
    mig_layout: str = _field("migLayout", "all-disabled", check=_string, doc="MIG layout label of the pool's nodes")
    max_nodes: int = _field("maxNodes", 1, check=_int_between(1, MAX_POOL_NODES),
                            doc="cap on nodes, rendered as NodePool limits (GPUs, CPU, memory)")
    consolidate_after: str = _field("consolidateAfter", "10m", check=_duration,
                                    doc="how long a node must be empty before Karpenter removes it")
    expire_after: str = _field("expireAfter", "Never",
                               check=_duration,
                               doc="node lifetime before a forced replacement; Never for GPU pools (AMI bumps "
                                   "arrive as drift, inside the maintenance window)")
    drift_schedule: str | None = _field("driftSchedule", None, check=_string,
                                        doc="maintenance window start, cron in UTC ('M H * * *' or 'M H * * D'): "
                                            "Drifted nodes are replaced only inside it")
    drift_duration: str | None = _field("driftDuration", None, check=_string,
                                        doc="maintenance window length, e.g. 4h or 1h30m")
    disk_size_gib: int = _field("diskSizeGiB", 200, check=_int_between(50, 16384), doc="encrypted gp3 root volume")
    sharing: Any = _field("sharing", None, doc="time-slicing, as for node groups")
    max_pods: int | None = _field("maxPods", None, check=_int_between(1, 1000),
                                  doc="kubelet maxPods of the pool's nodes (EC2NodeClass kubelet.maxPods); at most "
                                      "EKS's limit for each instance type, which applies when unset")
    allocation: str = _field("allocation", "devicePlugin", check=_one_of("devicePlugin", "dra"),
                             doc="how pods get the slices: devicePlugin (extended resources) or dra (ResourceClaims "
                                 "through the NVIDIA DRA driver, refused on NodePools while Karpenter cannot provision "
                                 "for claims; docs/dra.md)")


class KarpenterConfig(_Model):
    enabled: bool = _field("enabled", False, check=_bool, doc="install Karpenter and the GPU NodePools")
    version: str = _field("version", KARPENTER_VERSION,
                          check=_pinned(KARPENTER_VERSION, "its NodePool, EC2NodeClass and NodeOverlay objects, the "
                                                           "checks against its CRDs and its chart values"),
                          doc="Karpenter chart/CRD version (pinned; objects are checked against its CRDs)")
    ami_alias_version: str = _field("amiAliasVersion", AMI_ALIAS_VERSION,
                                    check=_like(r"^v[0-9]{8}$", "vYYYYMMDD"),
                                    doc="AL2023 AMI release for amiSelectorTerms alias al2023@<version>")
    node_pools: tuple[NodePoolConfig, ...] = _blocks("nodePools", NodePoolConfig, doc="GPU NodePools")


def _labels(v: Any, key: str) -> Mapping[str, str]:
    if not isinstance(v, Mapping) or not all(isinstance(k, str) and k and isinstance(x, str) for k, x in v.items()):
        raise ConfigError(key, v, "a mapping of Kubernetes label names to string values")
    return dict(v)

_schema(_labels, {"type": "object", "propertyNames": {"minLength": 1}, "additionalProperties": {"type": "string"}})


class ObservabilityConfig(_Model):
    enabled: bool = _field("enabled", False, check=_bool,
                           doc="per-slice metrics, alerts and a Grafana dashboard (docs/facts.md §9)")
    prometheus_operator: str = _field("prometheusOperator", "install", check=_one_of("install", "existing"),
                                      doc="install = the pinned kube-prometheus-stack (Prometheus, Grafana, "
                                          "kube-state-metrics); existing = the cluster has one: only the "
                                          "ServiceMonitor, alert rules and dashboard")
    version: str = _field("version", KUBE_PROMETHEUS_STACK_VERSION,
                          check=_pinned(KUBE_PROMETHEUS_STACK_VERSION, "the chart values it is given"),
                          doc="kube-prometheus-stack chart version (pinned; values are checked against it)")
    namespace: str = _field("namespace", "monitoring", check=_name,
                            doc="namespace of the stack (created with install) and of the rules and dashboard")
    selector_labels: Mapping[str, str] = _field("selectorLabels", {}, check=_labels,
                                                doc="labels on the ServiceMonitor and PrometheusRule, for an "
                                                    "existing Prometheus whose selectors require them")
    mig_pending_alert_after: str = _field("migPendingAlertAfter", "30m", check=_duration,
                                          doc="alert when a node's MIG config stays pending/rebooting this long")
    idle_alert_after: str = _field("idleAlertAfter", "3h", check=_duration,
                                   doc="alert when a slice is idle (allocated but unused, or unallocated) this long")


class WorkloadConfig(_Model):
    name: str = _field("name", check=_name, doc="Deployment name")
    pool: str = _field("pool", check=_string, doc="node group or NodePool the workload runs on")
    replicas: int = _field("replicas", 1, check=_int_between(0, 10000), doc="pods")
    profile: str | None = _field("profile", None, check=_string, doc="MIG profile each pod requests, e.g. 1g.5gb")
    gpus: int | None = _field("gpus", None, check=_int_between(1, 8, "no instance type here has more than 8 GPUs"),
                              doc="whole (or time-sliced) GPUs per pod, for pools without MIG")
    image: str = _field("image", CUDA_IMAGE, check=_string, doc="container image (a real CUDA tag)")
    fallback_profiles: tuple[str, ...] = _field("fallbackProfiles", (), check=_list_of(_string, unique=True),
                                                doc="dra pools: MIG profiles to take, in order, when profile has "
                                                    "none free (the claim's firstAvailable list)")
    memory_gb: int | None = _field("memoryGB", None, check=_int_between(1, 1000),
                                   doc="dra pools, instead of profile or gpus: one slice or GPU of at least this "
                                       "nominal memory (GB)")
    claim_sharing: str | None = _field("claimSharing", None, check=_one_of("timeSlicing", "mps"),
                                       doc="dra pools: all replicas share one claim's device, time-sliced (whole "
                                           "GPUs) or through MPS (the driver's MPSSupport gate)")
    do_not_disrupt: bool = _field("doNotDisrupt", False, check=_bool,
                                  doc="annotate pods karpenter.sh/do-not-disrupt: \"true\" (blocks voluntary "
                                      "disruption of their node)")


class StackConfig(_Model):
    cluster: ClusterConfig = _block("cluster", ClusterConfig, doc="EKS cluster")
    max_gpu_nodes: int = _field("maxGpuNodes", check=_int_between(0, 1000),
                                doc="cost guard, stated per stack: most GPU nodes it may run (node group maxSize "
                                    "plus the nodes each NodePool's limits admit)")
    network: NetworkConfig = _block("network", NetworkConfig, NetworkConfig(), doc="new VPC or existing subnets")
    system_node_group: SystemNodeGroupConfig = _block("systemNodeGroup", SystemNodeGroupConfig, SystemNodeGroupConfig(),
                                                      doc="nodes for add-ons and controllers")
    gpu_operator: GpuOperatorConfig = _block("gpuOperator", GpuOperatorConfig, GpuOperatorConfig(),
                                             doc="NVIDIA GPU Operator")
    node_groups: tuple[NodeGroupConfig, ...] = _blocks("nodeGroups", NodeGroupConfig, doc="GPU managed node groups")
    workloads: tuple[WorkloadConfig, ...] = _blocks("workloads", WorkloadConfig, doc="sample workloads")
    mig_layouts: Mapping[str, MigLayout] = _field("migLayouts", {}, check=layouts.parse_custom_layouts,
                                                  doc="custom MIG layouts")
    karpenter: KarpenterConfig = _block("karpenter", KarpenterConfig, KarpenterConfig(),
                                        doc="Karpenter and GPU NodePools")
    observability: ObservabilityConfig = _block("observability", ObservabilityConfig, ObservabilityConfig(),
                                                doc="metrics, alerts and dashboard for the slices")
    price_per_hour: Mapping[str, float] = _field("pricePerHour", {}, check=_prices,
                                                 doc="USD per hour by instance type, overriding the program's "
                                                     "price table")
    allow_disruption: bool = _field("allowDisruption", False, check=_bool,
                                    doc="let the policy pack pass changes that disrupt live GPU nodes "
                                        "(nodeGroups[].migLayoutChange: in-place)")


def documented_keys() -> dict[str, list[tuple[str, str, str]]]:
    """Every config key with its default and doc: docs/config.md's table is tested against it."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    classes: dict[str, type[BaseModel]] = {
        "": StackConfig, "cluster": ClusterConfig, "network": NetworkConfig,
        "systemNodeGroup": SystemNodeGroupConfig, "gpuOperator": GpuOperatorConfig,
        "nodeGroups[]": NodeGroupConfig, "karpenter": KarpenterConfig,
        "karpenter.nodePools[]": NodePoolConfig, "workloads[]": WorkloadConfig,
        "observability": ObservabilityConfig}
    for prefix, cls in classes.items():
        rows = []
        for f in cls.model_fields.values():
            default = None if f.is_required() else f.get_default(call_default_factory=True)
            shown = ("required" if f.is_required() else
                     "see below" if isinstance(default, BaseModel) else json.dumps(default))
            rows.append((str(f.alias), shown, f.description or ""))
        out[prefix] = rows
    return out


def decode(value: Any) -> Any:
    """The engine passes structured values as JSON strings; YAML-loaded stack files pass objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _namespace_error(key: str, value: Any) -> ConfigError | None:
    """A key of a namespace no provider of the stack reads (a typo would silently drop its config)."""
    ns, _, short = key.rpartition(":")
    if ns in ("", NAMESPACE) or ns in KNOWN_NAMESPACES:
        return None
    hint = difflib.get_close_matches(ns, KNOWN_NAMESPACES, n=1)
    return ConfigError(key, decode(value), "a key of a namespace this stack uses; "
                       + (f"did you mean {hint[0]}:{short}? " if hint else "")
                       + "known namespaces: " + ", ".join(KNOWN_NAMESPACES)
                       + " (keys of any other namespace would be silently ignored)")


def own_keys(raw: Mapping[str, Any]) -> dict[str, Any]:
    """This program's keys (`gpu-slicing:x` or bare `x`) by short name, decoded; keys of namespaces no
    provider of the stack reads are `ConfigError`s, all of them at once."""
    raise_all(e for k, v in raw.items() if (e := _namespace_error(str(k), v)) is not None)
    return {str(k).rpartition(":")[2]: decode(v) for k, v in raw.items()
            if str(k).rpartition(":")[0] in ("", NAMESPACE)}


def parse_shape(raw: Mapping[str, Any]) -> StackConfig:
    """The shape and types of a whole stack config (every key known, every value of its type and range,
    names unique within each list, derived AWS names within their limits). Every error is reported at
    once, in stack-file order (`ConfigErrors` when there are several). Rules across keys, pools and
    capacity come after, in `gpu_slicing.stack.load_stack`."""
    found: list[tuple[tuple[int, ...], ConfigError]] = []
    ours: dict[str, Any] = {}
    top: dict[str, int] = {}  # short key -> its position in the stack file
    for i, (k, v) in enumerate(raw.items()):
        err = _namespace_error(str(k), v)
        if err is not None:
            found.append(((i,), err))
        elif str(k).rpartition(":")[0] in ("", NAMESPACE):
            short = str(k).rpartition(":")[2]
            ours[short], top[short] = decode(v), i
    cfg: StackConfig | None = None
    try:
        cfg = StackConfig.model_validate(ours, by_name=False)
    except ValidationError as e:
        found += [(_position(err["loc"], ours, top, len(raw)), x) for err in e.errors(include_url=False)
                  for x in _errors(err)]
    found += [(_position(loc, ours, top, len(raw)), x) for loc, x in _duplicate_names(ours)]
    names = cfg if cfg is not None else _names_view(ours)
    if names is not None:
        found += [(_position(_loc(x.key), ours, top, len(raw)), x) for x in _name_errors(names)]
    found.sort(key=lambda f: f[0])
    raise_all(x for _, x in found)
    assert cfg is not None
    return cfg


def _key(loc: tuple) -> str:
    """`gpu-slicing:nodeGroups[0].minSize` from pydantic's ('nodeGroups', 0, 'minSize')."""
    out = NAMESPACE
    for i, part in enumerate(loc):
        out += f"[{part}]" if isinstance(part, int) else (":" if i == 0 else ".") + str(part)
    return out


@functools.cache
def _fields_by_key(cls: type[BaseModel]) -> dict[str, Any]:
    return {str(f.alias): f for f in cls.model_fields.values()}


def _model_at(loc: tuple) -> type[BaseModel]:
    """The config block a location is in (list indexes step into the list's blocks)."""
    cls: type[BaseModel] = StackConfig
    for part in loc:
        if isinstance(part, str):
            hint = _fields_by_key(cls)[part].annotation
            cls = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
    return cls


def _errors(err: Any) -> list[ConfigError]:
    """One pydantic error as this program's errors: the full key, the value, what is allowed."""
    loc, kind = tuple(err["loc"]), err["type"]
    key = _key(loc)
    if kind == "config":
        return [ConfigError(k.replace(_HERE, key), v, a.replace(_HERE, key)) for k, v, a in err["ctx"]["errors"]]
    if kind == "extra_forbidden":
        known = _fields_by_key(_model_at(loc[:-1]))
        return [ConfigError(key, err["input"], "unknown key; " + did_you_mean(loc[-1], known, quote=True)
                            + "known keys: " + ", ".join(known))]
    if kind == "missing":
        return [ConfigError(key, None, f"required ({_fields_by_key(_model_at(loc[:-1]))[loc[-1]].description})")]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return [ConfigError(key, err["input"], "a mapping with keys " + ", ".join(_keys(_model_at(loc))))]
    return [ConfigError(key, err["input"], err["msg"])]


def _position(loc: tuple, ours: Mapping[str, Any], top: Mapping[str, int], end: int) -> tuple[int, ...]:
    """Where `loc` is in the stack file: a key's index in its mapping, or past the end for a missing one."""
    if not loc:
        return (end,)
    out, node = [top.get(str(loc[0]), end)], ours.get(str(loc[0]))
    for part in loc[1:]:
        if isinstance(node, Mapping):
            keys = list(node)
            out.append(keys.index(part) if part in node else len(keys))
            node = node.get(part)
        elif isinstance(node, (list, tuple)) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        else:
            out.append(0)
            node = None
    return tuple(out)


def _loc(key: str) -> tuple:
    """pydantic's location of a full key: ('nodeGroups', 0, 'name') from `gpu-slicing:nodeGroups[0].name`."""
    parts = re.findall(r"\[\d+\]|[^.\[\]]+", key.partition(":")[2])
    return tuple(int(p[1:-1]) if p.startswith("[") else p for p in parts)


def _names_view(ours: Mapping[str, Any]) -> StackConfig | None:
    """The config names AWS names derive from, each as far as it is valid (an invalid one reads as ''),
    so their lengths are checked even when other keys are wrong; None without a valid cluster name."""
    def name(block: Any) -> str:
        n = block.get("name") if isinstance(block, Mapping) else None
        return n if isinstance(n, str) and _NAME_RE.fullmatch(n) else ""

    def entries(v: Any) -> list:
        return list(v) if isinstance(v, (list, tuple)) else []

    def types(pool: Any) -> tuple[str, ...]:
        raw = pool.get("instanceTypes") if isinstance(pool, Mapping) else None
        return tuple(t for t in entries(raw) if isinstance(t, str) and t in catalog.INSTANCE_TYPES)

    cluster, karpenter = name(ours.get("cluster")), ours.get("karpenter")
    if not cluster:
        return None
    karpenter = karpenter if isinstance(karpenter, Mapping) else {}
    return StackConfig.model_construct(
        cluster=ClusterConfig.model_construct(name=cluster),
        node_groups=tuple(NodeGroupConfig.model_construct(name=name(g)) for g in entries(ours.get("nodeGroups"))),
        karpenter=KarpenterConfig.model_construct(
            enabled=karpenter.get("enabled") is True,
            node_pools=tuple(NodePoolConfig.model_construct(name=name(p), instance_types=types(p))
                             for p in entries(karpenter.get("nodePools")))))


def _duplicate_names(ours: Mapping[str, Any]) -> list[tuple[tuple, ConfigError]]:
    """Entries of a list of blocks named like an earlier entry (workloads and pools are found by name)."""
    karpenter = ours.get("karpenter")
    lists = {("nodeGroups",): ours.get("nodeGroups"), ("workloads",): ours.get("workloads"),
             ("karpenter", "nodePools"): karpenter.get("nodePools") if isinstance(karpenter, Mapping) else None}
    out = []
    for loc, entries in lists.items():
        seen: set[str] = set()
        for i, entry in enumerate(entries if isinstance(entries, (list, tuple)) else ()):
            name = entry.get("name") if isinstance(entry, Mapping) else None
            if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                continue  # a bad name is its own error
            if name in seen:
                out.append(((*loc, i, "name"), ConfigError(_key((*loc, i, "name")), name,
                                                            "a name not used by another entry")))
            seen.add(name)
    return out


class DerivedName(NamedTuple):
    """A name the program builds from config names, and the config key that makes it long."""

    key: str  # the config key, e.g. gpu-slicing:nodeGroups[0].name
    value: str  # that key's value
    name: str  # the name AWS or Kubernetes gets
    limit: int
    what: str


def aws_names(cfg: StackConfig) -> list[DerivedName]:
    """Every name the program derives from config names, with its AWS/Kubernetes length limit.
    Auto-named resources count Pulumi's "-<7 hex>" suffix."""
    from . import karpenter_names as karpenter  # what Karpenter's objects are named (gpu_slicing.karpenter too)

    c = cfg.cluster.name

    def cluster_named(name: str, limit: int, what: str) -> DerivedName:
        return DerivedName(f"{NAMESPACE}:cluster.name", c, name, limit, what)

    out = [cluster_named(f"{c}-system", EKS_NODEGROUP_NAME_MAX - changes.TOKEN_SUFFIX_LENGTH,
                         "EKS node group name of the system node group, before the '-<7 hex>' token of what forces "
                         "its replacement"),
           cluster_named(f"{c}-system-role" + AUTONAME_SUFFIX, IAM_ROLE_NAME_MAX,
                         "IAM role name of the system node group (auto-named)")]
    for i, g in enumerate(cfg.node_groups):
        key = f"{NAMESPACE}:nodeGroups[{i}].name"
        out += [DerivedName(key, g.name, f"{c}-{g.name}", EKS_NODEGROUP_NAME_MAX - changes.TOKEN_SUFFIX_LENGTH,
                            "EKS node group name <cluster>-<nodeGroup>, before the '-<7 hex>' token of what "
                            "forces its replacement (gpu_slicing.changes.node_group_name)"),
                DerivedName(key, g.name, f"{c}-{g.name}-role" + AUTONAME_SUFFIX, IAM_ROLE_NAME_MAX,
                            "IAM role name <cluster>-<nodeGroup>-role plus Pulumi's auto-name suffix")]
    if cfg.karpenter.enabled:
        out += [cluster_named(karpenter.node_role_name(c), IAM_ROLE_NAME_MAX,
                              "IAM role name KarpenterNodeRole-<cluster>"),
                cluster_named(karpenter.controller_role_name(c), IAM_ROLE_NAME_MAX,
                              "IAM role name KarpenterControllerRole-<cluster>"),
                cluster_named(karpenter.queue_name(c), SQS_QUEUE_NAME_MAX, "SQS queue name Karpenter-<cluster>")]
        out += [cluster_named(karpenter.rule_name(c, k), EVENTBRIDGE_RULE_NAME_MAX,
                              "EventBridge rule name Karpenter-<cluster>-<event>") for k in karpenter.INTERRUPTION_RULES]
        out += [cluster_named(karpenter.policy_name(c, k), IAM_POLICY_NAME_MAX, "IAM policy name")
                for k in karpenter.CONTROLLER_POLICIES]
        for i, p in enumerate(cfg.karpenter.node_pools):
            key = f"{NAMESPACE}:karpenter.nodePools[{i}].name"
            out.append(DerivedName(key, p.name, p.name, K8S_LABEL_VALUE_MAX,
                                   "NodePool/EC2NodeClass name (also the karpenter.sh/nodepool label value)"))
            out += [DerivedName(key, p.name, karpenter.overlay_name(p.name, t), K8S_LABEL_VALUE_MAX,
                                f"NodeOverlay name <nodePool>-<instance type> for {t}") for t in p.instance_types]
    return out


def _name_errors(cfg: StackConfig) -> list[ConfigError]:
    """A derived name over its limit, once per config key (the first name it makes too long)."""
    out: dict[str, ConfigError] = {}
    for d in aws_names(cfg):
        if len(d.name) > d.limit and d.key not in out:
            out[d.key] = ConfigError(d.key, d.value, f"a shorter name: the {d.what} would be {len(d.name)} "
                                                     f"characters ({d.name!r}), over the limit of {d.limit}")
    return list(out.values())
