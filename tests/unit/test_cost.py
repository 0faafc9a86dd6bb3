"""Cost: price table loading and overrides, LLM-equivalent and local cost, and the
attribution of engine time, energy and CPU time among overlapping calls."""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from covey_usage.calls import ModelCall
from covey_usage.cost import (
    CostStage,
    PriceError,
    Prices,
    is_local_engine,
    load_prices,
)
from covey_usage.energy import (
    Meter,
    NvmlEnergy,
    ProcessTreeCpu,
    RaplEnergy,
    Sample,
    Timeline,
    open_nvml,
)

LOCAL = "http://127.0.0.1:8733"


def make_call(n: int, start: float, seconds: float, tokens: int, *, engine: str = LOCAL,
              source: str = "specialist", model: str = "completion",
              prompt_share: float = 0.75) -> ModelCall:
    prompt = int(tokens * prompt_share)
    return ModelCall(id=f"c{n}", task="completion", specialist="completion", model=model,
                     adapter="", base_model="smol", engine_url=engine, started_at=start,
                     latency_ms=seconds * 1000, prompt_tokens=prompt,
                     completion_tokens=tokens - prompt, source=source)


def prices(*, gpu_usd_per_hour: float | None = None, cpu_usd_per_hour: float | None = None,
           **changes) -> Prices:
    """The shipped table; ``gpu_usd_per_hour`` fixes every GPU row's rate (owned, so energy
    is charged) and ``cpu_usd_per_hour`` the CPU's."""
    table = load_prices(user=False)
    if gpu_usd_per_hour is not None:
        changes["devices"] = {n: replace(d, usd_per_hour=gpu_usd_per_hour, basis="own")
                              for n, d in table.devices.items()}
    if cpu_usd_per_hour is not None:
        changes["cpu"] = replace(table.cpu, usd_per_hour=cpu_usd_per_hour, basis="own")
    return replace(table, **changes)


# ------------------------------------------------------------------ price table


def _dated(text: str) -> bool:
    return len(text) == 10 and text[:2] == "20" and text[4] == text[7] == "-"


def test_shipped_prices_are_dated_and_sourced():
    table = load_prices(user=False)
    assert table.baseline.name in table.models
    for price in table.models.values():
        assert _dated(price.as_of), price
        assert price.source, price
        assert price.input_usd_per_mtok > 0 and price.output_usd_per_mtok > 0
    for row in [table.cpu, *table.devices.values()]:
        assert _dated(row.purchase_as_of) and _dated(row.cloud_as_of), row
        assert row.purchase_source and row.cloud_source.startswith("https://"), row
        assert row.purchase_usd > 0 and row.cloud_usd_per_hour > 0 and row.years > 0, row
        assert row.usd_per_hour is None, row  # shipped rates are derived, not fixed
    assert _dated(table.energy_as_of) and table.energy_source.startswith("https://")


# The names NVML reports (nvidia-smi --query-gpu=name) for the GPUs people run this on.
NVML_NAMES = [
    ("NVIDIA GeForce RTX 3090", "RTX 3090"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("Tesla T4", "T4"),
    ("NVIDIA A10", "A10"),
    ("NVIDIA A10G", "A10"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"),
    ("NVIDIA A100-PCIE-40GB", "A100 40GB"),
    ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
    ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
    ("NVIDIA A100 80GB PCIe", "A100 80GB"),
    ("NVIDIA H100 80GB HBM3", "H100"),
    ("NVIDIA H100 PCIe", "H100"),
    ("NVIDIA H100 NVL", "H100"),
    ("NVIDIA H200", "H200"),
    ("cuda:NVIDIA H200", "H200"),
    # not in the table: these must stay unpriced, never borrow a neighbour's row
    ("NVIDIA GeForce RTX 3090 Ti", None),
    ("NVIDIA GeForce RTX 4090 D", None),
    ("NVIDIA RTX A6000", None),
    ("NVIDIA L40", None),
    ("NVIDIA A40", None),
    ("NVIDIA B200", None),
]


@pytest.mark.parametrize("name, row", NVML_NAMES)
def test_nvml_name_picks_its_row(name: str, row: str | None):
    found = load_prices(user=False).device_price(name)
    assert (found.name if found else None) == row


def test_unknown_gpu_is_unpriced_and_says_how_to_add_it(covey_home: Path):
    table = load_prices()
    out = run_stage([make_call(1, 0.0, 2.0, 40)],
                    meter=Meter(gpu=NvmlEnergy(FakeNvml(names=("NVIDIA B200",)))), table=table)
    assert out["c1"].device == "cuda:NVIDIA B200"
    assert out["c1"].engine_seconds == pytest.approx(2.0)  # measured all the same
    assert out["c1"].local_cost_usd is None  # unpriced, not another GPU's price
    message = table.unpriced_message("cuda:NVIDIA B200")
    assert "NVIDIA B200 is unpriced" in message
    assert str(covey_home / "prices.toml") in message
    # …and a row in the user's file prices it
    (covey_home / "prices.toml").write_text(
        '[devices.B200]\nmatch = "B200"\npurchase_usd = 40000.0\nyears = 4.0\n'
        'hours_per_day = 24.0\ncloud_usd_per_hour = 6.0\nbasis = "cloud"\n')
    assert load_prices().hourly("cuda:NVIDIA B200") == pytest.approx(6.0)


def test_rates_follow_the_basis_and_the_gpu_count():
    table = load_prices(user=False)
    row = table.devices["RTX 4090"]
    assert row.own_usd_per_hour == pytest.approx(1599 / (3 * 365 * 8))
    assert table.hourly("cuda:NVIDIA GeForce RTX 4090") == pytest.approx(row.own_usd_per_hour)
    assert table.charges_energy("cuda:NVIDIA GeForce RTX 4090")
    h200 = table.devices["H200"]
    assert table.hourly("cuda:NVIDIA H200 x2") == pytest.approx(2 * h200.cloud_usd_per_hour)
    assert not table.charges_energy("cuda:NVIDIA H200")  # the rental pays for power
    own = replace(table, basis="own")
    assert own.hourly("cuda:NVIDIA H200") == pytest.approx(32000 / (4 * 365 * 24))
    assert own.charges_energy("cuda:NVIDIA H200")
    assert table.cpu_usd_per_hour == pytest.approx(699 / 32 / (3 * 365 * 8))
    assert replace(table, basis="cloud").cpu_usd_per_hour == pytest.approx(0.04463)


def test_user_overrides_are_marked(covey_home: Path):
    from covey_usage.cost import describe

    (covey_home / "prices.toml").write_text('[devices."RTX 4090"]\npurchase_usd = 1999.0\n')
    data = describe(load_prices())
    assert data["devices"]["RTX 4090"]["overridden"] == ["devices.RTX 4090.purchase_usd"]
    assert data["devices"]["H200"]["overridden"] == []
    assert data["overrides"] == {"devices.RTX 4090.purchase_usd":
                                 str(covey_home / "prices.toml")}


def test_user_file_overrides_key_by_key(covey_home: Path):
    (covey_home / "prices.toml").write_text(
        '[baseline]\nmodel = "mine"\n'
        '[models.mine]\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 4\nas_of = "2026-01-01"\n'
        '[energy]\nusd_per_kwh = 0.3\n')
    table = load_prices()
    assert table.baseline.name == "mine"
    assert table.baseline.cost(1_000_000, 500_000) == pytest.approx(1 + 2)
    assert table.usd_per_kwh == 0.3
    assert table.devices == load_prices(user=False).devices  # untouched
    assert "gpt-4.1" in table.models  # shipped models are kept
    assert len(table.sources) == 2


@pytest.mark.parametrize("text, fragment", [
    ('[baseline]\nmodel = "nope"\n', "baseline.model"),
    ('[energy]\nusd_per_kwh = "cheap"\n', "energy.usd_per_kwh"),
    ('[devices.H200]\ncloud_usd_per_hour = -1\n', "must not be negative"),
    ('[hardware]\nbasis = "rented"\n', "hardware.basis"),
    ('[devices.H200]\nmatch = "(H200"\n', "not a regular expression"),
    ('[hardware]\nremote_device = "TPU"\n', "hardware.remote_device"),
    ('[hardware.gpu]\nusd_per_hour = 0.18\n', "unknown key"),
    ('[energy\n', "not valid TOML"),
])
def test_bad_user_prices_name_the_problem(covey_home: Path, text: str, fragment: str):
    (covey_home / "prices.toml").write_text(text)
    with pytest.raises(PriceError, match=fragment) as info:
        load_prices()
    assert str(covey_home / "prices.toml") in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_local_cost_formula():
    table = prices(gpu_usd_per_hour=2.0, cpu_usd_per_hour=0.05, usd_per_kwh=0.25)
    # GPU: 36 s of engine time at $2/h + 720 kJ (0.2 kWh) at $0.25/kWh
    assert table.local_cost("cuda:NVIDIA H200", 36.0, None, 720_000) == pytest.approx(
        0.02 + 0.05)
    # a GPU engine's CPU time is paid for too: + 72 CPU-seconds at $0.05/h
    assert table.local_cost("cuda:NVIDIA H200", 36.0, 72.0, 720_000) == pytest.approx(
        0.02 + 0.05 + 0.001)
    # CPU: 72 core-seconds at $0.05/core-hour, no energy counter
    assert table.local_cost("cpu", 10.0, 72.0, None) == pytest.approx(0.001)
    assert table.local_cost("cpu", 10.0, None, None) is None


def test_is_local_engine():
    assert is_local_engine("http://127.0.0.1:8733")
    assert is_local_engine("http://localhost:1/v1")
    assert not is_local_engine("https://vllm.team.example:443")


# ------------------------------------------------------------------ attribution


def run_stage(calls, meter=None, table=None) -> dict[str, ModelCall]:
    stage = CostStage(table or prices(), meter, settle_s=0)
    for call in calls:
        stage.add(call)
    return {c.id: c for c in stage.ready(force=True)}


def test_a_lone_call_gets_its_whole_window():
    out = run_stage([make_call(1, 100.0, 2.0, 40)], table=prices(cores_attributed=4))
    call = out["c1"]
    assert call.engine_seconds == pytest.approx(2.0)
    assert call.device == "cpu"
    assert call.cpu_seconds == pytest.approx(8.0)  # no CPU counter: wall time × 4 cores
    assert call.energy_j is None


def test_overlapping_calls_share_by_tokens_and_add_up():
    # c1 runs 0–4 s with 400 tokens (100/s); c2 runs 1–3 s with 600 tokens (300/s).
    calls = [make_call(1, 0.0, 4.0, 400), make_call(2, 1.0, 2.0, 600)]
    out = run_stage(calls)
    # 0–1 and 3–4: c1 alone (2 s). 1–3: shared 100:300 → c1 0.5 s, c2 1.5 s.
    assert out["c1"].engine_seconds == pytest.approx(2.5)
    assert out["c2"].engine_seconds == pytest.approx(1.5)
    assert out["c1"].engine_seconds + out["c2"].engine_seconds == pytest.approx(4.0)


def test_calls_on_different_engines_do_not_share():
    calls = [make_call(1, 0.0, 2.0, 100), make_call(2, 0.0, 2.0, 100, engine="http://127.0.0.1:9")]
    out = run_stage(calls)
    assert out["c1"].engine_seconds == pytest.approx(2.0)
    assert out["c2"].engine_seconds == pytest.approx(2.0)


def test_llm_equivalent_uses_baseline_prices():
    table = load_prices(user=False)
    out = run_stage([make_call(1, 0.0, 1.0, 1000, prompt_share=0.8)], table=table)
    expected = (800 * table.baseline.input_usd_per_mtok
                + 200 * table.baseline.output_usd_per_mtok) / 1e6
    assert out["c1"].llm_cost_usd == pytest.approx(expected)


def test_baseline_calls_cost_their_api_price_and_nothing_locally():
    table = load_prices(user=False)
    call = make_call(1, 0.0, 3.0, 1000, source="baseline", model="gpt-4o-mini",
                     engine="https://api.openai.com/v1", prompt_share=0.5)
    out = run_stage([call, make_call(2, 0.0, 3.0, 10)], table=table)
    assert out["c1"].llm_cost_usd == pytest.approx((500 * 0.15 + 500 * 0.60) / 1e6)
    assert out["c1"].local_cost_usd == 0.0
    assert out["c1"].device == "api"
    # the API call does not take a share of the local engine
    assert out["c2"].engine_seconds == pytest.approx(3.0)


def test_remote_engine_is_costed_by_time_without_energy():
    out = run_stage([make_call(1, 0.0, 2.0, 50, engine="http://gpu-box:8000")],
                    table=prices(gpu_usd_per_hour=3.6, remote_device="H100"))
    assert out["c1"].device == "remote"
    assert out["c1"].energy_j is None
    assert out["c1"].local_cost_usd == pytest.approx(2.0 / 3600 * 3.6)


def test_settle_period_holds_calls_until_overlaps_are_known():
    now = [10.0]
    stage = CostStage(prices(), None, settle_s=1.0, clock=lambda: now[0])
    stage.add(make_call(1, 8.0, 1.5, 10))   # ends 9.5: ready at 10.5
    assert stage.ready() == []
    now[0] = 10.6
    assert [c.id for c in stage.ready()] == ["c1"]


# ------------------------------------------------------------------ energy: fake NVML


class FakeNvml:
    """Stands in for pynvml: per-device energy counters in millijoules."""

    class NVMLError(Exception):
        pass

    def __init__(self, names=("NVIDIA H200",), fail_init: bool = False):
        self.names = list(names)
        self.energy_mj = [0] * len(names)
        self.fail_init = fail_init
        self.shutdown_called = False

    def nvmlInit(self):
        if self.fail_init:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shutdown_called = True

    def nvmlDeviceGetCount(self):
        return len(self.names)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, handle):
        return self.names[handle].encode()

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.energy_mj[handle]


def test_nvml_falls_back_cleanly_without_a_driver():
    assert open_nvml(FakeNvml(fail_init=True)) is None
    meter = Meter(gpu=None)
    assert meter.device == "cpu" and not meter.measures_energy


def test_nvml_energy_reads_joules_over_all_gpus():
    nvml = FakeNvml(names=("NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"))
    gpu = NvmlEnergy(nvml)
    assert gpu.device == "cuda:NVIDIA A100-SXM4-80GB x2"
    nvml.energy_mj = [1500, 2500]
    assert gpu.read() == pytest.approx(4.0)


def test_gpu_energy_is_split_among_concurrent_calls_by_tokens():
    nvml = FakeNvml()
    clock = [0.0]
    meter = Meter(gpu=NvmlEnergy(nvml), clock=lambda: clock[0])
    # The GPU draws 300 W from t=0 to t=4: the counter is read every second.
    for t in range(5):
        clock[0] = float(t)
        nvml.energy_mj = [t * 300_000]
        meter.sample()
    table = prices(gpu_usd_per_hour=3.6, usd_per_kwh=0.36)
    calls = [make_call(1, 0.0, 4.0, 400), make_call(2, 1.0, 2.0, 600)]
    out = run_stage(calls, meter=meter, table=table)
    # Same shares as engine time: c1 2.5 s × 300 W, c2 1.5 s × 300 W.
    assert out["c1"].energy_j == pytest.approx(750.0)
    assert out["c2"].energy_j == pytest.approx(450.0)
    assert out["c1"].energy_j + out["c2"].energy_j == pytest.approx(1200.0)  # all of it
    assert out["c1"].device == "cuda:NVIDIA H200"
    # 2.5 s at $3.6/h + 750 J at $0.36/kWh
    assert out["c1"].local_cost_usd == pytest.approx(2.5 / 3600 * 3.6 + 750 / 3.6e6 * 0.36)


def test_meter_samples_on_its_own_thread_and_stops():
    nvml = FakeNvml()
    meter = Meter(gpu=NvmlEnergy(nvml), interval_s=0.01)
    seen = threading.Event()
    original = meter.sample

    def sample():
        nvml.energy_mj[0] += 1000
        result = original()
        if meter.timeline.last_time() is not None and nvml.energy_mj[0] > 5000:
            seen.set()
        return result

    meter.sample = sample
    meter.start()
    assert seen.wait(5)
    meter.stop()
    assert nvml.shutdown_called


def test_timeline_interpolates_between_readings():
    timeline = Timeline()
    for t, e in ((0.0, 0.0), (1.0, 10.0), (3.0, 50.0)):
        timeline.add(Sample(t=t, energy_j=e, cpu_s=None))
    assert timeline.usage(0.5, 2.0, "energy_j") == pytest.approx(30.0 - 5.0)
    assert timeline.usage(0.0, 1.0, "cpu_s") is None


# ------------------------------------------------------------------ RAPL and /proc


def test_rapl_counter_is_monotonic_across_wraps(tmp_path: Path):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "max_energy_range_uj").write_text("1000000\n")
    (zone / "energy_uj").write_text("900000\n")
    rapl = RaplEnergy([zone])
    (zone / "energy_uj").write_text("950000\n")
    assert rapl.read() == pytest.approx(0.05)
    (zone / "energy_uj").write_text("100000\n")  # wrapped: +50000 then +100000
    assert rapl.read() == pytest.approx(0.2)


BURNER = """
import subprocess, sys, time
if sys.argv[1] == "child":  # burn CPU until it has used 0.5 s, then say so and idle
    while time.process_time() < 0.5:
        pass
    print("burnt", flush=True)
    time.sleep(60)
else:  # the engine: idle, with a busy child
    child = subprocess.Popen([sys.executable, "-c", sys.argv[2], "child"], stdout=sys.stdout)
    child.wait()
"""


def test_process_tree_cpu_counts_children():
    import subprocess
    import sys

    import psutil

    engine = subprocess.Popen([sys.executable, "-c", BURNER, "engine", BURNER],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert engine.stdout.readline().strip() == "burnt"
        cpu = ProcessTreeCpu(lambda: engine.pid)
        own = sum(psutil.Process(engine.pid).cpu_times()[:2])
        assert own < 0.5  # the engine itself idles…
        assert cpu.read() >= 0.5  # …but its tree includes the child's burnt half second
        assert ProcessTreeCpu(lambda: None).read() is None
    finally:
        for proc in psutil.Process(engine.pid).children(recursive=True):
            proc.kill()
        engine.kill()
        engine.wait()


def test_cpu_counter_is_shared_like_energy():
    clock = [0.0]
    cpu_total = [0.0]

    class Counter:
        def read(self):
            return cpu_total[0]

    meter = Meter(cpu=Counter(), clock=lambda: clock[0])
    for t in range(3):
        clock[0], cpu_total[0] = float(t), t * 1.5  # 1.5 cores busy
        meter.sample()
    out = run_stage([make_call(1, 0.0, 2.0, 100), make_call(2, 0.0, 2.0, 300)], meter=meter)
    assert out["c1"].cpu_seconds == pytest.approx(0.75)
    assert out["c2"].cpu_seconds == pytest.approx(2.25)
    assert math.isclose(out["c1"].cpu_seconds + out["c2"].cpu_seconds, 3.0)


def test_estimate_fills_costs_at_once_and_the_stage_refines_them():
    table = prices(cores_attributed=2)
    stage = CostStage(table, None, settle_s=0)
    a, b = make_call(1, 0.0, 2.0, 100), make_call(2, 0.0, 2.0, 100)
    for call in (a, b):
        stage.estimate(call)
    assert a.llm_cost_usd == pytest.approx(table.baseline.cost(75, 25))
    alone = table.local_cost("cpu", 2.0, 4.0, None)
    assert a.local_cost_usd == pytest.approx(alone)
    for call in (a, b):
        stage.add(call)
    stage.ready(force=True)
    assert a.local_cost_usd == pytest.approx(alone / 2)  # shared with b
    assert a.llm_cost_usd == pytest.approx(table.baseline.cost(75, 25))
