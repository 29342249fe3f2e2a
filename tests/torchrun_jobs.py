"""Several ``archlab`` commands in one process, in order: one ``torchrun`` launch (three Python
processes importing torch) trains several runs. ``python torchrun_jobs.py JOBS.json``, where the
file holds ``[{"argv": [...], "env": {...}}, ...]``; ``env`` is set for that command only (e.g.
``ARCHLAB_FAULT`` for a run that is killed, which ends the process: put it last). The toy tasks of
the contract tests are registered first. Exits with the first non-zero exit code."""

import json
import os
import sys
from pathlib import Path

import toy_tasks


def run(jobs: list[dict]) -> int:
    from archlab.cli import main

    toy_tasks.register()
    for job in jobs:
        env = job.get("env") or {}
        os.environ.update(env)
        try:
            code = main(job["argv"])
        finally:
            for key in env:
                os.environ.pop(key, None)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(run(json.loads(Path(sys.argv[1]).read_text())))
