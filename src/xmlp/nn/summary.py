"""``model.summary(input_shape)``: a model at a glance, as Keras' ``model.summary()`` shows it:
each layer, its output shape, its parameter count, and the totals.

Output shapes are those of ``predict`` on a batch of zeros of the model's namespace, device
and dtype (one sample: the batch size is only shown), run layer by layer through containers
(:class:`xmlp.Sequential`, :class:`xmlp.MLP`, whose layers run in order). A layer of your own
that holds sub-layers runs as one: its row shows its output, its sub-layers' rows their
parameters.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from array_api_compat import is_array_api_obj

from ..backend import short_repr
from .activations import Activation
from .checks import feature_error
from .dropout import Dropout
from .linear import Linear
from .linear import _owner as linear_owner
from .module import Module
from .normalization import BatchNorm1d, LayerNorm
from .normalization import _owner as norm_owner

__all__ = ["Summary", "summarize"]


@dataclass(frozen=True)
class Row:
    """One layer of the table."""

    name: str  # dotted, as named_parameters() names its parameters ("linear1", "0.2")
    kind: str  # the class name
    shape: tuple[int | None, ...] | None  # its output shape (None: not computed)
    params: int  # how many parameter elements the layer itself holds
    nbytes: int
    buffers: int = 0  # and buffer elements (running statistics: not trained)
    buffer_nbytes: int = 0


class Summary:
    """What :meth:`xmlp.Module.summary` returns: prints (and shows in a REPL or notebook) as a
    table of the layers, their output shapes and parameter counts, and the totals.

    Attributes:
        rows: one per layer without sub-layers (and per layer of yours that holds some), in
            the order they run: ``name`` (dotted, as in ``named_parameters()``), ``kind``
            (the class), ``shape`` (its output's, None without an input shape), ``params``
            and ``buffers`` (the elements of its buffers: running statistics).
        total_params: parameter and buffer elements of the whole model, as Keras counts
            them; ``trainable_params`` the parameters' (every xmlp parameter is trained),
            ``non_trainable_params`` the buffers'.
        total_bytes: their memory.

    Args:
        model: the :class:`xmlp.Module` summarized.
        rows: its rows.
        input_shape: the shape the output shapes were computed for, or None.

    Example:
        >>> import xmlp
        >>> summary = xmlp.MLP(64, 32, 10, rng=0).summary((None, 64))
        >>> summary.total_params, [row.shape for row in summary.rows]
        (2410, [(None, 32), (None, 32), (None, 10)])
    """

    def __init__(self, model: Module, rows: list[Row],
                 input_shape: tuple[int | None, ...] | None) -> None:
        self.model_repr = repr(model)
        self.rows, self.input_shape = rows, input_shape
        self.trainable_params = sum(row.params for row in rows)
        self.non_trainable_params = sum(row.buffers for row in rows)
        self.total_params = self.trainable_params + self.non_trainable_params
        self.trainable_bytes = sum(row.nbytes for row in rows)
        self.non_trainable_bytes = sum(row.buffer_nbytes for row in rows)
        self.total_bytes = self.trainable_bytes + self.non_trainable_bytes

    def __str__(self) -> str:
        header = ["Layer (type)", "Output shape", "Param #"]
        cells = [[f"{row.name} ({row.kind})", "?" if row.shape is None else str(row.shape),
                  f"{row.params + row.buffers:,}"] for row in self.rows]
        if self.input_shape is None:  # no shapes to show
            header, cells = [header[0], header[2]], [[c[0], c[2]] for c in cells]
        widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

        def line(values: list[str]) -> str:
            left = [v.ljust(w) for v, w in zip(values[:-1], widths, strict=False)]
            return "  ".join([*left, values[-1].rjust(widths[-1])])

        rule = "=" * len(line(header))
        return "\n".join([
            f"Model: {self.model_repr}",
            *([] if self.input_shape is None else [f"Input shape: {self.input_shape}"]),
            line(header), rule, *(line(c) for c in cells), rule,
            f"Total params: {self.total_params:,} ({_readable(self.total_bytes)})",
            f"Trainable params: {self.trainable_params:,} ({_readable(self.trainable_bytes)})",
            f"Non-trainable params: {self.non_trainable_params:,} "
            f"({_readable(self.non_trainable_bytes)})",
        ])

    __repr__ = __str__


def summarize(model: Module, input_shape: Any = None) -> Summary:
    """The :class:`Summary` of ``model``: see :meth:`xmlp.Module.summary`.

    Args:
        model: an :class:`xmlp.Module`.
        input_shape: None (no output shapes), the shape of a batch (its first axis the batch
            size, or None for "any": ``(None, 64)``), or an array whose shape that is.

    Example:
        >>> import xmlp
        >>> from xmlp.nn.summary import summarize
        >>> print(summarize(xmlp.MLP(1, 10, 1, rng=0), (None, 1)))
        Model: MLP(1, 10, 1, numpy float64 on cpu)
        Input shape: (None, 1)
        Layer (type)       Output shape  Param #
        ========================================
        linear1 (Linear)   (None, 10)         20
        activation (Tanh)  (None, 10)          0
        linear2 (Linear)   (None, 1)          11
        ========================================
        Total params: 31 (248 B)
        Trainable params: 31 (248 B)
        Non-trainable params: 0 (0 B)
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be an xmlp.Module, got {type(model).__name__}")
    shape = _check_shape(input_shape)
    rows: list[Row] = []
    try:
        x = None
        if shape is not None:
            # one sample (only the first axis may be None: the others are positive ints)
            sample = (1, *(d for d in shape[1:] if d))
            _check_features(model, sample)  # before the sample is made: it may be huge
            x = _zeros(model, sample)
        _walk(model, "", x, rows)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"summary: the model refuses an input of shape {shape}: {exc}") \
            from exc
    if shape is not None and shape[0] != 1:  # computed for one sample: show the batch size
        rows = [row if row.shape is None else dataclasses.replace(
            row, shape=(shape[0], *row.shape[1:])) for row in rows]
    return Summary(model, rows, shape)


def _walk(module: Module, name: str, x: Any, rows: list[Row]) -> Any:
    """Add the rows of ``module`` (named ``name``) for input ``x`` (None: unknown); returns
    its output (None when unknown)."""
    children = list(module.named_children())
    kind = type(module).__name__
    if children and _runs_in_order(module):
        for child_name, child in children:
            x = _walk(child, f"{name}.{child_name}" if name else child_name, x, rows)
        return x
    out = None if x is None else module.predict(x)
    params, nbytes = _own(module, module.param_names)
    buffers, buffer_nbytes = _own(module, module.buffer_names)
    rows.append(Row(name or kind, kind, None if out is None else tuple(out.shape), params,
                    nbytes, buffers, buffer_nbytes))
    for child_name, child in children:  # a layer of yours with sub-layers: no shapes inside
        _walk(child, f"{name}.{child_name}" if name else child_name, None, rows)
    return out


def _runs_in_order(module: Module) -> bool:
    """A container whose layers run one after the other (Sequential, MLP)."""
    from .containers import Container  # containers import this package's modules

    return isinstance(module, Container)


def _check_features(model: Module, sample: tuple[int, ...]) -> None:
    """The ValueError the first layer that fixes the feature count (a Linear, LayerNorm or
    BatchNorm1d, after layers that keep the shape: activations, Dropout) would raise for an
    input of shape ``sample``, from the shape alone: a wrong (even a huge) feature count is
    refused before an array of that shape is made. A layer of the user's first: its own
    checks decide."""
    for layer in _leaves(model):
        if isinstance(layer, (Activation, Dropout)):
            continue
        if isinstance(layer, Linear) and sample[-1] != layer.input_dim:
            owner = linear_owner(layer.input_dim, layer.output_dim, "predict")
            raise feature_error(owner, layer.input_dim, sample)
        if isinstance(layer, (LayerNorm, BatchNorm1d)):
            owner = norm_owner(type(layer).__name__, layer.features, "predict")
            layer.check_shape(sample, owner, "predict")
        return


def _leaves(module: Module) -> Iterator[Module]:
    """The layers of ``module`` in the order an input runs through them (a layer of the
    user's with sub-layers counts as one)."""
    children = list(module.named_children())
    if children and _runs_in_order(module):
        for _, child in children:
            yield from _leaves(child)
    else:
        yield module


def _own(module: Module, names: tuple[str, ...]) -> tuple[int, int]:
    """(elements, bytes) of the arrays ``names`` (parameters or buffers) the module itself
    holds."""
    arrays = [getattr(module, n) for n in names]
    count = sum(math.prod(a.shape) for a in arrays)
    nbytes = sum(math.prod(a.shape) * module.spec.xp.finfo(a.dtype).bits // 8 for a in arrays)
    return count, nbytes


def _zeros(model: Module, shape: tuple[int, ...]) -> Any:
    """Zeros of the model's namespace, device and dtype (NumPy float64 for a model without
    parameters)."""
    for module in model.modules():
        if module.param_names:
            spec = module.spec
            return spec.xp.zeros(shape, dtype=spec.dtype, device=spec.device)
    # a model without parameters takes any floating array: the namespace's default
    from ..backend import resolve_namespace

    xp = resolve_namespace("numpy")
    return xp.zeros(shape, dtype=xp.float64)


def _check_shape(input_shape: Any) -> tuple[int | None, ...] | None:
    if input_shape is None:
        return None
    if is_array_api_obj(input_shape):
        input_shape = tuple(input_shape.shape)
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise TypeError(f"summary: input_shape must be a tuple of ints (the first may be None "
                        f"for any batch size) or an array, got {short_repr(input_shape)}")
    dims = list(input_shape)
    for i, d in enumerate(dims):
        if i == 0 and d is None:
            continue
        is_int = isinstance(d, int) and not isinstance(d, bool)
        if not is_int or not 1 <= d <= sys.maxsize:
            # beyond sys.maxsize no array could have the dimension
            limit = f" up to {sys.maxsize}" if is_int and d > 0 else ""
            raise ValueError(f"summary: input_shape must hold positive ints{limit} (the first "
                             f"may be None for any batch size), got {short_repr(input_shape)}")
    return tuple(dims)


def _readable(nbytes: int) -> str:
    """248 B, 9.42 KB, 1.25 MB (powers of 1024, as Keras counts)."""
    size, unit = float(nbytes), "B"
    for bigger in ("KB", "MB", "GB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{nbytes} B" if unit == "B" else f"{size:.2f} {unit}"

