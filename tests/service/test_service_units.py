"""Pure pieces of the service without a server: store purge, settings precedence, auth."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from farview.service.auth import Authenticator
from farview.service.config import DEFAULT_MAX_SESSIONS, DEFAULT_PORT, load_settings
from farview.service.pool import _remove_old_logs
from farview.service.store import SessionRecord, SessionStore
from tests.hosting import mint_token, new_signing_key


def record(sid: str, status: str, ended_at: float | None) -> SessionRecord:
    return SessionRecord(account_id="a", session_id=sid, status=status, size="Standard",
                         max_lease_minutes=5, created_at=0.0, ended_at=ended_at)


def test_purge_removes_only_terminal_records_past_retention(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.db")
    now = time.time()
    day = 86400.0
    for sid, status, ended in [("old-stopped", "Stopped", now - 31 * day),
                               ("old-expired", "Expired", now - 40 * day),
                               ("old-error", "Error", now - 31 * day),
                               ("young", "Stopped", now - 29 * day),
                               ("live", "Ready", None)]:
        store.insert_if_absent(record(sid, status, ended))
    assert store.purge(older_than=now - 30 * day) == 3
    assert [r.session_id for r in store.list_sessions("a")] == ["young", "live"]
    store.close()
    reopened = SessionStore(tmp_path / "s.db")  # records survive a reopen
    assert reopened.get("a", "young") is not None
    reopened.close()


def test_insert_if_absent_and_status_guard(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.db")
    first, inserted = store.insert_if_absent(record("x", "Starting", None))
    assert inserted and first.seq > 0
    again, inserted = store.insert_if_absent(record("x", "Starting", None))
    assert not inserted and again.seq == first.seq
    assert store.update("a", "x", only_if_status=frozenset({"Ready"}), status="Error") is None
    assert store.update("a", "x", status="Stopped", ended_at=1.0) is not None
    store.close()


def test_settings_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "farview.toml"
    cfg.write_text('port = 9000\nlease_unit_seconds = 5\nhost_start_timeout = 7\n'
                   '[[accounts]]\nid = "file"\nkey = "k1"\n')
    env = {"FARVIEW_LEASE_UNIT_SECONDS": "2", "FARVIEW_ACCOUNT_ID": "env",
           "FARVIEW_ACCOUNT_KEY": "k2"}
    s = load_settings({"lease_unit_seconds": 1.0, "port": None}, config_file=cfg, environ=env)
    assert s.lease_unit_seconds == 1.0  # command line beats env and file
    assert s.port == 9000  # file beats default
    assert s.host_start_timeout == 7
    assert s.accounts == (("env", "k2"),)  # env beats file
    assert load_settings({}, environ={}).port == DEFAULT_PORT
    assert load_settings({}, environ={}).max_sessions == DEFAULT_MAX_SESSIONS
    assert load_settings({}, environ={"FARVIEW_MAX_SESSIONS": "0"}).max_sessions == 0
    with pytest.raises(ValueError, match="max_sessions must be >= 0"):
        load_settings({"max_sessions": -1}, environ={})
    assert load_settings({}, environ={}).max_sessions_per_account == 0  # no limit
    assert load_settings({}, environ={"FARVIEW_MAX_SESSIONS_PER_ACCOUNT": "2"}
                         ).max_sessions_per_account == 2
    with pytest.raises(ValueError, match="max_sessions_per_account must be >= 0"):
        load_settings({"max_sessions_per_account": -1}, environ={})
    cfg.write_text("bogus = 1\n")
    with pytest.raises(ValueError, match="unknown setting 'bogus'"):
        load_settings({}, config_file=cfg, environ={})


def test_a_settings_file_of_the_wrong_types_is_refused_naming_the_file_and_key(
        tmp_path: Path) -> None:
    """Wrong types in the config file were Python tracebacks (port = "eighty"), or taken
    silently: a string of allowed URL hosts became its letters, ``port = true`` port 1."""
    cfg = tmp_path / "farview.toml"
    for text, what in (('port = "eighty"', "port must be a whole number, got 'eighty'"),
                       ("port = true", "port must be a whole number, got True"),
                       ('lease_unit_seconds = "fast"', "lease_unit_seconds must be a number"),
                       ('model_url_hosts = "example.com"', "model_url_hosts must be a list of strings"),
                       ('max_bitrate = "fast"', "max_bitrate must be a bit rate"),
                       ("allow_insecure_remote = 1", "allow_insecure_remote must be true or false"),
                       ('accounts = "x"', "accounts must be a list of tables"),
                       ('[[accounts]]\nid = "a"', "accounts must be a list of tables"),
                       ("port = [1", "is not valid TOML"),
                       ("lease_unit_seconds = nan", "lease_unit_seconds must be a number > 0, got nan"),
                       ("host_start_timeout = inf", "host_start_timeout must be a number > 0")):
        cfg.write_text(text + "\n")
        with pytest.raises(ValueError) as info:
            load_settings({}, config_file=cfg, environ={})
        assert what in str(info.value), (text, str(info.value))
        if "> 0" not in what:  # (those are checked once the layers are merged)
            assert str(cfg) in str(info.value)
    cfg.write_text('max_bitrate = "3M"\nmodel_url_hosts = ["models.example"]\nport = 9001\n')
    s = load_settings({}, config_file=cfg, environ={})
    assert (s.max_bitrate, s.model_url_hosts, s.port) == (3_000_000, ("models.example",), 9001)
    with pytest.raises(ValueError, match="lease_unit_seconds must be a number > 0"):
        load_settings({}, environ={"FARVIEW_LEASE_UNIT_SECONDS": "nan"})


def test_old_host_logs_go_with_their_records_and_a_running_hosts_stays(tmp_path: Path) -> None:
    logs = tmp_path / "hosts"
    (logs / "acct").mkdir(parents=True)
    (logs / "gone").mkdir()
    old, live, new, alone = (logs / "acct" / "old.log", logs / "acct" / "live.log",
                             logs / "acct" / "new.log", logs / "gone" / "x.log")
    for path in (old, live, new, alone):
        path.write_text("log\n")
    for path in (old, live, alone):
        os.utime(path, (time.time() - 86400 * 31,) * 2)
    assert _remove_old_logs(logs, time.time() - 86400 * 30, keep={live}) == 2
    assert sorted(p.name for p in logs.rglob("*.log")) == ["live.log", "new.log"]
    assert not (logs / "gone").exists()  # an account folder left empty goes too


def test_authenticator_forms() -> None:
    auth = Authenticator(accounts={"a": "key-a", "b": "key.with.dots"}, signing_key=new_signing_key())
    assert auth.authenticate("Bearer key-a", "a") == "a"
    assert auth.authenticate("bearer a:key-a", "a") == "a"
    assert auth.authenticate("Bearer key-a", "b") is None
    assert auth.authenticate("Bearer key.with.dots", "b") == "b"
    token = auth.issue_token("a")
    assert auth.authenticate(f"Bearer {token}", "a") == "a"
    assert auth.authenticate(f"Bearer {token}", "b") is None
    assert auth.authenticate(f"Bearer {token}", "a", allow_token=False) is None
    expired = mint_token(auth.signing_key, "a", ttl=-10)
    assert auth.authenticate(f"Bearer {expired}", "a") is None
    assert auth.authenticate(None, "a") is None


def test_hosts_check_tokens_with_the_public_key_only() -> None:
    """One symmetric key signed every account's tokens and was copied into every host: a
    compromised host could mint tokens for any account. Hosts now hold the public key only."""
    from farview.host.auth import verify_bearer

    auth = Authenticator(accounts={"a": "key-a"}, signing_key=new_signing_key())
    public = auth.public_key
    assert public.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in public
    token = auth.issue_token("a")
    assert verify_bearer(f"Bearer {token}", key=public, account_id="a") is None
    assert verify_bearer(f"Bearer {token}", key=public, account_id="b") == "access token belongs to another account"
    other = mint_token(new_signing_key(), "a")
    assert verify_bearer(f"Bearer {other}", key=public, account_id="a") == "access token is not valid for this host"
    assert auth.authenticate(f"Bearer {other}", "a") is None


def test_ice_server_settings_are_checked_at_start(tmp_path: Path) -> None:
    ok = load_settings({"ice_servers": ("stun:stun.example:3478", "turn:turn.example:3478?transport=udp")},
                       environ={})
    assert ok.ice_servers[1].startswith("turn:")
    with pytest.raises(ValueError, match="stun:, stuns:, turn: or turns:"):
        load_settings({"ice_servers": ("http://turn.example",)}, environ={})
    cfg = tmp_path / "farview.toml"
    cfg.write_text('ice_servers = ["turns:turn.example:5349"]\n')
    assert load_settings({}, config_file=cfg, environ={}).ice_servers == ("turns:turn.example:5349",)
    assert "turn_secret" not in repr(load_settings({"turn_secret": "s3cret"}, environ={}))


def test_media_network_settings_are_checked_at_start() -> None:
    s = load_settings({"media_addresses": ("10.0.0.5",), "media_ports": "50000-50100",
                       "announced_address": "203.0.113.9"}, environ={})
    assert s.media_network().ports == (50000, 50100)
    assert s.media_network().addresses == ("10.0.0.5",) and s.media_network().announced == "203.0.113.9"
    with pytest.raises(ValueError, match="a port range is LOW-HIGH"):
        load_settings({"media_ports": "50000"}, environ={})
    with pytest.raises(ValueError, match="not an IP address"):
        load_settings({"announced_address": "render.example"}, environ={})


def test_cors_origins_are_checked_and_merged_from_every_layer(tmp_path: Path) -> None:
    s = load_settings({"cors_origins": ("https://player.example", "http://127.0.0.1:9000")})
    assert s.cors_origins == ("https://player.example", "http://127.0.0.1:9000")
    assert load_settings({}, environ={"FARVIEW_CORS_ORIGINS": "https://a.example, https://b.example:8443"}
                         ).cors_origins == ("https://a.example", "https://b.example:8443")
    cfg = tmp_path / "c.toml"
    cfg.write_text('cors_origins = ["https://c.example"]\n')
    assert load_settings({}, config_file=cfg, environ={}).cors_origins == ("https://c.example",)
    for bad in ("*", "https://player.example/", "player.example", "ftp://x.example", "https://x.example/path"):
        with pytest.raises(ValueError, match="must be scheme://host"):
            load_settings({"cors_origins": (bad,)})
