"""One engine for a team: a key per user, and who made which request.

Keys live as sha256 digests in ``$COVEY_HOME/engine/team_keys.json`` (mode 0600, replaced
whole on every change); the engine's guard (:mod:`covey_specialists.engine_guard`) re-reads
it on the next request, so adding or revoking a key needs no restart. A key is shown once,
when it is made. The guard records each request in ``requests.jsonl`` beside it;
:func:`request_summary` adds those up per user, for splitting the engine's cost.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path

from covey_settings import home
from covey_specialists.engine_guard import OWNER

_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
KEY_BYTES = 32


class TeamError(ValueError):
    """A key operation that cannot be done; the message says why."""


def keys_file() -> Path:
    return home.engine_dir() / "team_keys.json"


def requests_file() -> Path:
    return home.engine_dir() / "requests.jsonl"


def add_key(user: str) -> str:
    """Make a key for ``user`` and return it (the only time it is shown)."""
    if not _USER.fullmatch(user) or user == OWNER:
        raise TeamError(f"{user!r} is not a usable user name (letters, digits, '.', '_', '@', "
                        f"'-'; not {OWNER!r})")
    users = _users()
    if user in users:
        raise TeamError(f"{user} already has a key; `covey engine keys revoke {user}` first")
    key = "covey-" + secrets.token_urlsafe(KEY_BYTES)
    users[user] = {"sha256": hashlib.sha256(key.encode()).hexdigest(),
                   "added_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write(users)
    return key


def revoke_key(user: str) -> None:
    users = _users()
    if users.pop(user, None) is None:
        raise TeamError(f"{user} has no key (see `covey engine keys list`)")
    _write(users)


def list_keys() -> list[dict]:
    return [{"user": name, "added_at": entry.get("added_at", "")}
            for name, entry in sorted(_users().items())]


def request_summary(since: float = 0.0) -> list[dict]:
    """Per user: requests, model calls (completions and chats), errors and tokens, from the
    engine's request log (and its rolled-over part)."""
    totals: dict[str, dict] = {}
    for path in (requests_file().with_name(requests_file().name + ".1"), requests_file()):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut by a crash
                continue
            if record.get("time", 0) < since:
                continue
            row = totals.setdefault(record.get("user", "?"), {
                "user": record.get("user", "?"), "requests": 0, "model_calls": 0, "errors": 0,
                "prompt_tokens": 0, "completion_tokens": 0})
            row["requests"] += 1
            row["model_calls"] += str(record.get("path", "")).startswith(
                ("/v1/completions", "/v1/chat/completions"))
            row["errors"] += int(record.get("status", 0)) >= 400
            row["prompt_tokens"] += int(record.get("prompt_tokens") or 0)
            row["completion_tokens"] += int(record.get("completion_tokens") or 0)
    return sorted(totals.values(), key=lambda r: -r["prompt_tokens"] - r["completion_tokens"])


def _users() -> dict:
    try:
        return json.loads(keys_file().read_text()).get("users", {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise TeamError(f"{keys_file()} cannot be read ({exc}); fix or remove it") from None


def _write(users: dict) -> None:
    path = keys_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"users": users}, fh, indent=1)
    os.replace(tmp, path)  # a new inode: the guard sees the change
