"""The usage log: one SQLite row per model call, with its latency, tokens and cost.

Entry point::

    from covey_usage import open_usage_log

    usage = open_usage_log()                  # $COVEY_HOME/usage.db
    client = EngineClient(url, key, sink=usage)
    ...
    usage.mark_accepted(call_id, True)        # when the editor reports it
    usage.close()                             # also runs at exit

The tables and example queries are described in docs/usage-log.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

from covey_settings import home
from covey_usage.cost import CostStage, PriceError, Prices, load_prices
from covey_usage.energy import Meter
from covey_usage.writer import UsageLog, WriterStats

__all__ = ["UsageLog", "WriterStats", "open_usage_log"]

log = logging.getLogger("covey.usage")


def open_usage_log(path: Path | str | None = None, store_text: bool = False, *,
                   prices: Prices | None = None, meter: Meter | bool = True,
                   settle_s: float = 1.0) -> UsageLog:
    """Start the usage log writer for ``path`` (default ``$COVEY_HOME/usage.db``).

    ``store_text``: keep prompt and completion text (off: only sizes and sha256 hashes).
    ``meter``: True measures this host (NVML, RAPL, the engine's CPU time); False measures
    nothing (cost from wall time only); or a :class:`Meter` to use.
    ``settle_s``: how long a finished call waits for overlapping calls before it is costed.

    Never raises for database trouble: the writer logs and retries in the background. A
    broken user price file is logged and the shipped prices are used.
    """
    path = Path(path) if path is not None else home.usage_db_path()
    if prices is None:
        prices = _prices_or_shipped()
    if meter is True:
        meter = Meter.for_host()
    meter = meter or None
    if meter is not None:
        meter.start()
    return UsageLog(path, CostStage(prices, meter, settle_s=settle_s), store_text=store_text)


def _prices_or_shipped() -> Prices:
    try:
        return load_prices()
    except PriceError as exc:
        log.error("%s; using the shipped prices", exc)
        return load_prices(user=False)
