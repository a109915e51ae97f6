"""Where the Prism runner's binary comes from, decided before any work.

Beam 2.77's `PrismRunner` (and the `DirectRunner`, which tries Prism first for any pipeline
Prism supports, ours included) starts a Prism job server from `--prism_location`; without
that flag it downloads `apache_beam-v<version>-prism-<os>-<arch>.zip` from the GitHub release
into `~/.apache_beam/cache/prism/bin/` (`PrismJobServer._resolve_source_path` and
`_download_to_local_path`) and reuses that zip once it is there. Offline the PrismRunner then
fails with a download traceback, and the DirectRunner quietly falls back to another engine.

So, for those two runners and no `--prism_location`, in this order:
1. the binary `scripts/prism.sh` built for this Beam version (it becomes `--prism_location`);
2. Beam's own cached download (Beam uses it as it would anyway);
3. the release download, if it answers within a few seconds (Beam then downloads it);
4. else a one-line error naming `scripts/prism.sh`, raised as ValueError (exit 2).
An explicit `--prism_location` wins; a local path that does not exist is an error too.

Beam 2.77's portable client also reads the job's state stream with a deadline of
`--job_server_timeout` (300 s; apache/beam#35867): with Prism, whose preparation id is the
job id, a job longer than that fails with DEADLINE_EXCEEDED while Prism still runs it (seen
here at 4x the corpus on a loaded machine). For a run on Prism that flag defaults to a week;
a value given on the command line is kept.
"""

from __future__ import annotations

import os
import platform
import urllib.parse
import urllib.request
from pathlib import Path

from apache_beam.options.pipeline_options import (
    PipelineOptions,
    PortableOptions,
    PrismRunnerOptions,
    StandardOptions,
)
from apache_beam.runners.direct.direct_runner import SwitchingDirectRunner
from apache_beam.runners.portability.prism_runner import PrismJobServer, PrismRunner
from apache_beam.runners.runner import create_runner
from apache_beam.version import __version__ as BEAM_VERSION

BUILD_HINT = "build it with `bash scripts/prism.sh` (needs Go)"
FALLBACK_HINT = {
    "PrismRunner": " or pass --prism_location BINARY",
    "DirectRunner": " or run --runner FnApiRunner (the DirectRunner's engine without Prism)",
}
PROBE_TIMEOUT_S = 5.0
PRISM_JOB_TIMEOUT_S = 7 * 24 * 3600


def release_tag(version: str = BEAM_VERSION) -> str:
    return f"v{version}"


def cache_root() -> Path:
    """Where scripts/prism.sh puts its builds (the same rule as the script)."""
    if os.environ.get("PRISM_CACHE"):
        return Path(os.environ["PRISM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "corpus-lm" / "prism"


def built_binary(version: str = BEAM_VERSION) -> Path | None:
    """The binary scripts/prism.sh built for this Beam version, if there is one."""
    path = cache_root() / release_tag(version) / "prism"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def release_url(version: str = BEAM_VERSION) -> str:
    tag = release_tag(version)
    return PrismJobServer._construct_download_url(tag, tag, platform.system(), platform.machine())


def beam_cached_download(version: str = BEAM_VERSION) -> Path | None:
    """The release zip Beam downloaded earlier (it reuses it without the network)."""
    path = Path(PrismJobServer.BIN_CACHE) / os.path.basename(release_url(version))
    return path if path.is_file() else None


def downloadable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def runs_prism(runner) -> str | None:
    """'PrismRunner' or 'DirectRunner' when `runner` (a name or an instance) would start Prism
    from a binary it must locate; None for every other runner."""
    instance = create_runner(runner) if isinstance(runner, str) else runner
    if isinstance(instance, PrismRunner):
        return "PrismRunner"
    if isinstance(instance, SwitchingDirectRunner):
        return "DirectRunner"
    return None


def configure_prism(opts: PipelineOptions, probe=None) -> str | None:
    """Set `--prism_location` for a run on Prism (see the module docstring); returns the
    binary or URL Prism will start from, None when the runner does not start Prism."""
    which = runs_prism(opts.view_as(StandardOptions).runner)
    if which is None:
        return None
    if "job_server_timeout" not in opts.get_all_options(drop_default=True):
        opts.view_as(PortableOptions).job_server_timeout = PRISM_JOB_TIMEOUT_S
    prism = opts.view_as(PrismRunnerOptions)
    version = prism.prism_beam_version_override
    version = version[1:] if version and version.startswith("v") else version
    version = version or BEAM_VERSION
    if which == "DirectRunner" and opts.get_all_options().get("update_compatibility_version"):
        return None  # Beam's DirectRunner skips Prism with this flag
    if prism.prism_location:
        location = prism.prism_location
        if not urllib.parse.urlparse(location).scheme and not os.path.exists(location):
            raise ValueError(f"--prism_location {location}: no such file; {BUILD_HINT}")
        return location
    built = built_binary(version)
    if built is not None:
        prism.prism_location = str(built)
        return str(built)
    cached = beam_cached_download(version)
    if cached is not None:
        return str(cached)
    url = release_url(version)
    if (probe or downloadable)(url):
        return url
    raise ValueError(
        f"--runner {which}: no Prism binary for Beam {version} here and its "
        f"release download is unreachable; {BUILD_HINT}{FALLBACK_HINT[which]}"
    )
