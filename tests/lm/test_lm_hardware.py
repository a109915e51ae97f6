"""The hardware defaults of lm.train: measured thread and autocast choices, and their record."""

import json

import pytest
import torch

from lm import hardware
from lm.model import GRULM, GRUConfig
from lm.train import main as train_main
from tests.lm_fixtures import small_data_dir


def test_busy_cores_reads_proc_stat_not_the_load_average(monkeypatch):
    reads = iter([(100, 1000), (150, 1400)])  # 50 of 400 jiffies busy
    monkeypatch.setattr(hardware, "_cpu_times", lambda: next(reads))
    monkeypatch.setattr(hardware.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(hardware.os, "getloadavg", lambda: (7.9, 7.9, 7.9), raising=False)
    busy, how = hardware.busy_cores(0.0)
    assert busy == pytest.approx(1.0) and "/proc/stat" in how


def test_threads_are_the_idle_cores_at_least_one(monkeypatch):
    monkeypatch.setattr(hardware, "usable_cores", lambda: 4)
    monkeypatch.setattr(hardware, "busy_cores", lambda: (2.6, "test"))
    assert hardware.choose_threads(0)[0] == 1
    monkeypatch.setattr(hardware, "busy_cores", lambda: (9.0, "test"))
    assert hardware.choose_threads(0)[0] == 1
    monkeypatch.setattr(hardware, "busy_cores", lambda: (0.2, "test"))
    n, why = hardware.choose_threads(0)
    assert n == 4 and "4 usable cores" in why
    assert hardware.choose_threads(3) == (3, "--threads")


def small_model():
    return GRULM(GRUConfig(40, 8, 16, 1, 0.0, "full"))


def test_probe_times_both_precisions_and_leaves_the_rng_alone():
    model = small_model()
    before = torch.get_rng_state()
    p = hardware.probe_cpu_bf16(model, 2, 8, steps=2)
    assert torch.equal(before, torch.get_rng_state())
    assert p["fp32_step_seconds"] > 0 and p["bf16_step_seconds"] > 0
    assert all(q.grad is None for q in model.parameters())  # a copy was probed


@pytest.mark.parametrize("ratio,want", [(0.5, "bf16"), (0.95, "off"), (1.4, "off")])
def test_auto_amp_on_cpu_follows_the_probe(monkeypatch, ratio, want):
    figures = {"fp32_step_seconds": 1.0, "bf16_step_seconds": ratio, "steps": 3, "cpu_flags": []}
    monkeypatch.setattr(hardware, "probe_cpu_bf16", lambda *a: dict(figures))
    amp, why, probe = hardware.choose_amp(torch.device("cpu"), "auto", small_model(), 2, 8)
    assert amp == want and "probe" in why and probe["bf16_time_ratio"] == ratio
    assert hardware.choose_amp(torch.device("cpu"), "off", None, 2, 8) == ("off", "--amp", None)


def test_metrics_record_the_choices_and_why(tmp_path):
    root = small_data_dir(tmp_path / "data")
    out = tmp_path / "run"
    args = [
        "--data",
        root,
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--block-size",
        "8",
        "--hidden",
        "16",
        "--emb-dim",
        "8",
        "--warmup-steps",
        "1",
        "--no-progress",
        "--no-plots",
        "--no-baselines",
    ]
    assert train_main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    hw = m["hardware"]
    assert hw["threads"] == m["torch_threads"] and "usable cores" in hw["threads_reason"]
    assert hw["amp"] == m["amp"] in ("off", "bf16") and "probe" in hw["amp_reason"]
    assert hw["amp_probe"]["fp32_step_seconds"] > 0 and hw["cuda"] == {}
    assert len(hw["load_average_at_start"]) == 3 and len(hw["load_average_at_end"]) == 3
