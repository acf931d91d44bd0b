"""Sample workloads as plain Kubernetes objects: one Deployment per configured workload, and a Job
that proves a slice works by running `nvidia-smi -L` inside it."""
from __future__ import annotations

from typing import Any

from . import dra
from .config import WorkloadConfig
from .labels import GPU_TAINT, MIG_CONFIG_LABEL, POOL_LABEL
from .pools import Pool, workload_count, workload_resource

WORKLOADS_NAMESPACE = "gpu-workloads"  # where the sample workloads run
VERIFY_JOB = "verify-mig-slice"
_CPU, _MEMORY = "100m", "128Mi"
# A pod holding a slice stops within this many seconds of SIGTERM: the command traps TERM (a shell as
# PID 1 would otherwise ignore it and hold the slice for the whole grace period, FACTS 10).
TERMINATION_GRACE_SECONDS = 15
# Slice-holding Deployments never surge: a surge pod asks for a slice that does not exist (or makes
# Karpenter launch a GPU node for it). Old pods go first, a quarter at a time.
ROLLOUT = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}}
SERVE_COMMAND = ["bash", "-c", "nvidia-smi -L; trap 'exit 0' TERM; sleep infinity & wait"]
# Karpenter does not voluntarily disrupt (drift, consolidation) a node running such a pod (FACTS 8).
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


def verify_job(w: WorkloadConfig, pool: Pool) -> dict[str, Any]:
    """A Job that lists the GPU devices its pod sees: a MIG pod sees exactly one `MIG ...` device.

    It asks for the same slice as workload `w`, so it runs to completion before the Deployments exist
    (they wait for it in the graph): a finished pod holds no slice, so it never races a Deployment that
    fills the pool (FACTS 10)."""
    labels = {"app.kubernetes.io/name": VERIFY_JOB, "app.kubernetes.io/part-of": "gpu-slicing"}
    one = w.model_copy(update={"name": VERIFY_JOB, "replicas": 1, "gpus": None if w.profile else 1,
                               "do_not_disrupt": False})
    pod = pod_spec(one, pool, ["nvidia-smi", "-L"], "OnFailure")
    if pool.allocation == dra.DRA:  # the pod holds a claim from `w`'s own template (or its shared claim)
        one = w.model_copy(update={"name": VERIFY_JOB, "replicas": 1, "do_not_disrupt": False})
        pod = {**pod_spec(one, pool, ["nvidia-smi", "-L"], "OnFailure"), "resourceClaims": dra.pod_resource_claims(w)}
    return {
        "metadata": {"name": VERIFY_JOB, "namespace": WORKLOADS_NAMESPACE, "labels": labels},
        "spec": {"backoffLimit": 6, "template": {"metadata": {"labels": labels},
                                                 "spec": pod}},
    }


def dra_verify_job(w: WorkloadConfig, pool: Pool) -> dict[str, Any]:
    """A DRA pool's own verification Job: one pod with a claim like workload `w`'s, listing what it got
    (`nvidia-smi -L` shows exactly the MIG device or GPU the claim was allocated), before `w`'s pods start."""
    job = verify_job(w, pool)
    name = f"{VERIFY_JOB}-{pool.name}"[:63].rstrip("-")
    job["metadata"]["name"] = name
    job["metadata"]["labels"]["app.kubernetes.io/name"] = name
    job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = name
    return job
