"""docs/errors.md's table as one table of tests: for each row of the page (its "Bad input"), the
calls that make that error, the error type and the whole message (NumPy float64 parameters, as
on the page, unless a case says otherwise). The page is read too: each of its rows is here, its
Error column names the type each case raises, and its example message is the first case's
message, but for what the page leaves out ("...")."""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import array_api_strict as strict
import numpy as np
import pytest

import xmlp
from tests.helpers import Duck, linear34

PAGE = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


class ExitStatus2(Exception):
    """`xmlp ...` exited with status 2; the message is the one line it wrote on stderr."""


@dataclass(frozen=True)
class Case:
    row: str  # how the row's "Bad input" cell on the page begins
    error: type[BaseException]
    call: Callable[[], Any]  # run in an empty temporary directory
    message: str | re.Pattern[str] | None  # the whole message (a pattern where it quotes another
    # library's words); None where the page shows none
    id: str
    marks: tuple[Any, ...] = ()
    named: str = ""  # how the page's Error column names the error, where not by its class name


# -- calls that need a few lines --------------------------------------------------------------
class ReturnsFloat(xmlp.Module):
    """A layer whose forward returns a Python float, not an array."""

    def forward(self, x: Any) -> Any:
        return float(np.sum(x))

    def backward(self, grad_output: Any) -> Any:
        return grad_output


def load_a_cycle_past_its_end() -> None:
    scheduler = xmlp.optim.OneCycleLR(xmlp.optim.Adam(xmlp.MLP(2, 3, 1, rng=0)), max_lr=0.1,
                                      total_steps=4)
    scheduler.load_state_dict({**scheduler.state_dict(), "last_epoch": 5})


def trained_mlp() -> xmlp.MLP:
    """MLP(3, 6, 2) after one forward and backward: it holds gradients."""
    model = xmlp.MLP(3, 6, 2, rng=0)
    model.backward(model.forward(np.ones((5, 3))))
    return model


def trained_sequential() -> xmlp.Sequential:
    """Linear(3, 6), ReLU, Linear(6, 5), Sigmoid, Linear(5, 2) after one forward and backward."""
    model = xmlp.Sequential(xmlp.Linear(3, 6, rng=0), xmlp.ReLU(), xmlp.Linear(6, 5, rng=1),
                            xmlp.Sigmoid(), xmlp.Linear(5, 2, rng=2))
    model.backward(model.forward(np.ones((5, 3))))
    return model


def replaced(model: Any, layer: Any, name: str, value: Any) -> Any:
    setattr(layer, name, value)
    return model.update_params(0.1)


def used_twice() -> None:
    lin = xmlp.Linear(2, 2, rng=0)
    xmlp.Sequential(lin, xmlp.Tanh(), lin)


def of_another_model() -> None:
    lin = xmlp.Linear(2, 2, rng=0)
    first = xmlp.Sequential(lin, xmlp.Tanh())  # alive while the second is built
    xmlp.Sequential(xmlp.ReLU(), lin)
    del first


class Broken:
    """A namespace whose arrays cannot be made."""

    __name__ = "broken"

    def asarray(self, value: Any) -> Any:
        raise RuntimeError("no device")


def without_cupy() -> None:
    with mock.patch.dict(sys.modules, {"cupy": None}):  # as if CuPy were not installed
        xmlp.Linear(3, 4, xp="cupy")


class InfiniteFrom(xmlp.MSELoss):
    """MSELoss whose target is infinite from its ``call``-th forward on (one a full-batch epoch)."""

    def __init__(self, call: int) -> None:
        super().__init__()
        self.calls, self.call = 0, call

    def forward(self, y: Any, t: Any) -> Any:
        self.calls += 1
        return super().forward(y, t + math.inf if self.calls >= self.call else t)


def fit_to_an_infinite_loss() -> None:
    x = np.linspace(-1, 1, 8).reshape(8, 1)
    with np.errstate(all="ignore"):
        xmlp.fit(xmlp.MLP(1, 2, 1, rng=0), x, x, epochs=40, lr=0.01, loss=InfiniteFrom(37),
                 progress=False)


def fit_until_the_parameters_overflow() -> None:
    """One weight w and the target 0 for the input 1: the loss is w**2 = 44.51, and a step of
    lr 1e308 takes w to -inf."""
    model = xmlp.Linear(1, 1, np.array([[math.sqrt(44.51)]]), np.zeros(1))
    with np.errstate(all="ignore"):
        xmlp.fit(model, np.ones((1, 1)), np.zeros((1, 1)), epochs=2, lr=1e308, progress=False)


def fit_with_a_schedule_and_lr() -> None:
    model = xmlp.MLP(1, 2, 1, rng=0)
    scheduler = xmlp.optim.StepLR(xmlp.optim.SGD(model, lr=0.1), step_size=10)
    xmlp.fit(model, np.ones((4, 1)), np.ones((4, 1)), epochs=1, lr=0.1, scheduler=scheduler,
             progress=False)


def fit_with_refused_validation_data() -> None:
    x = np.ones((10, 3))
    xmlp.fit(xmlp.MLP(3, 5, 1, rng=0), x, np.ones((10, 1)), epochs=1, lr=0.1, progress=False,
             validation_data=(np.ones((5, 2)), np.ones((5, 1))))


def fit_on_a_masked_dask_chunk() -> None:
    import dask.array as da

    x = da.ma.masked_greater(da.from_array(np.linspace(-1, 2, 8).reshape(8, 1), chunks=4), 1.0)
    y = da.from_array(np.zeros((8, 1)), chunks=4)
    xmlp.fit(xmlp.MLP(1, 2, 1, rng=0), x, y, epochs=1, lr=0.1, batch_size=4, progress=False)


def xmlp_command(*argv: str) -> None:
    """Run ``xmlp argv...``; raise ExitStatus2 with the one line it wrote if it exits with 2."""
    from xmlp.cli.commands import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exc:
            status = exc.code
    lines = err.getvalue().splitlines()
    if status == 2:
        assert len(lines) == 1, lines  # one line, no traceback
        raise ExitStatus2(lines[0])


def bench_into_a_file() -> None:
    Path("results").write_text("keep me")
    xmlp_command("bench", "--quick", "--out", "results")


def load_a_wider_model() -> None:
    xmlp.save(xmlp.MLP(2, 10, 1, rng=0), "model.npz")
    xmlp.load(xmlp.MLP(1, 10, 1, rng=0), "model.npz")


def load_a_file_of_a_huge_declared_shape() -> None:
    from tests.io.test_hostile_files import HOSTILE

    Path("bad.npz").write_bytes(HOSTILE["shape-huge"]())
    xmlp.load(xmlp.MLP(2, 3, 1, rng=0), "bad.npz")


def load_a_fifo() -> None:
    os.mkfifo("fifo")
    xmlp.load(xmlp.MLP(2, 3, 1, rng=0), "fifo")


def step_after_to() -> None:
    model = xmlp.MLP(2, 3, 1, rng=0)
    opt = xmlp.optim.Adam(model, lr=0.01)
    model.backward(model.forward(np.ones((4, 2))))
    opt.step()
    model.to(dtype="float32")
    model.backward(model.forward(np.ones((4, 2), np.float32)))
    opt.step()


OTHER_MODEL = xmlp.MLP(2, 3, 1, rng=1)  # an optimizer built on it is another model's


def fit_with_the_optimizer_of_another_model() -> None:
    optimizer = xmlp.optim.Adam(OTHER_MODEL, lr=0.01)
    xmlp.fit(xmlp.MLP(2, 3, 1, rng=0), np.ones((6, 2)), np.ones((6, 1)), epochs=1,
             optimizer=optimizer, progress=False)


def load_the_state_of_another_optimizer() -> None:
    model = xmlp.MLP(2, 3, 1, rng=0)
    sgd = xmlp.optim.SGD(model, lr=0.1, momentum=0.9)
    model.backward(model.forward(np.ones((4, 2))))
    sgd.step()
    xmlp.optim.Adam(model).load_state_dict(sgd.state_dict())


def torch_tensor_that_requires_grad() -> None:
    import torch

    layer = xmlp.Linear(3, 6, rng=0, xp=torch, dtype=torch.float64)
    layer.forward(torch.ones((5, 3), dtype=torch.float64, requires_grad=True))


PARAMETER_REPLACED = (
    "Sequential.update_params: parameter '4.biases' has dtype float32, but the layer's parameters "
    "are numpy float64 on cpu. Was it replaced by hand? Assign a numpy float64 array on cpu, or "
    "call .to() on the model to convert every parameter to one namespace, device and dtype.")
MASKED = ("is a numpy.ma.MaskedArray; xmlp layers ignore masks. Fill or drop the masked values "
          "first (x.filled(...), or numpy.asarray(x) to use the data as it is).")
STRICT_CPU = "array_api_strict.Device('CPU_DEVICE')"
NOT_A_BACKEND = ("Pass an array module (numpy, cupy, torch, jax.numpy, dask.array, "
                 "array_api_strict) or its name ('numpy', 'cupy', 'torch', 'jax', 'dask', "
                 "'array_api_strict').")

# The page's rows, in its order; a row's first case is its example on the page.
CASES = [
    Case("Wrong feature count", ValueError, lambda: linear34().forward(np.ones((5, 2))),
         "Linear(3, 4).forward: x must have shape (..., 3) (input_dim features), got (5, 2)",
         "feature-count"),
    Case("0-d input to a Linear", ValueError, lambda: linear34().forward(np.array(1.0)),
         "Linear(3, 4).forward: x must have shape (..., 3) (input_dim features), got ()",
         "0d-linear"),
    Case("0-d input to a Linear", ValueError, lambda: linear34().predict(np.float64(1.0)),
         "Linear(3, 4).predict: x must have shape (..., 3) (input_dim features), got ()",
         "0d-linear-predict"),
    Case("0-d input to an activation", ValueError, lambda: xmlp.Tanh().forward(np.array(1.0)),
         "Tanh.forward: x must have shape (...) with ndim >= 1, got shape () (a 0-d array); "
         "reshape it, e.g. to (1,).", "0d-activation"),
    Case("Integer or boolean array", TypeError,
         lambda: linear34().forward(np.ones((5, 3), dtype=np.int64)),
         "Linear(3, 4).forward: x has dtype int64; xmlp layers take real floating arrays. Convert "
         "with numpy.astype(x, numpy.float64).", "integer"),
    Case("Another float dtype than the parameters'", TypeError,
         lambda: linear34().forward(np.ones((5, 3), dtype=np.float32)),
         "Linear(3, 4).forward: x has dtype float32 but the parameters are float64. Convert the "
         "input with numpy.astype(x, numpy.float64) or the model with .to(dtype=numpy.float32).",
         "other-float"),
    Case("An array of another namespace", TypeError,
         lambda: linear34().forward(strict.ones((5, 3))),
         "Linear(3, 4).forward: x is an array_api_strict array but the parameters are numpy "
         "arrays. Convert the input (numpy.asarray(...), or cupy.asarray / .get() between NumPy "
         "and CuPy), or move the model with .to(array_api_strict).", "other-namespace"),
    Case("An array of another namespace", TypeError,
         lambda: xmlp.Linear(3, 4, xp=strict, rng=0).forward(np.ones((5, 3))),
         "Linear(3, 4).forward: x is a numpy array but the parameters are array_api_strict "
         "arrays. Convert the input (array_api_strict.asarray(...), or cupy.asarray / .get() "
         "between NumPy and CuPy), or move the model with .to(numpy).", "numpy-into-strict"),
    Case("An array on another device", TypeError,
         lambda: xmlp.Linear(3, 2, xp=strict, rng=0).forward(
             strict.ones((5, 3), device=strict.Device("device1"))),
         f"Linear(3, 2).forward: x is on device array_api_strict.Device('device1') but the "
         f"parameters are on {STRICT_CPU}. Move the input with array_api_compat.to_device(x, "
         f"{STRICT_CPU}) or the model with .to(array_api_strict, "
         "device=array_api_strict.Device('device1')); xmlp never transfers silently.",
         "other-device"),
    Case("A Python list, float or `None`", TypeError, lambda: linear34().forward([[1.0, 2.0, 3.0]]),
         "Linear(3, 4).forward: x must be a numpy array, got list. Convert it with "
         "numpy.asarray(...).", "list"),
    Case("`grad_output` of another shape than the output", ValueError,
         lambda: (lambda m: (m.forward(np.ones((5, 3))), m.backward(np.ones((5, 3)))))(linear34()),
         "Linear(3, 4).backward: grad_output must have the output's shape (5, 4), got (5, 3)",
         "grad-output-shape"),
    Case("`grad_output` of another dtype (activation)", TypeError,
         lambda: (lambda a: (a.forward(np.ones((5, 4))),
                             a.backward(np.ones((5, 4), dtype=np.float32))))(xmlp.Tanh()),
         "Tanh.backward: grad_output has dtype float32 but the forward input is float64. Convert "
         "the input with numpy.astype(x, numpy.float64) (or convert the forward input to "
         "float32).", "grad-output-dtype"),
    Case("`y` and `t` of different shapes", ValueError,
         lambda: xmlp.MSELoss().forward(np.ones((5, 1)), np.ones(5)),
         "MSELoss.forward: y and t must have the same shape, got (5, 1) and (5,) (an (N, 1) "
         "against (N,) would broadcast to (N, N)); reshape the target to the prediction's "
         "shape.", "target-shape"),
    Case("`t` of another dtype or namespace than `y`", TypeError,
         lambda: xmlp.MSELoss().forward(strict.ones((5, 1)), np.ones((5, 1))),
         "MSELoss.forward: t (the target) is a numpy array but y (the prediction) is an "
         "array_api_strict array. Convert the input (array_api_strict.asarray(...), or "
         "cupy.asarray / .get() between NumPy and CuPy), so that it matches y (the prediction).",
         "target-namespace"),
    Case("0-d or empty `y` and `t`", ValueError,
         lambda: xmlp.MSELoss().forward(np.ones((0, 1)), np.ones((0, 1))),
         "MSELoss.forward: y and t are empty (shape (0, 1))", "empty-target"),
    Case("An empty batch (a dimension of size 0)", ValueError,
         lambda: linear34().forward(np.ones((0, 3))),
         "Linear(3, 4).forward: x is an empty batch (shape (0, 3)); pass at least one sample",
         "empty-batch"),
    Case("An array in non-native byte order (NumPy, Dask)", TypeError,
         lambda: xmlp.Linear(3, 6, rng=0).forward(np.ones((5, 3), dtype=">f8")),
         "Linear(3, 6).forward: x has dtype float64 in non-native byte order ('>f8'); xmlp takes "
         "arrays in this machine's byte order. Convert with numpy.astype(x, numpy.float64).",
         "byte-order", (pytest.mark.skipif(sys.byteorder == "big", reason="the page's example "
                                           "is from a little-endian machine"),)),
    Case("A torch tensor that requires grad", TypeError, torch_tensor_that_requires_grad,
         "Linear(3, 6).forward: x is a torch tensor that requires grad; xmlp computes gradients "
         "itself (backward()) and must not record an autograd graph, which would grow with every "
         "step. Pass x.detach() (no copy).", "requires-grad",
         (pytest.mark.requires_backends("torch"),)),
    Case("A `numpy.ma.MaskedArray`", TypeError,
         lambda: linear34().forward(np.ma.masked_array(np.ones((5, 3)))),
         f"Linear(3, 4).forward: x {MASKED}", "masked"),
    Case("A parameter replaced by hand with another dtype", TypeError,
         lambda: (lambda m: replaced(m, m.layers[4], "biases", np.zeros(2, np.float32)))(
             trained_sequential()), PARAMETER_REPLACED, "parameter-dtype"),
    Case("A parameter replaced by hand with another shape", ValueError,
         lambda: (lambda m: replaced(m, m.linear2, "weights", np.ones((2, 7))))(trained_mlp()),
         "MLP.update_params: parameter 'linear2.weights' has shape (2, 7) but the layer needs "
         "(2, 6) (was it replaced by hand?)", "parameter-shape"),
    Case("A layer object used twice", ValueError, used_twice,
         "Sequential: Linear(2, 2, numpy float64 on cpu) is used twice, as 0 and as 2; xmlp layers "
         "hold the state of their last forward, so a layer object can be used once in one model. "
         "Make another layer (copy.deepcopy(layer) starts from the same weights).", "used-twice"),
    Case("A layer object used twice", ValueError, of_another_model,
         "Sequential: layer 1 (Linear(2, 2, numpy float64 on cpu)) already belongs to "
         "Sequential(Linear(2, 2, numpy float64 on cpu), Tanh()); a layer object can be used in "
         "one model only (its forward state and updates would mix). Make another layer "
         "(copy.deepcopy(layer) starts from the same weights) or use the other model.",
         "of-another-model"),
    Case("`backward()` before `forward()`", xmlp.ForwardNotCalledError,
         lambda: linear34().backward(np.ones((5, 4))), "Perform forward pass first.",
         "backward-first"),
    Case("`MSELoss.backward()` before `forward()`", xmlp.ForwardNotCalledError,
         lambda: xmlp.MSELoss().backward(), "Perform forward pass first.", "loss-backward-first"),
    Case("`update_params()` before `backward()`", xmlp.NoGradientError,
         lambda: xmlp.MLP(3, 6, 2, rng=0).update_params(0.1),
         "MLP.update_params: no gradient for 'linear1.weights'; call backward() after forward() "
         "first.", "no-gradient"),
    Case("A gradient set by hand with the wrong shape", ValueError,
         lambda: (lambda m: replaced(m, m.linear2, "grad_weights", np.ones((3, 2))))(trained_mlp()),
         "MLP.update_params: the gradient for 'linear2.weights' must have the parameter's shape "
         "(2, 6), got (3, 2)", "gradient-shape"),
    Case("A gradient set by hand with the wrong shape", TypeError,
         lambda: (lambda m: replaced(m, m.linear2, "grad_biases", np.ones(2, np.float32)))(
             trained_mlp()),
         "MLP.update_params: the gradient for 'linear2.biases' has dtype float32 but the "
         "parameters are float64. Convert the input with numpy.astype(x, numpy.float64) or the "
         "model with .to(dtype=numpy.float32).", "gradient-dtype"),
    Case("Learning rate not a real number", TypeError, lambda: linear34().update_params("0.1"),
         "learning_rate must be a real number (a Python or NumPy scalar), got str: '0.1'",
         "learning-rate-type"),
    Case("Learning rate NaN, infinite, negative", ValueError,
         lambda: linear34().update_params(float("nan")),
         "learning_rate must be finite and >= 0, got nan", "learning-rate-value"),
    Case("`initial_weights` / `initial_biases` of the wrong shape", ValueError,
         lambda: xmlp.Linear(3, 4, np.ones((3, 4))),
         "Linear(3, 4): initial_weights must have shape (4, 3), got (3, 4)", "initial-shape"),
    Case("`initial_weights` of an integer dtype, or a list", TypeError,
         lambda: xmlp.Linear(3, 4, np.ones((4, 3), dtype=np.int64)),
         "Linear: initial_weights has dtype int64; xmlp layers take real floating arrays. "
         "Convert with numpy.astype(x, numpy.float64).", "initial-integer"),
    Case("`initial_weights` of an integer dtype, or a list", TypeError,
         lambda: xmlp.Linear(3, 4, [[1.0] * 3] * 4),
         "Linear: initial_weights must be an array, got list.", "initial-list"),
    Case("A dimension that is not an int", TypeError, lambda: xmlp.Linear("3", 4),
         "Linear: input_dim must be a positive int, got str: '3'", "dim-type"),
    Case("A dimension < 1", ValueError, lambda: xmlp.Linear(0, 4),
         "Linear: input_dim must be a positive int, got 0", "dim-value"),
    Case("A dimension too large to allocate", ValueError, lambda: xmlp.Linear(2**62, 4), None,
         "dim-too-large"),
    Case("`rng` not None, an int", ValueError, lambda: xmlp.Linear(2, 2, rng=-1),
         "rng must be None, a non-negative int seed or a numpy.random.Generator, got int: -1",
         "negative-seed"),
    Case("`rng` not None, an int", TypeError, lambda: xmlp.Linear(2, 2, rng="seed"),
         "rng must be None, a non-negative int seed or a numpy.random.Generator, got str: 'seed'",
         "seed-type"),
    Case("A dtype that is not real floating", TypeError, lambda: xmlp.Linear(3, 4, dtype="int64"),
         "dtype='int64' is not a real floating dtype; use float32 or float64 (e.g. "
         "dtype=numpy.float32).", "dtype"),
    Case("A device the namespace does not have", TypeError, lambda: xmlp.Linear(3, 4, device="gpu"),
         re.compile(r"numpy cannot make arrays on device='gpu' \(.+\)\. Its devices: \['cpu'\]\."),
         "device"),
    Case("Something that is not an array module or a backend name", TypeError,
         lambda: xmlp.Linear(3, 4, xp="numpi"),
         "xp='numpi' is not a backend name xmlp knows; use one of 'numpy', 'cupy', 'torch', "
         "'jax', 'jax.numpy', 'dask', 'dask.array', 'array_api_strict' or pass the array module "
         "itself.", "backend-name"),
    Case("Something that is not an array module or a backend name", TypeError,
         lambda: xmlp.Linear(3, 4, xp=3),
         f"xp=3 is not an array namespace xmlp can use. {NOT_A_BACKEND}", "not-a-namespace"),
    Case("Something that is not an array module or a backend name", TypeError,
         lambda: xmlp.Linear(3, 4, xp=Broken()),
         "xp=broken could not make an array here: RuntimeError: no device. Pass an array module "
         "such as numpy, cupy, torch, jax.numpy, dask.array or array_api_strict (CuPy also needs "
         "a working NVIDIA GPU).", "broken-namespace"),
    Case("A backend name whose library is not installed", ModuleNotFoundError, without_cupy,
         re.compile(r"xp='cupy' needs cupy, which is not installed here \(.+\); install it with: "
                    r"pip install cupy-cuda12x \(from the xmlp checkout: "
                    r"pip install \"\.\[cupy\]\"\)"),
         "not-installed"),
    Case("A layer that is not an `xmlp.Module`", TypeError,
         lambda: xmlp.Sequential(xmlp.Linear(2, 2), Duck()),
         "Sequential: layer 1 (Duck) is not an xmlp.Module; subclass xmlp.Module and define "
         "forward/backward/predict.", "not-a-module"),
    Case("Consecutive Linear layers whose dims disagree", ValueError,
         lambda: xmlp.Sequential(xmlp.Linear(3, 4), xmlp.Tanh(), xmlp.Linear(5, 1)),
         "Sequential: layer 0 gives 4 features but layer 2 takes 5", "dims-disagree"),
    Case("A loss that becomes NaN or infinite", FloatingPointError, fit_to_an_infinite_loss,
         "fit: the loss of epoch 37 is inf; parameters restored after epoch 36. Try a smaller "
         "learning rate.", "infinite-loss"),
    Case("Parameters that overflow to NaN or infinity", FloatingPointError,
         fit_until_the_parameters_overflow,
         "fit: the parameters overflowed to NaN or infinity in epoch 1 (its loss was 44.51); "
         "parameters restored to their initial values. Try a smaller learning rate.", "overflow"),
    Case("Bad `epochs` / `batch_size`", ValueError,
         lambda: xmlp.fit(xmlp.MLP(1, 2, 1, rng=0), np.ones((100, 1)), np.ones((5, 1)), epochs=1,
                          lr=0.1),
         "fit: x has 100 samples but y has 5", "sample-counts"),
    Case("`validation_data` the model or loss refuses", ValueError,
         fit_with_refused_validation_data,
         "fit: validation_data was refused: Linear(3, 5).predict: x must have shape (..., 3) "
         "(input_dim features), got (5, 2)", "validation-data"),
    Case("A streamed Dask chunk refused in the first epoch", TypeError,
         fit_on_a_masked_dask_chunk,
         f"fit: a chunk of the Dask data {MASKED}", "masked-chunk",
         (pytest.mark.requires_backends("dask"),), named="the model's or loss's error"),
    Case("A bad option value", ExitStatus2, bench_into_a_file,
         "xmlp bench: --out 'results' is a file, not a directory", "command-line"),
    Case("A checkpoint whose shapes or names do not fit the model", ValueError, load_a_wider_model,
         "load: 'linear1.weights' has shape (10, 2) in 'model.npz' but (10, 1) in the MLP",
         "checkpoint-shape"),
    Case("A file that is not an xmlp checkpoint", ValueError, load_a_file_of_a_huge_declared_shape,
         "load: 'bad.npz' is not a readable xmlp checkpoint: 'linear1.weights' declares shape "
         "(1048576, 1048576) of float64 (8796093022208 bytes) but holds 8 bytes of data",
         "not-a-checkpoint"),
    Case("A path that is missing, a directory, unreadable; a FIFO or device", ValueError,
         load_a_fifo, "load: 'fifo' is not a regular file", "fifo",
         (pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="this system has no named pipes"),)),
    Case("Class indices of a floating dtype, or boolean labels", TypeError,
         lambda: xmlp.CrossEntropyLoss().forward(np.zeros((5, 4)), np.zeros(5)),
         "CrossEntropyLoss.forward: t of shape (5,) holds class indices but has the floating "
         "dtype float64; convert it with numpy.astype(t, numpy.int64) (probability targets have "
         "the logits' shape (5, 4)).", "float-labels"),
    Case("Class indices not of shape `logits.shape[:-1]`", ValueError,
         lambda: xmlp.CrossEntropyLoss().forward(np.zeros((5, 4)), np.array([0, 1, 2])),
         "CrossEntropyLoss.forward: class indices t must have shape logits.shape[:-1] = (5,), got "
         "(3,)", "label-shape"),
    Case("A label outside `[0, C)`", ValueError,
         lambda: xmlp.CrossEntropyLoss().forward(np.zeros((4, 3)), np.array([0, 2, 3, 1])),
         "CrossEntropyLoss.forward: t holds the label 3 at index 2, outside [0, 3) for logits with "
         "3 classes", "label-range"),
    Case("A bad optimizer hyperparameter", ValueError,
         lambda: xmlp.optim.Adam(xmlp.MLP(2, 3, 1, rng=0), betas=(0.9, 1.0)),
         "Adam: betas[1] must be in [0, 1), got 1.0", "hyperparameter"),
    Case("`step()` before `backward()`, or with a bad gradient", xmlp.NoGradientError,
         lambda: xmlp.optim.Adam(xmlp.MLP(2, 3, 1, rng=0)).step(),
         "Adam.step: no gradient for 'linear1.weights'; call backward() after forward() first.",
         "step-first"),
    Case("`step()` after the model was moved with `.to()`", TypeError, step_after_to,
         "Adam.step: the parameters are now numpy float32 on cpu but this optimizer's state is "
         "numpy float64 on cpu (the model was moved with .to() after steps were taken). Carry "
         "the state over with opt.load_state_dict(opt.state_dict()), which makes it where the "
         "parameters are now; xmlp never transfers silently.", "step-after-to"),
    Case("`lr` and `optimizer=` both given, or neither; an optimizer of another model", ValueError,
         fit_with_the_optimizer_of_another_model,
         f"fit: the optimizer was built on another model (MLP at {id(OTHER_MODEL):#x}); build it "
         "on the model being trained, e.g. xmlp.optim.Adam(model, ...)", "another-model"),
    Case("A state dict of another optimizer class", ValueError, load_the_state_of_another_optimizer,
         "Adam.load_state_dict: the state dict is of a 'SGD' optimizer, not 'Adam'", "state-dict"),
    Case("A schedule that is not of fit's optimizer", ValueError, fit_with_a_schedule_and_lr,
         "fit: the StepLR sets the learning rate of the optimizer it was built on, but fit was "
         "given lr=0.1 (plain SGD, no optimizer); build opt = xmlp.optim.SGD(model, lr=...), the "
         "schedule on it, and pass optimizer=opt", "schedule-lr"),
    Case("A schedule that is not of fit's optimizer", TypeError,
         lambda: xmlp.fit(OTHER_MODEL, np.ones((4, 1)), np.ones((4, 1)), epochs=1,
                          optimizer=xmlp.optim.SGD(OTHER_MODEL, lr=0.1), scheduler="cos"),
         None, "schedule-type"),
    Case("A bad schedule argument", ValueError,
         lambda: xmlp.optim.StepLR(xmlp.optim.SGD(xmlp.MLP(2, 3, 1, rng=0), lr=0.1), 0),
         "StepLR: step_size must be a positive int, got 0", "schedule-argument"),
    Case("A bad schedule argument", TypeError,
         lambda: xmlp.optim.ExponentialLR(xmlp.optim.SGD(xmlp.MLP(2, 3, 1, rng=0), lr=0.1),
                                          gamma="0.9"),
         None, "schedule-type-argument"),
    Case("A bad schedule argument", ValueError, load_a_cycle_past_its_end,
         "OneCycleLR.load_state_dict: last_epoch must be at most total_steps=4 (the steps of "
         "the cycle), got 5", "schedule-state-past-the-cycle"),
    Case("An `EarlyStopping` that monitors what fit does not record", ValueError,
         lambda: xmlp.fit(xmlp.MLP(1, 2, 1, rng=0), np.ones((4, 1)), np.ones((4, 1)), epochs=1,
                          lr=0.1, early_stopping=xmlp.EarlyStopping(), progress=False),
         "fit: EarlyStopping monitors 'val_loss', which fit records only with validation_data; "
         "pass validation_data=(x_val, y_val), or monitor 'loss'", "early-stopping-monitor"),
    Case("An `EarlyStopping` that monitors what fit does not record", TypeError,
         lambda: xmlp.EarlyStopping(patience=1.5), None, "early-stopping-argument"),
    Case("A `summary` input shape", ValueError,
         lambda: xmlp.MLP(3, 4, 2, rng=0).summary((10, 10**12)),
         "summary: the model refuses an input of shape (10, 1000000000000): Linear(3, 4).predict: "
         "x must have shape (..., 3) (input_dim features), got (1, 1000000000000)",
         "summary-features"),
    Case("A `summary` input shape", ValueError,
         lambda: xmlp.MLP(3, 4, 2, rng=0).summary((None, 10**30)),
         f"summary: input_shape must hold positive ints up to {sys.maxsize} (the first may be "
         f"None for any batch size), got (None, {10**30})", "summary-dimension"),
    Case("A `summary` input shape", TypeError, lambda: xmlp.MLP(3, 4, 2, rng=0).summary("3"),
         None, "summary-type"),
    Case("A `gradcheck` x, y or parameter holding NaN", ValueError,
         lambda: xmlp.gradcheck(xmlp.Tanh(), np.array([1.0, math.nan])),
         "gradcheck: x holds nan at index (1,); finite differences of Tanh need finite values",
         "gradcheck-nan"),
    Case("A `gradcheck` x, y or parameter holding NaN", TypeError,
         lambda: xmlp.gradcheck(ReturnsFloat(), np.ones(3)),
         "gradcheck: ReturnsFloat.forward returned float: 3.0, not an array; a layer's forward "
         "must return an array of x's namespace", "gradcheck-output"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_documented_error(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(case.error) as info:
        case.call()
    assert type(info.value) is case.error
    got = str(info.value)
    if isinstance(case.message, str):
        assert got == case.message
    elif case.message is not None:
        assert case.message.fullmatch(got), got


# -- the page ----------------------------------------------------------------------------------
def cells(line: str) -> list[str]:
    """The cells of a Markdown table row; a | inside `code` does not split."""
    out, cell, code = [], "", False
    for ch in line.strip().strip("|"):
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            out.append(cell.strip())
            cell = ""
        else:
            cell += ch
    return [*out, cell.strip()]


def page_rows() -> list[list[str]]:
    """[bad input, where, error, example message] of each row of the page's table."""
    table = PAGE.read_text(encoding="utf-8").split("## The table", 1)[1].lstrip()
    table = table[table.index("\n|") + 1:]
    lines = []
    for line in table.splitlines():  # the first table after the heading, to its end
        if not line.startswith("|"):
            break
        lines.append(line)
    assert cells(lines[0]) == ["Bad input", "Where", "Error", "Example message"]
    return [cells(line) for line in lines[2:]]


# How the page's Error column names an error that is not an exception class
NAMED = {ExitStatus2: "exit status 2"}
ROWS = list(dict.fromkeys(case.row for case in CASES))


def test_every_row_of_the_page_is_in_the_table():
    page = [row[0] for row in page_rows()]
    matched = [[prefix for prefix in ROWS if cell.startswith(prefix)] for cell in page]
    assert [cell for cell, found in zip(page, matched, strict=True) if len(found) != 1] == []
    assert [m[0] for m in matched] == ROWS  # each row of CASES once, in the page's order


@pytest.mark.parametrize("row", ROWS)
def test_the_page_names_the_error_and_shows_the_message(row):
    [(_, _, error, example)] = [r for r in page_rows() if r[0].startswith(row)]
    cases = [case for case in CASES if case.row == row]
    for case in cases:
        name = case.named or NAMED.get(case.error, f"`{case.error.__name__}`")
        assert name in error, f"{row}: the page's {error!r} does not name {name}"
    first = cases[0].message
    if first is None:
        assert example == "", f"{row}: the page shows {example!r}"
        return
    assert example.startswith("`") and example.endswith("`"), example
    example = example[1:-1]
    if isinstance(first, re.Pattern):  # the page quotes what another library said once
        assert first.fullmatch(example), f"{row}: the page shows {example!r}"
    else:  # "..." on the page: a part of the message left out
        shown = ".*".join(re.escape(part) for part in re.split(r" ?\.\.\. ?", example))
        assert re.fullmatch(shown, first), f"{row}: the page shows {example!r}"
