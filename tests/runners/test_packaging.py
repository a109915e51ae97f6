"""The project as cluster workers get it: `--setup_file ./setup.py` makes Beam build an sdist
(staged as `workflow.tar.gz`) that every worker pip-installs. Here the sdist is built by Beam's
own staging code, a wheel is built from that sdist alone, the wheel is installed into a fresh
virtual environment, and the pipeline runs from there, outside the source tree.

The fresh environment gets the project with `pip install --no-deps`; its dependencies
(apache-beam, pyarrow, numba, torch, ...) come from the environment running the tests,
through a `.pth` file naming that environment's site-packages. Installing them again would
download or copy gigabytes; what this test is about is the project's own packaging. A `.pth`
line only appends a directory to `sys.path` (the `.pth` files inside it are not run), so an
editable install of the source tree in the test environment stays invisible, and the fresh
environment's own site-packages, holding the installed wheel, comes first.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "ja_sample.jsonl.gz"
# What `git` ignores, plus numba caches: the copy holds what a clean checkout holds.
NOT_SOURCE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    "out",
    "runs",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.pyc",
    "*.nbi",
    "*.nbc",
)
TIMEOUT = 120

STAGE_SETUP_FILE = """
import sys
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.stager import Stager

resources = Stager.create_job_resources(
    PipelineOptions(["--setup_file", sys.argv[1]]), sys.argv[2],
    log_submission_env_dependencies=False)
for artifact in resources:
    print(artifact.role_payload[2:].decode(), artifact.type_payload[2:].decode())
"""


def _run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _clean_env() -> dict:
    """The environment minus anything that would put the source tree on sys.path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["CORPUS_PROGRESS"] = "0"
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """{'src', 'sdist', 'wheel'}: a copy of the source tree (so the build's egg-info and build/
    never land in the shared checkout), the sdist Beam stages for `--setup_file`, and a wheel
    built from that sdist with nothing else."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    staged = _run(
        [sys.executable, "-c", STAGE_SETUP_FILE, str(src / "setup.py"), str(tmp / "staging")],
        cwd=tmp,
        env=_clean_env(),
    )
    staged = dict(line.split(" ", 1) for line in staged.splitlines() if line.strip())
    sdist = Path(staged["workflow.tar.gz"])
    # What a worker does with workflow.tar.gz (pip install), minus the dependencies; offline.
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp / "wheels"),
            str(sdist),
        ],
        cwd=tmp,
        env=_clean_env(),
    )
    (wheel,) = (tmp / "wheels").glob("corpus_lm-*.whl")
    return {"src": src, "sdist": sdist, "wheel": wheel, "tmp": tmp}


def test_setup_file_sdist_holds_both_packages_and_setup_py(built):
    with tarfile.open(built["sdist"]) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"setup.py", "pyproject.toml", "README.md", "PKG-INFO"} <= names
    for package in ("beam_jobs", "lm"):
        modules = {str(p.relative_to(built["src"])) for p in (built["src"] / package).rglob("*.py")}
        assert f"{package}/__init__.py" in modules
        assert modules <= names, f"missing from the sdist: {sorted(modules - names)}"


def test_installed_wheel_runs_the_pipeline_outside_the_source_tree(built):
    tmp = built["tmp"]
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(built["wheel"]),
        ],
        env=_clean_env(),
    )
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).strip()
    )
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    for script in ("corpus-prepare", "lm-train", "lm-ngram", "lm-generate"):
        assert (venv / "bin" / script).exists()

    work = tmp / "work"  # not the source tree, and nothing importable in it
    work.mkdir()
    where = json.loads(
        _run(
            [
                str(python),
                "-c",
                "import json, beam_jobs, lm; print(json.dumps([beam_jobs.__file__, lm.__file__]))",
            ],
            cwd=work,
            env=_clean_env(),
        )
    )
    for path in where:
        assert Path(path).resolve().is_relative_to(site.resolve()), where

    out = tmp / "out"
    _run(
        [
            str(python),
            "-m",
            "beam_jobs.prepare",
            "--input",
            str(SAMPLE),
            "--output",
            str(out),
            "--runner",
            "FnApiRunner",
            "--no-report",
        ],
        cwd=work,
        env=_clean_env(),
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["schema_version"] == 1
    assert manifest["input"]["files"][0]["path"] == SAMPLE.name
    stats = json.loads((out / "stats.json").read_text())
    assert (
        stats["read"]
        == (stats["kept"] + stats["filtered"] + stats["duplicates"] + stats["rejected"])
        > 0
    )
    splits = manifest["splits"]
    assert stats["kept"] == splits["train"]["rows"] + splits["val"]["rows"] > 0
    for split in splits.values():
        assert all((out / shard["path"]).exists() for shard in split["shards"])
