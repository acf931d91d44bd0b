"""Serve the pack: `pulumi preview --policy-pack policy` (from the repository root).

The CLI runs this file in the pack's own virtualenv (PulumiPolicy.yaml: policy/venv, from
policy/requirements.txt). The rules use the program's `gpu_slicing` package, so the repository root goes
on sys.path: the pack is used from a checkout of this repository, not published on its own.
"""
import sys
from pathlib import Path

ROOT = Path(globals().get("__file__") or Path.cwd() / "__main__.py").resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.pack import PACK_NAME, POLICIES  # noqa: E402

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES,
           description="GPU slicing on EKS: MIG/GPU invariants, node and workload security, GPU node cost cap")
