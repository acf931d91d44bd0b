"""Sample workloads as plain Kubernetes objects: one Deployment per configured workload, and a Job
that proves a slice works by running `nvidia-smi -L` inside it."""
from __future__ import annotations

from typing import Any

from . import dra
from .changes import labelled
from .config import WorkloadConfig
from .labels import GPU_TAINT, MIG_CONFIG_LABEL, POOL_LABEL
from .pools import Pool, workload_count, workload_resource

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


def pod_spec(w: WorkloadConfig, pool: Pool, command: list[str], restart: str = "Always") -> dict[str, Any]:
    """Non-root, no privilege escalation, requests = limits (Guaranteed QoS), tolerating the GPU taint."""
    amount = {"cpu": _CPU, "memory": _MEMORY}
    claims = dra.pod_resource_claims(w) if pool.allocation == dra.DRA else None
    if claims is None:  # the device plugin's extended resource; on a DRA pool the claim brings the devices
        amount[workload_resource(w, pool)] = str(workload_count(w))
    return {
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "nodeSelector": node_selector(pool),
        "tolerations": [gpu_toleration()],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,
        "containers": [{
            "name": "cuda",
            "image": w.image,
            "command": command,
            "resources": {"requests": dict(amount), "limits": dict(amount),
                          **({"claims": [{"name": c["name"]} for c in claims]} if claims else {})},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
        }],
        **({"resourceClaims": claims} if claims else {}),
    }


def deployment(w: WorkloadConfig, pool: Pool) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": w.name, "app.kubernetes.io/part-of": "gpu-slicing"}
    return {
        "metadata": {"name": w.name, "namespace": WORKLOADS_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": w.replicas,
            "strategy": ROLLOUT,
            "selector": {"matchLabels": {"app.kubernetes.io/name": w.name}},
            "template": {"metadata": {"labels": labels, **({"annotations": dict(DO_NOT_DISRUPT)}
                                                            if w.do_not_disrupt else {})},
                         "spec": pod_spec(w, pool, SERVE_COMMAND)},
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


def verify_job(w: WorkloadConfig, pool: Pool) -> dict[str, Any]:
    """A Job that lists the GPU devices its pod sees: a MIG pod sees exactly one `MIG ...` device.

    It asks for the same slice as workload `w`, so it runs to completion before the Deployments exist
    (they wait for it in the graph): a finished pod holds no slice, so it never races a Deployment that
    fills the pool (docs/facts.md §10). Named for the pool's node generation (`verify_job_name`), and its spec is kept
    once created (the component ignores later spec changes), so it runs again only on new nodes."""
    labels = {"app.kubernetes.io/name": VERIFY_JOB, "app.kubernetes.io/part-of": "gpu-slicing"}
    one = w.model_copy(update={"name": VERIFY_JOB, "replicas": 1, "gpus": None if w.profile else 1,
                               "do_not_disrupt": False})
    pod = pod_spec(one, pool, ["nvidia-smi", "-L"], "OnFailure")
    if pool.allocation == dra.DRA:  # the pod holds a claim from `w`'s own template (or its shared claim)
        one = w.model_copy(update={"name": VERIFY_JOB, "replicas": 1, "do_not_disrupt": False})
        pod = {**pod_spec(one, pool, dra.verify_command(w, pool), "OnFailure"),
               "resourceClaims": dra.pod_resource_claims(w)}
    return {
        "metadata": {"name": verify_job_name(pool), "namespace": WORKLOADS_NAMESPACE, "labels": labels},
        "spec": {"backoffLimit": 6, "template": {"metadata": {"labels": labels},
                                                 "spec": pod}},
    }

