"""Kubernetes objects as plain dicts, built from the fleet model.

No Pulumi here: tests call these builders directly.
"""

from typing import Any

K8sObject = dict[str, Any]
