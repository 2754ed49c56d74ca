"""The CrossGuard entry point: `pulumi preview --policy-pack policies` runs this file.

It only builds and serves the pack. PolicyPack starts a gRPC server and blocks forever, so nothing may
import this module; tests and the offline plan use policies.pack and policies.review instead.
"""

import sys
from pathlib import Path

# The analyzer runs this file from the pack's directory: make `policies` and `mcpfleet` importable
# even where the project is not installed in the virtualenv.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policies.pack import PACK_DESCRIPTION, PACK_ENFORCEMENT, PACK_NAME, build_policies

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),
    enforcement_level=PACK_ENFORCEMENT,
    description=PACK_DESCRIPTION,
)
