"""Signaling through the service, the one public endpoint: a real service, a real host and real
WHEP clients. A session streams through ``/accounts/{account}/sessions/{id}/whep`` with the REST
API's credentials; bad offers, unknown or foreign sessions, a second client and a stopped session
get the right status and message, and nothing is left half-open."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farview.client.connection import connect_session, connect_to_host
from farview.client.errors import OtherClientConnectedError, SessionStateError
from farview.host.connection import SETUP_TIMEOUT_ENV
from farview.streaming.peer import create_peer_connection
from tests.faults.conftest import ACCOUNT_B, two_account_service
from tests.service.conftest import RunningService

pytestmark = pytest.mark.slow
SDP = {"Content-Type": "application/sdp"}
SETUP_TIMEOUT_S = 3.0
"""The hosts' set-up timeout here (15 s by default): how long a client that vanished after its
answer holds a host."""


@pytest.fixture(scope="module")
def svc2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningService, str]]:
    svc, key_b = two_account_service(tmp_path_factory.mktemp("gw") / "data",
                                     env={SETUP_TIMEOUT_ENV: str(SETUP_TIMEOUT_S)})
    try:
        yield svc, key_b
    finally:
        svc.stop()


def test_a_session_streams_through_the_service_and_bad_signaling_is_refused(
        svc2: tuple[RunningService, str], tmp_path: Path) -> None:
    svc, key_b = svc2
    with svc.client() as client:
        session = client.create_session("gw", max_lease_time_minutes=60)
        session.wait_until_ready(60)
        assert session.whep_url == f"{svc.url}/accounts/{svc.account_id}/sessions/gw/whep"

        async def stream() -> None:
            conn = await connect_session(session, viewport=(320, 240))
            try:
                frame = await conn.next_frame(timeout=30)
                while frame.pose is None:  # the host's first picture predates our first pose
                    frame = await conn.next_frame(timeout=30)
                assert frame.width == 320
                assert conn._location is not None and conn._location.startswith(f"{session.whep_url}/")
                # a second client, with the account key this time: 409 from the host, passed on
                with pytest.raises(OtherClientConnectedError, match="another client is connected"):
                    await connect_to_host(session.whep_url, svc.account_key, viewport=(320, 240))
            finally:
                await conn.close()  # DELETE through the service frees the host at once
            again = await connect_session(session, viewport=(320, 240))
            await again.next_frame(timeout=30)
            await again.close()
            # a client that vanishes after its offer was answered (no ICE, no DELETE): the host
            # hears nothing, frees itself, and the next client gets in without a 409
            pc = create_peer_connection()
            pc.createDataChannel("control")
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            async with httpx.AsyncClient(timeout=30) as http:
                answered = await http.post(session.whep_url, content=pc.localDescription.sdp.encode(),
                                           headers={**SDP, "Authorization": f"Bearer {svc.account_key}"})
            assert answered.status_code == 201, answered.text
            await pc.close()
            vanished = asyncio.get_running_loop().time()
            deadline = vanished + 30
            while True:
                try:
                    last = await connect_session(session, viewport=(320, 240))
                    break
                except OtherClientConnectedError:
                    assert asyncio.get_running_loop().time() < deadline, "the vanished client still holds the host"
                    await asyncio.sleep(0.5)
            # (held until the host's set-up timeout: the variable reaches the hosts)
            assert asyncio.get_running_loop().time() - vanished >= SETUP_TIMEOUT_S - 0.5
            await last.next_frame(timeout=30)
            await last.close()

        asyncio.run(stream())

        with httpx.Client(base_url=svc.url, timeout=30) as http:
            own = {"Authorization": f"Bearer {svc.account_key}"}
            base = f"/accounts/{svc.account_id}/sessions"
            assert http.post(f"{base}/gw/whep", content=b"v=0", headers=SDP).status_code == 401
            r = http.post(f"{base}/nope/whep", content=b"v=0\r\nm=video\r\n", headers={**own, **SDP})
            assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"
            r = http.post(f"/accounts/{ACCOUNT_B}/sessions/gw/whep", content=b"v=0\r\nm=video\r\n",
                          headers={"Authorization": f"Bearer {key_b}", **SDP})
            assert r.status_code == 404  # another account's session does not exist for B
            r = http.post(f"{base}/gw/whep", content=b"hello", headers={**own, **SDP})
            assert r.status_code == 400 and "not an SDP offer" in r.json()["error"]["message"]
            r = http.post(f"{base}/gw/whep", content=b"v=0\r\nm=video\r\n",
                          headers={**own, "Content-Type": "text/plain"})
            assert r.status_code == 415
            r = http.post(f"{base}/gw/whep", content=b"v=0\r\nm=" + b"x" * 70_000, headers={**own, **SDP})
            assert r.status_code == 413
            r = http.delete(f"{base}/gw/whep/abc", headers=own)
            assert r.status_code == 404 and "no connection abc" in r.json()["error"]["message"]

        session.stop()
        with httpx.Client(base_url=svc.url, timeout=30) as http:
            r = http.post(f"/accounts/{svc.account_id}/sessions/gw/whep", content=b"v=0\r\nm=video\r\n",
                          headers={"Authorization": f"Bearer {svc.account_key}", **SDP})
            assert r.status_code == 409 and "gw is Stopped; create a new session" in r.json()["error"]["message"]
            assert r.json()["error"]["code"] == "SessionNotReady"  # not "another client"

        async def refused() -> None:
            with pytest.raises(SessionStateError, match="is Stopped"):  # (it said another
                await connect_session(session, viewport=(320, 240))  # client held the host)

        asyncio.run(refused())


def test_the_whep_endpoint_answers_as_the_whep_draft_and_rfc_9725_ask(
        svc2: tuple[RunningService, str]) -> None:
    """Checked by hand against the WHEP draft and RFC 9725 (WHIP, whose HTTP rules WHEP
    shares): a 405 carried no Allow; GET on the endpoint and on a resource was 405 (they MUST
    answer 2xx without content); OPTIONS named no Accept-Post; a 409 for a session still
    Starting had no Retry-After; and offers the host cannot answer as a player expects got a
    201 all the same: video sendonly or inactive (answered inactive), two video sections,
    media not bundled (answered with a BUNDLE group the offer never asked for)."""
    svc, _ = svc2
    with svc.client() as client:
        session = client.create_session("gw-rfc", max_lease_time_minutes=60)
        starting = httpx.post(session.whep_url, content=b"v=0\r\nm=video\r\n",
                              headers={**SDP, "Authorization": f"Bearer {svc.account_key}"}, timeout=30)
        if starting.status_code == 409:  # (the host may already be up: then there is no 409)
            assert starting.headers["Retry-After"] == "1", starting.headers
        session.wait_until_ready(60)
    own = {"Authorization": f"Bearer {svc.account_key}"}
    with httpx.Client(timeout=30) as http:
        url = session.whep_url
        options = http.options(url, headers=own)
        assert options.status_code == 204 and options.headers["Accept-Post"] == "application/sdp"
        assert http.get(url, headers=own).status_code == 204
        assert http.get(url).status_code == 401
        assert http.get(f"{url}/abc", headers=own).status_code == 204
        put = http.put(url, headers=own)
        assert put.status_code == 405 and put.headers["Allow"] == "GET, OPTIONS, POST", put.headers
        patch = http.patch(f"{url}/abc", headers=own)
        assert patch.status_code == 405 and patch.headers["Allow"] == "DELETE, GET", patch.headers

        async def offer(direction: str = "recvonly", videos: int = 1, bundle: bool = True) -> str:
            pc = create_peer_connection()
            pc.createDataChannel("control")
            for _ in range(videos):
                pc.addTransceiver("video", direction=direction)
            await pc.setLocalDescription(await pc.createOffer())
            sdp = pc.localDescription.sdp
            await pc.close()
            if not bundle:
                sdp = "".join(line for line in sdp.splitlines(keepends=True)
                              if not line.startswith("a=group:BUNDLE"))
            return str(sdp)

        for kw, says in (({"direction": "sendonly"}, "the offer's video is sendonly"),
                         ({"direction": "inactive"}, "the offer's video is inactive"),
                         ({"videos": 2}, "the offer has 2 video sections"),
                         ({"bundle": False}, "does not bundle its media")):
            r = http.post(url, content=asyncio.run(offer(**kw)).encode(), headers={**own, **SDP})
            assert r.status_code == 400 and says in r.json()["error"]["message"], (kw, r.text)
        # none of them took the session: a good offer is answered at once
        r = http.post(url, content=asyncio.run(offer()).encode(), headers={**own, **SDP})
        assert r.status_code == 201, r.text
        assert http.delete(httpx.URL(url).join(r.headers["Location"]), headers=own).status_code == 204
    with svc.client() as client:
        client.open_rendering_session("gw-rfc").stop()


def test_the_setup_timeout_is_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from farview.host.connection import DEFAULT_SETUP_TIMEOUT, _setup_timeout

    monkeypatch.delenv(SETUP_TIMEOUT_ENV, raising=False)
    assert _setup_timeout() == DEFAULT_SETUP_TIMEOUT == 15.0
    monkeypatch.setenv(SETUP_TIMEOUT_ENV, "4.5")
    assert _setup_timeout() == 4.5
    for bad in ("soon", "0", "-3", "nan", "inf", "301"):
        monkeypatch.setenv(SETUP_TIMEOUT_ENV, bad)
        caplog.clear()
        assert _setup_timeout() == DEFAULT_SETUP_TIMEOUT, bad
        assert f"FARVIEW_SETUP_TIMEOUT={bad!r} is not a number of seconds from 1 to 300" in caplog.text
