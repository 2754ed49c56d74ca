"""Tokens re-checked at the router: real signatures, then every forgery and claim trick we know of."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import get_default_algorithms

from mcpfleet.router.config import Auth
from mcpfleet.router.tokens import InvalidToken, TokenVerifier
from tests.router.support import AUDIENCE_PREFIX, DROP, Issuer, auth_section

AUDIENCE = AUDIENCE_PREFIX + "notes"


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign_raw(issuer: Issuer, header: bytes, payload: bytes, key: Any = None) -> str:
    """A token whose header and payload bytes are exactly these (to craft duplicates and odd types)."""
    signing_input = b64(header) + b"." + b64(payload)
    algorithm = get_default_algorithms()[issuer.algorithm]
    signature = algorithm.sign(signing_input, key or issuer.private_key)
    return (signing_input + b"." + b64(signature)).decode()


def verifier(issuer: Issuer) -> TokenVerifier:
    return TokenVerifier(Auth.model_validate(auth_section(issuer.algorithm)), issuer.public_pem)


@pytest.fixture(scope="module", params=["RS256", "ES256"])
def issuer(request: pytest.FixtureRequest) -> Issuer:
    return Issuer(request.param)


@pytest.fixture(scope="module")
def rsa_issuer() -> Issuer:
    return Issuer("RS256")


def test_valid_token(issuer: Issuer) -> None:
    caller = verifier(issuer).verify(issuer.token("notes", "alice", "support engineer"), AUDIENCE)
    assert caller.subject == "alice"
    assert caller.roles == {"support", "engineer"}


def test_roles_as_a_list(issuer: Issuer) -> None:
    caller = verifier(issuer).verify(issuer.token("notes", roles=["support", "ops"]), AUDIENCE)
    assert caller.roles == {"support", "ops"}


def test_no_roles_claim_means_no_roles(issuer: Issuer) -> None:
    assert verifier(issuer).verify(issuer.token("notes", roles=None), AUDIENCE).roles == frozenset()


def test_audience_list_holding_this_server(issuer: Issuer) -> None:
    token = issuer.token("notes", aud=["https://elsewhere.example", AUDIENCE])
    assert verifier(issuer).verify(token, AUDIENCE).subject == "alice"


def refused(issuer: Issuer, token: str, audience: str = AUDIENCE) -> str:
    with pytest.raises(InvalidToken) as caught:
        verifier(issuer).verify(token, audience)
    return str(caught.value)


def test_alg_none(rsa_issuer: Issuer) -> None:
    header = b'{"alg":"none","typ":"JWT"}'
    payload = json.dumps(rsa_issuer.claims("notes", "mallory")).encode()
    assert "algorithm" in refused(rsa_issuer, f"{b64(header).decode()}.{b64(payload).decode()}.")


def test_hs256_signed_with_the_public_key_pem(rsa_issuer: Issuer) -> None:
    """HS/RS confusion: an HMAC over the token with the issuer's public key as the secret."""
    signing_input = (
        b64(b'{"alg":"HS256","typ":"JWT"}')
        + b"."
        + b64(json.dumps(rsa_issuer.claims("notes", "mallory")).encode())
    )
    mac = hmac.new(rsa_issuer.public_pem, signing_input, hashlib.sha256).digest()
    assert "algorithm" in refused(rsa_issuer, (signing_input + b"." + b64(mac)).decode())


def test_embedded_jwk_of_the_attackers_key(rsa_issuer: Issuer) -> None:
    attacker = Issuer("RS256")
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.private_key.public_key()))
    token = jwt.encode(
        rsa_issuer.claims("notes", "mallory"), attacker.private_key, algorithm="RS256", headers={"jwk": jwk}
    )
    assert "signature" in refused(rsa_issuer, token)


@pytest.mark.parametrize("header", ["jku", "x5u", "kid"])
def test_key_pointers_have_no_effect(rsa_issuer: Issuer, header: str) -> None:
    attacker = Issuer("RS256")
    pointer = {
        "jku": "https://evil.example/jwks",
        "x5u": "https://evil.example/cert",
        "kid": "../../dev/null",
    }
    forged = jwt.encode(
        rsa_issuer.claims("notes", "mallory"), attacker.private_key, algorithm="RS256",
        headers={header: pointer[header]},
    )  # fmt: skip
    assert "signature" in refused(rsa_issuer, forged)
    # The same pointer on a genuine token changes nothing either.
    genuine = jwt.encode(
        rsa_issuer.claims("notes", "alice"), rsa_issuer.private_key, algorithm="RS256",
        headers={header: pointer[header]},
    )  # fmt: skip
    assert verifier(rsa_issuer).verify(genuine, AUDIENCE).subject == "alice"


def test_other_asymmetric_algorithm_refused(rsa_issuer: Issuer) -> None:
    token = jwt.encode(rsa_issuer.claims("notes", "alice"), rsa_issuer.private_key, algorithm="PS256")
    assert "algorithm" in refused(rsa_issuer, token)


def test_signed_by_another_key(rsa_issuer: Issuer) -> None:
    other = Issuer("RS256")
    assert "signature" in refused(rsa_issuer, other.token("notes"))


def test_tampered_payload(rsa_issuer: Issuer) -> None:
    header, _, signature = rsa_issuer.token("notes", roles="support").split(".")
    payload = b64(json.dumps(rsa_issuer.claims("notes", roles="engineer")).encode()).decode()
    assert "signature" in refused(rsa_issuer, f"{header}.{payload}.{signature}")


CLAIM_TRICKS: dict[str, dict[str, Any]] = {
    "exp a string": {"exp": str(int(time.time()) + 600)},
    "exp a boolean": {"exp": True},
    "exp null": {"exp": None},
    "exp missing": {"exp": DROP},
    "exp past": {"exp": int(time.time()) - 1},
    "exp a list": {"exp": [int(time.time()) + 600]},
    "nbf in the future": {"nbf": int(time.time()) + 3600},
    "nbf a string": {"nbf": "0"},
    "nbf a boolean": {"nbf": False},
    "iat in the future": {"iat": int(time.time()) + 3600},
    "iat a string": {"iat": "now"},
    "aud another server": {"aud": AUDIENCE_PREFIX + "units"},
    "aud a prefix match": {"aud": AUDIENCE_PREFIX + "notes-evil"},
    "aud missing": {"aud": DROP},
    "aud a number": {"aud": 1},
    "aud a list with a number": {"aud": [AUDIENCE, 1]},
    "aud an object": {"aud": {"0": AUDIENCE}},
    "iss another": {"iss": "https://evil.example"},
    "iss missing": {"iss": DROP},
    "sub empty": {"sub": ""},
    "sub blank": {"sub": "  "},
    "sub a number": {"sub": 42},
    "sub a list": {"sub": ["alice"]},
    "sub missing": {"sub": DROP},
    "roles a number": {"roles": 1},
    "roles an object": {"roles": {"engineer": True}},
    "roles a list with a number": {"roles": ["support", 1]},
    "roles a list of lists": {"roles": [["engineer"]]},
    "roles true": {"roles": True},
}


@pytest.mark.parametrize("claims", CLAIM_TRICKS.values(), ids=list(CLAIM_TRICKS))
def test_claim_tricks(rsa_issuer: Issuer, claims: dict[str, Any]) -> None:
    payload = rsa_issuer.claims("notes", "alice", "engineer")
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not DROP}
    token = sign_raw(rsa_issuer, b'{"alg":"RS256","typ":"JWT"}', json.dumps(payload).encode())
    refused(rsa_issuer, token)


def claims_text(issuer: Issuer, tail: str) -> bytes:
    base = json.dumps(issuer.claims("notes", "alice", "support"))
    return (base[:-1] + tail + "}").encode()


RAW_TRICKS = {
    "duplicate roles claim": ', "roles": "engineer"',
    "duplicate sub claim": ', "sub": "admin"',
    "duplicate by escaped name": ', "\\u0072oles": "engineer"',
    "NaN claim": ', "x": NaN',
    "overflowing exp": ', "y": 1e999',
    "lone surrogate": ', "z": "\\ud800"',
}


@pytest.mark.parametrize("tail", RAW_TRICKS.values(), ids=list(RAW_TRICKS))
def test_claims_read_strictly(rsa_issuer: Issuer, tail: str) -> None:
    token = sign_raw(rsa_issuer, b'{"alg":"RS256","typ":"JWT"}', claims_text(rsa_issuer, tail))
    assert "claims" in refused(rsa_issuer, token)


def test_duplicate_alg_in_header(rsa_issuer: Issuer) -> None:
    token = sign_raw(
        rsa_issuer, b'{"alg":"none","alg":"RS256"}', json.dumps(rsa_issuer.claims("notes")).encode()
    )
    assert "header" in refused(rsa_issuer, token)


def test_crit_header(rsa_issuer: Issuer) -> None:
    token = sign_raw(
        rsa_issuer, b'{"alg":"RS256","crit":["exp"]}', json.dumps(rsa_issuer.claims("notes")).encode()
    )
    assert "critical" in refused(rsa_issuer, token)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + ".",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t.replace(".", "=.", 1),
        lambda t: t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t) else t + "+",
        lambda t: "é" + t,
        lambda t: t + "A" * 20000,
    ],
    ids=["four parts", "two parts", "padding", "standard base64", "not ASCII", "too long"],
)
def test_malformed_tokens(rsa_issuer: Issuer, mangle: Any) -> None:
    refused(rsa_issuer, mangle(rsa_issuer.token("notes")))


def test_cache_keeps_checking_expiry_and_audience(rsa_issuer: Issuer) -> None:
    now = [time.time()]
    check = TokenVerifier(Auth.model_validate(auth_section()), rsa_issuer.public_pem, clock=lambda: now[0])
    token = rsa_issuer.token("notes", exp=int(now[0]) + 60)
    assert check.verify(token, AUDIENCE).subject == "alice"
    assert check.verify(token, AUDIENCE).subject == "alice"  # from the cache
    with pytest.raises(InvalidToken):
        check.verify(token, AUDIENCE_PREFIX + "units")  # cached, still for notes only
    now[0] += 61
    with pytest.raises(InvalidToken, match="expired"):
        check.verify(token, AUDIENCE)


def test_key_must_match_the_algorithm(rsa_issuer: Issuer) -> None:
    with pytest.raises(ValueError, match="ES256"):
        TokenVerifier(Auth.model_validate(auth_section("ES256")), rsa_issuer.public_pem)
    private_pem = rsa_issuer.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError):
        TokenVerifier(Auth.model_validate(auth_section()), private_pem)


def test_roles_split_on_single_spaces_only(issuer: Issuer) -> None:
    caller = verifier(issuer).verify(issuer.token("notes", roles="support  engineer "), AUDIENCE)
    assert caller.roles == {"support", "engineer"}


@pytest.mark.parametrize(
    "separator",
    [
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x1f",
        "\x00",
        "\x85",
        "\u00a0",
        "\u2003",
        "\u2028",
        "\u200b",
    ],
)
def test_a_roles_claim_with_other_whitespace_or_control_characters_is_refused(
    issuer: Issuer, separator: str
) -> None:
    # str.split() would read "support<sep>engineer" as two roles, handing a support caller engineer's tools.
    assert "whitespace" in refused(issuer, issuer.token("notes", roles=f"support{separator}engineer"))
    listed = issuer.token("notes", roles=["support", f"support{separator}engineer"])
    assert "whitespace" in refused(issuer, listed)
