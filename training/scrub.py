"""Scrubbing training examples of secrets and personal data before any use.

Policy: an example that contains a secret (a credential format, a private key, or a
password/token literal assigned in code) is dropped outright — redacting in place would
still teach the model where secrets go. Email addresses are replaced with a placeholder,
because they are common and harmless in shape (author lines, docs) once anonymised.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

EMAIL_PLACEHOLDER = "user@example.com"

# Credential formats with a recognisable shape.
SECRET_PATTERNS: dict[str, re.Pattern] = {
    "private-key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "aws-access-key": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),
    "github-token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
    "openai-key": re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),
    "slack-token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "google-api-key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "stripe-key": re.compile(r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}"),
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "url-credentials": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]{3,}@[\w.-]+"),
}

# A string literal assigned to (or passed as) something named like a credential.
_SECRET_NAME = (r"(?:password|passwd|pwd|passphrase|secret|secret[_-]?key|api[_-]?key|apikey|"
                r"access[_-]?key|auth[_-]?token|access[_-]?token|token|private[_-]?key|"
                r"client[_-]?secret|credentials?)")
ASSIGNED_SECRET = re.compile(
    r"(?i)\b\w*" + _SECRET_NAME + r"\w*['\"]?\s*(?::|=|==|\+=)\s*[rbuf]*(['\"])([^'\"\n]{4,})\1"
)
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                   r"\.[A-Za-z]{2,}\b")

# Literal values that are obviously not secrets (placeholders, format strings, names).
_HARMLESS = re.compile(r"(?i)^(?:\W*|x+|\*+|<[^>]*>|\{[^}]*\}|%\w|changeme|password|secret|"
                       r"token|none|null|true|false|dummy|example|test|your[_-].*)$")


@dataclass
class ScrubReport:
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    emails_replaced: int = 0

    def as_dict(self) -> dict:
        return {"kept": self.kept, "dropped": dict(self.dropped),
                "emails_replaced": self.emails_replaced}


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def find_secrets(text: str) -> list[str]:
    """The kinds of secret found in ``text`` (empty when clean)."""
    kinds = [kind for kind, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    for match in ASSIGNED_SECRET.finditer(text):
        value = match.group(2)
        if not _HARMLESS.match(value) and " " not in value.strip():
            kinds.append("assigned-credential")
            break
    return kinds


def replace_emails(text: str) -> tuple[str, int]:
    return EMAIL.subn(EMAIL_PLACEHOLDER, text)


def scrub_texts(*texts: str) -> tuple[list[str] | None, list[str], int]:
    """Scrub the parts of one example together: (scrubbed texts or None, secret kinds, emails)."""
    kinds = sorted({k for t in texts for k in find_secrets(t)})
    if kinds:
        return None, kinds, 0
    out, emails = [], 0
    for t in texts:
        t, n = replace_emails(t)
        out.append(t)
        emails += n
    return out, kinds, emails
