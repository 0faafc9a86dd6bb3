"""Scrubbing: planted secrets never reach a dataset; emails are anonymised."""

from __future__ import annotations

import json
import textwrap

import pytest

from covey_training.dataset import build_dataset
from covey_training.scrub import (
    EMAIL_PLACEHOLDER,
    find_secrets,
    replace_emails,
    scrub_texts,
)

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
                """Configure the client from settings."""
                result = []
                for name in settings:
                    result.append(name.upper())
            {body}
                if settings:
                    os.environ["A"] = "1"
                    os.environ["B"] = "2"
                return result


            def helper(values):
                """Return the values, sorted and deduplicated."""
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
