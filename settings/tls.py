"""Which certificates to trust for an engine served over TLS (docs/team.md).

Every Covey client of the engine (the language server, the CLI, the eval, training's
hot-load, the usage log's token counters) asks :func:`verify_for` for httpx's ``verify``:
- the engine Covey started itself with a certificate: that certificate (or its CA);
- any other engine: ``COVEY_ENGINE_CA_FILE`` when set (a team's private CA);
- else the system's trust (httpx also honours ``SSL_CERT_FILE``).
"""

from __future__ import annotations

import json
import os
import ssl

from covey_settings import home

CA_FILE_ENV = "COVEY_ENGINE_CA_FILE"


def managed_file():
    return home.engine_dir() / "tls.json"


def remember_managed(url: str, ca_file: str) -> None:
    """Record the managed engine's URL and the certificate that verifies it."""
    managed_file().write_text(json.dumps({"url": url, "ca_file": ca_file}))


def forget_managed() -> None:
    managed_file().unlink(missing_ok=True)


def verify_for(url: str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for the engine at ``url``."""
    if not url.startswith("https:"):
        return True
    try:
        managed = json.loads(managed_file().read_text())
        ca_file = managed["ca_file"] if managed.get("url") == url.rstrip("/") else ""
    except (OSError, ValueError, KeyError, TypeError):
        ca_file = ""
    ca_file = ca_file or os.environ.get(CA_FILE_ENV, "")
    if not ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError):  # the calls then fail verification, with that reason
        return True
