"""TorchProgram, the compiled step on PyTorch (TorchInductor), on a step function of its own:
the same values as the function run eagerly, inputs updated in place handed back as
themselves, one program per layout of the tensors, the arguments' structure (state lists, no
constants, masks, no output) kept. Collected wherever PyTorch is installed, whatever the
active backends: it needs no ``xp``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed: the compiled step on PyTorch is not tried")

from xmlp.training.torch_program import TorchProgram  # noqa: E402

# inductor itself calls torch.jit.script_method, which torch deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def pure(params, state, buffers, inputs, constants, masks, x, y, output=True):
    """A step's shape: the loss, the output on request, new params (the first updated in
    place, the second new), the state (updated in place), the buffers (new)."""
    w, b = params
    out = x @ w.T + b
    if masks:
        out = out * masks[0]
    diff = out - y
    loss = torch.mean(diff * diff)
    scale = inputs[0] if constants is None else inputs[0] * constants[0]
    grad = (2.0 / diff.numel()) * diff.T @ x
    for slots in state:
        slots[0].mul_(0.5).add_(grad)
    w.sub_(scale * grad)
    new_b = b - scale * diff.sum(0)
    return loss, out if output else None, [w, new_b], state, [buf + 1 for buf in buffers]


def arguments(n=6, masked=False, constants=False, dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    made = dict(
        params=[torch.randn(2, 3, generator=gen, dtype=dtype),
                torch.randn(2, generator=gen, dtype=dtype)],
        state=[[torch.zeros(2, 3, dtype=dtype)]],
        buffers=[torch.zeros(2, dtype=dtype)],
        inputs=torch.tensor([0.1], dtype=dtype),
        constants=torch.tensor([0.5], dtype=dtype) if constants else None,
        masks=[torch.ones(n, 2, dtype=dtype) * 0.5] if masked else [],
        x=torch.randn(n, 3, generator=gen, dtype=dtype),
        y=torch.randn(n, 2, generator=gen, dtype=dtype))
    return made


def call(fn, a):
    return fn(a["params"], a["state"], a["buffers"], a["inputs"], a["constants"], a["masks"],
              a["x"], a["y"])


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("constants", [False, True])
def test_the_program_computes_what_the_function_computes(masked, constants):
    eager, compiled = arguments(masked=masked, constants=constants), arguments(
        masked=masked, constants=constants)
    program = TorchProgram(pure)
    w, state = compiled["params"][0], compiled["state"][0][0]
    for _ in range(3):
        want = call(pure, eager)
        got = call(program, compiled)
        loss, out, params, new_state, buffers = got
        torch.testing.assert_close(loss, want[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(out, want[1], rtol=0, atol=1e-12)
        for a, b in zip([*params, *new_state[0], *buffers],
                        [*want[2], *want[3][0], *want[4]], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        # what the step updated in place comes back as itself; the rest is new
        assert params[0] is w and new_state[0][0] is state
        assert params[1] is not compiled["params"][1]
        compiled.update(params=params, state=new_state, buffers=buffers)
        eager.update(params=want[2], state=want[3], buffers=want[4])
    assert len(program.programs) == 1


def test_no_output_asked_is_none_and_the_rest_in_place():
    a = arguments()
    program = TorchProgram(lambda *args: pure(*args, output=False))
    loss, out, params, state, buffers = call(program, a)
    assert out is None and loss.shape == () and len(params) == 2 and len(buffers) == 1
    assert params[0] is a["params"][0] and len(state) == 1 and len(state[0]) == 1


def test_one_program_per_layout():
    program = TorchProgram(pure)
    a = arguments()
    call(program, a)
    call(program, a)
    assert len(program.programs) == 1
    call(program, arguments(n=4))  # another shape
    a = arguments()
    a["x"] = a["x"].T.contiguous().T  # the same shape, other strides
    call(program, a)
    call(program, arguments(dtype=torch.float32))  # another dtype
    assert len(program.programs) == 4


def test_a_branch_on_a_value_fails_the_trace_as_jax_jit_does():
    def reads(params, state, buffers, inputs, constants, masks, x, y):
        if x.sum() > 0:  # reads a value: no graph can hold this
            x = -x
        return pure(params, state, buffers, inputs, constants, masks, x, y)

    with pytest.raises(Exception, match=r"[Dd]ata[- ]dependent"):
        call(TorchProgram(reads), arguments())


def test_one_tensor_in_two_places_gets_a_program_of_its_own():
    """x is y (an autoencoder's step): the trace reads one placeholder for both, so distinct
    x and y of the same layout get another program, and the right numbers."""
    def run(fn):
        a = arguments()
        a["y"] = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        a["params"][0] = torch.randn(3, 3, dtype=torch.float64,
                                     generator=torch.Generator().manual_seed(2))
        a["params"][1] = torch.zeros(3, dtype=torch.float64)
        a["state"] = [[torch.zeros(3, 3, dtype=torch.float64)]]
        a["buffers"] = [torch.zeros(3, dtype=torch.float64)]
        x, y = a["x"], a["y"]
        losses = []
        for first, second in ((x, x), (x, y), (y, y)):
            a["x"], a["y"] = first, second
            loss, _, params, state, buffers = call(fn, a)
            a.update(params=params, state=state, buffers=buffers)
            losses.append(float(loss))
        return losses, a["params"]

    program = TorchProgram(pure)
    (want, want_params), (got, got_params) = run(pure), run(program)
    assert len(program.programs) == 2
    torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=0, atol=1e-12)
    for a, b in zip(got_params, want_params, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_a_program_is_made_once_per_layout_and_reused():
    program = TorchProgram(pure)
    a = arguments()
    call(program, a)
    (made,) = program.programs.values()
    call(program, a)
    assert list(program.programs.values()) == [made]


def test_a_tensor_that_requires_grad_is_refused_before_a_trace():
    a = arguments()
    a["params"][0].requires_grad_(True)
    program = TorchProgram(pure)
    with pytest.raises(TypeError, match=r"^TrainStep: a tensor the step reads requires grad "
                                        r"\(it would record an autograd graph every step\); "
                                        r"call requires_grad_\(False\) on it$"):
        call(program, a)
    assert not program.programs
