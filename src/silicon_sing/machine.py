"""What this machine offers the pipeline: usable CPU cores (GPUs are counted where they are used).

One definition, so that worker pools, torchrun's ``OMP_NUM_THREADS`` and provenance records agree
on what "all cores" means inside a container or a ``taskset``/SLURM CPU mask.
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPU cores this process may run on: its affinity mask where the OS has one, else ``os.cpu_count()``.

    ``os.cpu_count()`` counts the host's cores; under a CPU mask (SLURM ``--cpus-per-task``, docker
    ``--cpuset-cpus``, ``taskset``) fewer are usable, and sizing pools by the host's count
    oversubscribes them.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


__all__ = ["usable_cpus"]
