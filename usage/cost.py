"""What a model call cost locally, and what the same tokens would have cost on the baseline
LLM. Prices come from ``prices.toml`` (shipped beside this module, every figure dated and
sourced) overridden key by key by ``$COVEY_HOME/prices.toml`` (layered and converted by
:mod:`covey_settings.layers`).

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
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from covey_settings import home, layer, structure
from covey_usage.calls import ModelCall
from covey_usage.energy import Meter

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


BASES = ("own", "cloud")


@dataclass(frozen=True)
class DevicePrice:
    """One hardware model's two hourly rates, each dated and sourced."""

    name: str
    """The row's key under ``[devices]`` (``cpu`` for the CPU row)."""
    purchase_usd: float
    """What the hardware costs to buy."""
    years: float
    """Years the purchase is amortised over."""
    hours_per_day: float
    """Hours a day it is assumed to be in use."""
    cloud_usd_per_hour: float
    """The public on-demand rental price per hour (per GPU, or per CPU for the CPU)."""
    match: str = ""
    """A regular expression searched, case-insensitively, in the NVML device name."""
    basis: str = "own"
    """The rate charged: ``own`` (amortised purchase, plus electricity) or ``cloud``."""
    logical_cpus: int = 1
    """CPU row only: the purchase covers this many logical CPUs."""
    usd_per_hour: float | None = None
    """Set to charge exactly this per hour, whatever the basis (your own figure)."""
    purchase_as_of: str = ""
    """The date the purchase price applies from."""
    purchase_source: str = ""
    """Where the purchase price comes from ("estimate: ..." when it is one)."""
    cloud_as_of: str = ""
    """The date the cloud price applies from."""
    cloud_source: str = ""
    """Where the cloud price comes from."""

    @property
    def own_usd_per_hour(self) -> float:
        hours = self.years * 365 * self.hours_per_day * max(self.logical_cpus, 1)
        return self.purchase_usd / hours if hours > 0 else 0.0

    def rate(self, basis: str = "") -> float:
        """$/hour (per logical CPU for the CPU row) on ``basis`` (default: the row's)."""
        if self.usd_per_hour is not None:
            return self.usd_per_hour
        basis = basis or self.basis
        return self.cloud_usd_per_hour if basis == "cloud" else self.own_usd_per_hour

    def charged_basis(self, basis: str = "") -> str:
        return "fixed" if self.usd_per_hour is not None else (basis or self.basis)

    def source(self, basis: str = "") -> tuple[str, str]:
        """(as_of, source) of the rate in force."""
        if self.charged_basis(basis) == "cloud":
            return self.cloud_as_of, self.cloud_source
        if self.charged_basis(basis) == "fixed":
            return "", "your own figure (usd_per_hour)"
        return self.purchase_as_of, (f"{self.purchase_source}; amortised over {self.years:g} "
                                     f"years at {self.hours_per_day:g} h/day")


def device_model(device: str) -> tuple[str, int]:
    """``cuda:NVIDIA H200 x2`` → (``NVIDIA H200``, 2); ``NVIDIA L4`` → (``NVIDIA L4``, 1)."""
    name = device.removeprefix("cuda:").strip()
    match = re.fullmatch(r"(.*) x(\d+)", name)
    if match:
        return match.group(1).strip(), int(match.group(2))
    return name, 1


@dataclass(frozen=True)
class Prices:
    baseline: ModelPrice
    models: dict[str, ModelPrice]
    devices: dict[str, DevicePrice]
    """GPU models by row name."""
    cpu: DevicePrice
    cores_attributed: int
    """Cores a CPU engine is assumed to use when its CPU time cannot be read."""
    usd_per_kwh: float
    energy_as_of: str = ""
    energy_source: str = ""
    basis: str = ""
    """``own`` or ``cloud`` for every device; empty: each row's own basis."""
    remote_device: str = ""
    """The row a remote engine is priced as; empty: unpriced."""
    sources: tuple[str, ...] = ()
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)
    """Dotted keys the user's file set → that file."""

    def for_model(self, name: str) -> ModelPrice:
        """The price of ``name`` if the table has it, else the baseline's."""
        return self.models.get(name, self.baseline)

    def device_price(self, device: str) -> DevicePrice | None:
        """The row for an NVML device name (``cuda:`` prefix and `` xN`` allowed), or None:
        unpriced. The row whose match covers most of the name wins."""
        name, _ = device_model(device)
        best, covered = None, 0
        for row in self.devices.values():
            if not row.match:
                continue
            found = re.search(row.match, name, re.IGNORECASE)
            if found and found.end() - found.start() > covered:
                best, covered = row, found.end() - found.start()
        return best

    def unpriced_message(self, device: str) -> str:
        name, _ = device_model(device)
        return (f"{name} is unpriced: no [devices] row of the price table matches it; add "
                f"one to {user_prices_file()}, e.g. [devices.\"{name}\"] with "
                f"match = '{re.escape(name)}', purchase_usd, years, hours_per_day, "
                "cloud_usd_per_hour and their sources")

    @property
    def cpu_usd_per_hour(self) -> float:
        """$ per CPU-hour (one logical CPU)."""
        return self.cpu.rate(self.basis)

    def hourly(self, device: str) -> float | None:
        """The device's $/hour as a whole (a GPU engine: its GPUs; the CPU: all the
        cores a CPU engine is given); None when unpriced or remote."""
        if device == "cpu":
            return self.cpu_usd_per_hour * self.cores_attributed
        if device == "remote":
            row = self.devices.get(self.remote_device)
            return row.rate(self.basis) if row else None
        if device in ("api", ""):
            return None
        row = self.device_price(device)
        if row is None:
            return None
        return row.rate(self.basis) * device_model(device)[1]

    def charges_energy(self, device: str) -> bool:
        """Electricity is charged on owned hardware; a rental price already pays for it."""
        if device == "remote":
            return False  # Covey cannot read a remote engine's counters
        row = self.cpu if device == "cpu" else self.device_price(device)
        return row is not None and row.charged_basis(self.basis) != "cloud"

    def local_cost(self, device: str, engine_seconds: float | None,
                   cpu_seconds: float | None, energy_j: float | None) -> float | None:
        """GPU time × its model's rate, plus CPU time × the CPU rate, plus measured energy ×
        the electricity price (owned hardware only). None: unpriced or not measurable.
        Unmeasured energy adds nothing here and stays NULL in the row."""
        if device == "cpu":
            if cpu_seconds is None:
                return None
            hardware = cpu_seconds / 3600 * self.cpu_usd_per_hour
        else:
            rate = self.hourly(device)
            if rate is None or engine_seconds is None:
                return None
            hardware = engine_seconds / 3600 * rate
            if cpu_seconds is not None:  # the engine's CPU time is paid for too
                hardware += cpu_seconds / 3600 * self.cpu_usd_per_hour
        return hardware + self.energy_cost(device, energy_j)

    def energy_cost(self, device: str, energy_j: float | None) -> float:
        """Measured energy × the electricity price on owned hardware; 0 when unmeasured, or
        on rented hardware, whose price already pays for it."""
        if energy_j is None or not self.charges_energy(device):
            return 0.0
        return energy_j / JOULES_PER_KWH * self.usd_per_kwh


def shipped_prices_text() -> str:
    return resources.files("covey_usage").joinpath("prices.toml").read_text()


def user_prices_file() -> Path:
    return home.covey_home() / "prices.toml"


@dataclass(frozen=True)
class _BaselineChoice:
    model: str
    """The LLM calls are compared with; a key of ``[models]``."""


@dataclass(frozen=True)
class _CpuRow(DevicePrice):
    name: str = "cpu"
    """Always ``cpu``."""
    purchase_usd: float = 0.0
    """What the reference CPU costs to buy."""
    years: float = 3.0
    """Years the purchase is amortised over."""
    hours_per_day: float = 8.0
    """Hours a day it is assumed to be in use."""
    cloud_usd_per_hour: float = 0.0
    """The public on-demand price of one vCPU-hour."""
    cores_attributed: int = 0
    """Cores a CPU engine is assumed to use when its CPU time cannot be read (0: all)."""


@dataclass(frozen=True)
class _Hardware:
    cpu: _CpuRow
    """The CPU's prices per logical CPU."""
    basis: str = ""
    """``own``, ``cloud``, or empty for each row's own."""
    remote_device: str = ""
    """The ``[devices]`` row a remote engine is priced as (empty: remote calls are
    unpriced, since Covey cannot see the remote hardware)."""


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
    """How hardware is charged, and the CPU's prices."""
    energy: _EnergyPrice
    """The electricity price."""
    devices: dict[str, DevicePrice] = dataclasses.field(default_factory=dict)
    """GPU models' prices, by name."""
    models: dict[str, ModelPrice] = dataclasses.field(default_factory=dict)
    """Per-token prices of LLMs, by name."""


def _named(layered, section: str) -> None:
    """Tables under ``section`` get their key as ``name``."""
    entries = layered.raw.get(section)
    if isinstance(entries, dict):
        layered.raw[section] = {name: {**entry, "name": name} if isinstance(entry, dict)
                                else entry for name, entry in entries.items()}


def load_prices(user_file: Path | None = None, *, user: bool = True) -> Prices:
    """The shipped price table with the user's overrides applied (``user=False``: none)."""
    user_path = (user_file or user_prices_file()) if user else None
    layered = layer(shipped=(shipped_prices_text(), "prices.toml (shipped)"),
                    user_file=user_path, error=PriceError)
    _named(layered, "models")
    _named(layered, "devices")
    table = structure(PriceFile, layered, error=PriceError)
    for path, value in _amounts(table):
        if value is not None and value < 0:
            raise PriceError(f"{layered.origin(path)}: {'.'.join(path)}: must not be negative")
    for path, basis in [(("hardware", "basis"), table.hardware.basis),
                        (("hardware", "cpu", "basis"), table.hardware.cpu.basis),
                        *[(("devices", n, "basis"), d.basis) for n, d in table.devices.items()]]:
        if basis not in BASES and not (basis == "" and path == ("hardware", "basis")):
            raise PriceError(f"{layered.origin(path)}: {'.'.join(path)}: must be "
                             f"{' or '.join(map(repr, BASES))}, got {basis!r}")
    for name, row in table.devices.items():
        try:
            re.compile(row.match)
        except re.error as exc:
            path = ("devices", name, "match")
            raise PriceError(f"{layered.origin(path)}: {'.'.join(path)}: not a regular "
                             f"expression ({exc})") from None
    if table.hardware.remote_device and table.hardware.remote_device not in table.devices:
        raise PriceError(f"{layered.origin(('hardware', 'remote_device'))}: "
                         f"hardware.remote_device: {table.hardware.remote_device!r} is not a "
                         f"[devices] row (known: {', '.join(table.devices)})")
    if table.baseline.model not in table.models:
        raise PriceError(f"{layered.origin(('baseline', 'model'))}: baseline.model: "
                         f"{table.baseline.model!r} has no [models] price "
                         f"(known: {', '.join(sorted(table.models))})")
    overrides = {".".join(map(str, path)): origin for path, origin in layered.origins.items()
                 if user_path is not None and origin == str(user_path)}
    cpu = table.hardware.cpu
    return Prices(
        baseline=table.models[table.baseline.model], models=table.models,
        devices=table.devices, cpu=cpu,
        cores_attributed=cpu.cores_attributed or (os.cpu_count() or 1),
        usd_per_kwh=table.energy.usd_per_kwh, energy_as_of=table.energy.as_of,
        energy_source=table.energy.source, basis=table.hardware.basis,
        remote_device=table.hardware.remote_device,
        sources=layered.sources, overrides=overrides,
    )


def _amounts(table: PriceFile):
    """Every price in the file, with its key path (none may be negative)."""
    rows = [(("hardware", "cpu"), table.hardware.cpu)]
    rows += [(("devices", name), row) for name, row in table.devices.items()]
    for path, row in rows:
        for key in ("purchase_usd", "years", "hours_per_day", "cloud_usd_per_hour",
                    "usd_per_hour"):
            yield (*path, key), getattr(row, key)
    yield ("energy", "usd_per_kwh"), table.energy.usd_per_kwh
    for name, price in table.models.items():
        yield ("models", name, "input_usd_per_mtok"), price.input_usd_per_mtok
        yield ("models", name, "output_usd_per_mtok"), price.output_usd_per_mtok


def llm_equivalent_cost(prices: Prices, call: ModelCall) -> float:
    """What the baseline LLM would charge for the call's answer: the tokens it would be
    sent in its own prompt format when the caller estimated them, else the call's own."""
    prompt = call.prompt_tokens if call.llm_prompt_tokens is None else call.llm_prompt_tokens
    completion = (call.completion_tokens if call.llm_completion_tokens is None
                  else call.llm_completion_tokens)
    return prices.baseline.cost(prompt, completion)


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


def attribute(target: _Window, windows: list[_Window], meter: Meter | None,
              unseen_rate: float = 0.0) -> Attribution:
    """Split the engine's time, energy and CPU time over ``target``'s window among the
    windows of ``windows`` (which include ``target``) that share its engine, and callers
    this process never saw, who use ``unseen_rate`` tokens per second."""
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
    others = unseen_rate
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
            self.meter.sample(served=True)  # the timeline must reach the newest call's end
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
        call.llm_cost_usd = llm_equivalent_cost(prices, call)
        seconds = call.latency_ms / 1000
        if not is_local_engine(call.engine_url):
            device = "remote"
        else:
            device = self.meter.device if self.meter else "cpu"
        call.local_cost_usd = prices.local_cost(device, seconds,
                                                seconds * prices.cores_attributed, None)

    def _overlapping(self, window: _Window) -> list[_Window]:
        """Recent windows that can overlap ``window``."""
        return self._recent[self._span(window.start, window.end)]

    def _span(self, start: float, end: float) -> slice:
        """Where in ``_recent`` the windows that can overlap [start, end] are (none is
        longer than the longest)."""
        key = lambda w: w.start  # noqa: E731
        return slice(bisect.bisect_left(self._recent, start - self._longest, key=key),
                     bisect.bisect_right(self._recent, end, key=key))

    def _unseen_rate(self, window: _Window) -> float:
        """Tokens per second the engine served to callers this process never saw (other
        processes), spread evenly over the stretch in which this process kept it busy
        without a break; 0 when the engine's own counters are not read.

        Over such a stretch the engine's counter and this process's calls count the same
        tokens when nobody else calls, however prefill and decode fall inside it, and the
        counter, interpolated between readings, can only under-read at its ends."""
        meter = self.meter
        if meter is None or not meter.watches(window.engine):
            return 0.0
        start, end, cluster = window.start, window.end, []
        while True:  # grow to every window that overlaps the stretch, transitively
            cluster = [w for w in self._recent[self._span(start, end)]
                       if w.engine == window.engine and w.start < end and w.end > start]
            wider = (min([start, *(w.start for w in cluster)]),
                     max([end, *(w.end for w in cluster)]))
            if wider == (start, end):
                break
            start, end = wider
        served = meter.timeline.usage(start, end, "served_tokens")
        if served is None or end <= start:
            return 0.0
        known = sum(w.rate * (w.end - w.start) for w in cluster)
        return max(0.0, served - known) / (end - start)

    def _cost(self, call: ModelCall, window: _Window) -> None:
        prices = self.prices
        if call.source == "baseline":
            # An API call: it cost what the API charges, and nothing locally.
            call.device = call.device or "api"
            call.llm_cost_usd = prices.for_model(call.model).cost(
                call.prompt_tokens, call.completion_tokens)
            call.local_cost_usd = 0.0
            return
        call.llm_cost_usd = llm_equivalent_cost(prices, call)
        local = is_local_engine(call.engine_url)
        meter = self.meter if local else None
        share = attribute(window, self._overlapping(window), meter, self._unseen_rate(window))
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


def describe_device(prices: Prices, row: DevicePrice) -> dict:
    as_of, source = row.source(prices.basis)
    out = {k: v for k, v in dataclasses.asdict(row).items() if k != "cores_attributed"}
    key = "cpu" if row.name == "cpu" else f"devices.{row.name}"
    return {**out, "basis_charged": row.charged_basis(prices.basis),
            "own_usd_per_hour": row.own_usd_per_hour, "usd_per_hour_charged": row.rate(
                prices.basis), "as_of": as_of, "source": source,
            "overridden": sorted(k for k in prices.overrides
                                 if k.startswith(("hardware.cpu." if key == "cpu"
                                                  else key + "."), ))}


def describe(prices: Prices) -> dict:
    """The prices in force, for ``covey usage`` and reports: every rate with its date and
    source, and which keys the user's file overrides."""
    return {
        "baseline": dataclasses.asdict(prices.baseline),
        "basis": prices.basis or "per device",
        "devices": {name: describe_device(prices, row) for name, row in prices.devices.items()},
        "cpu": describe_device(prices, prices.cpu),
        "cpu_usd_per_cpu_hour": prices.cpu_usd_per_hour,
        "cores_attributed": prices.cores_attributed,
        "energy": {"usd_per_kwh": prices.usd_per_kwh, **_energy_source(prices)},
        "sources": list(prices.sources),
        "overrides": prices.overrides,
    }


def _energy_source(prices: Prices) -> dict:
    return {"as_of": prices.energy_as_of, "source": prices.energy_source}
