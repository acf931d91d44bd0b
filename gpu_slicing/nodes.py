"""How every GPU and system node is hardened, stated once for the two ways nodes are launched: EKS managed
node groups (through our EC2 launch template) and Karpenter (through the EC2NodeClass).

- IMDSv2 only, with a hop limit of 1: a pod (one hop further) cannot read the node role's credentials,
  and a plain GET (SSRF) gets nothing.
- An encrypted gp3 root volume, deleted with the instance: CUDA images are large, and nothing of a
  workload outlives its node unencrypted.
"""
from __future__ import annotations

from typing import Any

ROOT_DEVICE = "/dev/xvda"  # the AL2023 root volume
METADATA_OPTIONS = {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1,
                    "httpProtocolIPv6": "disabled"}
ROOT_VOLUME = {"volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}


def node_class_hardening(disk_gib: int) -> dict[str, Any]:
    """The EC2NodeClass `spec` fields (Karpenter's names and types)."""
    return {"blockDeviceMappings": [{"deviceName": ROOT_DEVICE, "rootVolume": True,
                                     "ebs": {"volumeSize": f"{disk_gib}Gi", **ROOT_VOLUME}}],
            "metadataOptions": dict(METADATA_OPTIONS)}


def _snake(key: str) -> str:
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in key.replace("IPv6", "Ipv6"))
    return out.lstrip("_")


def launch_template_hardening(disk_gib: int) -> dict[str, Any]:
    """The same, as `aws.ec2.LaunchTemplate` arguments (snake_case; its EBS flags are the strings "true"/"false")."""
    ebs = {_snake(k): (str(v).lower() if isinstance(v, bool) else v) for k, v in ROOT_VOLUME.items()}
    return {"metadata_options": {_snake(k): v for k, v in METADATA_OPTIONS.items()},
            "block_device_mappings": [{"device_name": ROOT_DEVICE, "ebs": {"volume_size": disk_gib, **ebs}}]}
