"""A training step in one call, compiled where the backend has a compiler: :class:`TrainStep`.

The step is the layers' own math (each Module's ``forward`` / ``backward`` without the checks
the base class runs, and the optimizer's update), traced once per input shape and dtype: with
``jax.jit`` on JAX (parameters and optimizer state donated), on PyTorch by ``make_fx`` and
compiled by TorchInductor (:mod:`xmlp.training.torch_program`: a whole graph or an error, no
graph breaks). What the caller hands in is checked before, outside the traced function, in
O(1). NumPy (with its fast paths), array-api-strict and Dask run the same math
eagerly; CuPy too: a CUDA graph of a step is impossible while CuPy refuses cuBLAS calls during
stream capture.

What a layer keeps from step to step flows through the traced function as its inputs and
outputs, as the parameters do: the buffers (BatchNorm1d's running statistics). Random draws are
made on the host before each step, as the eager step makes them (each Dropout's mask, from its
generator, in the layers' order), and handed in: a compiled step draws fresh masks each step,
the same ones an eager step would.
"""

from __future__ import annotations

import numbers
import operator
import time
import types
from collections.abc import Callable
from typing import Any

import array_api_compat

from ..backend import reads_are_free
from ..nn.dropout import Dropout
from ..nn.losses import MSELoss
from ..nn.module import Module, math_of
from ..nn.target_checks import is_class_indices
from ..optim import SGD, Adam, Optimizer
from .checks import check_model, update_rule
from .clip import check_clip_args, clip_grad_norm, clip_grads
from .torch_program import TorchProgram

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
        compile: "auto" (when the model and the loss are xmlp's own layers: ``jax.jit`` on
            JAX; on PyTorch eager steps until they have taken :attr:`compile_after` seconds,
            then TorchInductor; eager with a layer of your own, and on NumPy,
            array-api-strict, Dask and CuPy), True (the backend's compiler: ``jax.jit``, or
            on PyTorch the step traced by ``make_fx`` and compiled by TorchInductor, the
            compiler of ``torch.compile``; for your own layers too where they are pure array
            math; a ValueError where there is none) or False (always eager).
        clip_grad_norm: None, or the largest total norm of the gradients: each step clips
            them (:func:`xmlp.clip_grad_norm`) between backward and the update, inside the
            compiled step too.

    The learning rate, and the momentum a schedule may cycle (SGD's ``momentum``, Adam's
    ``betas[0]``), are inputs of a compiled step: a new value costs no new trace. Other
    hyperparameters are constants of the trace (a new value: a new trace).

    After every call the parameters and buffers (and the optimizer's state and step count) are
    real arrays of the model's namespace and device, exactly as an eager step leaves them; a
    compiled step clears the stored activations (``x``, ``output``, gradients, Dropout's mask)
    instead of keeping tracers. ``step.compiled`` says whether a compiler is in use. Running
    statistics (buffers) are inputs and outputs of the compiled step; Dropout's masks are drawn
    on the host before each step, from each layer's generator as the eager step draws them, and
    handed in, so compiled and eager steps train alike.

    A compiled step checks x and y (and the model and optimizer) the first time it meets
    arrays of a new type, dtype, shape or device; after that, while the parameters, the
    layers, the optimizer's state and its hyperparameters are those the last step left
    (identity tests, O(1)), it runs without checking again, so that a small model's step
    costs what the compiled function costs. Anything changed by hand in between is checked.

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

    #: seconds of eager steps after which ``compile="auto"`` compiles a PyTorch model's step:
    #: about what a first compile takes (TorchInductor: 4.4 s on a 2-core CPU, then 0.4-0.6 s
    #: per new input shape, with its on-disk cache warm)
    compile_after: float = 5.0

    def __init__(self, model: Module, loss: Any = None, *, optimizer: Optimizer | None = None,
                 lr: float | None = None, compile: Any = "auto",
                 clip_grad_norm: float | None = None) -> None:
        check_model(model)
        loss = MSELoss() if loss is None else loss
        if not isinstance(loss, Module):
            raise TypeError(f"TrainStep: loss must be an xmlp loss (MSELoss, CrossEntropyLoss "
                            f"or a Module of your own), got {type(loss).__name__}")
        update_rule(model, lr, optimizer)  # the same rules as fit: lr or optimizer
        if not any(compile is c for c in _COMPILE):  # True and 1 are not the same request
            raise ValueError(f"TrainStep: compile must be 'auto', True or False, got "
                             f"{compile!r}")
        self.clip = None if clip_grad_norm is None else check_clip_args(
            clip_grad_norm, 2.0, "TrainStep", "clip_grad_norm")[0]
        self.model: Module = model
        self.loss: Any = loss
        self.optimizer = SGD(model, lr) if optimizer is None else optimizer  # type: ignore[arg-type]
        xp = model.spec.xp
        self.backend = ("jax" if array_api_compat.is_jax_namespace(xp) else "torch"
                        if array_api_compat.is_torch_namespace(xp) else "other")
        if compile is True and self.backend == "other":
            raise ValueError(
                f"TrainStep: compile=True, but {model.spec.name} has no compiler xmlp can use "
                "(jax.jit on JAX, TorchInductor on PyTorch); use compile='auto' or "
                "False, which run the step eagerly")
        # "auto" vouches for xmlp's own layers and losses only: their math is pure array math;
        # a layer of the user's may keep Python state (a counter...) that a trace runs once
        own = all(type(m).__module__.startswith("xmlp.")
                  for m in [*model.modules(), *loss.modules()])
        self.compiled = compile is True or (compile == "auto" and self.backend == "jax" and own)
        # "auto" on PyTorch: eager until the eager steps have taken what a compile takes, then
        # compiled; a short run never pays a compile, a long one runs compiled (ski rental)
        self._deferred = compile == "auto" and self.backend == "torch" and own
        self._eager_seconds = 0.0
        self._placeholders: dict[tuple[Any, ...], Any] = {}
        self._traced: dict[tuple[Any, ...], Callable[..., Any]] = {}
        self._ready: _Ready | None = None
        self._given: list[Dropout] = []  # the Dropouts whose masks the next step hands in

    def __repr__(self) -> str:
        how = f"compiled ({self.backend})" if self.compiled else "eager"
        return f"TrainStep({self.model!r}, {type(self.loss).__name__}, {how})"

    def __call__(self, x: Any, y: Any) -> Any:
        ready = self._ready
        if ready is not None and ready.unchanged(self, x, y):
            return self._compiled_step(x, y, ready, False, True)[0]
        return self.run(x, y, output=False)[0]

    def run(self, x: Any, y: Any, *, output: bool = True) -> tuple[Any, Any]:
        """(the loss, the model's output for x): the step, checked at the boundary. A compiled
        step with ``output=False`` returns None for the output (one array less to hand back,
        which shows in a small model's step)."""
        ready = self._ready
        if ready is not None:
            if ready.unchanged(self, x, y):
                return self._compiled_step(x, y, ready, output, True)
            if ready.holds(self, x, y):
                return self._compiled_step(x, y, ready, output, False)
        self._check(x, y)
        if not self.compiled:  # the public passes: a layer of the user's may refuse
            start = time.perf_counter()
            output = self.model.forward(x)
            loss = self.loss.forward(output, y)
            self.model.backward(self.loss.backward())
            if self.clip is not None:
                clip_grad_norm(self.model, self.clip)
            self.optimizer.step()
            if self._deferred:
                self._eager_seconds += time.perf_counter() - start
                self.compiled = self._eager_seconds >= self.compile_after
            return loss, output
        before = dict(vars(self.optimizer))  # a first step makes its state: undone on failure
        try:
            return self._compiled_step(x, y, self._prepare(x, y), output, False)
        except BaseException:
            vars(self.optimizer).clear()
            vars(self.optimizer).update(before)
            raise

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

    def _prepare(self, x: Any, y: Any) -> _Ready:
        """What a compiled step needs, checked (x and y were, by :meth:`_check`): the
        optimizer's state where the parameters are, the traced function for its
        hyperparameters; kept as :class:`_Ready` so that the next call with arrays like these
        and a model as this one leaves makes no check again."""
        opt, model = self.optimizer, self.model
        owner = f"{type(opt).__name__}.step"
        opt._check_layers([m for m in model.modules() if m.param_names], owner)
        opt._prepare_state(owner)
        ready = _Ready(self, self._function(True), self._function(False))
        previous = self._ready
        if previous is not None and previous.same_model(ready):
            ready.signatures.update(previous.signatures)  # checked against this same model
            ready.draws.update(previous.draws)
        signature = ready.signature(x, y)
        if ready.has_state and signature not in ready.draws:
            ready.draws[signature] = self._mask_shapes(x)
        ready.signatures[signature] = is_class_indices(y) and reads_are_free(y)
        return ready

    def _mask_shapes(self, x: Any) -> list[tuple[Dropout, tuple[int, ...]]]:
        """Each Dropout of the model with the shape of its mask in a step on ``x``: from one
        checked forward of ``x`` (every layer's checks, BatchNorm1d's batch of at least 2
        included), run on the model as it is and undone (the generators' states too: no draw
        counts). Once per new signature of x and y."""
        model = self.model
        saved = model._snapshot()
        try:
            model.forward(x)
            return [(module, tuple(module.mask.shape)) for module in model.modules()
                    if isinstance(module, Dropout)]
        finally:
            Module._restore(saved)

    # -- the compiled step -------------------------------------------------------------------
    def _compiled_step(self, x: Any, y: Any, ready: _Ready, output: bool, unchanged: bool
                       ) -> tuple[Any, Any]:
        """The traced function on the record's arrays; ``unchanged``: nothing but this step
        object touched the model since the last step (:meth:`_Ready.unchanged`)."""
        opt = self.optimizer
        step_count = opt.step_count + 1
        extra = None  # Adam's bias corrections: inputs of the step (may fail: nothing changed)
        if ready.constants:
            extra = self._scalar(opt._step_constants(step_count))
        shapes = ready.draws[ready.signature(x, y)] if ready.has_state else []
        drawn = [(module, module.rng_state) for module, _ in shapes]
        masks = self._masks(shapes)
        self._ready = None  # until the step is done: an exception leaves no stale record
        state = opt._state
        try:
            loss, out, params, new_state, buffers = (ready.fn if output else ready.lean)(
                ready.params, state, ready.buffers, ready.inputs_array, extra, masks, x, y)
        except BaseException:
            for module, generator in drawn:  # the masks of a step that did not happen
                module.rng_state = generator
            ready.put_back()  # not the trace's arrays
            if opt._state is not state:  # a trace failed: its arrays are where activations go
                for module, name in ready.stored:
                    setattr(module, name, None)
            raise
        finally:
            traced = opt._state is not state
            if traced:
                # a trace ran: put back here, not in the traced function, the floats it
                # replaced by the trace's arrays
                opt._state = state
                _set_inputs(opt, ready.inputs)
            for module in self._given:
                module.given_mask = None
        any(map(setattr, ready.mods, ready.leaves, params))
        if ready.buffer_mods:
            any(map(setattr, ready.buffer_mods, ready.buffer_leaves, buffers))
            ready.buffers = buffers
        opt._state = new_state
        opt.step_count = step_count
        ready.params, ready.state, ready.count = params, new_state, step_count
        ready.last_x, ready.last_y = x, y
        if traced or not unchanged:
            # a trace (its forward) left tracers, an eager pass in between its arrays: cleared
            if any(map(operator.is_not, map(getattr, ready.first_mods, ready.first_names),
                       ready.nones)):
                for module, name in ready.stored:
                    setattr(module, name, None)
            ready.look()
        else:  # only these changed (the stored activations were None and stay None)
            seen, (at_state, at_count, at_params, at_buffers) = ready.seen, ready.at
            seen[at_state], seen[at_count] = new_state, step_count
            any(map(seen.__setitem__, at_params, params))
            if at_buffers:
                any(map(seen.__setitem__, at_buffers, buffers))
        self._ready = ready
        return loss, out

    def _masks(self, shapes: list[tuple[Dropout, tuple[int, ...]]]) -> list[Any]:
        """This step's Dropout masks (each Dropout with its mask's shape, in the order of the
        model's layers), drawn on the host from each layer's generator as the eager step's
        forward draws them."""
        spec = self.model.spec
        self._given = [module for module, _ in shapes]  # read by the trace of this signature
        return [module.make_mask(shape, spec.xp, spec.dtype, spec.device)
                for module, shape in shapes]

    def _scalar(self, value: Any) -> Any:
        """A learning rate and momentum (or a step's bias corrections) as an input of the
        trace, so that a new value costs no new trace: an array of the model's dtype on its
        device."""
        spec = self.model.spec
        return spec.xp.asarray(value, dtype=spec.dtype, device=spec.device)

    def _function(self, output: bool) -> Callable[..., Any]:
        """The traced step for the optimizer's hyperparameters now (their values are constants
        of the trace, but the learning rate, a cycled momentum and the step's bias corrections
        are inputs), handing back the model's output or not."""
        key = (tuple(sorted((k, repr(v)) for k, v in _static(self.optimizer).items())), output,
               layer_constants(self.model, self.loss))
        fn = self._traced.get(key)
        if fn is None:
            # a function of its own per key and per step: jax.jit caches traces by the
            # function
            pure = types.MethodType(_own_copy(TrainStep._pure, output), self)
            if self.backend == "jax":
                import jax

                fn = jax.jit(pure, donate_argnums=(0, 1, 2))
            else:
                fn = TorchProgram(pure)
            self._traced[key] = fn
        return fn

    def _pure(self, params: list[Any], state: list[list[Any]], buffers: list[Any], inputs: Any,
              constants: Any, masks: list[Any], x: Any, y: Any, output: bool = True
              ) -> tuple[Any, Any, list[Any], list[list[Any]], list[Any]]:
        """(loss, output, new parameters, new optimizer state, new buffers) from the current
        ones and this step's Dropout masks: the layers' math, the loss's, the clipping of the
        gradients and the optimizer's update, on the arrays handed in (``inputs``: the learning
        rate and a cycled momentum)."""
        opt, model, loss_fn = self.optimizer, self.model, self.loss
        buffer_slots = _buffer_slots(model)
        # the caller (_compiled_step) puts the optimizer's state and inputs back afterwards,
        # and takes the masks back from the Dropouts
        for (module, leaf), value in zip(opt._slots + buffer_slots, params + buffers,
                                         strict=True):
            setattr(module, leaf, value)
        for module, mask in zip(self._given if masks else [], masks, strict=True):
            module.given_mask = mask
        opt._state = [list(s) for s in state]
        _set_inputs(opt, [inputs[i] for i in range(inputs.shape[0])])
        out = math_of(model, "forward")(model, x)
        loss = math_of(loss_fn, "forward")(loss_fn, out, y)
        math_of(model, "backward")(model, math_of(loss_fn, "backward")(loss_fn))
        if self.clip is not None:
            clip_grads(opt._holders, self.clip, 2.0)
        opt._update(None if constants is None else tuple(constants[i] for i in
                                                         range(constants.shape[0])))
        new_params = [getattr(module, leaf) for module, leaf in opt._slots]
        new_buffers = [getattr(module, leaf) for module, leaf in buffer_slots]
        return loss, out if output else None, new_params, opt._state, new_buffers


def _inputs(opt: Optimizer) -> tuple[Any, ...]:
    """The hyperparameters a compiled step takes as inputs, not as constants of its trace, so
    that a schedule changing them costs no new trace: the learning rate, and the momentum
    OneCycleLR cycles (Adam's and AdamW's ``betas[0]``, the ``momentum`` of an SGD that keeps
    a momentum buffer)."""
    if isinstance(opt, Adam):
        return (opt._lr, opt.betas[0])
    if isinstance(opt, SGD) and opt._state_keys:
        return (opt._lr, opt.momentum)
    return (opt._lr,)


def _set_inputs(opt: Optimizer, values: Any) -> None:
    """Set what :func:`_inputs` lists (traced arrays inside the trace, floats after it)."""
    opt._lr = values[0]
    if isinstance(opt, Adam):
        opt.betas = (values[1], opt.betas[1])
    elif len(values) > 1:
        opt.momentum = values[1]  # type: ignore[attr-defined]


def _static(opt: Optimizer) -> dict[str, Any]:
    """The hyperparameters that are constants of a trace: all but :func:`_inputs`' values
    (an SGD's momentum counts by whether it keeps a momentum buffer)."""
    hyper = opt._hyperparameters()
    del hyper["lr"]
    if isinstance(opt, Adam):
        hyper["betas"] = hyper["betas"][1]
    elif isinstance(opt, SGD):
        hyper["momentum"] = bool(opt._state_keys)
    return hyper


class _Ready:
    """A compiled step's record of what was checked, kept between calls: the next call runs
    without checks when its x and y are like ones already checked (type, dtype, shape,
    device) and the model, the optimizer and its hyperparameters are as the last step left
    them (the same array objects, the same layers), which O(1) identity tests tell. Anything
    else (a parameter replaced by hand, ``.to()``, ``load``, an eager step between, a new
    hyperparameter) takes the checked path, which makes a new record."""

    __slots__ = ("at", "buffer_leaves", "buffer_mods", "buffer_slots", "buffers", "constants",
                 "count", "draws", "first_mods", "first_names", "fn", "has_state", "hyper",
                 "immutable", "inputs", "inputs_array", "knob_values", "knobs", "last_x",
                 "last_y", "layers", "lean", "leaves", "mods", "nones", "params", "reader",
                 "reads", "seen", "signatures", "slots", "state", "step", "stored")

    def __init__(self, step: TrainStep, fn: Callable[..., Any], lean: Callable[..., Any]
                 ) -> None:
        opt, model = step.optimizer, step.model
        self.fn, self.lean = fn, lean  # handing back the model's output, and not
        self.slots = list(opt._slots)
        self.mods, self.leaves = _columns(self.slots)
        self.params = [getattr(module, leaf) for module, leaf in self.slots]
        self.buffer_slots = _buffer_slots(model)
        self.buffer_mods, self.buffer_leaves = _columns(self.buffer_slots)
        self.buffers = [getattr(module, leaf) for module, leaf in self.buffer_slots]
        # a model with buffers or Dropouts: each new signature runs one checked forward first
        # (BatchNorm1d's batch of 2), and each step draws its masks
        self.has_state = bool(self.buffer_slots) or any(
            isinstance(m, Dropout) for m in model.modules())
        self.draws: dict[tuple[Any, ...], list[tuple[Dropout, tuple[int, ...]]]] = {}
        self.state, self.count = opt._state, opt.step_count
        self.hyper = _static(opt)
        self.inputs = _inputs(opt)
        self.inputs_array = step._scalar(self.inputs)
        # every hyperparameter's value in one read: while they are as they were, neither the
        # trace's constants nor its inputs changed
        names = ["_lr" if name == "lr" else name for name in opt._hyperparameters()]
        self.knobs: Callable[[Optimizer], Any] = (
            operator.attrgetter(*names) if all(hasattr(opt, n) for n in names)
            else type(opt)._hyperparameters)
        self.knob_values = self.knobs(opt)
        self.layers = layer_constants(model, step.loss)
        self.stored = [(module, name) for module in [*model.modules(), *step.loss.modules()]
                       for name in (*module.state_names, *module.grad_names)]
        # what every forward stores first (a layer's x, a loss's prediction): not None after
        # a trace or an eager pass
        self.first_mods, self.first_names = _columns(
            [(module, module.state_names[0])
             for module in [*model.modules(), *step.loss.modules()]
             if module.state_names])
        self.nones = [None] * len(self.first_mods)
        # the arrays' place in a signature: a jax Array's sharding (its device), a tensor's
        # device and autograd flag
        self.reads = operator.attrgetter("dtype", "shape", *(
            ("device", "requires_grad") if step.backend == "torch" else ("sharding",)))
        self.signatures: dict[tuple[Any, ...], bool] = {}
        # a JAX array's type, dtype, shape and device never change: the last step's x and y
        # need no new signature (a tensor can be resized in place)
        self.immutable = step.backend == "jax"
        self.last_x: Any = None
        self.last_y: Any = None
        # an optimizer whose update needs per-step constants (Adam's bias corrections)
        self.constants = type(opt)._step_constants is not Optimizer._step_constants
        # where every layer, parameter, buffer and first stored activation is reachable by
        # attribute names from the step (an MLP, a model of your own), one C call reads them
        # all, for identity tests with what the last step left
        self.step = step
        self.reader: Callable[[TrainStep], tuple[Any, ...]] | None = None
        self.seen: list[Any] = []
        found = _paths(step, self.slots, self.buffer_slots)
        if found is not None:
            paths, self.at = found
            self.reader = operator.attrgetter(*paths)

    def signature(self, x: Any, y: Any) -> tuple[Any, ...]:
        """(type, dtype, shape and place of x, the same of y); () for what is not an array of
        the backend, never a checked signature (the checked path then names it)."""
        try:
            return (type(x), self.reads(x), type(y), self.reads(y))
        except AttributeError:
            return ()

    def same_model(self, other: _Ready) -> bool:
        """Whether ``other`` was made for the same layers, parameters' places and dtypes."""
        mine, theirs = self.params + self.buffers, other.params + other.buffers
        return (self.layers == other.layers
                and len(self.params) == len(other.params) and len(mine) == len(theirs)
                and all(type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
                        for a, b in zip(mine, theirs, strict=True)))

    def unchanged(self, step: TrainStep, x: Any, y: Any) -> bool:
        """Whether x and y are the last step's (JAX arrays: immutable) or like arrays checked
        before whose values need no look, and every object the step reads (optimizer state,
        step count and hyperparameters; layers, parameters, buffers; stored activations,
        None) is the one the last step left: one attrgetter call and a C loop of identity
        tests."""
        return (self.reader is not None and self.known(x, y)
                and all(map(operator.is_, self.reader(step), self.seen)))

    def known(self, x: Any, y: Any) -> bool:
        """Whether x and y need no check: the last step's (JAX arrays: immutable), or like
        arrays checked before whose values need no look (labels read for the range check,
        torch's on the CPU, are checked again)."""
        return ((x is self.last_x and y is self.last_y and self.immutable)
                or self.signatures.get(self.signature(x, y)) is False)

    def look(self) -> None:
        """Remember what :meth:`unchanged` compares with, as it is now."""
        if self.reader is not None:
            self.seen = list(self.reader(self.step))

    def put_back(self) -> None:
        """The parameters and buffers this record holds, back on their layers."""
        any(map(setattr, self.mods + self.buffer_mods, self.leaves + self.buffer_leaves,
                self.params + self.buffers))

    def holds(self, step: TrainStep, x: Any, y: Any) -> bool:
        """Whether a step on x and y needs no check (see the class). Identity tests read
        through ``map`` (C loops): a small model's step is a few microseconds of Python."""
        opt = step.optimizer
        if (opt._state is not self.state or opt.step_count != self.count
                or not all(map(operator.is_, map(getattr, self.mods, self.leaves), self.params))
                or not all(map(operator.is_, map(getattr, self.buffer_mods, self.buffer_leaves),
                               self.buffers))
                or layer_constants(step.model, step.loss) != self.layers):
            return False
        if not self.known(x, y):
            return False
        knobs = self.knobs(opt)
        if knobs != self.knob_values:  # a schedule's new rate, or a new hyperparameter
            if _static(opt) != self.hyper:
                return False  # a constant of the trace: a new trace, made by the checked path
            inputs = _inputs(opt)
            if inputs != self.inputs:  # the rate (or a cycled momentum): a new array only
                self.inputs, self.inputs_array = inputs, step._scalar(inputs)
            self.knob_values = knobs
        return True


def _paths(step: TrainStep, slots: list[tuple[Module, str]],
           buffer_slots: list[tuple[Module, str]]
           ) -> tuple[tuple[str, ...], tuple[int, int, list[int], list[int]]] | None:
    """The dotted names, from ``step``, of what a step reads: the optimizer's state, step
    count and hyperparameters, every layer of the model, every parameter and buffer, each
    layer's (and the loss's) first stored activation; with where the state, the count, the
    parameters (in ``slots`` order) and the buffers stand among them. None where a layer is
    not an attribute of its parent under its name (a Sequential's) or a hyperparameter is not
    an attribute of the optimizer."""
    opt = step.optimizer
    knobs = ["_lr" if name == "lr" else name for name in opt._hyperparameters()]
    if not all(hasattr(opt, name) for name in knobs):
        return None
    paths = ["optimizer._state", "optimizer.step_count", *(f"optimizer.{n}" for n in knobs)]
    where: dict[int, str] = {}

    def walk(module: Module, path: str) -> bool:
        where[id(module)] = path
        constants = [name for name, value in _attributes(module)
                     if isinstance(value, _CONSTANT_TYPES)]
        paths.extend(f"{path}.{name}" for name in (*module.param_names, *module.buffer_names,
                                                   *module.state_names[:1], *constants))
        for name, child in module.named_children():
            if getattr(module, name, None) is not child:
                return False
            paths.append(f"{path}.{name}")
            if not walk(child, f"{path}.{name}"):
                return False
        return True

    if not walk(step.model, "model") or not walk(step.loss, "loss"):
        return None
    index = {path: i for i, path in enumerate(paths)}
    return tuple(paths), (0, 1, [index[f"{where[id(m)]}.{leaf}"] for m, leaf in slots],
                          [index[f"{where[id(m)]}.{leaf}"] for m, leaf in buffer_slots])


def _columns(pairs: list[tuple[Module, str]]) -> tuple[tuple[Module, ...], tuple[str, ...]]:
    """The modules and the names of (module, name) pairs, as two tuples."""
    return tuple(m for m, _ in pairs), tuple(n for _, n in pairs)


def _buffer_slots(model: Module) -> list[tuple[Module, str]]:
    """(module, buffer name) for every buffer of ``model``, in named_buffers() order."""
    return [(module, leaf) for module in model.modules() for leaf in module.buffer_names]


def layer_constants(model: Module, loss: Module) -> tuple[Any, ...]:
    """Every layer of ``model`` (and the loss), in order, with the numbers and strings it
    keeps (a LeakyReLU's slope, a Dropout's rate, a Linear's sizes): constants of a trace,
    so that a layer replaced or changed by hand makes a new one. Layers compare by identity."""
    return tuple((module, tuple((name, value) for name, value in _attributes(module)
                                if isinstance(value, _CONSTANT_TYPES)))
                 for module in [*model.modules(), *loss.modules()])


def _attributes(module: Module) -> Any:
    return getattr(module, "__dict__", {}).items()  # none, for a class with __slots__


# what a trace bakes in, compared by value: Python's numbers and strings, and NumPy's scalars
# (a slope taken from np.linspace)
_CONSTANT_TYPES = (numbers.Number, str)


def _own_copy(function: Callable[..., Any], *defaults: Any) -> Callable[..., Any]:
    """``function`` with a code object of its own (the same code) and these ``defaults`` for
    its last parameters."""
    return types.FunctionType(function.__code__.replace(), function.__globals__,
                              function.__name__, defaults or function.__defaults__,
                              function.__closure__)
