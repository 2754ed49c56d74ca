"""cert-manager: every Certificate names an issuer this stack creates, and that issuer can issue.

A Certificate whose issuer does not exist is never issued: its Secret never appears, the pods that mount
it never start, and Pulumi waits on them until the deploy times out. An issuer cannot be made by hand
before the first run either, since cert-manager's CRDs arrive in that same run. An ACME issuer with no
solver, or whose solvers match none of the Certificate's names, issues nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policies.rules._framework import Case, Context, Finding, Resource, Rule
from policies.rules._k8s import as_list, as_map, dig, name_of, namespace_of
from policies.rules._platform import kube

GROUP = "cert-manager.io"


def _issuers(resources: Sequence[Resource]) -> dict[tuple[str, str | None, str], Resource]:
    """(kind, namespace or None, name) -> the issuer object."""
    found: dict[tuple[str, str | None, str], Resource] = {}
    for r in resources:
        if str(r.inputs.get("apiVersion", "")).split("/")[0] != GROUP:
            continue
        kind = r.inputs.get("kind")
        if kind == "ClusterIssuer":
            found[("ClusterIssuer", None, name_of(r.inputs))] = r
        elif kind == "Issuer":
            found[("Issuer", namespace_of(r.inputs), name_of(r.inputs))] = r
    return found


def _zone_matches(zone: str, name: str) -> bool:
    return name == zone or name.endswith(f".{zone}")


def _solves(solver: Mapping[str, Any], names: Sequence[str]) -> bool:
    """Whether an ACME solver applies to every one of the Certificate's DNS names."""
    selector = as_map(solver.get("selector"))
    if not selector:
        return True
    listed = [str(n) for n in as_list(selector.get("dnsNames"))]
    zones = [str(z) for z in as_list(selector.get("dnsZones"))]
    if not listed and not zones:
        return True  # a label selector: cannot be told apart here
    return all(n in listed or any(_zone_matches(z, n) for z in zones) for n in names)


def validate(resources: Sequence[Resource], context: Context) -> list[Finding]:
    issuers = _issuers(resources)
    findings = []
    for certificate in resources:
        inputs = certificate.inputs
        if inputs.get("kind") != "Certificate" or str(inputs.get("apiVersion", "")).split("/")[0] != GROUP:
            continue
        ref = as_map(dig(inputs, "spec", "issuerRef"))
        if ref.get("group", GROUP) != GROUP:
            continue  # an external issuer (its own API group): not cert-manager's to check
        kind = str(ref.get("kind") or "Issuer")
        name = str(ref.get("name") or "?")
        where = f"Certificate {namespace_of(inputs)}/{name_of(inputs)}"
        key = (kind, None if kind == "ClusterIssuer" else namespace_of(inputs), name)
        issuer = issuers.get(key)
        if issuer is None:
            findings.append(
                Finding(
                    f"{where} names {kind} {name}, which nothing in this stack creates: it is never issued,"
                    " and whatever mounts its Secret never starts; missing fix: the issuer (on eks the ACME"
                    " ClusterIssuer of components/addons.py, made when the stack sets dns.hostedZoneId)",
                    certificate.urn,
                )
            )
            continue
        acme = dig(issuer.inputs, "spec", "acme")
        if acme is None:
            continue
        names = [str(n) for n in as_list(dig(inputs, "spec", "dnsNames"))]
        solvers = [as_map(s) for s in as_list(dig(acme, "solvers"))]
        if not any(_solves(solver, names) for solver in solvers):
            findings.append(
                Finding(
                    f"{where} names ACME {kind} {name}, which has no solver for {', '.join(names) or 'it'}:"
                    " no challenge can be answered, so it is never issued",
                    certificate.urn,
                )
            )
    return findings


def _certificate(issuer: str = "letsencrypt", kind: str = "ClusterIssuer") -> Any:
    spec = {
        "secretName": "gateway-tls",
        "dnsNames": ["mcp.dev.acme-corp.dev"],
        "issuerRef": {"name": issuer, "kind": kind, "group": GROUP},
    }
    return kube(f"{GROUP}/v1", "Certificate", "gateway", {"spec": spec}, namespace="mcp-gateway")


def _acme(zones: Sequence[str] = ("mcp.dev.acme-corp.dev",), name: str = "letsencrypt") -> Any:
    solver = {
        "selector": {"dnsZones": list(zones)},
        "dns01": {"route53": {"region": "eu-west-1", "hostedZoneID": "Z04517273QK2W3ZLDQ3PX"}},
    }
    spec = {
        "acme": {
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "privateKeySecretRef": {"name": "acme-account-key"},
            "solvers": [solver] if zones else [],
        }
    }
    return kube(f"{GROUP}/v1", "ClusterIssuer", name, {"spec": spec})


RULE = Rule(
    id="certificate-issuer-exists",
    description="Every cert-manager Certificate names an issuer the stack creates, able to issue for it.",
    severity="critical",
    remediation="On eks set dns.hostedZoneId in the stack file: ClusterAddons then creates the ACME "
    "ClusterIssuer gateway.clusterIssuer names (DNS-01 in that zone). On an existing cluster use "
    "gateway.tls: self-signed, whose issuer the gateway creates.",
    validate_stack=validate,
    tags=("tls", "deploy"),
    enforcement={"local": "mandatory", "dev": "mandatory", "staging": "mandatory", "prod": "mandatory"},
    cases=(
        Case("the ACME issuer is created", "pass", (_certificate(), _acme())),
        Case(
            "a solver for the parent zone",
            "pass",
            (_certificate(), _acme(zones=("acme-corp.dev",))),
        ),
        Case(
            "a namespaced issuer beside it",
            "pass",
            (
                _certificate("selfsigned", "Issuer"),
                kube(
                    f"{GROUP}/v1",
                    "Issuer",
                    "selfsigned",
                    {"spec": {"selfSigned": {}}},
                    namespace="mcp-gateway",
                ),
            ),
        ),
        Case("nothing creates the issuer", "violate", (_certificate(),)),
        Case("an issuer of another name", "violate", (_certificate(), _acme(name="letsencrypt-staging"))),
        Case(
            "an Issuer in another namespace",
            "violate",
            (
                _certificate("selfsigned", "Issuer"),
                kube(
                    f"{GROUP}/v1", "Issuer", "selfsigned", {"spec": {"selfSigned": {}}}, namespace="default"
                ),
            ),
        ),
        Case("an ACME issuer without solvers", "violate", (_certificate(), _acme(zones=()))),
        Case("solvers for another zone", "violate", (_certificate(), _acme(zones=("other.example.org",)))),
    ),
)
