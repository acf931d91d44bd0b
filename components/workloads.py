"""Sample GPU workloads that request slices, and a Job that checks a slice from inside a pod."""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from gpu_slicing import workloads as spec
from gpu_slicing.config import StackConfig

from ._common import child

# MIG setup reboots a fresh node and takes minutes; a new Karpenter node adds its launch time.
_WAIT = pulumi.CustomTimeouts(create="40m", update="40m", delete="10m")


class SampleWorkloads(pulumi.ComponentResource):
    """One Deployment per `workloads` entry and the verification Job, in namespace `gpu-workloads`.

    Pulumi waits for every replica to be Ready, so `pulumi up` succeeds only when the slices the
    plan promised really exist on the nodes.
    """

    deployments: dict[str, k8s.apps.v1.Deployment]

    def __init__(self, name: str, cfg: StackConfig, pools: list, provider: k8s.Provider,
                 depends_on: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:workloads:SampleWorkloads", name, None, opts)
        by_name = {p.name: p for p in pools}
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": spec.NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            opts=child(self, provider=provider, depends_on=depends_on))
        ns_opts = child(self, provider=provider, depends_on=[ns, *depends_on], custom_timeouts=_WAIT)
        self.deployments = {}
        for w in cfg.workloads:
            d = spec.deployment(w, by_name[w.pool])
            self.deployments[w.name] = k8s.apps.v1.Deployment(f"{name}-{w.name}", metadata=d["metadata"],
                                                              spec=d["spec"], opts=ns_opts)
        if cfg.workloads:
            first = cfg.workloads[0]
            j = spec.verify_job(first, by_name[first.pool])
            k8s.batch.v1.Job(f"{name}-{spec.VERIFY_JOB}", metadata=j["metadata"], spec=j["spec"], opts=ns_opts)
        self.register_outputs({"deployments": list(self.deployments)})
