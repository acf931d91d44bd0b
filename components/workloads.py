"""Sample GPU workloads that request slices, and a Job that checks a slice from inside a pod."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from gpu_slicing import dra
from gpu_slicing import workloads as spec
from gpu_slicing.config import WorkloadConfig
from gpu_slicing.pools import Pool, workload_resource

from ._common import child

# MIG setup reboots a fresh node and takes minutes; a new Karpenter node adds its launch time.
WAIT = pulumi.CustomTimeouts(create="40m", update="40m", delete="10m")


@dataclass(frozen=True)
class SampleWorkloadsArgs:
    """`pool_ready`: per pool, the resources its nodes come from (the managed node group; the NodePool
    and its NodeOverlays). A workload waits for its own pool only, so one failed pool blocks its own
    workloads and `--target` on a pool stays small."""

    workloads: Sequence[WorkloadConfig]
    pools: Mapping[str, Pool]
    provider: k8s.Provider
    operator: pulumi.Resource
    pool_ready: Mapping[str, Sequence[pulumi.Resource]]
    dra_driver: pulumi.Resource | None = None  # the DRA driver's release (its DeviceClasses), with DRA pools


class SampleWorkloads(pulumi.ComponentResource):
    """One Deployment per `workloads` entry and the verification Job, in namespace `gpu-workloads`.

    Pulumi waits for every replica to be Ready, so `pulumi up` succeeds only when the slices the
    plan promised really exist on the nodes. The Job runs to completion first; the Deployments that
    want its slice wait for it, so it never races them for the pool's last slice. It runs once per node
    generation of its pool (`spec.verify_job_name`), never again on nodes the Deployments already fill.
    """

    deployments: dict[str, k8s.apps.v1.Deployment]
    verify_job: k8s.batch.v1.Job | None

    def __init__(self, name: str, args: SampleWorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:workloads:SampleWorkloads", name, None, opts)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": spec.WORKLOADS_NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            opts=child(self, provider=args.provider))

        # DRA pools: each workload's claim template (or shared claim) after the driver whose DeviceClasses it
        # names; the workload's pods after it, so a destroy deletes them before the template and the driver.
        claims: dict[str, pulumi.Resource] = {}
        for w in args.workloads:
            if args.pools[w.pool].allocation == dra.DRA and args.dra_driver is not None:
                c = dra.claim_template(w, args.pools[w.pool], spec.WORKLOADS_NAMESPACE)
                kind = k8s.resource.v1.ResourceClaim if c["kind"] == "ResourceClaim" \
                    else k8s.resource.v1.ResourceClaimTemplate
                claims[w.name] = kind(f"{name}-{c['metadata']['name']}", metadata=c["metadata"], spec=c["spec"],
                                      opts=child(self, provider=args.provider, depends_on=[ns, args.dra_driver]))

        def needs(pool: str, *extra: pulumi.Resource, claim: str | None = None) -> pulumi.ResourceOptions:
            return child(self, provider=args.provider, custom_timeouts=WAIT,
                         depends_on=[ns, args.operator, *args.pool_ready.get(pool, ()), *extra,
                                     *([args.dra_driver, claims[claim]] if claim in claims else [])])

        self.verify_job, checked = None, None
        if args.workloads:
            first = args.workloads[0]
            pool = args.pools[first.pool]
            j = spec.verify_job(first, pool)
            # One Job per node generation of the pool; a spec change within it (image, profile) is not a re-run
            # on nodes the Deployments fill (Job templates are immutable: it would be a replace).
            self.verify_job = k8s.batch.v1.Job(
                f"{name}-{j['metadata']['name']}", metadata=j["metadata"], spec=j["spec"],
                opts=pulumi.ResourceOptions.merge(needs(first.pool, claim=first.name), pulumi.ResourceOptions(ignore_changes=["spec"])))
            checked = (first.pool, workload_resource(first, pool))
        self.dra_verify_jobs: dict[str, k8s.batch.v1.Job] = {}
        for w in args.workloads:  # one more Job per further DRA pool, with its first workload's claim
            pool = args.pools[w.pool]
            if w.name in claims and w.pool != args.workloads[0].pool and w.pool not in self.dra_verify_jobs:
                j = spec.verify_job(w, pool)  # named for its pool's node generation, so never the first Job's
                self.dra_verify_jobs[w.pool] = k8s.batch.v1.Job(
                    f"{name}-{j['metadata']['name']}", metadata=j["metadata"], spec=j["spec"],
                    opts=pulumi.ResourceOptions.merge(needs(w.pool, claim=w.name),
                                                      pulumi.ResourceOptions(ignore_changes=["spec"])))
        self.deployments = {}
        for w in args.workloads:
            pool = args.pools[w.pool]
            competes = self.verify_job is not None and (w.pool, workload_resource(w, pool)) == checked
            d = spec.deployment(w, pool)
            self.deployments[w.name] = k8s.apps.v1.Deployment(
                f"{name}-{w.name}", metadata=d["metadata"], spec=d["spec"],
                opts=needs(w.pool, *([self.verify_job] if competes and self.verify_job else []), *(
                    [self.dra_verify_jobs[w.pool]] if w.pool in self.dra_verify_jobs else []), claim=w.name))
        self.register_outputs({"deployments": list(self.deployments)})
