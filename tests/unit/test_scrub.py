"""Scrubbing: planted secrets (also cut keys, random tokens) never reach a dataset; emails
are anonymised; ordinary code is kept."""

from __future__ import annotations

import base64
import json
import secrets
import textwrap

import pytest

from covey_training.dataset import build_dataset, raw_examples
from covey_training.scrub import (
    EMAIL_PLACEHOLDER,
    find_secrets,
    is_random_token,
    replace_emails,
    scrub_texts,
)
from covey_training.sources import iter_sources

# Built by concatenation so this file itself trips no secret scanner.
AWS = "AKIA" + "QWERTYUIOPASDFGH"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
OPENAI = "sk-" + "proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"
SLACK = "xoxb-" + "123456789012-abcdefABCDEF"
PRIVATE_KEY = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"
PASSWORD_LINE = 'db_password = "' + 'hunter2-Prod!"'
TOKEN_KWARG = 'connect(host, auth_token="' + 'q8Zr1LmPx0Vt")'
URL_CREDS = "postgres://admin:" + "s3cretpw@db.internal:5432/app"
SECRETS = [AWS, GITHUB, OPENAI, SLACK, PRIVATE_KEY, PASSWORD_LINE, TOKEN_KWARG, URL_CREDS]


@pytest.mark.parametrize("secret", SECRETS)
def test_each_secret_kind_is_found(secret):
    assert find_secrets(f"x = 1\n{secret}\n"), secret


@pytest.mark.parametrize("harmless", [
    'password = ""', 'password = "<password>"', 'token = "{token}"',
    'prompt = "Password: "', "def check_password(password): pass",
    'if token == "xxxx":', "sk = 3", 'key = "value"',
])
def test_harmless_code_is_not_a_secret(harmless):
    assert find_secrets(harmless) == []


def test_emails_are_replaced():
    text, n = replace_emails("# Author: Jane Doe <jane.doe@corp.example.org>, bob@x.io\n")
    assert n == 2
    assert "jane.doe" not in text and "bob@" not in text
    assert text.count(EMAIL_PLACEHOLDER) == 2


def test_scrub_texts_drops_whole_example_on_any_secret():
    texts, kinds, _ = scrub_texts("clean prompt", f"target with {AWS}")
    assert texts is None and kinds == ["aws-access-key"]


def _planted_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for i, secret in enumerate([*SECRETS, "pass"]):  # the last module is clean
        one_line = secret.replace("\n", "\\n")
        body = textwrap.indent(f"CONFIG = '''{one_line}'''", "    ")
        (repo / f"mod{i}.py").write_text(textwrap.dedent(f'''\
            """Module {i}. Contact: maintainer{i}@company.example.com"""
            import os


            def configure(settings):
                """Configure the client from settings.

                Args:
                    settings: The names to set.
                """
                result = []
                for name in settings:
                    result.append(name.upper())
            {body}
                if settings:
                    os.environ["A"] = "1"
                    os.environ["B"] = "2"
                return result


            def helper(values):
                """Return the values, sorted and deduplicated.

                Args:
                    values: What to sort.
                """
                total = sorted(set(values))
                return list(total)
            '''))
    return repo


@pytest.mark.parametrize("task", ["completion", "doc", "refactor"])
def test_planted_secrets_never_reach_the_dataset(tmp_path, task):
    repo = _planted_repo(tmp_path)
    examples, info = build_dataset(task, [repo], split="all", per_file=50)
    dumped = "\n".join(ex.to_json() for ex in examples)
    for secret in SECRETS:
        for fragment in (secret.split("\n")[0], secret[-12:]):
            assert fragment not in dumped
            assert json.dumps(fragment)[1:-1] not in dumped
    assert "company.example.com" not in dumped
    assert sum(info.scrub["dropped"].values()) >= len(SECRETS)
    # the clean module still gives examples: scrubbing is not "drop everything"
    assert any(ex.source.startswith(f"mod{len(SECRETS)}.py:") for ex in examples)


# ---------------------------------------------------------------- multi-line keys, tokens

def _pem_key(lines: int = 40) -> str:
    body = base64.b64encode(secrets.token_bytes(48 * lines)).decode()
    rows = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN " + "PRIVATE KEY-----\n" + "\n".join(rows)
            + "\n-----END " + "PRIVATE KEY-----\n")


def test_a_key_cut_without_its_begin_line_is_found():
    key = _pem_key(6)
    rows = key.splitlines()
    assert "private-key-end" in find_secrets("x = 1\n" + "\n".join(rows[3:]))
    body_only = "x = '''\n" + "\n".join(rows[2:5]) + "\n'''\n"
    assert find_secrets(body_only)  # the body alone, neither BEGIN nor END
    assert find_secrets("x = 1\n" + rows[3] + "\n")  # even one line of it: high entropy


def test_random_tokens_are_found_wherever_they_are():
    for token in [secrets.token_urlsafe(48), secrets.token_hex(20), secrets.token_hex(32),
                  base64.b64encode(secrets.token_bytes(36)).decode()]:
        assert find_secrets(f'SETTINGS = {{"value": "{token}"}}\n') == ["high-entropy-token"]


def test_random_tokens_are_caught_nearly_always():
    # 32 characters is the shortest token looked at; see TOKEN's comment for the figures
    caught = sum(is_random_token(secrets.token_urlsafe(24)) for _ in range(2000))
    assert caught >= 0.97 * 2000


@pytest.mark.parametrize("ordinary", [
    "def test_planted_secrets_never_reach_the_dataset_for_every_task(tmp_path):",
    "class AbstractSingletonProxyFactoryBeanImplementation(BaseFactory):",
    "URL = 'https://docs.python.org/3/library/concurrent.futures.html#module-contents'",
    "MAX_CONCURRENT_REQUESTS_PER_CONNECTION_POOL = 128",
    "path = '/usr/lib/python3/dist-packages/setuptools/command/build_ext.py'",
    "HEADER = '----------------------------------------------------------------'",
    "assert handler.on_text_document_did_change_notification_received_twice",
    "x = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
])
def test_ordinary_code_is_not_a_token(ordinary):
    assert find_secrets(ordinary) == []


def _key_repo(tmp_path, key: str, tokens: list[str]):
    repo = tmp_path / "keyrepo"
    repo.mkdir()
    plain = "\n".join(f"    v{i} = values[{i}] + {i}\n    total += v{i}" for i in range(30))
    (repo / "keys.py").write_text(
        "def load():\n    total = 0\n    values = list(range(40))\n" + plain + "\n"
        + f"    KEY = '''{key}'''\n" + plain.replace("v", "w") + "\n    return KEY, total\n")
    token_lines = "\n".join(f"    cfg[{i}] = {{'value': '{t}'}}\n    n += {i}"
                            for i, t in enumerate(tokens))
    (repo / "tokens.py").write_text(
        "def settings(cfg):\n    n = 0\n" + token_lines + "\n    return n\n\n\n"
        "def clean(values):\n    total = sorted(set(values))\n    return list(total)\n")
    (repo / "clean.py").write_text(
        "def helper(values):\n    \"\"\"Return the values, sorted.\n\n    Args:\n"
        "        values: What to sort.\n    \"\"\"\n"
        "    total = sorted(set(values))\n    return list(total)\n\n\n"
        "def other(items):\n    out = []\n    for item in items:\n"
        "        out.append(item * 2)\n    return out\n")
    return repo


@pytest.mark.parametrize("task", ["completion", "doc", "refactor"])
def test_cut_keys_and_random_tokens_never_reach_the_dataset(tmp_path, task):
    key = _pem_key(40)  # 2,600 characters: longer than any prompt window
    tokens = [secrets.token_urlsafe(48), secrets.token_hex(20)]
    repo = _key_repo(tmp_path, key, tokens)
    sources = list(iter_sources([repo], "all"))
    body = key.splitlines()[1:-1]
    if task == "completion":  # the planted key really is cut by some windows
        raw = [ex.to_json() for ex in raw_examples(task, sources, 0, per_file=200)]
        assert any("-----BEGIN" not in text and any(row in text for row in body)
                   for text in raw)
    examples, info = build_dataset(task, [repo], split="all", per_file=200)
    dumped = "\n".join(ex.to_json() for ex in examples)
    assert "PRIVATE KEY" not in dumped
    for row in body:
        assert row[:24] not in dumped and row[-24:] not in dumped
    for token in tokens:
        assert token[:16] not in dumped and token[-16:] not in dumped
    assert any(ex.source.startswith("clean.py:") for ex in examples)
