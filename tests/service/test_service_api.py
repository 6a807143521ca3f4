"""The REST surface against a real service: auth, error shapes, bad input, paging, OpenAPI."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from farview.client.errors import AuthenticationError, BadRequestError, SessionNotFoundError
from farview.client.rest import RemoteRenderingClient
from tests.service.conftest import RunningService, insert_record

V = {"api-version": "2021-01-01"}


@pytest.fixture
def http(service: RunningService) -> httpx.Client:
    with httpx.Client(base_url=service.url, trust_env=False, timeout=10) as client:
        yield client


def sessions_path(service: RunningService, sid: str = "") -> str:
    base = f"/accounts/{service.account_id}/sessions"
    return f"{base}/{sid}" if sid else base


def assert_error(resp: httpx.Response, status: int, code: str, *words: str) -> None:
    assert resp.status_code == status, resp.text
    assert "ms-cv" in resp.headers
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    for word in words:
        assert word in body["error"]["message"], body


# -- authentication ---------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong", "Basic abc",
                                    "Bearer local:wrong", "Bearer a.b.c"])
def test_missing_or_wrong_credential_is_401_without_body(service: RunningService,
                                                         http: httpx.Client,
                                                         header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    resp = http.get(sessions_path(service), params=V, headers=headers)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert resp.content == b""
    assert resp.headers["ms-cv"]


def test_every_route_needs_credentials(service: RunningService, http: httpx.Client) -> None:
    for method, path in [("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/nope"),
                         ("PUT", sessions_path(service, "x")),
                         ("POST", sessions_path(service, "x") + "/:stop"),
                         ("GET", f"/accounts/{service.account_id}/token"),
                         ("POST", f"/v1/accounts/{service.account_id}/sessions/create")]:
        assert http.request(method, path, params=V).status_code == 401, path


def test_key_forms_and_exchanged_token_are_accepted(service: RunningService,
                                                    http: httpx.Client) -> None:
    for cred in (service.account_key, f"{service.account_id}:{service.account_key}"):
        resp = http.get(sessions_path(service), params=V,
                        headers={"Authorization": f"Bearer {cred}"})
        assert resp.status_code == 200
    # ARR SDK spelling of the token exchange.
    resp = http.get(f"/Accounts/{service.account_id}/token",
                    params={"api-version": "2019-02-28-preview"},
                    headers={"Authorization": f"Bearer {service.account_id}:"
                             f"{service.account_key}"})
    assert resp.status_code == 200
    token = resp.json()["AccessToken"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == service.account_id and claims["aud"] == "farview"
    assert 23.9 * 3600 < claims["exp"] - time.time() <= 24 * 3600
    resp = http.get(sessions_path(service), params=V, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    # A token cannot mint further tokens.
    assert http.get(f"/accounts/{service.account_id}/token",
                    headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_credential_of_one_account_does_not_open_another(service: RunningService,
                                                         http: httpx.Client) -> None:
    resp = http.get("/accounts/someone-else/sessions", params=V, headers=service.auth)
    assert resp.status_code == 401
    insert_record(service, "theirs", account_id="someone-else")
    with service.client() as client, pytest.raises(SessionNotFoundError):
        client.get_session("theirs")


def test_client_maps_wrong_key_to_authentication_error(service: RunningService) -> None:
    with RemoteRenderingClient(service.url, service.account_id, "wrong") as client, \
            pytest.raises(AuthenticationError, match="check the account id and key"):
        client.list_sessions()


def test_openapi_is_served_with_auth(service: RunningService, http: httpx.Client) -> None:
    resp = http.get("/openapi.json", headers=service.auth)
    assert resp.status_code == 200
    paths = resp.json()["paths"]
    assert "/accounts/{account_id}/sessions/{session_id}/:stop" in paths
    assert "/v1/accounts/{account_id}/sessions/create" in paths


# -- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", ["not valid JSON"]),
    (b"", ["missing"]),
    (b"[]", ["malformed"]),
    (b'{"maxLeaseTimeMinutes": "10", "size": "Standard"}', ["maxLeaseTimeMinutes"]),
    (b'{"maxLeaseTimeMinutes": 10.5, "size": "Standard"}', ["maxLeaseTimeMinutes"]),
    (b'{"maxLeaseTimeMinutes": true, "size": "Standard"}', ["maxLeaseTimeMinutes"]),
    (b'{"maxLeaseTimeMinutes": 10, "size": "Huge"}', ["size"]),
    (b'{"maxLeaseTimeMinutes": 10}', ["size", "required"]),
    (b'{"maxLeaseTimeMinutes": 10, "size": "Standard", "color": 1}', ["unknown field", "color"]),
    (b'{"maxLeaseTimeMinutes": 1441, "size": "Standard"}', ["maxLeaseTimeMinutes", "1440"]),
    (b'{"maxLeaseTimeMinutes": -1, "size": "Standard"}', ["maxLeaseTimeMinutes"]),
])
def test_bad_create_bodies_are_400(service: RunningService, http: httpx.Client, body: bytes,
                                   words: list[str]) -> None:
    resp = http.put(sessions_path(service, "bad-body"), params=V, content=body,
                    headers={**service.auth, "Content-Type": "application/json"})
    assert_error(resp, 400, "BadRequest", *words)
    assert http.get(sessions_path(service, "bad-body"), params=V,
                    headers=service.auth).status_code == 404


@pytest.mark.parametrize("sid", ["has space", "dots.not.ok", "x" * 257, "ümlaut", "a+b",
                                 "semi;colon"])
def test_invalid_session_ids_are_400(service: RunningService, http: httpx.Client,
                                     sid: str) -> None:
    resp = http.put(sessions_path(service, sid), params=V, headers=service.auth,
                    json={"maxLeaseTimeMinutes": 10, "size": "Standard"})
    assert_error(resp, 400, "BadRequest", "session id")
    assert_error(http.get(sessions_path(service, sid), params=V, headers=service.auth),
                 400, "BadRequest")


def test_longest_valid_id_is_accepted_for_lookup(service: RunningService,
                                                 http: httpx.Client) -> None:
    resp = http.get(sessions_path(service, "A_-9" * 64), params=V, headers=service.auth)
    assert_error(resp, 404, "NotFound")


@pytest.mark.parametrize("params", [{}, {"api-version": "2019-01-01"}, {"api-version": ""}])
def test_missing_or_unknown_api_version_is_400(service: RunningService, http: httpx.Client,
                                               params: dict[str, str]) -> None:
    resp = http.get(sessions_path(service), params=params, headers=service.auth)
    assert_error(resp, 400, "BadRequest", "api-version")


def test_body_over_limit_is_413(service: RunningService, http: httpx.Client) -> None:
    big = b'{"maxLeaseTimeMinutes": 10, "size": "Standard", "pad": "' + b"x" * 70_000 + b'"}'
    resp = http.put(sessions_path(service, "big"), params=V, content=big,
                    headers={**service.auth, "Content-Type": "application/json"})
    assert_error(resp, 413, "PayloadTooLarge")

    def chunks():  # no Content-Length: the limit still holds
        for _ in range(20):
            yield b"x" * 8192

    resp = http.put(sessions_path(service, "big"), params=V, content=chunks(),
                    headers={**service.auth, "Content-Type": "application/json"})
    assert_error(resp, 413, "PayloadTooLarge")


def test_unknown_session_and_route_are_404_with_error_body(service: RunningService,
                                                           http: httpx.Client) -> None:
    assert_error(http.get(sessions_path(service, "nope"), params=V, headers=service.auth),
                 404, "NotFound", "nope")
    assert_error(http.post(sessions_path(service, "nope") + "/:stop", params=V,
                           headers=service.auth), 404, "NotFound")
    assert_error(http.patch(sessions_path(service, "nope"), params=V, headers=service.auth,
                            json={"maxLeaseTimeMinutes": 20}), 404, "NotFound")
    assert_error(http.get("/no/such/route", headers=service.auth), 404, "NotFound")
    with service.client() as client, pytest.raises(SessionNotFoundError, match="nope"):
        client.get_session("nope")


def test_bad_update_bodies_are_400(service: RunningService, http: httpx.Client) -> None:
    insert_record(service, "upd-terminal")
    for body in (b"{", b'{"maxLeaseTimeMinutes": "20"}', b'{"size": "Premium"}',
                 b'{"maxLeaseTimeMinutes": 20, "x": 1}'):
        resp = http.patch(sessions_path(service, "upd-terminal"), params=V, content=body,
                          headers={**service.auth, "Content-Type": "application/json"})
        assert_error(resp, 400, "BadRequest")


def test_an_invalid_session_id_is_a_bad_request(service: RunningService, http: httpx.Client) -> None:
    """The service says what an id may be; the client says so before sending one (an id with
    '/' in it reached no route: "no such route: PUT /accounts/local/sessions/bad id/../x")."""
    resp = http.put(sessions_path(service, "no%20spaces"), params=V,
                    json={"maxLeaseTimeMinutes": 5, "size": "Standard"}, headers=service.auth)
    assert_error(resp, 400, "BadRequest")
    assert "session id must be 1-256 letters, digits, '-' or '_'" in resp.text
    for bad in ("no spaces please", "bad id/../x", "x" * 257):
        with service.client() as client, pytest.raises(BadRequestError, match="is not valid"):
            client.create_session(bad, max_lease_time_minutes=5)


# -- list and paging ----------------------------------------------------------------------

def test_list_pages_with_absolute_next_link(service: RunningService, http: httpx.Client) -> None:
    ids = [f"page-{i}" for i in range(7)]
    for sid in ids:
        insert_record(service, sid)
    resp = http.get(sessions_path(service), params={**V, "maxpagesize": 3, "includeEnded": "true"},
                    headers=service.auth)
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["sessions"]) == 3
    link = body["@nextLink"]
    assert link.startswith(service.url) and "api-version=2021-01-01" in link
    assert "maxpagesize=3" in link and "includeEnded=true" in link
    seen = [s["id"] for s in body["sessions"]]
    while link:
        body = http.get(link, headers=service.auth).json()
        seen += [s["id"] for s in body["sessions"]]
        link = body.get("@nextLink")
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(seen)
    with service.client() as client:
        assert [s.id for s in client.list_sessions(page_size=2, include_ended=True)] == seen
    assert_error(http.get(sessions_path(service), params={**V, "continuationToken": "zz"},
                          headers=service.auth), 400, "BadRequest")
    assert_error(http.get(sessions_path(service), params={**V, "maxpagesize": 0},
                          headers=service.auth), 400, "BadRequest")


def test_the_list_has_starting_and_ready_sessions_as_arrs_does(service: RunningService,
                                                                   http: httpx.Client) -> None:
    """Found by hand against ARR's reference (and its SDK: "Does not include sessions in
    'Stopped' state"): the list returned 30 days of ended sessions too. It lists Starting and
    Ready ones; ``includeEnded=true`` (a farview extension) adds the ended ones."""
    for sid, status in (("ended-stopped", "Stopped"), ("ended-expired", "Expired"),
                        ("ended-error", "Error"), ("live-starting", "Starting"),
                        ("live-ready", "Ready")):
        insert_record(service, sid, status=status)
    listed = {s["id"]: s["status"] for s in http.get(
        sessions_path(service), params=V, headers=service.auth).json()["sessions"]}
    assert not {"ended-stopped", "ended-expired", "ended-error"} & set(listed)
    assert {"live-starting", "live-ready"} <= set(listed)
    assert set(listed.values()) <= {"Starting", "Ready"}
    everything = {s["id"] for s in http.get(
        sessions_path(service), params={**V, "includeEnded": "true"},
        headers=service.auth).json()["sessions"]}
    assert {"ended-stopped", "ended-expired", "ended-error", "live-ready"} <= everything
    with service.client() as client:
        assert "live-ready" in {s.id for s in client.list_sessions()}
        assert "ended-error" not in {s.id for s in client.list_sessions()}
        assert "ended-error" in {s.id for s in client.list_sessions(include_ended=True)}


def test_a_create_retried_after_a_renew_is_a_retry_and_an_ended_id_is_not_reused(
        service: RunningService, http: httpx.Client) -> None:
    """Found by hand (curl and ARR's SDK): a create repeated after its session was renewed got
    409 (the lease compared was the renewed one); an ended session's id, created again later,
    got the dead session back with 200, as if it were new. A retry within minutes still gets
    the session as it is."""
    import time

    body = {"maxLeaseTimeMinutes": 10, "size": "Standard"}
    insert_record(service, "renewed", status="Ready")
    assert http.patch(sessions_path(service, "renewed"), params=V, headers=service.auth,
                      json={"maxLeaseTimeMinutes": 20}).status_code == 200
    retried = http.put(sessions_path(service, "renewed"), params=V, headers=service.auth, json=body)
    assert retried.status_code == 200 and retried.json()["maxLeaseTimeMinutes"] == 20, retried.text
    longer = http.put(sessions_path(service, "renewed"), params=V, headers=service.auth,
                      json={**body, "maxLeaseTimeMinutes": 30})
    assert_error(longer, 409, "Conflict", "other settings")
    insert_record(service, "old-one", created_at=time.time() - 3600)  # Stopped an hour ago
    assert_error(http.put(sessions_path(service, "old-one"), params=V, headers=service.auth,
                          json=body), 409, "Conflict", "has ended (Stopped)", "new id")
    insert_record(service, "just-failed", status="Error")  # a retry of a create that failed
    again = http.put(sessions_path(service, "just-failed"), params=V, headers=service.auth, json=body)
    assert again.status_code == 200 and again.json()["status"] == "Error", again.text


def test_bodies_that_are_not_json_and_a_delete_say_what_to_do(service: RunningService,
                                                                  http: httpx.Client) -> None:
    """Found by hand: ``curl -d`` (a form's Content-Type) was told "Input should be a valid
    dictionary", blaming valid JSON; 30,000 nested brackets got the code ``Error`` with
    "There was an error parsing the body"; DELETE on a session, which ARR's v1 users try, said
    only "Method Not Allowed"."""
    body = '{"maxLeaseTimeMinutes": 5, "size": "Standard"}'
    form = http.put(sessions_path(service, "form"), params=V, content=body, headers={
        **service.auth, "Content-Type": "application/x-www-form-urlencoded"})
    assert_error(form, 400, "BadRequest", "Content-Type: application/json",
                 "application/x-www-form-urlencoded")
    deep = http.put(sessions_path(service, "deep"), params=V, content="[" * 30_000, headers={
        **service.auth, "Content-Type": "application/json"})
    assert_error(deep, 400, "BadRequest", "could not be parsed as JSON")
    assert_error(http.delete(sessions_path(service, "form"), params=V, headers=service.auth),
                 405, "MethodNotAllowed", "POST …/sessions/{id}/:stop")


def test_terminal_record_fields(service: RunningService) -> None:
    insert_record(service, "fields")
    with service.client() as client:
        props = client.get_session("fields").properties
    assert props.status == "Stopped" and props.size == "Standard"
    assert props.max_lease_time_minutes == 10 and props.elapsed_time_minutes == 0
    assert props.creation_time.endswith("Z") and props.error is None
