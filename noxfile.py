"""Test matrix: one session per backend, plus lint and (only when named) benchmarks.

    nox                        # every test session this machine can run, plus lint
    nox -s tests-torch         # one backend
    nox -s bench               # CPU benchmarks (never in the default set)
    nox -s bench-cupy          # GPU benchmarks (skips without an NVIDIA GPU)
    nox -s mutate              # mutation testing of the core modules (never in the default set)
    nox -s mutate -- "xmlp.io*" "xmlp.losses*"   # only those modules' mutants
"""

from __future__ import annotations

import shutil
import subprocess
import time

import nox

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False

# backend -> extras it needs beside "test"
BACKENDS = {
    "numpy": [],
    "array_api_strict": ["strict"],
    "torch": ["torch"],  # torch==2.13.0, the CPU build (a CUDA build is several GB)
    "jax": ["jax"],
    "dask": ["dask"],
    "cupy": ["cupy"],
}

nox.options.sessions = [f"tests-{name}" for name in BACKENDS] + ["lint"]


def has_nvidia_gpu() -> bool:
    """True when nvidia-smi finds a GPU; checked before anything CUDA is downloaded."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def _tests(session: nox.Session, backend: str) -> None:
    if backend == "cupy" and not has_nvidia_gpu():
        session.skip("no NVIDIA GPU on this machine: the CuPy suite needs one (CuPy not installed)")
    extras = ",".join(["test", *BACKENDS[backend]])
    session.install(f".[{extras}]")
    env = {"XMLP_BACKENDS": backend}
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"
    session.run("pytest", *session.posargs, env=env)
    if backend == "dask":
        # dask.distributed end to end: the seed's training on a LocalCluster vs NumPy
        session.run("python", "examples/dask_distributed.py", env=env)


def _register(backend: str) -> None:
    @nox.session(name=f"tests-{backend}")
    def tests(session: nox.Session) -> None:
        _tests(session, backend)

    tests.__doc__ = f"Run the whole test suite on {backend} arrays."


for _backend in BACKENDS:
    _register(_backend)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything, mypy on the package's public API."""
    session.install(".[lint]")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("mypy")


def _bench(session: nox.Session, backends: list[str], out: str, suite: dict[str, str]) -> None:
    """`xmlp bench` on ``backends`` into ``out``, the peak check, then the pytest-benchmark
    suite (same timing, same cases) with ``suite`` as its environment."""
    session.run("xmlp", "bench", "--backend", *backends, *session.posargs, "--out", out)
    session.run("python", "benchmarks/peak.py", "--check", f"{out}/bench.json")
    session.run("pytest", "benchmarks", f"--benchmark-json={out}/pytest-benchmark.json",
                env=suite)


@nox.session(name="bench", default=False)
def bench(session: nox.Session) -> None:
    """CPU benchmarks: every CPU backend beside the PyTorch peer, peak check, pytest-benchmark."""
    session.install(".[bench,torch,jax,dask,strict]")
    _bench(session, ["cpu"], "bench-out", {"XMLP_BENCH_BACKENDS": "numpy"})


@nox.session(name="bench-cupy", default=False)
def bench_cupy(session: nox.Session) -> None:
    """GPU benchmarks: CuPy beside NumPy, with the PyTorch peers (skips without an NVIDIA GPU)."""
    if not has_nvidia_gpu():
        session.skip("no NVIDIA GPU on this machine")
    session.install(".[bench,cupy,torch]")
    _bench(session, ["cupy", "numpy"], "bench-out-gpu",
           {"XMLP_BENCH_BACKENDS": "cupy", "XMLP_BENCH_FULL": "1"})

@nox.session(name="mutate", default=False)
def mutate(session: nox.Session) -> None:
    """mutmut over the core modules ([tool.mutmut] in pyproject.toml) against the NumPy and
    array-api-strict suites, then tests/mutation/report.md. Positional arguments are mutant name
    globs ("xmlp.io*"): only those are run, the report still covers every result so far.

    Low priority and one worker: the machine is shared. Results are kept in mutants/ between
    runs; a mutant is run again only when its function changed, or when named here.
    """
    session.install(".[test,strict,dask,mutate]")  # dask: the Dask-only branches run too
    env = {"XMLP_BACKENDS": "numpy,array_api_strict", "PYTHONHASHSEED": "0"}
    nice = ["nice", "-n", "19"] if shutil.which("nice") else []
    started = time.monotonic()
    session.run(*nice, "mutmut", "run", "--max-children", "1", *session.posargs, env=env,
                external=bool(nice))
    seconds = round(time.monotonic() - started)
    session.run("python", "tests/mutation/report.py", "--runtime", str(seconds),
                "--command", " ".join(["nox -s mutate", *(["--", *session.posargs]
                                                          if session.posargs else [])]))
