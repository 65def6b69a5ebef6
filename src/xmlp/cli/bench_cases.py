"""What ``xmlp bench`` and the pytest-benchmark suite measure: backends, ops, FLOPs, cases.

One *case* is an op on one backend, dtype and shape ``(batch, in, hidden, out)``: a callable
that runs the op once **and waits for it** (GPU stream sync, ``jax.block_until_ready``, Dask
``persist``), so wall-clock time is the op's time. Both front ends time these callables with
:func:`xmlp.cli.bench_timing.interleaved`, all cases of one (dtype, shape) in the same rounds.

Backend names are the test suite's ids: numpy, array_api_strict, torch:cpu, torch:cuda, jax,
dask, cupy. Heavy libraries are imported only when a backend is loaded.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import ArraySpec, dtype_name

__all__ = [
    "BACKENDS",
    "DTYPES",
    "ALL_OPS",
    "COMPILED_OPS",
    "OPS",
    "Backend",
    "BackendUnavailable",
    "Case",
    "Group",
    "Workload",
    "gemms",
    "gflops",
    "grid",
    "load_backend",
    "load_backends",
    "op_flops",
    "plan",
    "step_gemms",
    "torch_step",
]

# batched_matmul: the headline GEMM rate; step_gemms: the six GEMMs of a step, its floor;
# mlp_step: xmlp's whole training step; torch_step: the same step in plain PyTorch, the peer.
OPS = ("batched_matmul", "step_gemms", "mlp_step", "torch_step")
# Compiled steps, measured only on request (--op): compiled_step: xmlp's step through
# xmlp.TrainStep(compile=True) (jax.jit or torch.compile); jax_jit: the same step written in JAX
# under jax.jit; torch_compile: PyTorch's nn.Sequential step with torch.optim.SGD, compiled.
# Their first call (the compile) is timed apart, as the case's compile_s.
COMPILED_OPS = ("compiled_step", "jax_jit", "torch_compile")
ALL_OPS = OPS + COMPILED_OPS
# the ops that run on a library's own backend or its peer, whatever backends are measured
PEER_OPS = {"torch_step": "torch", "torch_compile": "torch", "jax_jit": "jax"}
BACKENDS = ("numpy", "array_api_strict", "torch:cpu", "torch:cuda", "jax", "dask", "cupy")
GPU_BACKENDS = ("torch:cuda", "cupy")
DTYPES = ("float32", "float64")
PEERS = {"cpu": "torch:cpu", "gpu": "torch:cuda"}  # where torch_step runs for each kind
STACKS = 8  # batched_matmul splits the batch into this many stacked problems
LEARNING_RATE = 1e-3

Shape = tuple[int, int, int, int]
Gemm = tuple[int, int, int]

# -- size grids -------------------------------------------------------------------------------
# Families of (in, hidden, out), each with at least two batch sizes, so the figures draw
# GFLOP/s-vs-batch lines.
# The three shapes the performance targets are stated on are in every full grid:
# (100, 1, 10, 1) (the seed's), (1024, 256, 1024, 256) and (4096, 1024, 4096, 1024).
_GRIDS: dict[tuple[str, bool], list[tuple[tuple[int, int, int], tuple[int, ...]]]] = {
    ("cpu", False): [((1, 10, 1), (100, 10000)), ((256, 1024, 256), (64, 1024))],
    ("cpu", True): [
        ((1, 10, 1), (100, 1000, 10000)),
        ((256, 1024, 256), (64, 256, 1024, 4096)),
        ((1024, 4096, 1024), (256, 1024, 4096)),
    ],
    ("gpu", False): [
        ((1, 10, 1), (100, 10_000)),
        ((256, 1024, 256), (1024, 16384)),
        ((1024, 4096, 1024), (1024, 4096)),
    ],
    # Up to about 25 GiB of float64 activations at the largest shape: fills an H100's
    # compute without running an 80 GB card out of memory.
    ("gpu", True): [
        ((1, 10, 1), (100, 10_000, 1_000_000)),
        ((256, 1024, 256), (1024, 4096, 16384, 65536)),
        ((1024, 4096, 1024), (1024, 4096, 16384, 65536)),
        ((4096, 16384, 4096), (4096, 16384, 32768)),
    ],
}


def grid(kind: str, full: bool) -> list[Shape]:
    """The (batch, in, hidden, out) shapes measured on a "cpu" or "gpu" backend."""
    return [(b, i, h, o) for (i, h, o), batches in _GRIDS[(kind, full)] for b in batches]


def kind_of(name: str) -> str:
    """"gpu" for torch:cuda and cupy, "cpu" for the rest."""
    return "gpu" if name in GPU_BACKENDS else "cpu"


# -- FLOPs ------------------------------------------------------------------------------------
def stacks(batch: int) -> tuple[int, int]:
    """(S, M): batched_matmul runs S stacked (M, in) @ (in, hidden) problems, S*M <= batch."""
    s = min(STACKS, batch)
    return s, batch // s


def gemms(op: str, shape: Shape) -> list[Gemm]:
    """The (m, k, n) of every GEMM an op runs (an (m, k) @ (k, n) product each)."""
    b, i, h, o = shape
    if op == "batched_matmul":  # the first layer's GEMM, the batch split into S stacks
        s, m = stacks(b)
        return [(m, i, h)] * s
    if op in ("step_gemms", "mlp_step", "torch_step"):
        # h = x @ W1.T, y = a @ W2.T, gW2 = gy.T @ a, ga = gy @ W2, gW1 = gh.T @ x, gx = gh @ W1
        return [(b, i, h), (b, h, o), (o, b, h), (b, o, h), (h, b, i), (b, h, i)]
    if op in COMPILED_OPS:  # nothing asks for grad x: the compiler drops the sixth GEMM
        return [(b, i, h), (b, h, o), (o, b, h), (b, o, h), (h, b, i)]
    raise ValueError(f"unknown op {op!r}; choose from {ALL_OPS}")


def op_flops(op: str, shape: Shape) -> int:
    """2·m·k·n summed over the op's GEMMs (elementwise work is not counted)."""
    return sum(2 * m * k * n for m, k, n in gemms(op, shape))


def gflops(flops: float, seconds: float) -> float:
    """The rate in GFLOP/s (1e9 floating-point operations per second)."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds!r}")
    return flops / seconds / 1e9


# -- the products themselves ------------------------------------------------------------------
def step_gemms(xp: Any, x: Any, w1: Any, a: Any, w2: Any, gy: Any, gh: Any) -> tuple[Any, ...]:
    """The six GEMMs of one MLP training step, nothing else: the floor a step cannot beat.

    x (N, in), w1 (hidden, in), a (N, hidden), w2 (out, hidden), gy (N, out), gh (N, hidden)
    -> (x @ w1.T, a @ w2.T, gy.T @ a, gy @ w2, gh.T @ x, gh @ w1): the first layer's
    pre-activation, the output without bias, grad W2, grad a, grad W1 and grad x.
    """
    mm = xp.matmul
    return mm(x, w1.T), mm(a, w2.T), mm(gy.T, a), mm(gy, w2), mm(gh.T, x), mm(gh, w1)


def torch_step(params: Sequence[Any], x: Any, t: Any, lr: float) -> tuple[Any, Any]:
    """The same MLP step in plain PyTorch tensors, no autograd: the peer xmlp is compared to.

    params = [w1 (hidden, in), b1 (hidden,), w2 (out, hidden), b2 (out,)], updated in place by
    SGD; x (N, in), t (N, out). Returns (loss, dL/dx), the same values xmlp's MLP and MSELoss
    compute, with the same six GEMMs.
    """
    import torch

    w1, b1, w2, b2 = params
    h = torch.nn.functional.linear(x, w1, b1)  # what torch.nn.Linear runs: one addmm
    a = torch.tanh(h)
    y = torch.nn.functional.linear(a, w2, b2)
    diff = y - t
    loss = torch.mean(diff * diff)
    gy = diff * (2.0 / diff.numel())
    gw2, gb2, ga = gy.T @ a, gy.sum(0), gy @ w2
    gh = ga * (1 - a * a)
    gw1, gb1, gx = gh.T @ x, gh.sum(0), gh @ w1
    for p, g in zip(params, (gw1, gb1, gw2, gb2), strict=True):
        p.sub_(g, alpha=lr)
    return loss, gx


def runs_on(op: str, backend: str) -> bool:
    """Whether ``op`` is measured on the backend called ``backend`` (torch_step and
    torch_compile on torch, jax_jit on jax, compiled_step on both; the rest everywhere)."""
    if op in PEER_OPS:
        return backend.split(":")[0] == PEER_OPS[op]
    if op == "compiled_step":
        return backend.split(":")[0] in ("torch", "jax")
    return True


# -- backends ---------------------------------------------------------------------------------
class BackendUnavailable(Exception):
    """A backend that cannot run here (not installed, no GPU); the message says why."""


@dataclass
class Backend:
    """A backend to measure: the module users pass as ``xp=`` and the device."""

    name: str
    module: Any  # numpy, array_api_strict, torch, jax.numpy, dask.array, cupy
    device: Any = None

    @property
    def kind(self) -> str:
        return kind_of(self.name)

    @property
    def lazy(self) -> bool:
        return self.name == "dask"

    def spec(self, dtype: str) -> ArraySpec:
        return ArraySpec.resolve(self.module, self.device, dtype)

    def asarray(self, spec: ArraySpec, host: np.ndarray, *, split: bool) -> Any:
        """A fresh array from host data; on Dask chunked along axis 0 when ``split`` (the batch
        axis: one chunk per core, the feature axes whole), one chunk otherwise."""
        if self.lazy:
            host = np.asarray(host, dtype=dtype_name(spec.dtype))
            parts = max(1, min(os.cpu_count() or 1, host.shape[0])) if split else 1
            chunks = (math.ceil(host.shape[0] / parts), *host.shape[1:])
            return self.module.from_array(host, chunks=chunks)
        return spec.from_host(host)

    def syncer(self) -> Callable[[Sequence[Any]], Sequence[Any]] | None:
        """A function that waits until the given arrays are computed and returns them (Dask:
        persisted), or None where results are ready when the call returns (NumPy, torch CPU)."""
        if self.name in ("cupy", "torch:cuda"):
            cuda = self.module.cuda
            wait = ((lambda: cuda.get_current_stream().synchronize()) if self.name == "cupy"
                    else lambda: cuda.synchronize(self.device))

            def gpu_sync(arrays: Sequence[Any]) -> Sequence[Any]:
                wait()
                return arrays

            return gpu_sync
        if self.name == "jax":
            block: Callable[[Sequence[Any]], Sequence[Any]]
            block = importlib.import_module("jax").block_until_ready
            return block
        if self.lazy:
            persist = importlib.import_module("dask").persist
            return lambda arrays: persist(*arrays)
        return None

    def device_name(self) -> str:
        """The GPU's name, or the CPU model from /proc/cpuinfo."""
        if self.name == "cupy":
            cuda = self.module.cuda
            props = cuda.runtime.getDeviceProperties(cuda.Device().id)
            name = props["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        if self.name == "torch:cuda":
            return str(self.module.cuda.get_device_name(self.device))
        return cpu_model()

    def threads(self) -> int | None:
        """Threads of the BLAS this backend's CPU GEMMs run on (None: not known or a GPU)."""
        if self.kind == "gpu":
            return None
        if self.name == "torch:cpu":
            return int(self.module.get_num_threads())
        if self.name == "jax":
            return None  # XLA's own thread pool, not a BLAS threadpoolctl sees
        return numpy_blas_threads()

    def free(self) -> None:
        """Hand cached GPU memory back between shapes, so the next shape has room."""
        if self.name == "cupy":
            self.module.get_default_memory_pool().free_all_blocks()
        elif self.name == "torch:cuda":
            self.module.cuda.empty_cache()


def load_backend(name: str) -> Backend:
    """The backend called ``name``; BackendUnavailable (with the reason) if it cannot run here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {BACKENDS}")
    package = {"torch:cpu": "torch", "torch:cuda": "torch", "jax": "jax.numpy",
               "dask": "dask.array"}.get(name, name)
    try:
        if name == "jax":
            importlib.import_module("jax").config.update("jax_enable_x64", True)  # for float64
        module = importlib.import_module(package)
    except ImportError as exc:
        raise BackendUnavailable(f"{name}: {package} is not installed ({exc})") from exc
    if name == "torch:cpu":
        return Backend(name, module, module.device("cpu"))
    if name == "torch:cuda":
        if not module.cuda.is_available():
            raise BackendUnavailable("torch:cuda: torch.cuda.is_available() is False")
        return Backend(name, module, module.device("cuda:0"))
    if name == "cupy":
        try:
            count = module.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no driver, no GPU, a broken install: all mean "cannot run"
            reason = f"cupy: no usable CUDA GPU ({type(exc).__name__}: {exc})"
            raise BackendUnavailable(reason) from exc
        if count < 1:
            raise BackendUnavailable("cupy: no CUDA device")
    return Backend(name, module)


def load_backends(
    names: Iterable[str], with_peers: bool, *, jax_peer: bool = False
) -> tuple[list[Backend], dict[str, Backend], list[str]]:
    """(the backends that can run here, the torch_step peer for each device kind when
    ``with_peers`` (and under "jax" the jax backend when ``jax_peer``: jax_jit's), the reasons
    the others were skipped)."""
    loaded, skipped = [], []
    for name in names:
        try:
            loaded.append(load_backend(name))
        except BackendUnavailable as exc:
            skipped.append(str(exc))
    peers: dict[str, Backend] = {}
    if with_peers:
        for kind in dict.fromkeys(b.kind for b in loaded):
            peer_name = PEERS[kind]
            mine = [b for b in loaded if b.name == peer_name]
            try:
                peers[kind] = mine[0] if mine else load_backend(peer_name)
            except BackendUnavailable as exc:
                skipped.append(f"torch_step peer for {kind}: {exc}")
    if jax_peer:
        mine = [b for b in loaded if b.name == "jax"]
        try:
            peers["jax"] = mine[0] if mine else load_backend("jax")
        except BackendUnavailable as exc:
            skipped.append(f"jax_jit peer: {exc}")
    return loaded, peers, skipped


def cpu_model() -> str:
    """"AMD EPYC 7763 64-Core Processor" from /proc/cpuinfo, or what platform knows."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def numpy_blas_threads() -> int | None:
    """Threads of NumPy's BLAS per threadpoolctl (None if threadpoolctl is not installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    mine = [lib for lib in blas if "numpy" in str(lib.get("filepath", ""))] or blas
    return int(mine[0]["num_threads"]) if mine else None


# -- cases ----------------------------------------------------------------------------------
@dataclass
class Case:
    """One op, ready to time: ``fn()`` runs it once and waits for its results."""

    backend: Backend
    dtype: str
    shape: Shape
    op: str
    fn: Callable[[], None]
    check: Callable[[], bool] | None = None  # after timing: are the results finite?
    subject: Any = None  # the xmlp model of mlp_step, to inspect
    compile_s: float | None = None  # compiled ops: seconds of the first call (the compile)

    @property
    def flops(self) -> int:
        return op_flops(self.op, self.shape)


class Workload:
    """The arrays of one (backend, dtype, shape), made once and shared by its ops.

    Data is uniform in [-1, 1) (values do not change GEMM speed; drawing it is fast even at
    GPU sizes); arrays are made on first use, so an op pays only for what it needs.
    """

    def __init__(self, backend: Backend, dtype: str, shape: Shape, seed: int = 0) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if len(shape) != 4 or any(int(d) < 1 for d in shape):
            raise ValueError(f"shape must be 4 positive ints (batch, in, hidden, out), got {shape}")
        self.backend, self.dtype = backend, dtype
        self.shape: Shape = tuple(int(d) for d in shape)  # type: ignore[assignment]
        self.spec = backend.spec(dtype)
        self._rng = np.random.default_rng(seed)
        self._arrays: dict[str, Any] = {}

    def _host(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._rng.random(shape, dtype=np.float32) * 2 - 1

    def array(self, name: str) -> Any:
        """x (N, in), t (N, out), w1 (hidden, in), w2 (out, hidden), a and gh (N, hidden),
        gy (N, out), xs (S, M, in), ws (S, in, hidden)."""
        if name not in self._arrays:
            b, i, h, o = self.shape
            s, m = stacks(b)
            shapes = {"x": (b, i), "t": (b, o), "w1": (h, i), "w2": (o, h), "a": (b, h),
                      "gh": (b, h), "gy": (b, o), "xs": (s, m, i), "ws": (s, i, h)}
            split = name in ("x", "t", "a", "gh", "gy", "xs", "ws")
            self._arrays[name] = self.backend.asarray(self.spec, self._host(shapes[name]),
                                                      split=split)
        return self._arrays[name]

    def case(self, op: str) -> Case:
        """The callable for ``op`` (one of ALL_OPS) on this workload. A compiled op is
        compiled here, by its first call, never inside a timed one."""
        if op not in ALL_OPS:
            raise ValueError(f"unknown op {op!r}; choose from {ALL_OPS}")
        if not runs_on(op, self.backend.name):
            where = PEER_OPS.get(op, "torch or jax")
            raise ValueError(f"{op} runs on {where}, not {self.backend.name}")
        fn, check, *subject = getattr(self, "_" + op)()
        return Case(self.backend, self.dtype, self.shape, op, fn, check, *subject)

    def _timed(self, run: Callable[[], Sequence[Any]]) -> Callable[[], None]:
        sync = self.backend.syncer()
        if sync is None:
            return run  # type: ignore[return-value]  # results ready on return

        def fn() -> None:
            sync(run())

        return fn

    def _batched_matmul(self) -> tuple[Callable[[], None], None]:
        xp, xs, ws = self.spec.xp, self.array("xs"), self.array("ws")
        return self._timed(lambda: (xp.matmul(xs, ws),)), None

    def _step_gemms(self) -> tuple[Callable[[], None], None]:
        xp = self.spec.xp
        args = [self.array(n) for n in ("x", "w1", "a", "w2", "gy", "gh")]
        return self._timed(lambda: step_gemms(xp, *args)), None

    def _mlp_step(self) -> tuple[Callable[[], None], Callable[[], bool], Any]:
        from ..nn.containers import MLP
        from ..nn.losses import MSELoss

        _, i, h, o = self.shape
        be = self.backend
        model = MLP(i, h, o, xp=be.module, device=be.device, dtype=self.dtype, rng=0,
                    init="xavier")
        loss_fn, x, t = MSELoss(), self.array("x"), self.array("t")
        names = [n for n, _ in model.named_parameters()]
        sync = be.syncer()
        last: list[Any] = [None]

        def fn() -> None:
            loss = loss_fn.forward(model.forward(x), t)
            grad_x = model.backward(loss_fn.backward())
            model.update_params(LEARNING_RATE)
            # grad_x is waited for too: a lazy backend would otherwise skip the sixth GEMM
            out = [loss, grad_x, *model.parameters()]
            if sync is not None:
                out = list(sync(out))
            if be.lazy:  # keep the graph from growing step after step
                model.assign_parameters(dict(zip(names, out[2:], strict=True)))
            last[0] = out[0]

        return fn, lambda: bool(math.isfinite(float(last[0]))), model

    def _params(self) -> list[Any]:
        """Fresh [w1, b1, w2, b2] of the peers, Xavier-scaled like the xmlp model's."""
        _, i, h, o = self.shape
        be, spec = self.backend, self.spec
        return [be.asarray(spec, self._host((h, i)) * math.sqrt(2.0 / (i + h)), split=False),
                be.asarray(spec, np.zeros(h), split=False),
                be.asarray(spec, self._host((o, h)) * math.sqrt(2.0 / (h + o)), split=False),
                be.asarray(spec, np.zeros(o), split=False)]

    def _torch_step(self) -> tuple[Callable[[], None], Callable[[], bool]]:
        params = self._params()  # its own: they are updated in place
        x, t = self.array("x"), self.array("t")
        last: list[Any] = [None]

        def run() -> tuple[Any, ...]:
            loss, gx = torch_step(params, x, t, LEARNING_RATE)
            last[0] = loss
            return (loss, gx)

        return self._timed(run), lambda: bool(math.isfinite(float(last[0])))

    def _compiled(self, step: Callable[[], Any], subject: Any = None
                  ) -> tuple[Callable[[], None], Callable[[], bool], Any, float]:
        """(fn, check, subject, compile_s) of a compiled step: its first call, which compiles,
        is made and timed here, apart from the timed calls."""
        import time

        last: list[Any] = [None]

        def run() -> tuple[Any, ...]:
            last[0] = step()
            return (last[0],)

        fn = self._timed(run)
        start = time.perf_counter()
        fn()
        compile_s = time.perf_counter() - start
        return fn, lambda: bool(math.isfinite(float(last[0]))), subject, compile_s

    def _compiled_step(self) -> tuple[Callable[[], None], Callable[[], bool], Any, float]:
        from ..nn.containers import MLP
        from ..training.step import TrainStep

        _, i, h, o = self.shape
        be = self.backend
        model = MLP(i, h, o, xp=be.module, device=be.device, dtype=self.dtype, rng=0,
                    init="xavier")
        step = TrainStep(model, lr=LEARNING_RATE, compile=True)
        x, t = self.array("x"), self.array("t")
        return self._compiled(lambda: step(x, t), model)

    def _jax_jit(self) -> tuple[Callable[[], None], Callable[[], bool], Any, float]:
        step = jax_jit_step(LEARNING_RATE)
        params = [tuple(self._params())]
        x, t = self.array("x"), self.array("t")

        def run() -> Any:
            params[0], loss = step(params[0], x, t)
            return loss

        return self._compiled(run)

    def _torch_compile(self) -> tuple[Callable[[], None], Callable[[], bool], Any, float]:
        step = torch_compile_step(self._params(), LEARNING_RATE)
        x, t = self.array("x"), self.array("t")
        return self._compiled(lambda: step(x, t))


def jax_jit_step(lr: float) -> Callable[[Any, Any, Any], tuple[Any, Any]]:
    """The MLP step written directly in JAX, under ``jax.jit``: ``step(params, x, t)`` ->
    (new params, loss), params = (w1, b1, w2, b2) as torch_step's (donated), the MSE of a tanh
    MLP, its gradient by ``jax.value_and_grad``, plain SGD."""
    import jax
    import jax.numpy as jnp

    def loss_of(params: tuple[Any, ...], x: Any, t: Any) -> Any:
        w1, b1, w2, b2 = params
        y = jnp.tanh(x @ w1.T + b1) @ w2.T + b2
        return jnp.mean((y - t) ** 2)

    def step(params: tuple[Any, ...], x: Any, t: Any) -> tuple[Any, Any]:
        loss, grads = jax.value_and_grad(loss_of)(params, x, t)
        return tuple(p - lr * g for p, g in zip(params, grads, strict=True)), loss

    return jax.jit(step, donate_argnums=0)


def torch_compile_step(params: Sequence[Any], lr: float) -> Callable[[Any, Any], Any]:
    """PyTorch's own MLP step, compiled: ``nn.Sequential(Linear, Tanh, Linear)`` holding
    ``params`` (torch_step's [w1, b1, w2, b2]), MSE loss, ``torch.optim.SGD``;
    ``step(x, t)`` -> loss. The model's forward and backward run under ``torch.compile``
    (AOTAutograd compiles the backward), the optimizer's step under a ``torch.compile`` of its
    own, as PyTorch's tutorials compile a training step."""
    import torch

    w1, w2 = params[0], params[2]
    model = torch.nn.Sequential(torch.nn.Linear(w1.shape[1], w1.shape[0]), torch.nn.Tanh(),
                                torch.nn.Linear(w2.shape[1], w2.shape[0]))
    model.to(device=w1.device, dtype=w1.dtype)
    with torch.no_grad():
        for p, value in zip(model.parameters(), params, strict=True):
            p.copy_(value)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    # a fresh start, as in a user's process: torch.compile caches by code object, so the
    # optimizers of earlier shapes would count against one recompile cap (8), past which
    # opt.step runs eagerly
    torch._dynamo.reset()
    forward = torch.compile(model, fullgraph=True)
    update = torch.compile(opt.step, fullgraph=False)

    def step(x: Any, t: Any) -> Any:
        loss = torch.nn.functional.mse_loss(forward(x), t)
        loss.backward()
        update()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    return step


# -- planning ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Group:
    """Everything measured at one (dtype, shape), timed in the same interleaved rounds:
    (backend name, op) pairs."""

    dtype: str
    shape: Shape
    items: tuple[tuple[str, str], ...]


def plan(
    backends: Iterable[Backend],
    dtypes: Sequence[str],
    ops: Sequence[str],
    *,
    full: bool,
    shapes: Sequence[Shape] | None = None,
    peers: dict[str, Backend] | None = None,
) -> list[Group]:
    """The groups to measure, one per (dtype, shape), shapes in grid order.

    Each backend runs on its kind's grid (or ``shapes``). ``torch_step`` and
    ``torch_compile`` run on the torch backends among ``backends`` and, for every kind of
    device there, on its peer from ``peers`` ("cpu": torch:cpu, "gpu": torch:cuda); ``jax_jit``
    on jax and on ``peers["jax"]``; a peer runs nothing else. ``compiled_step`` runs on the
    torch and jax backends only.
    """
    chosen = list(backends)
    runners = list(chosen)
    torch_ops = any(PEER_OPS.get(op) == "torch" for op in ops)
    candidates = [(peers or {}).get(kind) if torch_ops else None
                  for kind in dict.fromkeys(b.kind for b in chosen)]
    candidates.append((peers or {}).get("jax") if "jax_jit" in ops else None)
    for peer in candidates:
        if peer is not None and peer.name not in {b.name for b in runners}:
            runners.append(peer)
    by_shape: dict[Shape, list[tuple[str, str]]] = {}
    for be in runners:
        peer_only = be not in chosen
        for shape in shapes or grid(be.kind, full):
            for op in ops:
                if not runs_on(op, be.name) or (peer_only and op not in PEER_OPS):
                    continue
                by_shape.setdefault(tuple(shape), []).append((be.name, op))  # type: ignore[arg-type]
    order = sorted(by_shape, key=lambda s: (*s[1:], s[0]))  # family by family, small to large
    return [Group(dtype, shape, tuple(by_shape[shape])) for shape in order for dtype in dtypes]
