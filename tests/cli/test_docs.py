"""The docs can't drift: every CLI command has help text and appears in the README."""

from __future__ import annotations

import re
from pathlib import Path

import click

from covey_cli import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _commands(command: click.Command, path: tuple[str, ...]):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, path + (name,))


def test_every_command_has_help_and_is_in_the_readme():
    missing_help, missing_readme = [], []
    for path, command in _commands(main, ("covey",)):
        name = " ".join(path)
        if not (command.help or "").strip():
            missing_help.append(name)
        if isinstance(command, click.Group) and len(path) > 1:
            continue  # a group is documented through its subcommands
        if f"`{name}" not in README:
            missing_readme.append(name)
    assert not missing_help, f"commands without help text: {missing_help}"
    assert not missing_readme, f"commands missing from README.md: {missing_readme}"


def test_readme_quick_start_commands_exist():
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "make demo" in README and "make test" in README
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci


def test_every_command_in_the_team_guide_exists_and_names_what_runs_it():
    """docs/team.md: each ``covey …`` command is a real one, and each file its table names
    as running a command exists."""
    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "team.md").read_text()
    names = {" ".join(path) for path, _ in _commands(main, ("covey",))}
    used = {m.group(1) for m in re.finditer(r"^(covey(?: [a-z-]+)+)", text, re.M)}
    assert used, "no commands found"
    for line in used:
        words = line.split()
        assert any(" ".join(words[:n]) in names for n in range(3, len(words) + 1)), line
    runners = set(re.findall(r"((?:tests|benchmarks)/[\w/]+\.py)", text))
    assert runners and all((root / r).is_file() for r in runners), runners
