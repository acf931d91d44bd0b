"""Sample GPU workloads that request slices, and a Job that checks a slice from inside a pod."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from gpu_slicing import dra
from gpu_slicing import workloads as spec
from gpu_slicing.workloads import Workload

from ._common import child

# MIG setup reboots a fresh node and takes minutes; a new Karpenter node adds its launch time.
WAIT = pulumi.CustomTimeouts(create="40m", update="40m", delete="10m")


@dataclass(frozen=True)
class SampleWorkloadsArgs:
    """`workloads`: as the stack resolved them (`gpu_slicing.workloads.Workload`: pool, names, what each waits
    for). `pool_ready`: per pool, the resources its nodes come from (each pool component's `ready`). A workload
    waits for its own pool only, so one failed pool blocks its own workloads and `--target` on a pool stays
    small."""

    workloads: Sequence[Workload]
    provider: k8s.Provider
    operator: pulumi.Resource
    pool_ready: Mapping[str, Sequence[pulumi.Resource]]
    dra_driver: pulumi.Resource | None = None  # the DRA driver's release (its DeviceClasses), with DRA pools


class SampleWorkloads(pulumi.ComponentResource):
    """One Deployment per `workloads` entry and the verification Jobs, in namespace `gpu-workloads`.

    Pulumi waits for every replica to be Ready, so `pulumi up` succeeds only when the slices the
    plan promised really exist on the nodes. A Job runs to completion first; the Deployments that
    want its slice wait for it, so it never races them for the pool's last slice. It runs once per node
    generation of its pool (`spec.verify_job_name`), never again on nodes the Deployments already fill.
    """

    deployments: dict[str, k8s.apps.v1.Deployment]
    verify_jobs: dict[str, k8s.batch.v1.Job]  # by the Job's name

    def __init__(self, name: str, args: SampleWorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:workloads:SampleWorkloads", name, None, opts)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": spec.WORKLOADS_NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            opts=child(self, provider=args.provider))
        driver = [args.dra_driver] if args.dra_driver is not None else []

        # DRA pools: each workload's claim template (or shared claim) after the driver whose DeviceClasses it
        # names; the workload's pods after it, so a destroy deletes them before the template and the driver.
        claims: dict[str, pulumi.Resource] = {}
        for w in args.workloads:
            if w.claim is not None:
                c = dra.claim_template(w.config, w.pool, spec.WORKLOADS_NAMESPACE, claim=w.claim)
                kind = k8s.resource.v1.ResourceClaim if c["kind"] == "ResourceClaim" \
                    else k8s.resource.v1.ResourceClaimTemplate
                claims[w.name] = kind(f"{name}-{w.claim}", metadata=c["metadata"], spec=c["spec"],
                                      opts=child(self, provider=args.provider, depends_on=[ns, *driver]))

        def needs(w: Workload, *extra: pulumi.Resource) -> pulumi.ResourceOptions:
            return child(self, provider=args.provider, custom_timeouts=WAIT,
                         depends_on=[ns, args.operator, *args.pool_ready.get(w.pool.name, ()), *extra,
                                     *([*driver, claims[w.name]] if w.name in claims else [])])

        # One Job per node generation of its pool; a spec change within it (image, profile) is not a re-run on
        # nodes the Deployments fill (Job templates are immutable: it would be a replace).
        self.verify_jobs = {}
        for w in args.workloads:
            if w.verify_job is not None:
                j = spec.verify_job(w)
                self.verify_jobs[w.verify_job] = k8s.batch.v1.Job(
                    f"{name}-{w.verify_job}", metadata=j["metadata"], spec=j["spec"],
                    opts=pulumi.ResourceOptions.merge(needs(w), pulumi.ResourceOptions(ignore_changes=["spec"])))
        self.deployments = {}
        for w in args.workloads:
            d = spec.deployment(w)
            self.deployments[w.name] = k8s.apps.v1.Deployment(
                f"{name}-{w.name}", metadata=d["metadata"], spec=d["spec"],
                opts=needs(w, *(self.verify_jobs[j] for j in w.waits_for)))
        self.register_outputs({"deployments": list(self.deployments)})
