"""scripts/nvml_energy_probe.py: says clearly when there is no NVML, and measures through
the real energy and cost code when there is (here with a fake NVML whose counter grows
at a fixed power)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

from covey_usage.energy import Meter, NvmlEnergy

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "nvml_energy_probe.py"


def load_probe():
    spec = importlib.util.spec_from_file_location("nvml_energy_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ClockNvml:
    """A GPU drawing a steady 250 W: the energy counter follows the wall clock."""

    WATTS = 250.0

    def __init__(self):
        self.t0 = time.time()

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, handle):
        return "Fake GPU"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return int((time.time() - self.t0) * self.WATTS * 1000)


def test_probe_says_there_is_no_nvml_here():
    try:
        import pynvml

        pynvml.nvmlInit()
        pytest.skip("this host has NVML")
    except Exception:
        pass
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 3
    assert "no NVIDIA GPU energy counter" in result.stdout
    assert "'cpu'" in result.stdout


def test_probe_measures_and_splits_energy_with_nvml(capsys):
    probe = load_probe()
    meter = Meter(gpu=NvmlEnergy(ClockNvml()), interval_s=0.02)
    try:
        probe.probe_windows(meter, windows=2, seconds=0.2)
    finally:
        meter.stop()
    out = capsys.readouterr().out
    watts = [float(line.split("=")[1].split()[0]) for line in out.splitlines()
             if line.startswith("window")]
    assert len(watts) == 2 and all(w == pytest.approx(250, rel=0.2) for w in watts)
    both = next(line for line in out.splitlines() if line.startswith("both calls"))
    together, counter = (float(part.split(":")[1].split()[0]) for part in both.split(";"))
    assert together == pytest.approx(counter, rel=1e-6)  # the split adds up
    assert together == pytest.approx(250 * 0.4, rel=0.2)
