"""What Covey's click commands print for ``--json``, in one form for every command."""

from __future__ import annotations

import json

import click


def echo_json(data) -> None:
    """``data`` as indented JSON on stdout; values JSON lacks (paths, times) as their text."""
    click.echo(json.dumps(data, indent=2, default=str))
