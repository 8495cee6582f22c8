"""The sampler contract (tuningfork.testing.SamplerContract) applied to every built-in sampler."""

from __future__ import annotations

import tuningfork as tf
from tuningfork.testing import SamplerContract


class TestRandomSampler(SamplerContract):
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.RandomSampler(seed=seed)


class TestGridSampler(SamplerContract):
    exhaustive = True

    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.GridSampler(space, seed=seed)


class TestSobolSampler(SamplerContract):
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.QMCSampler(qmc_type="sobol", seed=seed)


class TestHaltonSampler(SamplerContract):
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.QMCSampler(qmc_type="halton", seed=seed)
