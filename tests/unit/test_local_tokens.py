"""The local token authority signs tokens and checks them as the HTTP API's JWT
authorizer does: signature against the published key, expiry, issuer, audience."""

from __future__ import annotations

import jwt
import pytest

from agentfiles_local.runtime.tokens import AUDIENCE, InvalidToken, TokenAuthority

ISSUER = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def authority() -> TokenAuthority:
    return TokenAuthority(ISSUER)


def test_given_an_issued_token_when_verified_with_the_bearer_prefix_then_its_claims_come_back(authority):
    # Given
    issued = authority.issue("alice@example.com")
    # When
    claims = authority.verify(f"Bearer {issued.token}")
    # Then
    assert claims["sub"] == "alice@example.com"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["exp"] == issued.expires_at > claims["iat"]


def test_given_a_token_without_the_bearer_prefix_when_verified_then_it_is_accepted_as_api_gateway_does(
    authority,
):
    issued = authority.issue("bob")
    assert authority.verify(issued.token)["sub"] == "bob"


def test_given_the_jwks_when_a_client_verifies_a_token_with_it_then_the_signature_holds(authority):
    # Given: what a JWT authorizer downloads from the issuer
    key_set = jwt.PyJWKSet.from_dict(authority.jwks())
    issued = authority.issue("carol")
    # When
    kid = jwt.get_unverified_header(issued.token)["kid"]
    claims = jwt.decode(
        issued.token, key_set[kid].key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER
    )
    # Then
    assert claims["sub"] == "carol"
    assert "d" not in authority.jwks()["keys"][0], "the private exponent must never be published"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Bearer ", "missing"),
        ("Bearer not-a-jwt", "malformed"),
        ("Basic dXNlcjpwYXNz", "malformed"),
    ],
)
def test_given_no_usable_token_when_verified_then_it_is_refused_with_a_reason(authority, header, reason):
    with pytest.raises(InvalidToken, match=reason):
        authority.verify(header)


def test_given_an_expired_token_when_verified_then_it_is_refused():
    # Given: a token whose lifetime ended a minute before it was issued
    authority = TokenAuthority(ISSUER, ttl_seconds=-60)
    issued = authority.issue("alice")
    # When / Then
    with pytest.raises(InvalidToken, match="expired"):
        authority.verify(issued.token)


def test_given_a_token_for_another_audience_or_issuer_when_verified_then_it_is_refused():
    # Given: the authorizer now expects another audience, then another issuer
    authority = TokenAuthority(ISSUER)
    token = authority.issue("alice").token
    authority.audience = "someone-else"
    with pytest.raises(InvalidToken, match="audience"):
        authority.verify(token)
    authority.audience = AUDIENCE
    authority.issuer = "https://elsewhere.example"
    with pytest.raises(InvalidToken, match="issuer"):
        authority.verify(token)


def test_given_a_token_signed_by_another_key_when_verified_then_it_is_refused(authority):
    # Given: a token from another authority (another key pair)
    foreign = TokenAuthority(ISSUER).issue("alice").token
    with pytest.raises(InvalidToken, match="key"):
        authority.verify(foreign)


def test_given_a_token_whose_claims_were_edited_when_verified_then_the_signature_fails(authority):
    # Given: the payload swapped for one naming another subject, the signature kept
    header, _, signature = authority.issue("alice").token.split(".")
    _, other_payload, _ = authority.issue("mallory").token.split(".")
    # When / Then
    with pytest.raises(InvalidToken, match="signature"):
        authority.verify(f"{header}.{other_payload}.{signature}")


def test_given_an_algorithm_other_than_rs256_when_verified_then_it_is_refused(authority):
    # Given: an unsigned token that claims the authority's key id
    forged = jwt.encode(
        {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": 4_000_000_000},
        key=None,
        algorithm="none",
        headers={"kid": authority.key_id},
    )
    with pytest.raises(InvalidToken):
        authority.verify(forged)


@pytest.mark.parametrize("subject", ["", "a" * 129, "alice/bob", "OWNER#x", "with space", "é"])
def test_given_a_subject_outside_the_safe_alphabet_when_issued_then_it_is_refused(authority, subject):
    with pytest.raises(ValueError, match="sub"):
        authority.issue(subject)
