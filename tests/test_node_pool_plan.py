"""A Karpenter GPU pool as the program registers it: what each object waits for on create and destroy
(docs/facts.md §5: the NodePool goes first and Pulumi waits while Karpenter drains its nodes, then the overlays,
then the EC2NodeClass, whose finalizer needs the node role, then the release), and a pool's own settings reaching
its NodePool and EC2NodeClass (capacity types, consolidation delay, expiry, the drift window, the root volume)."""
from __future__ import annotations

import pytest

MODES = ["preview", "up"]
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
OVERLAY = "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"


def _deps(r, reg) -> set[str]:
    return {r.get(u).name for u in reg.dependencies}


def _minutes(d: str) -> int:
    assert d.endswith("m"), d
    return int(d[:-1])


@pytest.mark.parametrize("mode", MODES)
def test_each_pool_object_waits_for_the_release_and_the_one_before_it(dev_runs, mode):
    r = dev_runs[mode]
    comp = r.one("gpu-slicing:karpenter:GpuNodePool")
    assert comp.name == "gpu-dev-p4d-small"
    nodeclass, overlay, nodepool = r.one(NODECLASS), r.one(OVERLAY), r.one(NODEPOOL)
    assert (nodeclass.name, overlay.name, nodepool.name) == (
        "gpu-dev-p4d-small-nodeclass", "gpu-dev-p4d-small-overlay-p4d-24xlarge", "gpu-dev-p4d-small-nodepool")
    # the EC2NodeClass's finalizer removes the instance profiles of the node role: the role outlives it
    assert _deps(r, nodeclass) == {"gpu-dev-karpenter", "gpu-dev-karpenter-node-role"}
    assert _deps(r, overlay) == {"gpu-dev-karpenter", "gpu-dev-p4d-small-nodeclass"}
    assert _deps(r, nodepool) == {"gpu-dev-karpenter", "gpu-dev-p4d-small-nodeclass",
                                  "gpu-dev-p4d-small-overlay-p4d-24xlarge"}
    for x in (nodeclass, overlay, nodepool):
        assert x.parent == comp.urn
        t = x.options["customTimeouts"]
        assert t["create"] == t["update"]
        # Pulumi waits longer than Karpenter may take to drain a node (the NodePool's terminationGracePeriod)
        grace = nodepool.inputs["spec"]["template"]["spec"]["terminationGracePeriod"]
        assert _minutes(t["delete"]) > _minutes(grace)


@pytest.fixture(scope="module")
def tuned():
    """The dev stack's Karpenter pool with every setting of its own changed."""
    from conftest import dev_config, run

    dev = dev_config()
    dev["gpu-slicing:karpenter"]["nodePools"][0].update(
        capacityTypes=["spot", "on-demand"], consolidateAfter="30m", expireAfter="720h",
        driftSchedule="0 2 * * *", driftDuration="4h", diskSizeGiB=300)
    r = run(dev)
    assert r.error is None, r.error
    return r


@pytest.mark.slow
def test_a_pools_settings_reach_its_nodepool_and_nodeclass(tuned):
    spec = tuned.one(NODEPOOL).inputs["spec"]
    req = {q["key"]: q["values"] for q in spec["template"]["spec"]["requirements"]}
    assert sorted(req["karpenter.sh/capacity-type"]) == ["on-demand", "spot"]
    assert spec["disruption"]["consolidateAfter"] == "30m"
    assert spec["template"]["spec"]["expireAfter"] == "720h"
    # drift only from 02:00 to 06:00 UTC: a nodes "0" budget for drifted nodes over the other 20 hours
    assert {"nodes": "0", "reasons": ["Drifted"], "schedule": "0 6 * * *", "duration": "20h"} in spec["disruption"]["budgets"]
    ebs = tuned.one(NODECLASS).inputs["spec"]["blockDeviceMappings"][0]["ebs"]
    assert ebs["volumeSize"] == "300Gi"


def test_a_gpu_node_is_drained_with_the_grace_docs_promise(dev_runs):
    """docs/karpenter-and-mig.md tells users a GPU NodePool never expires its nodes and gives pods
    `terminationGracePeriod: 30m` to stop when a node is drained (a checkpointing training job needs it): the
    registered NodePool says the same, read from the doc's table rather than from the code."""
    import re

    from conftest import ROOT

    doc = (ROOT / "docs" / "karpenter-and-mig.md").read_text()
    row = next(line for line in doc.splitlines() if "ttlSecondsUntilExpired" in line)
    promised = dict(re.findall(r"`(expireAfter|terminationGracePeriod): (\w+)`", row))
    assert promised == {"expireAfter": "Never", "terminationGracePeriod": "30m"}
    spec = dev_runs["up"].one(NODEPOOL).inputs["spec"]["template"]["spec"]
    assert {k: spec[k] for k in promised} == promised
