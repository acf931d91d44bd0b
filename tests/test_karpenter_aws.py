"""Karpenter's AWS side as the program registers it, held to upstream's getting-started CloudFormation template
(aws/karpenter-provider-aws v1.14.1, docs/facts.md §4): the node role EC2 may assume with the four node policies,
the controller's policies and role (path "/"), the interruption queue fed by one EventBridge rule per event kind
each targeting the queue, the Pod Identity agent add-on, and each piece reading what it names from the resource
itself (so it is created after it). test_karpenter.py holds the documents' contents against upstream."""
from __future__ import annotations

import json

import pytest

MODES = ["preview", "up"]
K = "gpu-dev-karpenter"
BASE_TAGS = {"gpu-slicing/cluster": "gpu-dev", "managed-by": "pulumi"}
NODE_POLICIES = {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
                 "AmazonSSMManagedInstanceCore"}
# upstream's EventBridge rules: (detail-type, source)
EVENTS = {("AWS Health Event", "aws.health"), ("EC2 Spot Instance Interruption Warning", "aws.ec2"),
          ("EC2 Instance Rebalance Recommendation", "aws.ec2"), ("EC2 Instance State-change Notification", "aws.ec2"),
          ("EC2 Capacity Reservation Instance Interruption Warning", "aws.ec2")}


def _from(r, reg, key: str) -> list[str]:
    return sorted(r.get(u).name for u in reg.property_dependencies.get(key, []))


def _mine(r) -> list:
    comp = r.one("gpu-slicing:karpenter:Karpenter")
    assert comp.name == K
    return [x for x in r.registrations if x.parent == comp.urn]


@pytest.mark.parametrize("mode", MODES)
def test_the_node_role_ec2_assumes_with_the_node_policies(dev_runs, mode):
    r = dev_runs[mode]
    role = r.one("aws:iam/role:Role", f"{K}-node-role")
    assert role.inputs["name"] == "KarpenterNodeRole-gpu-dev" and role.inputs["path"] == "/"
    assert role.inputs["tags"] == BASE_TAGS
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": ["sts:AssumeRole"]}]}
    attached = {x.name: x for x in _mine(r) if x.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
                and _from(r, x, "role") == [role.name]}
    assert set(attached) == {f"{K}-node-{p}" for p in NODE_POLICIES}
    assert {x.inputs["policyArn"] for x in attached.values()} == {f"arn:aws:iam::aws:policy/{p}" for p in NODE_POLICIES}
    assert all(x.inputs["role"] == "KarpenterNodeRole-gpu-dev" for x in attached.values())
    entry = r.one("aws:eks/accessEntry:AccessEntry", f"{K}-node-access")
    assert _from(r, entry, "principalArn") == [role.name]
    assert entry.inputs["tags"] == BASE_TAGS and entry.inputs["clusterName"] == "gpu-dev"


@pytest.mark.parametrize("mode", MODES)
def test_the_controllers_role_and_policies(dev_runs, mode):
    r = dev_runs[mode]
    role = r.one("aws:iam/role:Role", f"{K}-controller-role")
    assert role.inputs["name"] == "KarpenterControllerRole-gpu-dev" and role.inputs["path"] == "/"
    assert role.inputs["tags"] == BASE_TAGS
    policies = [x for x in _mine(r) if x.type == "aws:iam/policy:Policy"]
    assert len(policies) == 6
    for p in policies:
        assert p.inputs["path"] == "/" and p.inputs["tags"] == BASE_TAGS
        assert p.inputs["name"] == f"KarpenterController{p.name.removeprefix(K + '-')}Policy-gpu-dev"
        # the documents name the node role and the queue: read from them
        assert _from(r, p, "policy") == [f"{K}-node-role", f"{K}-queue"]
        (attachment,) = [x for x in _mine(r) if x.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
                         and _from(r, x, "policyArn") == [p.name]]
        assert _from(r, attachment, "role") == [role.name]
    pia = r.one("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert _from(r, pia, "roleArn") == [role.name]
    assert pia.inputs["clusterName"] == "gpu-dev" and pia.inputs["tags"] == BASE_TAGS
    agent = r.one("aws:eks/addon:Addon")
    assert agent.inputs == {"addonName": "eks-pod-identity-agent", "clusterName": "gpu-dev", "tags": BASE_TAGS}


@pytest.mark.parametrize("mode", MODES)
def test_each_interruption_event_kind_reaches_the_queue(dev_runs, mode):
    r = dev_runs[mode]
    queue = r.one("aws:sqs/queue:Queue")
    assert queue.inputs["tags"] == BASE_TAGS
    policy = r.one("aws:sqs/queuePolicy:QueuePolicy")
    assert _from(r, policy, "queueUrl") == [queue.name] and _from(r, policy, "policy") == [queue.name]
    rules = {x.name: x for x in _mine(r) if x.type == "aws:cloudwatch/eventRule:EventRule"}
    seen = set()
    for name, rule in rules.items():
        pattern = json.loads(rule.inputs["eventPattern"])
        (detail,), (source,) = pattern["detail-type"], pattern["source"]
        seen.add((detail, source))
        assert rule.inputs["description"] == f"Karpenter interruption handling for gpu-dev: {detail}"
        assert rule.inputs["tags"] == BASE_TAGS
        target = r.one("aws:cloudwatch/eventTarget:EventTarget", f"{name}-target")
        assert _from(r, target, "rule") == [name] and _from(r, target, "arn") == [queue.name]
        assert target.parent == rule.parent
        if mode == "up":
            assert target.inputs["rule"] == rule.inputs["name"]
    assert seen == EVENTS



@pytest.mark.slow
def test_iam_follows_the_partition_aws_answers():
    """In the China partition (aws-cn, DNS suffix amazonaws.com.cn) EC2's service principal is ec2.amazonaws.com.cn
    (upstream's template: `ec2.${AWS::URLSuffix}`) and managed policies are arn:aws-cn:iam::aws:policy/...: the
    program takes both from the partition AWS reports, for Karpenter's node role and the node groups' roles."""
    from conftest import dev_config, run_patched
    from tools import harness

    def china(original):
        def call(self, args):
            if args.token == "aws:index/getPartition:getPartition":
                return {"partition": "aws-cn", "dnsSuffix": "amazonaws.com.cn", "id": "aws-cn"}
            return original(self, args)
        return call

    r = run_patched(harness.PlausibleMocks, "call", china, dev_config())
    for name in (f"{K}-node-role", "gpu-dev-system-role", "gpu-dev-p4d-balanced-role"):
        trust = json.loads(r.one("aws:iam/role:Role", name).inputs["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com.cn"}, name
    managed = [x.inputs["policyArn"] for x in r.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
               if ":iam::aws:policy/" in x.inputs["policyArn"]]
    assert len(managed) == 12 and all(a.startswith("arn:aws-cn:iam::aws:policy/") for a in managed)
