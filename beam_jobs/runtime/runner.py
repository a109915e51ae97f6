"""Which runner a run uses, and how it runs locally.

No `--runner` means Beam's FnApiRunner (the engine behind the DirectRunner): Beam 2.77's
DirectRunner, even when named, first tries to download and start the Prism runner, so naming
the FnApiRunner keeps a local run off the network and on the engine tested here. With no
`--runner` and no `--direct_*` flag, inputs of `LOCAL_PARALLEL_BYTES` or more run on worker
processes (one a core, at most `MAX_LOCAL_WORKERS`), smaller ones in-process, as measured:
two workers against in-process on a 2-core machine, 0.4 MB of gzip (the sample) 5.4 vs 3.5 s,
3.4 MB 6.7 vs 6.1 s, 14.7 MB 11.3 vs 12.5 s, 20 MB (all corpora/ja) 15.7 vs 18.3 s
(docs/scaling.md).
"""

from __future__ import annotations

import logging
import os

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.runner import create_runner

LOCAL_PARALLEL_BYTES = 8 << 20
MAX_LOCAL_WORKERS = 4


def resolve_runner(opts: PipelineOptions) -> None:
    """Name the default runner, and refuse one that cannot work (ValueError, one line)."""
    standard = opts.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "FnApiRunner"
    try:
        create_runner(standard.runner)
    except (ValueError, ImportError) as exc:
        raise ValueError(f"--runner {standard.runner}: {str(exc).splitlines()[0]}") from None
    if opts.view_as(DirectOptions).direct_running_mode == "multi_threading":
        raise ValueError(
            "--direct_running_mode=multi_threading loses records on this Beam "
            "version; use in_memory or multi_processing"
        )


def choose_local_mode(
    opts: PipelineOptions, argv: list[str], input_bytes: int, cpus: int | None = None
) -> None:
    """Worker processes or in-process by input size (see the module docstring); any
    `--runner` or `--direct_*` flag given means the user chose."""
    if any(
        a.startswith(("--runner", "--direct_num_workers", "--direct_running_mode")) for a in argv
    ):
        return
    cpus = cpus or os.cpu_count() or 1
    if input_bytes >= LOCAL_PARALLEL_BYTES and cpus > 1:
        direct = opts.view_as(DirectOptions)
        direct.direct_running_mode = "multi_processing"
        direct.direct_num_workers = min(cpus, MAX_LOCAL_WORKERS)
        logging.info(
            "%.0f MB of input: %d worker processes (--direct_num_workers=1 for one)",
            input_bytes / 1e6,
            direct.direct_num_workers,
        )


def counter_values(result) -> dict:
    """{namespace: {counter: value}} of a finished pipeline, where the runner reports them."""
    values: dict = {}
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # a runner without metrics support
        return values
    for counter in counters:
        value = counter.committed if counter.committed is not None else counter.attempted
        names = values.setdefault(counter.key.metric.namespace, {})
        names[counter.key.metric.name] = names.get(counter.key.metric.name, 0) + int(value or 0)
    return {ns: dict(sorted(names.items())) for ns, names in sorted(values.items())}
