"""lm's library code raises lm's errors; only the commands' main() turn them into one line
`error: ...` on stderr and exit status 2. Boolean flags are --x/--no-x, old forms still parse."""

import os
import subprocess
import sys

import pytest
import torch

from lm.errors import DataDirError, LMError, OptionError
from lm.model import GRULM, GRUConfig
from lm.train import build_parser, train
from lm.train_options import parse_args
from tests.lm_fixtures import small_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_module(*argv):
    return subprocess.run(
        [sys.executable, "-m", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


def assert_one_line_error(result, message):
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert err.startswith("error: ") and message in err, err
    assert "\n" not in err and "Traceback" not in err


def test_commands_refuse_in_one_line_with_exit_status_2(tmp_path):
    data = small_data_dir(tmp_path / "data")
    # a bad flag combination: no way to stop
    assert_one_line_error(
        run_module("lm.train", "--data", data, "--out", str(tmp_path / "a")),
        "give --max-steps and/or --time-budget",
    )
    # a missing data directory
    assert_one_line_error(
        run_module(
            "lm.train",
            "--data",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "b"),
            "--max-steps",
            "2",
        ),
        "no such directory",
    )
    # a bad checkpoint
    (tmp_path / "bad.pt").write_bytes(b"\x00not a checkpoint" * 20)
    assert_one_line_error(
        run_module("lm.generate", "--checkpoint", str(tmp_path / "bad.pt")),
        "truncated or corrupted",
    )


def test_library_code_raises_lm_errors_not_system_exit(tmp_path):
    data = small_data_dir(tmp_path / "data")
    parser = build_parser()
    with pytest.raises(OptionError, match="--max-steps"):
        train(parser.parse_args(["--data", data, "--out", str(tmp_path / "a")]))
    with pytest.raises(DataDirError, match="no manifest.json"):
        train(
            parser.parse_args(
                ["--data", str(tmp_path), "--out", str(tmp_path / "b"), "--max-steps", "1"]
            )
        )
    assert issubclass(LMError, ValueError)


def test_readers_do_not_import_the_trainer():
    probe = "import sys, lm.generate, lm.interpret; print('lm.train' in sys.modules)"
    r = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stdout + r.stderr


def test_boolean_flags_take_one_style_and_old_forms_still_parse(capsys):
    parser = build_parser()
    base = ["--data", "D", "--out", "R"]
    args = parser.parse_args(base)
    assert (args.baselines, args.plots, args.progress) == (True, True, True)
    args = parser.parse_args([*base, "--no-baselines", "--no-plots", "--no-progress"])
    assert (args.baselines, args.plots, args.progress) == (False, False, False)
    capsys.readouterr()
    args = parse_args([*base, "--baselines", "off", "--plots", "on", "--progress=no"])
    assert (args.baselines, args.plots, args.progress) == (False, True, False)
    err = capsys.readouterr().err
    assert "--baselines off is deprecated; use --no-baselines" in err
    assert "--progress no is deprecated; use --no-progress" in err


def test_training_objective_is_the_models_loss():
    """GRULM.loss scores the targets that are not IGNORE_INDEX; its softmax head computes in
    float32 even inside autocast (as evaluation, outside autocast, does)."""
    from lm.data import IGNORE_INDEX

    torch.manual_seed(0)
    model = GRULM(GRUConfig(20, 8, 16, head="full"))
    x = torch.randint(0, 20, (3, 7))
    y = torch.randint(0, 20, (3, 7))
    y[0, :4] = IGNORE_INDEX
    with torch.no_grad():
        loss, n = model.loss(x, y)
        logp = torch.log_softmax(model.head(model(x)[0]), -1).gather(2, y.clamp(min=0)[..., None])
    keep = y != IGNORE_INDEX
    assert int(n) == int(keep.sum()) == 17
    assert float(loss) == pytest.approx(float(-logp[..., 0][keep].mean()), rel=1e-6)
    features = torch.randn(5, 16).bfloat16()  # what a bf16 GRU hands the head
    targets = torch.randint(0, 20, (5,))
    with torch.no_grad():
        outside = model.target_log_probs(features, targets)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = model.target_log_probs(features, targets)
            everything = model.log_probs(features)
    assert inside.dtype == everything.dtype == torch.float32
    assert torch.equal(inside, outside)
