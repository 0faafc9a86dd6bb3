"""What a model call cost locally, and what the same tokens would have cost on the baseline
LLM. Prices come from ``prices.toml`` (shipped beside this module, every figure dated and
sourced) overridden key by key by ``$COVEY_HOME/prices.toml`` (layered and converted by
:mod:`covey_usage.settings`).

:class:`CostStage` is the step between a finished call and its row in the usage log. It
holds each call for a short settle period so that every call overlapping it is known, then
splits the engine's wall time, energy and CPU time in each stretch of time among the calls
running in it, in proportion to their tokens per second (a call that used more of the
batch's tokens gets more of its cost). With all overlapping calls known the shares add up
to exactly what the counters measured.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from covey_usage import home
from covey_usage.calls import ModelCall
from covey_usage.energy import Meter
from covey_usage.settings import layer, structure

log = logging.getLogger("covey.cost")

JOULES_PER_KWH = 3.6e6
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}


class PriceError(ValueError):
    """A price table that cannot be used; the message names the file, key and problem."""


@dataclass(frozen=True)
class ModelPrice:
    name: str
    """The model's name, its key under ``[models]``."""
    input_usd_per_mtok: float
    """US dollars per million prompt tokens."""
    output_usd_per_mtok: float
    """US dollars per million completion tokens."""
    provider: str = ""
    """Who sells it."""
    as_of: str = ""
    """The date the price applies from."""
    source: str = ""
    """Where the price comes from."""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_usd_per_mtok
                + completion_tokens * self.output_usd_per_mtok) / 1e6


@dataclass(frozen=True)
class Prices:
    baseline: ModelPrice
    models: dict[str, ModelPrice]
    gpu_usd_per_hour: float
    cpu_usd_per_core_hour: float
    cores_attributed: int
    """Cores a CPU engine is assumed to use when its CPU time cannot be read."""
    usd_per_kwh: float
    sources: tuple[str, ...] = ()

    def for_model(self, name: str) -> ModelPrice:
        """The price of ``name`` if the table has it, else the baseline's."""
        return self.models.get(name, self.baseline)

    def local_cost(self, device: str, engine_seconds: float | None,
                   cpu_seconds: float | None, energy_j: float | None) -> float | None:
        """Hardware time × its hourly rate, plus energy × the electricity price."""
        if device == "cpu":
            if cpu_seconds is None:
                return None
            hardware = cpu_seconds / 3600 * self.cpu_usd_per_core_hour
        else:
            if engine_seconds is None:
                return None
            hardware = engine_seconds / 3600 * self.gpu_usd_per_hour
        return hardware + (energy_j or 0.0) / JOULES_PER_KWH * self.usd_per_kwh


def shipped_prices_text() -> str:
    return resources.files("covey_usage").joinpath("prices.toml").read_text()


def user_prices_file() -> Path:
    return home.covey_home() / "prices.toml"


@dataclass(frozen=True)
class _BaselineChoice:
    model: str
    """The LLM calls are compared with; a key of ``[models]``."""


@dataclass(frozen=True)
class _GpuPrice:
    usd_per_hour: float
    """What an hour of the GPU costs (ownership or rental)."""
    as_of: str = ""
    """The date the price applies from."""
    source: str = ""
    """Where the price comes from."""


@dataclass(frozen=True)
class _CpuPrice:
    usd_per_core_hour: float
    """What an hour of one CPU core costs."""
    cores_attributed: int = 0
    """Cores a CPU engine is assumed to use when its CPU time cannot be read (0: all)."""
    as_of: str = ""
    """The date the price applies from."""
    source: str = ""
    """Where the price comes from."""


@dataclass(frozen=True)
class _Hardware:
    gpu: _GpuPrice
    """The GPU's hourly price."""
    cpu: _CpuPrice
    """The CPU's hourly price per core."""


@dataclass(frozen=True)
class _EnergyPrice:
    usd_per_kwh: float
    """Electricity, in US dollars per kWh."""
    as_of: str = ""
    """The date the price applies from."""
    source: str = ""
    """Where the price comes from."""


@dataclass(frozen=True)
class PriceFile:
    """``prices.toml`` as written: the shape the shipped and the user's file share."""

    baseline: _BaselineChoice
    """Which model's price is the LLM-equivalent cost."""
    hardware: _Hardware
    """Hourly prices of the local hardware."""
    energy: _EnergyPrice
    """The electricity price."""
    models: dict[str, ModelPrice] = dataclasses.field(default_factory=dict)
    """Per-token prices of LLMs, by name."""


def load_prices(user_file: Path | None = None, *, user: bool = True) -> Prices:
    """The shipped price table with the user's overrides applied (``user=False``: none)."""
    layered = layer(shipped=(shipped_prices_text(), "prices.toml (shipped)"),
                    user_file=(user_file or user_prices_file()) if user else None,
                    error=PriceError)
    models = layered.raw.get("models")
    if isinstance(models, dict):  # the key names the model
        layered.raw["models"] = {name: {**entry, "name": name} if isinstance(entry, dict)
                                 else entry for name, entry in models.items()}
    table = structure(PriceFile, layered, error=PriceError)
    for path, value in _amounts(table):
        if value < 0:
            raise PriceError(f"{layered.origin(path)}: {'.'.join(path)}: must not be negative")
    if table.baseline.model not in table.models:
        raise PriceError(f"{layered.origin(('baseline', 'model'))}: baseline.model: "
                         f"{table.baseline.model!r} has no [models] price "
                         f"(known: {', '.join(sorted(table.models))})")
    return Prices(
        baseline=table.models[table.baseline.model], models=table.models,
        gpu_usd_per_hour=table.hardware.gpu.usd_per_hour,
        cpu_usd_per_core_hour=table.hardware.cpu.usd_per_core_hour,
        cores_attributed=table.hardware.cpu.cores_attributed or (os.cpu_count() or 1),
        usd_per_kwh=table.energy.usd_per_kwh, sources=layered.sources,
    )


def _amounts(table: PriceFile):
    """Every price in the file, with its key path (none may be negative)."""
    yield ("hardware", "gpu", "usd_per_hour"), table.hardware.gpu.usd_per_hour
    yield ("hardware", "cpu", "usd_per_core_hour"), table.hardware.cpu.usd_per_core_hour
    yield ("energy", "usd_per_kwh"), table.energy.usd_per_kwh
    for name, price in table.models.items():
        yield ("models", name, "input_usd_per_mtok"), price.input_usd_per_mtok
        yield ("models", name, "output_usd_per_mtok"), price.output_usd_per_mtok


def is_local_engine(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host in LOCAL_HOSTS or host.startswith("127.")


@dataclass
class _Window:
    """The stretch of time one call occupied an engine, and how hard it used it."""

    engine: str
    start: float
    end: float
    rate: float
    """Tokens per second; at least one token so a failed call still carries a share."""

    @classmethod
    def of(cls, call: ModelCall) -> _Window:
        duration = max(call.latency_ms / 1000, 1e-6)
        tokens = max(call.prompt_tokens + call.completion_tokens, 1)
        return cls(engine=call.engine_url, start=call.started_at,
                   end=call.started_at + call.latency_ms / 1000, rate=tokens / duration)


@dataclass
class Attribution:
    engine_seconds: float
    energy_j: float | None
    cpu_seconds: float | None


def attribute(target: _Window, windows: list[_Window], meter: Meter | None) -> Attribution:
    """Split the engine's time, energy and CPU time over ``target``'s window among the
    windows of ``windows`` (which include ``target``) that share its engine."""
    # Sweep over the rate changes inside the target's window.
    changes: dict[float, float] = {}
    for w in windows:
        if w is target or w.engine != target.engine:
            continue
        if w.start < target.end and w.end > target.start:
            start, end = max(w.start, target.start), min(w.end, target.end)
            changes[start] = changes.get(start, 0.0) + w.rate
            changes[end] = changes.get(end, 0.0) - w.rate
    changes.setdefault(target.start, 0.0)
    changes.setdefault(target.end, 0.0)
    points = sorted(changes)
    seconds, energy, cpu = 0.0, 0.0, 0.0
    energy_known = cpu_known = meter is not None
    others = 0.0
    for a, b in zip(points, points[1:], strict=False):
        others += changes[a]
        share = target.rate / (target.rate + max(others, 0.0))
        seconds += share * (b - a)
        if energy_known:
            used = meter.timeline.usage(a, b, "energy_j")
            energy_known = used is not None
            energy += share * (used or 0.0)
        if cpu_known:
            used = meter.timeline.usage(a, b, "cpu_s")
            cpu_known = used is not None
            cpu += share * (used or 0.0)
    return Attribution(engine_seconds=seconds, energy_j=energy if energy_known else None,
                       cpu_seconds=cpu if cpu_known else None)


class CostStage:
    """Fills ``device``, ``engine_seconds``, ``cpu_seconds``, ``energy_j``,
    ``local_cost_usd`` and ``llm_cost_usd`` on calls before they are written.

    Runs on the usage log's writer thread: :meth:`add` each call as it arrives, then take
    the calls whose settle period has passed from :meth:`ready`.
    """

    def __init__(self, prices: Prices, meter: Meter | None = None, *, settle_s: float = 1.0,
                 keep_s: float = 600.0, clock: Callable[[], float] = time.time):
        self.prices = prices
        self.meter = meter
        self.settle_s = settle_s
        self.keep_s = keep_s
        self._clock = clock
        self._pending: list[tuple[ModelCall, _Window]] = []
        self._recent: list[_Window] = []
        """Windows of recent local calls, sorted by start."""
        self._longest = 0.0

    @property
    def pending(self) -> list[ModelCall]:
        return [call for call, _ in self._pending]

    def add(self, call: ModelCall) -> None:
        window = _Window.of(call)
        if call.source != "baseline":
            bisect.insort(self._recent, window, key=lambda w: w.start)
            self._longest = max(self._longest, window.end - window.start)
        self._pending.append((call, window))

    def ready(self, force: bool = False) -> list[ModelCall]:
        """Calls whose settle period is over (all of them with ``force``), costed."""
        now = self._clock()
        if force and self.meter is not None and self._pending:
            self.meter.sample()  # the timeline must reach the newest call's end
        done, waiting = [], []
        for call, window in self._pending:
            (done if force or now >= window.end + self.settle_s else waiting).append(
                (call, window))
        self._pending = waiting
        for call, window in done:
            try:
                self._cost(call, window)
            except Exception:  # costing is best effort; the row is still written
                log.exception("could not cost call %s", call.id)
        cutoff = now - self.keep_s - self._longest
        if self._recent and self._recent[0].start < cutoff:
            del self._recent[:bisect.bisect_left(self._recent, cutoff, key=lambda w: w.start)]
        return [call for call, _ in done]

    def estimate(self, call: ModelCall) -> None:
        """Fill ``llm_cost_usd`` (exact: it depends only on tokens) and a first
        ``local_cost_usd`` (the call's wall time alone, no sharing, no energy) on ``call``
        at once, for callers that show cost straight away; the logged row gets the
        attributed figures. Cheap, and safe from any thread."""
        prices = self.prices
        if call.source == "baseline":
            call.llm_cost_usd = prices.for_model(call.model).cost(call.prompt_tokens,
                                                                  call.completion_tokens)
            call.local_cost_usd = 0.0
            return
        call.llm_cost_usd = prices.baseline.cost(call.prompt_tokens, call.completion_tokens)
        seconds = call.latency_ms / 1000
        if not is_local_engine(call.engine_url):
            device = "remote"
        else:
            device = self.meter.device if self.meter else "cpu"
        call.local_cost_usd = prices.local_cost(device, seconds,
                                                seconds * prices.cores_attributed, None)

    def _overlapping(self, window: _Window) -> list[_Window]:
        """Recent windows that can overlap ``window`` (none is longer than the longest)."""
        key = lambda w: w.start  # noqa: E731
        lo = bisect.bisect_left(self._recent, window.start - self._longest, key=key)
        hi = bisect.bisect_right(self._recent, window.end, key=key)
        return self._recent[lo:hi]

    def _cost(self, call: ModelCall, window: _Window) -> None:
        prices = self.prices
        if call.source == "baseline":
            # An API call: it cost what the API charges, and nothing locally.
            call.device = call.device or "api"
            call.llm_cost_usd = prices.for_model(call.model).cost(
                call.prompt_tokens, call.completion_tokens)
            call.local_cost_usd = 0.0
            return
        call.llm_cost_usd = prices.baseline.cost(call.prompt_tokens, call.completion_tokens)
        local = is_local_engine(call.engine_url)
        meter = self.meter if local else None
        share = attribute(window, self._overlapping(window), meter)
        if not call.device:
            call.device = (self.meter.device if self.meter else "cpu") if local else "remote"
        call.engine_seconds = share.engine_seconds
        call.energy_j = share.energy_j
        if call.device == "cpu":
            call.cpu_seconds = (share.cpu_seconds if share.cpu_seconds is not None
                                else share.engine_seconds * prices.cores_attributed)
        elif share.cpu_seconds is not None:
            call.cpu_seconds = share.cpu_seconds
        call.local_cost_usd = prices.local_cost(call.device, call.engine_seconds,
                                                call.cpu_seconds, call.energy_j)


def describe(prices: Prices) -> dict:
    """The prices in force, for ``covey usage`` and reports."""
    return {
        "baseline": dataclasses.asdict(prices.baseline),
        "gpu_usd_per_hour": prices.gpu_usd_per_hour,
        "cpu_usd_per_core_hour": prices.cpu_usd_per_core_hour,
        "cores_attributed": prices.cores_attributed,
        "usd_per_kwh": prices.usd_per_kwh,
        "sources": list(prices.sources),
    }
