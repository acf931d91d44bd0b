"""The node labels and taint that NVIDIA's components, Karpenter and this program agree on.

They are contracts with software outside this program (mig-manager reads `nvidia.com/mig.config`, the
device plugin `nvidia.com/device-plugin.config`), not stack config, so they live here and not in the model."""
from __future__ import annotations

MIG_CONFIG_LABEL = "nvidia.com/mig.config"  # mig-manager applies the layout this label names
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"  # the device plugin's time-slicing config key
POOL_LABEL = "gpu-slicing/pool"  # on every GPU node: what workloads and the planner select pools by
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}  # keeps non-GPU pods off GPU nodes
MIG_CONFIG_STATE_LABEL = "nvidia.com/mig.config.state"  # mig-manager's progress: pending, rebooting, success, failed
DEVICE_PLUGIN_DEPLOY_LABEL = "nvidia.com/gpu.deploy.device-plugin"  # "false": the operator runs no device plugin there
POOL_ALLOCATION_LABEL = "gpu-slicing/allocation"  # "dra" on DRA pools' nodes: where the DRA kubelet plugin runs
