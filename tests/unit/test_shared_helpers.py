"""Helpers that several packages share from one place: the line offsets and docstring test
of the eval's suites and the training spans, the CLIs' ``--json`` output, and the latency
percentile of the eval and the usage log, and the fully loaded cost both price."""

from __future__ import annotations

import ast
import datetime
import json
import random
from dataclasses import replace
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from covey_eval import metrics
from covey_eval.stdlib import is_docstring, line_offsets
from covey_training import data_completion
from covey_usage import queries, sessions
from covey_usage.cost import load_prices
from covey_usage.output import echo_json


def test_line_offsets_start_each_line_and_end_at_the_length():
    text = "a = 1\n\nb = 'é'\r\nc"
    offsets = line_offsets(text)
    assert offsets == [0, 6, 7, 16, 17]
    assert [text[offsets[i]:offsets[i + 1]] for i in range(4)] == ["a = 1\n", "\n", "b = 'é'\r\n",
                                                                   "c"]
    assert line_offsets("") == [0]


def test_training_spans_use_the_same_line_offsets():
    assert data_completion.line_offsets is line_offsets


def test_is_docstring_only_for_a_bare_string():
    body = ast.parse('def f():\n    "doc"\n    b"bytes"\n    x = "s"\n    1\n').body[0].body
    assert [is_docstring(stmt) for stmt in body] == [True, False, False, False]


def test_echo_json_indents_and_writes_other_values_as_text():
    @click.command()
    def show() -> None:
        echo_json({"path": Path("/tmp/x"), "at": datetime.date(2026, 1, 2), "n": [1]})

    out = CliRunner().invoke(show).output
    assert json.loads(out) == {"path": "/tmp/x", "at": "2026-01-02", "n": [1]}
    assert '\n  "n": [\n    1\n  ]' in out


def test_one_percentile_for_the_eval_and_the_usage_log_the_same_float_as_numpy():
    assert metrics.percentile is queries.percentile
    rng = random.Random(7)
    for _ in range(2000):
        values = [rng.choice((rng.uniform(0, 900), rng.randint(0, 50)))
                  for _ in range(rng.randint(1, 25))]
        q = rng.choice((5, 25, 50, 95, 99, 100, 0, rng.uniform(0, 100)))
        assert queries.percentile(values, q) == float(np.percentile(values, q)), (values, q)
    assert queries.percentile(np.array([3.0, 1.0]), 50) == 2.0
    assert queries.percentile([], 50) is None


def test_uptime_cost_and_fully_loaded_total_shared_by_the_usage_log_and_the_eval():
    prices = replace(load_prices(user=False), usd_per_kwh=0.36)
    rate = prices.hourly("cpu")
    assert sessions.uptime_cost(prices, "cpu", 1800) == pytest.approx(rate / 2)
    # owned hardware pays its electricity: 36 kJ = 0.01 kWh at $0.36
    assert prices.charges_energy("cpu")
    assert sessions.uptime_cost(prices, "cpu", 1800, 36_000.0) == pytest.approx(
        rate / 2 + 0.0036)
    assert sessions.uptime_cost(prices, "cuda:NVIDIA Unknown 9000", 1800) is None
    assert sessions.fully_loaded_total(0.002, 0.5) == 0.5  # the idle time is the calls' too
    assert sessions.fully_loaded_total(0.7, 0.5) == 0.7  # never below their own cost
