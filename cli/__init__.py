"""The ``covey`` command line: one click group; each area registers its own commands."""

from __future__ import annotations

import logging
import sys

import click

from covey_server import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="covey")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Covey: small fine-tuned specialists for completion, docstrings and refactoring,
    served by a local vLLM engine, with a usage/cost log and an eval harness.

    Example:

        covey models prepare && covey engine up && covey complete app.py --line 3 --col 4
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    """Attach each area's commands; imports stay here so `covey -h` lists them all."""
    from covey_cli.demo import demo
    from covey_cli.oneshot import COMMANDS as ONESHOT_COMMANDS
    from covey_eval.cli import eval_group
    from covey_server.__main__ import serve
    from covey_specialists.cli import engine_group, models_group
    from covey_training.cli import train_command
    from covey_usage.cli import usage_group

    for command in (demo, models_group, engine_group, serve, *ONESHOT_COMMANDS, usage_group,
                    eval_group, train_command):
        main.add_command(command)


_register()
