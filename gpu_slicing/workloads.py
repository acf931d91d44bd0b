"""Sample workloads: each resolved once against its pool (`resolve`, `verification`), then as plain Kubernetes
objects: one Deployment per configured workload, and a Job that proves a slice works by running `nvidia-smi -L`
inside it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from . import catalog, dra
from .changes import labelled
from .config import NAMESPACE, WorkloadConfig
from .errors import ConfigError, did_you_mean
from .labels import GPU_TAINT, MIG_CONFIG_LABEL, POOL_LABEL
from .pools import Pool

WORKLOADS_NAMESPACE = "gpu-workloads"  # where the sample workloads run
VERIFY_JOB = "verify-mig-slice"
_CPU, _MEMORY = "100m", "128Mi"
# A pod holding a slice stops within this many seconds of SIGTERM: the command traps TERM (a shell as
# PID 1 would otherwise ignore it and hold the slice for the whole grace period, docs/facts.md §10).
TERMINATION_GRACE_SECONDS = 15
# Slice-holding Deployments never surge: a surge pod asks for a slice that does not exist (or makes
# Karpenter launch a GPU node for it). Old pods go first, a quarter at a time.
ROLLOUT = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}}
SERVE_COMMAND = ["bash", "-c", "nvidia-smi -L; trap 'exit 0' TERM; sleep infinity & wait"]
# Karpenter does not voluntarily disrupt (drift, consolidation) a node running such a pod (docs/facts.md §8).
DO_NOT_DISRUPT = {"karpenter.sh/do-not-disrupt": "true"}


@dataclass(frozen=True)
class Workload:
    """A workload resolved once against its pool: what its pods request, the Kubernetes names it is built under
    and what its Deployment waits for. Every command (the program, the plan's checks, the capacity plan) reads
    these, so none derives a name or a resource on its own."""

    config: WorkloadConfig
    pool: Pool
    key: str  # its config path, for error messages
    resource: str  # what a pod requests: the device plugin's extended resource, or the DRA device kind counted
    count: int  # units of `resource` per pod
    alternatives: tuple[str, ...] = ()  # the other DRA device kinds its claim matches (the plan may count those)
    claim: str | None = None  # its ResourceClaimTemplate (or shared ResourceClaim) on a DRA pool
    verify_job: str | None = None  # the verification Job built from this workload's pod spec, if it leads one
    waits_for: tuple[str, ...] = ()  # the verification Jobs its Deployment starts after

    @property
    def name(self) -> str:
        """The Deployment's name (and the workload's everywhere else)."""
        return self.config.name


def resource(w: WorkloadConfig, pool: Pool) -> str:
    """The extended resource a pod of `w` requests on `pool` (what the device plugin advertises); on a DRA
    pool, the device kind its claim is counted against."""
    if pool.allocation == dra.DRA:
        return dra.claim_resource(w, pool)
    if w.profile is not None:
        base = catalog.resource_for_profile(w.profile) if pool.strategy == "mixed" else catalog.WHOLE_GPU
    else:
        base = catalog.WHOLE_GPU
    if pool.sharing is not None and pool.sharing.shares(base):
        return pool.sharing.advertised_as(base)
    return base


def count(w: WorkloadConfig) -> int:
    """Units of the resource per pod: one slice per pod for a MIG profile, else `gpus`."""
    return 1 if w.profile is not None else (w.gpus or 1)


def resolve(i: int, w: WorkloadConfig, pools: Mapping[str, Pool], version: str) -> Workload:
    """Workload `i` against its pool: its rules (each needs the ones before it to hold; the first that fails is
    raised), then what it requests and its claim's name. `verification` adds what it waits for."""
    key = f"{NAMESPACE}:workloads[{i}]"
    pool = pools.get(w.pool)
    if pool is None:
        raise ConfigError(f"{key}.pool", w.pool, "the name of a node group or NodePool: "
                          + did_you_mean(w.pool, pools) + (", ".join(pools) or "(none configured)"))
    if sum(x is not None for x in (w.profile, w.gpus, w.memory_gb)) != 1:
        raise ConfigError(key, {"profile": w.profile, "gpus": w.gpus, **({"memoryGB": w.memory_gb} if w.memory_gb
                                                                          else {})},
                          "exactly one of profile (a MIG slice) or gpus (whole or time-sliced GPUs)"
                          + (" or memoryGB (dra pools)" if pool.allocation == dra.DRA else ""))
    dra.workload_rule(key, w, pool, version)
    if w.profile is not None:
        if not pool.layout.mig_enabled:
            raise ConfigError(f"{key}.profile", w.profile,
                              f"no MIG profile: pool {pool.name} has MIG disabled ({pool.layout.name}); use gpus")
        if w.profile not in pool.layout.profile_names():
            raise ConfigError(f"{key}.profile", w.profile,
                              f"a profile that layout {pool.layout.name} of pool {pool.name} creates: "
                              + ", ".join(sorted(pool.layout.profile_names())))
    wants = resource(w, pool)
    if w.gpus is not None and pool.per_node.get(wants, 0) == 0:
        raise ConfigError(f"{key}.gpus", w.gpus,
                          f"a MIG profile: pool {pool.name} ({pool.layout.name}, {pool.strategy} strategy) "
                          f"advertises {wants}: 0, so whole-GPU requests never schedule")
    on_dra = pool.allocation == dra.DRA
    return Workload(w, pool, key, wants, count(w), dra.claim_resources(w, pool)[1:] if on_dra else (),
                    dra.claim_name(w) if on_dra else None)


def verification(workloads: Sequence[Workload]) -> tuple[Workload, ...]:
    """Which workloads lead a verification Job and what each Deployment waits for. The first workload leads one
    on its pool; the Deployments asking for the same resource on that pool wait for it (they would race it for
    the pool's last slice). Each further DRA pool gets one from its first workload (its claim), and every
    workload of that pool waits for it."""
    if not workloads:
        return ()
    first = workloads[0]
    leads = {first.name: verify_job_name(first.pool)}
    dra_jobs: dict[str, str] = {}
    for w in workloads:
        if w.claim is not None and w.pool.name != first.pool.name and w.pool.name not in dra_jobs:
            dra_jobs[w.pool.name] = leads[w.name] = verify_job_name(w.pool)
    out = []
    for w in workloads:
        competes = (w.pool.name, w.resource) == (first.pool.name, first.resource)
        waits = ((leads[first.name],) if competes else ()) + ((dra_jobs[w.pool.name],)
                                                                if w.pool.name in dra_jobs else ())
        out.append(dataclasses.replace(w, verify_job=leads.get(w.name), waits_for=waits))
    return tuple(out)


def node_selector(pool: Pool) -> dict[str, str]:
    """The pool's label, and on MIG pools the layout label too: a pod never lands on a node whose
    layout is not (yet) the one it was planned for."""
    sel = {POOL_LABEL: pool.name}
    if pool.gpu.mig_capable:
        sel[MIG_CONFIG_LABEL] = pool.layout.name
    if pool.allocation == dra.DRA:
        sel.update(dra.node_labels(pool))  # never a node where the device plugin could hand out the GPU too
    return sel


def gpu_toleration() -> dict[str, str]:
    return {"key": GPU_TAINT["key"], "operator": "Equal", "value": GPU_TAINT["value"], "effect": GPU_TAINT["effect"]}


def pod_spec(w: Workload, command: list[str], restart: str = "Always", per_pod: int | None = None) -> dict[str, Any]:
    """Non-root, no privilege escalation, requests = limits (Guaranteed QoS), tolerating the GPU taint. `per_pod`:
    units of the workload's resource the pod asks for, if not the workload's own count."""
    amount = {"cpu": _CPU, "memory": _MEMORY}
    claims = dra.pod_resource_claims(w.config, claim=w.claim) if w.claim is not None else None
    if claims is None:  # the device plugin's extended resource; on a DRA pool the claim brings the devices
        amount[w.resource] = str(w.count if per_pod is None else per_pod)
    return {
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "nodeSelector": node_selector(w.pool),
        "tolerations": [gpu_toleration()],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,
        "containers": [{
            "name": "cuda",
            "image": w.config.image,
            "command": command,
            "resources": {"requests": dict(amount), "limits": dict(amount),
                          **({"claims": [{"name": c["name"]} for c in claims]} if claims else {})},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
        }],
        **({"resourceClaims": claims} if claims else {}),
    }


def deployment(w: Workload) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": w.name, "app.kubernetes.io/part-of": "gpu-slicing"}
    return {
        "metadata": {"name": w.name, "namespace": WORKLOADS_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": w.config.replicas,
            "strategy": ROLLOUT,
            "selector": {"matchLabels": {"app.kubernetes.io/name": w.name}},
            "template": {"metadata": {"labels": labels, **({"annotations": dict(DO_NOT_DISRUPT)}
                                                            if w.config.do_not_disrupt else {})},
                         "spec": pod_spec(w, SERVE_COMMAND)},
        },
    }


def node_generation(pool: Pool) -> dict[str, Any]:
    """What makes a pool's nodes new, with free slices, when the verification Job runs: for a node group what
    replaces it (instance type, AMI type, layout label; the new group is up before the Deployments move onto
    it), for a NodePool its name and types (a new NodePool starts empty). A template change (image, profile,
    MIG strategy) or a rolling update keeps the generation: its nodes are full by then, so a re-run would wait
    for a slice that frees only after the Deployments it guards (docs/facts.md §10)."""
    ident: dict[str, Any] = {"pool": pool.name, "kind": pool.kind, "types": [t.name for t in pool.instance_types]}
    if pool.kind == "nodeGroup":
        ident.update(amiType=pool.instance_types[0].ami_type, layout=pool.labels.get(MIG_CONFIG_LABEL))
    if pool.allocation == dra.DRA:  # a switch to DRA is a new node group (components/gpu_node_group.py)
        ident["allocation"] = pool.allocation
    return ident


def verify_job_name(pool: Pool) -> str:
    """`verify-mig-slice-<token of the pool's node generation>`: a new generation is a new Job (a new name, so
    it never collides with the finished one), the same generation keeps the Job that already ran."""
    return labelled(VERIFY_JOB, node_generation(pool))


def verify_job(w: Workload) -> dict[str, Any]:
    """A Job that lists the GPU devices its pod sees: a MIG pod sees exactly one `MIG ...` device.

    It asks for the same slice as workload `w` (one pod, one slice or one GPU), so it runs to completion before
    the Deployments exist (they wait for it in the graph): a finished pod holds no slice, so it never races a
    Deployment that fills the pool (docs/facts.md §10). Named for the pool's node generation (`verify_job_name`),
    and its spec is kept once created (the component ignores later spec changes), so it runs again only on new
    nodes. On a DRA pool the pod holds a claim from `w`'s own template (or its shared claim) and checks that it
    brought what it asked for."""
    if w.verify_job is None:
        raise ValueError(f"workload {w.name} leads no verification Job (gpu_slicing.workloads.verification)")
    labels = {"app.kubernetes.io/name": VERIFY_JOB, "app.kubernetes.io/part-of": "gpu-slicing"}
    command = dra.verify_command(w.config, w.pool) if w.claim is not None else ["nvidia-smi", "-L"]
    return {
        "metadata": {"name": w.verify_job, "namespace": WORKLOADS_NAMESPACE, "labels": labels},
        "spec": {"backoffLimit": 6, "template": {"metadata": {"labels": labels},
                                                 "spec": pod_spec(w, command, "OnFailure", per_pod=1)}},
    }
