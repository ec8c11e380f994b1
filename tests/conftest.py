"""Strict JAX for every test, and several forced CPU devices so sharded paths run anywhere."""

import os
import sys
import tempfile

# Must happen before JAX initialises its backends.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Fewer XLA passes for every test and every subprocess a test starts (training runs, sweep
# trials, Ray workers): the programs' semantics are the same, and at the suite's tiny sizes
# compilation is most of its time (about half of it goes). Benchmarks run without it. JAX reads
# the variable when it is imported (below); JAX_DISABLE_MOST_OPTIMIZATIONS=0 turns it off.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

# Training subprocesses share one persistent compilation cache (the same shapes compile once per
# machine); tests of the cache itself set their own directory.
os.environ.setdefault("ATTNLAB_COMPILATION_CACHE",
                      os.path.join(tempfile.gettempdir(), "attnlab_test_compilation_cache"))

# The benchmark suites live outside the package, in scripts/benchmarks/ (tests/benchmarks/).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "scripts"))

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_default_matmul_precision", "highest")
