"""A training step in one call, compiled where the backend has a compiler: :class:`TrainStep`.

The step is the layers' own math (each Module's ``forward`` / ``backward`` without the checks
the base class runs, and the optimizer's update), traced once per input shape and dtype: with
``jax.jit`` on JAX (parameters and optimizer state donated), with ``torch.compile``
(``fullgraph=True``) on PyTorch. What the caller hands in is checked before, outside the traced
function, in O(1). NumPy (with its fast paths), array-api-strict and Dask run the same math
eagerly; CuPy too: a CUDA graph of a step is impossible while CuPy refuses cuBLAS calls during
stream capture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat

from ..nn.losses import MSELoss
from ..nn.module import Module, math_of
from ..optim import SGD, Optimizer
from .checks import check_model, update_rule

__all__ = ["TrainStep"]

_COMPILE = ("auto", True, False)


class TrainStep:
    """``step(x, y)``: forward, loss, backward and the update of ``model`` in one call; returns
    the loss (a 0-d array of the model's namespace: no host sync).

    Args:
        model: an :class:`xmlp.Module` (MLP, Sequential, your own layers of array math).
        loss: the loss, default :class:`xmlp.MSELoss`.
        optimizer: an :mod:`xmlp.optim` optimizer built on ``model``; or
        lr: the learning rate of plain SGD (``model.update_params(lr)``); give one of the two.
        compile: "auto" (``jax.jit`` on JAX when the model and the loss are xmlp's own layers;
            eager with a layer of your own, and on PyTorch, NumPy, array-api-strict, Dask and
            CuPy), True (the backend's compiler: ``jax.jit`` or ``torch.compile``, for your own
            layers too where they are pure array math; a ValueError where there is none) or
            False (always eager).

    After every call the parameters (and the optimizer's state and step count) are real arrays
    of the model's namespace and device, exactly as an eager step leaves them; a compiled step
    clears the stored activations (``x``, ``output``, gradients) instead of keeping tracers.
    ``step.compiled`` says whether a compiler is in use.

    Example:
        >>> import xmlp
        >>> from xmlp.data import generate_data
        >>> x, y = generate_data()
        >>> model = xmlp.MLP(1, 10, 1, rng=0)
        >>> step = xmlp.TrainStep(model, lr=0.1)
        >>> for epoch in range(150):
        ...     loss = step(x, y)
        >>> step.compiled, float(loss) < 0.15
        (False, True)
    """

    def __init__(self, model: Module, loss: Any = None, *, optimizer: Optimizer | None = None,
                 lr: float | None = None, compile: Any = "auto") -> None:
        check_model(model)
        loss = MSELoss() if loss is None else loss
        if not isinstance(loss, Module):
            raise TypeError(f"TrainStep: loss must be an xmlp loss (MSELoss, CrossEntropyLoss "
                            f"or a Module of your own), got {type(loss).__name__}")
        update_rule(model, lr, optimizer)  # the same rules as fit: lr or optimizer
        if not any(compile is c for c in _COMPILE):  # True and 1 are not the same request
            raise ValueError(f"TrainStep: compile must be 'auto', True or False, got "
                             f"{compile!r}")
        self.model: Module = model
        self.loss: Any = loss
        self.optimizer = SGD(model, lr) if optimizer is None else optimizer  # type: ignore[arg-type]
        xp = model.spec.xp
        self.backend = ("jax" if array_api_compat.is_jax_namespace(xp) else "torch"
                        if array_api_compat.is_torch_namespace(xp) else "other")
        if compile is True and self.backend == "other":
            raise ValueError(
                f"TrainStep: compile=True, but {model.spec.name} has no compiler xmlp can use "
                "(jax.jit and torch.compile are JAX's and PyTorch's); use compile='auto' or "
                "False, which run the step eagerly")
        # "auto" vouches for xmlp's own layers and losses only: their math is pure array math;
        # a layer of the user's may keep Python state (a counter...) that a trace runs once
        own = all(type(m).__module__.startswith("xmlp.") for m in [*model.modules(), loss])
        self.compiled = compile is True or (compile == "auto" and self.backend == "jax" and own)
        self._placeholders: dict[tuple[Any, ...], Any] = {}
        self._traced: dict[tuple[Any, ...], Callable[..., Any]] = {}

    def __repr__(self) -> str:
        how = f"compiled ({self.backend})" if self.compiled else "eager"
        return f"TrainStep({self.model!r}, {type(self.loss).__name__}, {how})"

    def __call__(self, x: Any, y: Any) -> Any:
        return self.run(x, y)[0]

    def run(self, x: Any, y: Any) -> tuple[Any, Any]:
        """(the loss, the model's output for x): the step, checked at the boundary."""
        self._check(x, y)
        if not self.compiled:  # the public passes: a layer of the user's may refuse
            output = self.model.forward(x)
            loss = self.loss.forward(output, y)
            self.model.backward(self.loss.backward())
            self.optimizer.step()
            return loss, output
        return self._compiled_step(x, y)

    # -- the boundary ------------------------------------------------------------------------
    def _check(self, x: Any, y: Any) -> None:
        """x against the model (its first layer's checks), y against what the model makes of
        x (the loss's checks on a placeholder of the output's shape and dtype, made once per
        input signature); O(1), changing nothing."""
        self.model.check("forward", x)
        key = (type(x), x.dtype, tuple(x.shape), str(array_api_compat.device(x)))
        placeholder = self._placeholders.get(key)
        if placeholder is None:
            one = self.model.predict(x[:1, ...] if x.ndim > 1 else x)
            xp = array_api_compat.array_namespace(one)
            shape = (*x.shape[:-1], one.shape[-1])
            placeholder = xp.zeros(shape, dtype=one.dtype, device=array_api_compat.device(one))
            self._placeholders[key] = placeholder
        self.loss.check("forward", placeholder, y)

    # -- the compiled step -------------------------------------------------------------------
    def _compiled_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        opt, model = self.optimizer, self.model
        if opt._state is None:  # as the first eager step makes it
            opt._state, opt._specs = opt._new_state()
            opt._packed = False
        else:
            opt._check_state_place(f"{type(opt).__name__}.step")
        if not opt._packed:
            opt._pack()
        step_count = opt.step_count + 1
        constants = opt._step_constants(step_count)
        scalars = [self._scalar(v) for v in (opt.lr, *(constants or ()))]
        fn = self._function()
        params = [getattr(m, leaf) for m, leaf in opt._slots]
        loss, output, new_params, new_state = fn(params, opt._state, scalars, x, y)
        for (module, leaf), value in zip(opt._slots, new_params, strict=True):
            setattr(module, leaf, value)
        opt._state = [list(s) for s in new_state]
        opt.step_count = step_count
        model.clear_state()
        self.loss.clear_state()
        return loss, output

    def _scalar(self, value: float) -> Any:
        """A learning rate or bias correction as an input of the trace, so that a new value
        costs no new trace: a host NumPy scalar for jax.jit, a tensor for torch.compile."""
        spec = self.model.spec
        if self.backend == "jax":
            import numpy as np

            return np.asarray(value, dtype=str(spec.dtype))
        return spec.xp.asarray(value, dtype=spec.dtype, device=spec.device)

    def _function(self) -> Callable[..., Any]:
        """The traced step for the optimizer's hyperparameters now (their values are constants
        of the trace, but the learning rate and the step's bias corrections are inputs)."""
        opt = self.optimizer
        key = tuple(sorted((k, repr(v)) for k, v in opt._hyperparameters().items() if k != "lr"))
        fn = self._traced.get(key)
        if fn is None:
            if self.backend == "jax":
                import jax

                fn = jax.jit(self._pure, donate_argnums=(0, 1))
            else:
                import torch

                fn = torch.compile(self._pure, fullgraph=True, dynamic=False)
            self._traced[key] = fn
        return fn

    def _pure(self, params: list[Any], state: list[list[Any]], scalars: list[Any], x: Any,
              y: Any) -> tuple[Any, Any, list[Any], list[list[Any]]]:
        """(loss, output, new parameters, new optimizer state) from the current ones: the
        layers' math, the loss's and the optimizer's update, on the arrays handed in."""
        opt, model, loss_fn = self.optimizer, self.model, self.loss
        saved = opt._lr, opt._state
        try:
            for (module, leaf), value in zip(opt._slots, params, strict=True):
                setattr(module, leaf, value)
            opt._state = [list(s) for s in state]
            opt._lr = scalars[0]
            output = math_of(model, "forward")(model, x)
            loss = math_of(loss_fn, "forward")(loss_fn, output, y)
            math_of(model, "backward")(model, math_of(loss_fn, "backward")(loss_fn))
            opt._update(tuple(scalars[1:]) or None)
            new_params = [getattr(module, leaf) for module, leaf in opt._slots]
            return loss, output, new_params, opt._state
        finally:
            opt._lr, opt._state = saved
