"""The sample workloads as a user reads them: the rules a workload must meet against its pool (errors naming the
key), what its pods request, the Deployment and verification Job built from it, and which Deployments wait for
the Job. Small hand-written stacks loaded through `load_stack`; the expected values come from the Kubernetes
restricted Pod Security Standard, docs/facts.md §8 and §10 (do-not-disrupt, maxSurge 0, the shell's SIGTERM) and
the NVIDIA resource names (nvidia.com/gpu, nvidia.com/mig-<profile> under the mixed strategy), worked by hand."""
from __future__ import annotations

import pytest

from gpu_slicing import workloads
from gpu_slicing.errors import ConfigError
from gpu_slicing.stack import load_stack

NS = "gpu-slicing:"


def stack(groups, work, strategy="mixed", **keys) -> dict:
    return {NS + "maxGpuNodes": 20, NS + "cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]},
            NS + "gpuOperator": {"migStrategy": strategy}, NS + "nodeGroups": groups, NS + "workloads": work,
            **{NS + k: v for k, v in keys.items()}}


P4D = {"name": "p4d", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}  # 1g.5gb, 2g.10gb, 3g.20gb / GPU
G5 = {"name": "g5", "instanceType": "g5.12xlarge"}  # 4 x A10G, no MIG
SLICE = {"name": "s1", "profile": "1g.5gb", "replicas": 2, "pool": "p4d"}


def refused(raw) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        load_stack(raw)
    return e.value


# --- what a pod requests --------------------------------------------------------------------------------------

def test_a_profile_under_the_mixed_strategy_is_one_mig_resource_per_pod():
    (w,) = load_stack(stack([P4D], [SLICE])).workloads
    assert (w.name, w.pool.name, w.resource, w.count, w.claim, w.alternatives) == (
        "s1", "p4d", "nvidia.com/mig-1g.5gb", 1, None, ())
    assert w.key == "gpu-slicing:workloads[0]"


def test_a_profile_under_the_single_strategy_is_a_whole_gpu_resource():
    (w,) = load_stack(stack([{**P4D, "migLayout": "all-1g.5gb"}], [SLICE], strategy="single")).workloads
    assert (w.resource, w.count) == ("nvidia.com/gpu", 1)  # single: every slice is advertised as nvidia.com/gpu


@pytest.mark.parametrize("gpus", [1, 3])
def test_gpus_on_a_plain_pool_ask_for_that_many_whole_gpus(gpus):
    (w,) = load_stack(stack([G5], [{"name": "g", "gpus": gpus, "pool": "g5"}])).workloads
    assert (w.resource, w.count) == ("nvidia.com/gpu", gpus)
    pod = workloads.deployment(w)["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == str(gpus)


@pytest.mark.parametrize("rename, advertised", [(False, "nvidia.com/gpu"), (True, "nvidia.com/gpu.shared")])
def test_a_time_sliced_pool_advertises_its_shares_under_the_name_it_chose(rename, advertised):
    shared = {**G5, "sharing": {"timeSlicing": {"replicas": 4, "renameByDefault": rename}}}
    (w,) = load_stack(stack([shared], [{"name": "g", "gpus": 1, "pool": "g5", "replicas": 8}])).workloads
    assert (w.resource, w.count) == (advertised, 1)


# --- the rules, each naming the key at fault --------------------------------------------------------------------

def test_a_workload_on_an_unknown_pool_names_the_pool_key_and_the_pools_there_are():
    e = refused(stack([P4D, G5], [{**SLICE, "pool": "p4"}]))
    assert (e.key, e.value) == ("gpu-slicing:workloads[0].pool", "p4")
    assert e.allowed == "the name of a node group or NodePool: did you mean p4d? p4d, g5"
    e = refused(stack([], [SLICE]))
    assert e.key == "gpu-slicing:workloads[0].pool"
    assert e.allowed == "the name of a node group or NodePool: (none configured)"


def test_a_workload_asks_for_exactly_one_of_profile_and_gpus():
    both = refused(stack([P4D], [{**SLICE, "gpus": 1}]))
    assert (both.key, both.value) == ("gpu-slicing:workloads[0]", {"profile": "1g.5gb", "gpus": 1})
    assert both.allowed == "exactly one of profile (a MIG slice) or gpus (whole or time-sliced GPUs)"  # no memoryGB
    neither = refused(stack([P4D], [{"name": "n", "pool": "p4d"}]))
    assert neither.key == "gpu-slicing:workloads[0]" and "exactly one of profile" in str(neither)


def test_a_profile_on_a_pool_without_mig_is_refused_naming_the_pool():
    e = refused(stack([G5], [{**SLICE, "pool": "g5"}]))
    assert (e.key, e.value) == ("gpu-slicing:workloads[0].profile", "1g.5gb")
    assert "pool g5 has MIG disabled" in str(e) and "use gpus" in str(e)


def test_a_profile_the_layout_does_not_create_lists_the_ones_it_does():
    e = refused(stack([P4D], [{**SLICE, "profile": "7g.40gb"}]))
    assert (e.key, e.value) == ("gpu-slicing:workloads[0].profile", "7g.40gb")
    # all-balanced on an A100-40GB: 1g.5gb x2, 2g.10gb, 3g.20gb per GPU (NVIDIA MIG user guide), sorted
    assert "layout all-balanced of pool p4d creates: 1g.5gb, 2g.10gb, 3g.20gb" in str(e)


def test_whole_gpus_on_a_mig_pool_under_the_mixed_strategy_never_schedule():
    e = refused(stack([P4D], [{"name": "w", "gpus": 2, "pool": "p4d"}]))
    assert (e.key, e.value) == ("gpu-slicing:workloads[0].gpus", 2)
    assert "advertises nvidia.com/gpu: 0" in str(e) and "mixed strategy" in str(e)


def test_the_key_names_the_workloads_own_index():
    e = refused(stack([P4D], [SLICE, {**SLICE, "name": "s2", "profile": "7g.40gb"}]))
    assert e.key == "gpu-slicing:workloads[1].profile"


# --- the Deployment ---------------------------------------------------------------------------------------------

def test_the_deployment_runs_in_the_workloads_namespace_and_never_surges():
    (w,) = load_stack(stack([P4D], [SLICE])).workloads
    d = workloads.deployment(w)
    labels = {"app.kubernetes.io/name": "s1", "app.kubernetes.io/part-of": "gpu-slicing"}
    assert d["metadata"] == {"name": "s1", "namespace": "gpu-workloads", "labels": labels}
    spec = d["spec"]
    assert spec["replicas"] == 2
    # docs/facts.md §10: a surge pod asks for a slice that does not exist
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}}
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "s1"}}
    assert spec["template"]["metadata"] == {"labels": labels}  # no do-not-disrupt unless asked for


def test_do_not_disrupt_annotates_the_pods_for_karpenter():
    (w,) = load_stack(stack([P4D], [{**SLICE, "doNotDisrupt": True}])).workloads
    meta = workloads.deployment(w)["spec"]["template"]["metadata"]
    assert meta["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}  # docs/facts.md §8


def test_the_pod_meets_the_restricted_pod_security_standard_and_guaranteed_qos():
    image = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
    (w,) = load_stack(stack([P4D], [{**SLICE, "image": image}])).workloads
    pod = workloads.deployment(w)["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Always"
    assert pod["terminationGracePeriodSeconds"] == 15
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                                   "effect": "NoSchedule"}]
    # a MIG pool: the pool's label and the layout label, so a pod never lands on a node of another layout
    assert pod["nodeSelector"] == {"gpu-slicing/pool": "p4d", "nvidia.com/mig.config": "all-balanced"}
    (c,) = pod["containers"]
    assert c["name"] == "cuda" and c["image"] == "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}}
    want = {"cpu": "100m", "memory": "128Mi", "nvidia.com/mig-1g.5gb": "1"}
    assert c["resources"] == {"requests": want, "limits": want}  # requests = limits: Guaranteed
    # the shell traps TERM (as PID 1 it would ignore it and hold the slice for the grace period)
    assert c["command"][:2] == ["bash", "-c"] and "trap 'exit 0' TERM" in c["command"][2]
    assert c["command"][2].startswith("nvidia-smi -L")
    assert "resourceClaims" not in pod and "claims" not in c["resources"]


def test_a_pool_without_mig_selects_by_pool_alone():
    (w,) = load_stack(stack([G5], [{"name": "g", "gpus": 1, "pool": "g5"}])).workloads
    assert workloads.deployment(w)["spec"]["template"]["spec"]["nodeSelector"] == {"gpu-slicing/pool": "g5"}


# --- the verification Job and who waits for it ------------------------------------------------------------------

def test_the_verification_job_lists_the_devices_of_one_slice_and_retries_on_failure():
    st = load_stack(stack([P4D], [SLICE]))
    (w,) = st.workloads
    job = workloads.verify_job(w)
    assert job["metadata"]["name"] == w.verify_job and w.verify_job.startswith("verify-mig-slice-")
    assert job["metadata"]["namespace"] == "gpu-workloads"
    labels = {"app.kubernetes.io/name": "verify-mig-slice", "app.kubernetes.io/part-of": "gpu-slicing"}
    assert job["metadata"]["labels"] == labels and job["spec"]["template"]["metadata"] == {"labels": labels}
    assert job["spec"]["backoffLimit"] == 6
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    (c,) = pod["containers"]
    assert c["command"] == ["nvidia-smi", "-L"]
    assert c["resources"]["limits"]["nvidia.com/mig-1g.5gb"] == "1"


def test_the_verification_job_asks_for_one_gpu_even_when_the_workload_asks_for_more():
    (w,) = load_stack(stack([G5], [{"name": "g", "gpus": 2, "pool": "g5"}])).workloads
    c = workloads.verify_job(w)["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "1"


def test_only_the_deployments_asking_for_the_checked_slice_on_its_pool_wait_for_the_job():
    p4d2 = {**P4D, "name": "p4d-b"}
    work = [SLICE, {**SLICE, "name": "s2"}, {**SLICE, "name": "s3", "profile": "2g.10gb"},
            {**SLICE, "name": "s4", "pool": "p4d-b"}]
    st = load_stack(stack([P4D, p4d2], work))
    job = st.workloads[0].verify_job
    assert job is not None
    assert [w.verify_job for w in st.workloads] == [job, None, None, None]
    # s2 races s1's Job for the same 1g.5gb on p4d; s3 asks another slice; s4 sits on another pool
    assert [w.waits_for for w in st.workloads] == [(job,), (job,), (), ()]


def test_the_jobs_name_follows_the_pools_node_generation():
    one = load_stack(stack([P4D], [SLICE])).workloads[0].verify_job
    again = load_stack(stack([{**P4D, "minSize": 1, "desiredSize": 2, "maxSize": 3}], [SLICE])).workloads[0]
    other_layout = load_stack(stack([{**P4D, "migLayout": "all-1g.5gb"}], [SLICE])).workloads[0]
    plain = [{"name": "g", "gpus": 1, "pool": "g5"}]
    g5 = load_stack(stack([G5], plain)).workloads[0]
    other_type = load_stack(stack([{**G5, "instanceType": "g5.24xlarge"}], plain)).workloads[0]
    renamed = load_stack(stack([{**P4D, "name": "q"}], [{**SLICE, "pool": "q"}])).workloads[0]
    assert again.verify_job == one  # a size change keeps the nodes: the Job that ran stays
    assert len({one, other_layout.verify_job, g5.verify_job, other_type.verify_job, renamed.verify_job}) == 5


def test_no_workloads_no_verification():
    assert workloads.verification(()) == ()
    assert load_stack(stack([P4D], [])).workloads == ()


# --- DRA pools ----------------------------------------------------------------------------------------------------

P5_DRA = {"name": "p5-dra", "instanceType": "p5.48xlarge", "migLayout": "all-balanced", "allocation": "dra"}
ON_DRA = [{"name": "h1", "profile": "1g.10gb", "replicas": 2, "pool": "p5-dra"},  # H100-80GB profiles
          {"name": "h2", "profile": "2g.20gb", "replicas": 2, "pool": "p5-dra"}]


def dra_stack(work):
    return stack([P4D, P5_DRA], work, cluster={"name": "t", "publicAccessCidrs": ["0.0.0.0/0"],
                                               "kubernetesVersion": "1.35"})


def test_a_further_dra_pool_gets_its_own_job_and_every_workload_there_waits_for_it():
    st = load_stack(dra_stack([SLICE, *ON_DRA, {**SLICE, "name": "s2"}]))
    s1, h1, h2, s2 = st.workloads
    assert s1.verify_job and h1.verify_job and s1.verify_job != h1.verify_job
    assert (h2.verify_job, s2.verify_job) == (None, None)
    assert [w.waits_for for w in st.workloads] == [(s1.verify_job,), (h1.verify_job,), (h1.verify_job,),
                                                   (s1.verify_job,)]


def test_a_dra_pod_holds_its_claim_and_asks_for_no_extended_resource():
    st = load_stack(dra_stack(ON_DRA))
    h1 = st.workloads[0]
    assert (h1.claim, h1.count) == ("h1-slice", 1)
    pod = workloads.deployment(h1)["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"} == c["resources"]["limits"]
    names = [x["name"] for x in pod["resourceClaims"]]
    assert names and c["resources"]["claims"] == [{"name": n} for n in names]
    # never a node where the device plugin could hand out the GPU too: the DRA pool's allocation label
    assert pod["nodeSelector"]["gpu-slicing/pool"] == "p5-dra"
    assert pod["nodeSelector"]["gpu-slicing/allocation"] == "dra"
    job = workloads.verify_job(h1)["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] != ["nvidia-smi", "-L"]  # checks its claim brought what it asked for
    assert job["resourceClaims"] == pod["resourceClaims"]


def test_a_switch_to_dra_is_a_new_node_generation():
    plugin = load_stack(dra_stack([SLICE, {**ON_DRA[0], "pool": "p5"}]) | {
        NS + "nodeGroups": [P4D, {**P5_DRA, "name": "p5", "allocation": "devicePlugin"}]}).workloads
    dra_ = load_stack(dra_stack([SLICE, {**ON_DRA[0], "pool": "p5"}]) | {
        NS + "nodeGroups": [P4D, {**P5_DRA, "name": "p5"}]}).workloads
    assert workloads.verify_job_name(plugin[1].pool) != workloads.verify_job_name(dra_[1].pool)
    # the generation says which: a DRA pool's carries its allocation, a device-plugin pool's none (as before DRA)
    assert workloads.node_generation(dra_[1].pool)["allocation"] == "dra"
    assert "allocation" not in workloads.node_generation(plugin[1].pool)


def test_on_a_dra_pool_memory_gb_is_a_third_way_to_ask():
    e = refused(dra_stack([{**ON_DRA[0], "memoryGB": 10}]))
    assert e.key == "gpu-slicing:workloads[0]"
    assert e.value == {"profile": "1g.10gb", "gpus": None, "memoryGB": 10}
    assert e.allowed == ("exactly one of profile (a MIG slice) or gpus (whole or time-sliced GPUs) or memoryGB "
                         "(dra pools)")


def test_a_dra_pools_job_is_named_for_its_generation_with_its_allocation():
    from gpu_slicing.changes import labelled

    h1 = load_stack(dra_stack(ON_DRA)).workloads[0]
    pool = h1.pool
    # the generation docs name (node_generation): pool, kind, types, AMI type, layout label, and on DRA the allocation
    generation = {"pool": "p5-dra", "kind": "nodeGroup", "types": ["p5.48xlarge"],
                  "amiType": pool.instance_types[0].ami_type, "layout": pool.labels.get("nvidia.com/mig.config"),
                  "allocation": "dra"}
    assert h1.verify_job == labelled("verify-mig-slice", generation)
