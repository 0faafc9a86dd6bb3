"""``covey serve`` / ``python -m covey_server``: run the language server.

stdout carries JSON-RPC only; logs go to stderr or ``--log-file``.
"""

from __future__ import annotations

import logging
import sys

import click


def _host_port(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint="--tcp")
    return host or "127.0.0.1", int(port)


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--tcp", "tcp", metavar="HOST:PORT", help="Listen on TCP instead of stdio.")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option("--log-file", type=click.Path(dir_okay=False, writable=True),
              help="Write logs to this file instead of stderr.")
def serve(tcp: str | None, verbose: int, log_file: str | None) -> None:
    """Run the Covey language server (stdio by default).

    Editors start it as `python -m covey_server`; settings arrive as initializationOptions
    (see docs/lsp-protocol.md).

    Example:

        covey serve --tcp 127.0.0.1:2087 -v --log-file /tmp/covey.log
    """
    address = _host_port(tcp)
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):  # the CLI group may have set up stderr already
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    if verbose < 2:
        logging.getLogger("pygls").setLevel(max(level, logging.INFO))

    from covey_server.app import build_server

    server = build_server()
    if address:
        server.start_tcp(*address)
    else:
        server.start_io()


if __name__ == "__main__":
    serve(prog_name="covey serve")
