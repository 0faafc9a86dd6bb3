"""Counters that measure what the engine uses: GPU energy (NVML), CPU package energy (RAPL),
the engine process tree's CPU time and the tokens the engine served to every caller (vLLM's
own counters), sampled on a timeline so that any time window's usage can be read back
afterwards.

The usage log cannot hook the start of a request (calls are reported when they finish),
so a sampler thread reads the counters every ``interval_s`` and a window's usage is the
difference of the timeline interpolated at its two ends. Every counter falls back cleanly:
without an NVIDIA driver NVML is simply absent and the device is ``cpu``.
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from covey_settings import tls

log = logging.getLogger("covey.energy")


class NvmlEnergy:
    """Total energy of the visible NVIDIA GPUs, in joules, from
    ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the driver loaded).

    ``nvml`` is the ``pynvml`` module, or a stand-in with the same functions (tests).
    """

    def __init__(self, nvml, indices: list[int] | None = None):
        self._nvml = nvml
        nvml.nvmlInit()
        count = nvml.nvmlDeviceGetCount()
        indices = list(range(count)) if indices is None else [i for i in indices if i < count]
        if not indices:
            raise RuntimeError("NVML sees no GPU")
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
        names = [_text(nvml.nvmlDeviceGetName(h)) for h in self._handles]
        self.device = f"cuda:{names[0]}" + (f" x{len(names)}" if len(names) > 1 else "")
        self.read()  # fails here, not in the sampler, if the GPU has no energy counter

    def read(self) -> float:
        return sum(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles) / 1e3

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # shutting down a half-initialised NVML is harmless
            pass


def open_nvml(nvml=None) -> NvmlEnergy | None:
    """NVML energy for this host, or None (no pynvml, no driver, no GPU, no counter)."""
    try:
        if nvml is None:
            import pynvml as nvml
        return NvmlEnergy(nvml)
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, NotSupported...
        log.debug("no NVML energy counter: %s", exc)
        return None


def energy_counter_now() -> float | None:
    """This host's GPU energy counter (joules since the driver loaded), or None when
    there is none to read: a one-off reading for the start and stop of an engine."""
    gpu = open_nvml()
    if gpu is None:
        return None
    try:
        return gpu.read()
    except Exception as exc:  # a counter that fails now is simply not read
        log.debug("NVML energy read failed: %s", exc)
        return None
    finally:
        gpu.close()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RaplEnergy:
    """CPU package energy in joules from ``/sys/class/powercap/intel-rapl:N/energy_uj``.

    The counters wrap at ``max_energy_range_uj``; reads are made monotonic here. They are
    usually readable only by root, in which case :func:`open_rapl` returns None.
    """

    def __init__(self, zones: list[Path]):
        self._zones = zones
        self._ranges = [_read_int(z / "max_energy_range_uj") or 2**63 for z in zones]
        self._last = [_read_int(z / "energy_uj") for z in zones]
        if any(v is None for v in self._last):
            raise PermissionError("RAPL energy_uj is not readable")
        self._total_uj = 0

    def read(self) -> float:
        for i, zone in enumerate(self._zones):
            now = _read_int(zone / "energy_uj")
            if now is None:
                continue
            delta = now - self._last[i]
            if delta < 0:  # the counter wrapped
                delta += self._ranges[i]
            self._total_uj += delta
            self._last[i] = now
        return self._total_uj / 1e6


def open_rapl(root: Path = Path("/sys/class/powercap")) -> RaplEnergy | None:
    """Package-level RAPL zones (``intel-rapl:0``, ``intel-rapl:1``...), or None."""
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not zones:
        return None
    try:
        return RaplEnergy(zones)
    except OSError as exc:
        log.debug("RAPL not usable: %s", exc)
        return None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class ProcessTreeCpu:
    """CPU seconds used by a process and its descendants (vLLM runs its engine core in a
    child process), read through psutil. The descendant set is refreshed every few
    seconds so a sample costs a handful of small reads, not a scan of every process."""

    def __init__(self, pid_source: Callable[[], int | None], refresh_s: float = 5.0):
        self._pid_source = pid_source
        self._refresh_s = refresh_s
        self._procs: list[psutil.Process] = []
        self._root: int | None = None
        self._refreshed = 0.0
        self._seen: dict[int, float] = {}
        self._gone = 0.0

    def read(self) -> float | None:
        now = time.monotonic()
        if now - self._refreshed > self._refresh_s:
            self._refresh()
            self._refreshed = now
        if self._root is None:
            return None
        for proc in self._procs:
            try:
                times = proc.cpu_times()
            except psutil.Error:  # exited or out of reach: keep its last reading
                continue
            self._seen[proc.pid] = times.user + times.system
        # A process that exited keeps its last reading so the total never goes backwards.
        return self._gone + sum(self._seen.values())

    def _refresh(self) -> None:
        root = self._pid_source()
        if root != self._root:
            self._gone += sum(self._seen.values())
            self._seen = {}
            self._root = root
        self._procs = []
        if root is None:
            return
        try:
            top = psutil.Process(root)
            self._procs = [top, *top.children(recursive=True)]
        except psutil.Error:
            pass


def engine_pid_from_state(state_file: Path | None = None) -> int | None:
    """The managed engine's pid from ``$COVEY_HOME/engine/engine.json``, if it is running."""
    if state_file is None:
        from covey_settings import home

        state_file = home.engine_dir() / "engine.json"
    try:
        pid = json.loads(state_file.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(pid, int) or not psutil.pid_exists(pid):
        return None
    return pid


class ServedTokens:
    """Prompt plus generated tokens the engine at ``url`` has processed for every caller,
    from vLLM's Prometheus counters ``vllm:prompt_tokens_total`` and
    ``vllm:generation_tokens_total`` on ``/metrics`` (sent the engine key: the guard
    refuses every route without it).

    This is how one process's cost attribution sees the calls other processes (the
    editor's server, an eval, a second editor) sent to the same engine. ``read`` returns
    None when the engine is down or is not vLLM; a failing engine is asked again only
    every ``retry_s`` seconds.
    """

    NAMES = ("vllm:prompt_tokens_total", "vllm:generation_tokens_total")

    def __init__(self, url: str, api_key: str = "", *, timeout_s: float = 0.5,
                 retry_s: float = 10.0, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s,
                                  transport=transport, verify=tls.verify_for(self.url))
        self._retry_s = retry_s
        self._quiet_until = 0.0

    def read(self) -> float | None:
        now = time.monotonic()
        if now < self._quiet_until:
            return None
        try:
            response = self._http.get("/metrics")
            response.raise_for_status()
            total = parse_counters(response.text, self.NAMES)
        except (httpx.HTTPError, ValueError) as exc:
            log.debug("engine counters at %s unreadable: %s", self.url, exc)
            total = None
        if total is None:
            self._quiet_until = now + self._retry_s
        return total

    def close(self) -> None:
        self._http.close()


def parse_counters(text: str, names: tuple[str, ...]) -> float | None:
    """The sum of every series of the Prometheus counters ``names`` in ``text`` (all
    labels), or None when one of them is missing."""
    totals: dict[str, float | None] = dict.fromkeys(names)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        labels_end = line.rfind("}")  # label values may hold spaces; the value follows
        if labels_end >= 0:
            name, fields = line.partition("{")[0], line[labels_end + 1:].split()
        else:
            name, *fields = line.split()
        if name in totals and fields:
            totals[name] = (totals[name] or 0.0) + float(fields[0])
    if any(v is None for v in totals.values()):
        return None
    return sum(totals.values())


@dataclass
class Sample:
    t: float
    """Unix time of the reading."""
    energy_j: float | None
    cpu_s: float | None
    served_tokens: float | None = None
    """The watched engine's :class:`ServedTokens` (None between its slower readings)."""


class Timeline:
    """Counter readings over time; values between readings are interpolated linearly."""

    def __init__(self, max_samples: int = 36_000):
        self._times: list[float] = []
        self._samples: list[Sample] = []
        self._max = max_samples
        self._lock = threading.Lock()

    def add(self, sample: Sample) -> None:
        with self._lock:
            if self._times and sample.t < self._times[-1]:
                return  # the wall clock stepped back; drop rather than disorder
            self._times.append(sample.t)
            self._samples.append(sample)
            if len(self._times) > self._max:
                drop = len(self._times) - self._max // 2
                del self._times[:drop], self._samples[:drop]

    def last_time(self) -> float | None:
        with self._lock:
            return self._times[-1] if self._times else None

    def usage(self, start: float, end: float, field: str) -> float | None:
        """How much counter ``field`` grew between ``start`` and ``end``; None if unknown."""
        with self._lock:
            a, b = self._at(start, field), self._at(end, field)
        if a is None or b is None:
            return None
        return max(0.0, b - a)

    def _at(self, t: float, field: str) -> float | None:
        i = bisect.bisect_left(self._times, t)
        before = next((s for s in reversed(self._samples[max(0, i - 50):i])
                       if getattr(s, field) is not None), None)
        after = next((s for s in self._samples[i:i + 50] if getattr(s, field) is not None),
                     None)
        if before is None and after is None:
            return None
        if before is None or after is None or after.t == before.t:
            return getattr(before or after, field)
        va, vb = getattr(before, field), getattr(after, field)
        return va + (vb - va) * (t - before.t) / (after.t - before.t)


class Meter:
    """Samples the host's counters on a background thread into a :class:`Timeline`.

    ``device`` is ``cuda:<name>`` when NVML works, else ``cpu``. Energy comes from NVML on
    GPU hosts and from RAPL on CPU hosts when readable; CPU time from the engine's process
    tree when its pid is known; the tokens the engine served, once :meth:`watch_engine`
    names it.

    Reading vLLM's ``/metrics`` costs the engine about 9 ms, so the served tokens are read
    every ``busy_served_s`` while they are moving and every ``idle_served_s`` otherwise.
    """

    def __init__(self, *, gpu: NvmlEnergy | None = None, rapl: RaplEnergy | None = None,
                 cpu: ProcessTreeCpu | None = None, served: ServedTokens | None = None,
                 interval_s: float = 0.1, busy_served_s: float = 0.25,
                 idle_served_s: float = 2.0, clock: Callable[[], float] = time.time):
        self.gpu, self.rapl, self.cpu, self.served = gpu, rapl, cpu, served
        self.device = gpu.device if gpu else "cpu"
        self.interval_s = interval_s
        self.busy_served_s, self.idle_served_s = busy_served_s, idle_served_s
        self._served_last: tuple[float, float] | None = None
        """(time, value) of the last served-tokens reading."""
        self._served_moved_at = float("-inf")
        self.timeline = Timeline()
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0

    @classmethod
    def for_host(cls, *, interval_s: float = 0.1,
                 engine_pid: Callable[[], int | None] | None = None) -> Meter:
        gpu = open_nvml()
        rapl = None if gpu else open_rapl()
        cpu = ProcessTreeCpu(engine_pid or engine_pid_from_state)
        return cls(gpu=gpu, rapl=rapl, cpu=cpu, interval_s=interval_s)

    @property
    def measures_energy(self) -> bool:
        return self.gpu is not None or self.rapl is not None

    def watch_engine(self, url: str, api_key: str) -> None:
        """Also sample the tokens the engine at ``url`` serves to every caller. The first
        engine named is kept: one host runs one managed engine."""
        if self.served is None:
            self.served = ServedTokens(url, api_key)
            self.start()
        elif self.served.url != url.rstrip("/"):
            log.debug("already watching %s; not %s", self.served.url, url)

    def watches(self, engine_url: str) -> bool:
        return self.served is not None and self.served.url == engine_url.rstrip("/")

    def sample(self, *, served: bool | None = None) -> Sample:
        """Read every counter now and add the reading to the timeline; the served tokens
        when they are due (``served`` forces or skips them)."""
        energy = cpu = None
        source = self.gpu or self.rapl
        try:
            energy = source.read() if source else None
            cpu = self.cpu.read() if self.cpu else None
            self._failures = 0
        except Exception as exc:  # a flaky driver must not kill the sampler
            self._failures += 1
            if self._failures in (1, 100):
                log.warning("energy counter read failed: %s", exc)
        now = self._clock()
        # the served tokens only share out energy or CPU time: with neither, reading them
        # is a /metrics request for nothing (sixteen team members' servers on one host
        # kept a third of a core busy with them)
        wanted = served or (served is None and (energy is not None or cpu is not None)
                            and self._served_due(now))
        tokens = self._read_served(now) if wanted else None
        sample = Sample(t=now, energy_j=energy, cpu_s=cpu, served_tokens=tokens)
        self.timeline.add(sample)
        return sample

    def _served_due(self, now: float) -> bool:
        if self.served is None:
            return False
        if self._served_last is None:
            return True
        busy = now - self._served_moved_at < 5.0
        return now - self._served_last[0] >= (self.busy_served_s if busy
                                              else self.idle_served_s)

    def _read_served(self, now: float) -> float | None:
        if self.served is None:
            return None
        value = self.served.read()
        if value is not None:
            if self._served_last is not None and value != self._served_last[1]:
                self._served_moved_at = now
            self._served_last = (now, value)
        return value

    def start(self) -> None:
        if self._thread is None and (self.gpu or self.rapl or self.cpu or self.served):
            self.sample()
            self._thread = threading.Thread(target=self._run, name="covey-meter", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self.gpu:
            self.gpu.close()
        if self.served:
            self.served.close()
