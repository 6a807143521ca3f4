"""farview's session service (``farview serve``): ARR 2021-01-01 session REST API, SQLite store,
leases and lifecycle, a host pool that runs one render host per session, and bearer-token auth.

Modules: :mod:`service.app` (routes, error shapes), :mod:`service.lifecycle` (states, leases),
:mod:`service.pool` (host pools), :mod:`service.store` (records), :mod:`service.auth`
(accounts, tokens), :mod:`service.config` (settings), :mod:`service.tls`, :mod:`service.cli`.
The service never imports GL or aiortc; it starts hosts as processes.
"""

from farview.service.config import ServiceSettings, load_settings

__all__ = ["ServiceSettings", "load_settings"]
