"""An SDK harness for `worker_pool_main --container_executable` (through a two-line shell
wrapper) that behaves like the pool's own until its first bundle running a transform whose
name contains $STALL_AT: there it writes its pid to $STALL_PID_FILE and waits, so that a test
can kill the process in the middle of that step. Once the pid file exists, every later
harness runs normally (a `--resume` after the kill).

The pool passes the container contract's flags; like the pool's own command, only the control
endpoint and the worker id are used."""

from __future__ import annotations

import argparse
import os
import time

from apache_beam.runners.worker import bundle_processor, sdk_worker


def stall_in(step: str, pid_file: str) -> None:
    original = bundle_processor.BundleProcessor.process_bundle

    def process_bundle(self, *args, **kwargs):
        names = (t.unique_name for t in self.process_bundle_descriptor.transforms.values())
        if any(step in name for name in names) and not os.path.exists(pid_file):
            with open(pid_file + ".tmp", "w") as handle:
                handle.write(str(os.getpid()))
            os.replace(pid_file + ".tmp", pid_file)
            time.sleep(600)  # killed here
        return original(self, *args, **kwargs)

    bundle_processor.BundleProcessor.process_bundle = process_bundle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--control_endpoint", required=True)
    args, _ = parser.parse_known_args()
    stall_in(os.environ["STALL_AT"], os.environ["STALL_PID_FILE"])
    sdk_worker.SdkHarness(args.control_endpoint, worker_id=args.id).run()


if __name__ == "__main__":
    main()
