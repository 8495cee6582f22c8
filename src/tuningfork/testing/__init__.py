"""Contract test suites for samplers and storages, shipped so your own can run them too.

Subclass a contract in a pytest module and implement its factory hook::

    from tuningfork.testing import SamplerContract

    class TestMySampler(SamplerContract):
        def make_sampler(self, seed, space):
            return MySampler(seed=seed)

The test class must be importable at module level (the multi-process tests re-create the
sampler in fresh processes). Needs pytest, which tuningfork itself does not depend on.
"""

from __future__ import annotations

from tuningfork.testing.samplers import SamplerContract
from tuningfork.testing.schedulers import SchedulerContract
from tuningfork.testing.storages import StorageContract, run_in_processes

__all__ = ["SamplerContract", "SchedulerContract", "StorageContract", "run_in_processes"]
