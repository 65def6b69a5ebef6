"""The compiled step on PyTorch: the step's Python run once per layout of its tensors by
PyTorch's tracer (``make_fx`` on fake tensors: nothing computed, no data read, as ``jax.jit``
traces), and the graph it records compiled by TorchInductor, the compiler behind
``torch.compile``.

Why not ``torch.compile`` of the step function: TorchDynamo guards every Python object the
step reads (each layer and its attributes, the optimizer) and replays every attribute the step
sets, on every call. For a small model that bookkeeping costs more than the arithmetic: the
seed's MLP step took 2.3x PyTorch's eager step under ``torch.compile``, and 0.8x as the program
here. :class:`xmlp.TrainStep` checks at its boundary what those guards would (the model's
layers, parameters and hyperparameters, the inputs' type, dtype, shape and device); the
program is called with tensors only, one compiled program per layout (shape, strides, dtype,
device) of the tensors handed in. The graph holds no Python branch: one that reads an array's
value fails the trace (fake tensors have none), as it fails ``jax.jit``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any

__all__ = ["TorchProgram"]


class TorchProgram:
    """``program(params, state, buffers, inputs, constants, masks, x, y)``: ``pure`` (the
    step's function of those arguments, returning (loss, output or None, new params, new
    state, new buffers)) compiled by TorchInductor, once per layout of the tensors handed in.

    ``params``, ``buffers`` and ``masks`` are lists of tensors, ``state`` a list of lists of
    tensors, ``inputs`` a 1-d tensor, ``constants`` None or a 1-d tensor, x and y tensors.
    """

    def __init__(self, pure: Callable[..., Any]) -> None:
        self.pure = pure
        self.programs: dict[tuple[Any, ...], _Program] = {}

    def __call__(self, params: list[Any], state: list[list[Any]], buffers: list[Any],
                 inputs: Any, constants: Any, masks: list[Any], x: Any, y: Any
                 ) -> tuple[Any, Any, list[Any], list[list[Any]], list[Any]]:
        lengths = tuple(map(len, state))
        flat = [*params, *chain.from_iterable(state), *buffers, inputs,
                *(() if constants is None else (constants,)), *masks, x, y]
        # what the compiled program was specialized on: the arguments' structure, every
        # tensor's layout (the program asserts sizes and strides, and runs on one device) and
        # which arguments are the same tensor (a trace reads one placeholder for both: x is y
        # in an autoencoder's step, a weight tied to another)
        ids = list(map(id, flat))
        same = None if len(set(ids)) == len(ids) else tuple(map(ids.index, ids))
        key = (len(params), lengths, len(buffers), constants is None, len(masks), same,
               *map(_layout, flat))
        program = self.programs.get(key)
        if program is None:
            if any(t.requires_grad for t in flat):  # assigned since the boundary looked
                raise TypeError(
                    "TrainStep: a tensor the step reads requires grad (it would record an "
                    "autograd graph every step); call requires_grad_(False) on it")
            program = self.programs[key] = _Program(self.pure, flat, key[:5])
        results = program(flat)
        at = 2
        new_params = results[at:at + len(params)]
        at += len(params)
        new_state = []
        for n in lengths:
            new_state.append(results[at:at + n])
            at += n
        return results[0], results[1], new_params, new_state, results[at:]


class _Program:
    """One compiled program: ``pure`` traced on fake tensors of ``flat``'s layout and compiled
    by TorchInductor. An output that is one of the inputs, updated in place (a parameter under
    SGD, Adam's moments), is handed back as that input, not as an output of the program: the
    parameters stay the same tensor objects, as after an eager step, and the program has no
    aliases to rebuild."""

    __slots__ = ("compiled", "sources")

    def __init__(self, pure: Callable[..., Any], flat: list[Any], structure: tuple[Any, ...]
                 ) -> None:
        import torch._inductor
        from torch.fx.experimental.proxy_tensor import make_fx

        n_params, lengths, n_buffers, no_constants, n_masks = structure
        # per output: the input it is (its index in flat), None for a new tensor, -1 for None
        self.sources: list[int | None] = []

        def flat_pure(*tensors: Any) -> list[Any]:
            it = iter(tensors)
            params = [next(it) for _ in range(n_params)]
            state = [[next(it) for _ in range(n)] for n in lengths]
            buffers = [next(it) for _ in range(n_buffers)]
            inputs = next(it)
            constants = None if no_constants else next(it)
            masks = [next(it) for _ in range(n_masks)]
            x, y = next(it), next(it)
            loss, out, new_params, new_state, new_buffers = pure(
                params, state, buffers, inputs, constants, masks, x, y)
            outputs = [loss, out, *new_params, *chain.from_iterable(new_state), *new_buffers]
            index = {id(t): i for i, t in enumerate(tensors)}
            self.sources = [-1 if t is None else index.get(id(t)) for t in outputs]
            return [t for t, i in zip(outputs, self.sources, strict=True) if i is None]

        try:
            graph = make_fx(flat_pure, tracing_mode="fake")(*flat)
        except Exception as exc:
            if type(exc).__module__.startswith("xmlp"):
                raise  # a check of xmlp's, with its own message
            first = (str(exc).strip().splitlines() or [""])[0]
            raise TypeError(
                f"TrainStep: the step cannot be compiled for PyTorch: tracing it failed "
                f"({type(exc).__name__}: {first}). A layer that reads an array's value (an if "
                "on it, float(), .item(), .numpy(), boolean indexing) has no graph; run it "
                "with compile=False, or 'auto', which runs a layer of your own eagerly") from exc
        self.compiled = torch._inductor.compile(graph, flat)

    def __call__(self, flat: list[Any]) -> list[Any]:
        """The program's outputs, with the inputs it updated in place where they belong (and
        None for an output the step did not make: the model's output on request only)."""
        made = iter(self.compiled(*flat))
        return [next(made) if i is None else None if i < 0 else flat[i] for i in self.sources]


def _layout(t: Any) -> tuple[Any, ...]:
    return (t.shape, t.stride(), t.dtype, t.device, t.requires_grad)
