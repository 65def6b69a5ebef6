"""A checkpoint's optimizer state against hostile or malformed content: ``xmlp.load(model, path,
optimizer=opt)`` refuses it with a ValueError that names the problem, before it reads any array
the optimizer does not need (memory bounded by the model, whatever the file declares), and
leaves the model and the optimizer as they were. Also the bounds of ``step_count`` in
``Optimizer.load_state_dict`` and ``step()``, which never counts a step that failed."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from typing import Any

import numpy as np
import pytest

import xmlp
from tests.helpers import assert_unchanged, rejects, state

BIG = 10_000_000  # float64 elements a crafted member declares: 80 MB, a few dozen kB deflated


def trained(xp, name: str = "Adam", **kwargs: Any):
    """An MLP(2, 3, 1) on ``xp`` and an optimizer that has taken two steps."""
    model = xmlp.MLP(2, 3, 1, xp=xp.module, device=xp.device, dtype="float64", rng=0)
    opt = getattr(xmlp.optim, name)(model, **({"lr": 0.1} | kwargs))
    x = xp.from_numpy(np.linspace(-1, 1, 8).reshape(4, 2))
    for _ in range(2):
        model.backward(model.forward(x))
        opt.step()
    return model, opt


def fresh(xp, name: str = "Adam", **kwargs: Any):
    model = xmlp.MLP(2, 3, 1, xp=xp.module, device=xp.device, dtype="float64", rng=5)
    return model, getattr(xmlp.optim, name)(model, **({"lr": 0.1} | kwargs))


def saved(xp, path, name: str = "Adam", **kwargs: Any) -> tuple[dict[str, np.ndarray], dict]:
    """Save a trained model with its optimizer at ``path``; return its arrays and record."""
    model, opt = trained(xp, name, **kwargs)
    xmlp.save(model, path, optimizer=opt)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, json.loads(str(arrays.pop("__xmlp__")))


def opt_snapshot(opt) -> tuple[dict[str, Any], dict[str, Any]]:
    """The optimizer's attributes and its state dict (host copies)."""
    return dict(vars(opt)), opt.state_dict()


def assert_opt_unchanged(before, opt) -> None:
    attrs, sd = before
    now_attrs, now_sd = opt_snapshot(opt)
    assert now_attrs.keys() == attrs.keys()
    for key, value in attrs.items():
        assert now_attrs[key] is value or now_attrs[key] == value, key
    assert now_sd["step_count"] == sd["step_count"]
    assert now_sd["hyperparameters"] == sd["hyperparameters"]
    assert now_sd["state"].keys() == sd["state"].keys()
    for name, entry in sd["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(now_sd["state"][name][key], value)


def refuses(path, xp, *words: str, name: str = "Adam", **kwargs: Any) -> str:
    """load(..., optimizer=) raises exactly ValueError with ``words`` in the message and
    changes neither the model nor the optimizer (which has state of its own)."""
    model, opt = trained(xp, name, **kwargs)
    before = opt_snapshot(opt)
    message = rejects(ValueError, model, lambda: xmlp.load(model, path, optimizer=opt), *words)
    assert_opt_unchanged(before, opt)
    return message


# -- memory: nothing the optimizer does not need is read ----------------------------------------
def write_with_big_member(path, arrays: dict[str, np.ndarray], record: dict, name: str) -> None:
    """The checkpoint, deflated, plus a member ``name`` declaring BIG float64 zeros, streamed
    into the archive (the test never holds them)."""
    record = {**record, "shapes": {**record["shapes"], name: [BIG]}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for key, value in {**arrays, "__xmlp__": np.array(json.dumps(record))}.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, value)
            zf.writestr(f"{key}.npy", buf.getvalue())
        with zf.open(f"{name}.npy", "w") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f8", "fortran_order": False, "shape": (BIG,)})
            chunk = bytes(1 << 20)
            for _ in range(BIG * 8 // len(chunk)):
                f.write(chunk)
            f.write(bytes(BIG * 8 % len(chunk)))


BIG_MEMBERS = {
    "a state array of another shape": (
        "optimizer.linear1.weights.exp_avg", ("linear1.weights.exp_avg", f"({BIG},)", "(3, 2)")),
    "an extra state key": (
        "optimizer.linear1.weights.junk", ("the state of 'linear1.weights' must hold",)),
    "an unknown parameter": (
        "optimizer.linear9.weights.exp_avg", ("linear9.weights", "but the MLP has")),
}


@pytest.fixture(scope="module")
def big_files(tmp_path_factory) -> dict[str, Any]:
    """Per case of BIG_MEMBERS, a file (written once: the same for every backend)."""
    import array_api_compat.numpy as anp

    from tests.conftest import Backend

    folder = tmp_path_factory.mktemp("big")
    files = {}
    for case, (name, _) in BIG_MEMBERS.items():
        path = folder / f"{name}.npz"
        arrays, record = saved(Backend("numpy", np, anp), path)
        arrays.pop(name, None)  # replaced by the big one
        write_with_big_member(path, arrays, record, name)
        assert path.stat().st_size < 1_000_000
        files[case] = path
    return files


def traced_peak(call) -> tuple[int, BaseException | None]:
    """The peak of traced memory while ``call()`` runs, and what it raised."""
    tracemalloc.start()
    try:
        call()
    except Exception as exc:
        return tracemalloc.get_traced_memory()[1], exc
    else:
        return tracemalloc.get_traced_memory()[1], None
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("case", list(BIG_MEMBERS))
def test_a_large_optimizer_member_is_refused_before_it_is_read(xp, big_files, case):
    """An 80 MB member deflated into a small file: refused from its header, with a peak of
    traced memory far below what it declares (reading it would cost twice its size)."""
    path, words = big_files[case], BIG_MEMBERS[case][1]
    model, opt = trained(xp)
    before, opt_before = state(model), opt_snapshot(opt)
    peak, exc = traced_peak(lambda: xmlp.load(model, path, optimizer=opt))
    assert type(exc) is ValueError, exc
    for word in ("load: the optimizer state in", "does not fit", *words):
        assert word in str(exc)
    assert peak < 10_000_000, f"peak {peak} bytes for {exc}"
    assert_unchanged(before, model)
    assert_opt_unchanged(opt_before, opt)
    # without optimizer= the optimizer's members are not read at all
    peak, exc = traced_peak(lambda: xmlp.load(model, path))
    assert exc is None and peak < 10_000_000


def test_a_state_array_of_text_is_refused_before_it_is_read(xp, tmp_path):
    """The member's dtype kind is checked from its header, as for parameters."""
    path = tmp_path / "c.npz"
    arrays, record = saved(xp, path)
    arrays["optimizer.linear1.biases.exp_avg"] = np.array(["a", "b", "c"])
    xmlp.io.checkpoint.write_checkpoint(str(path), arrays, record)
    assert refuses(path, xp) == (
        f"load: {str(path)!r} is not a readable xmlp checkpoint: "
        "'optimizer.linear1.biases.exp_avg' has dtype <U1, not a real number type")


def test_a_good_file_still_loads_the_optimizer_exactly(xp, tmp_path):
    path = tmp_path / "c.npz"
    model, opt = trained(xp)
    xmlp.save(model, path, optimizer=opt)
    target, target_opt = fresh(xp)
    xmlp.load(target, path, optimizer=target_opt)
    want, got = opt.state_dict(), target_opt.state_dict()
    assert got["step_count"] == want["step_count"] == 2
    assert got["hyperparameters"] == want["hyperparameters"]
    for name, entry in want["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(got["state"][name][key], value)


# -- a malformed optimizer record is a ValueError naming the field ------------------------------
MALFORMED = {
    "eps-text": ("Adam", {}, ("hyperparameters", "eps"), "x", ("eps must be a real number",)),
    "lr-null": ("Adam", {}, ("hyperparameters", "lr"), None, ("lr must be a real number",)),
    "betas-one": ("Adam", {}, ("hyperparameters", "betas"), [0.9], ("betas must be a pair",)),
    "betas-text": ("Adam", {}, ("hyperparameters", "betas"), ["a", 0.9],
                   ("betas[0] must be a real number",)),
    "weight-decay-list": ("AdamW", {}, ("hyperparameters", "weight_decay"), [],
                          ("weight_decay must be a real number",)),
    "momentum-text": ("SGD", {"momentum": 0.9}, ("hyperparameters", "momentum"), "0.9",
                      ("momentum must be a real number",)),
    "nesterov-text": ("SGD", {"momentum": 0.9}, ("hyperparameters", "nesterov"), "yes",
                      ("nesterov must be True or False",)),
    "eps-negative": ("Adam", {}, ("hyperparameters", "eps"), -1.0, ("eps must be",)),
    "hyperparameters-list": ("Adam", {}, ("hyperparameters",), [1], ("hyperparameters must",)),
    "step-count-text": ("Adam", {}, ("step_count",), "2", ("step_count must be an int >= 0",)),
    "step-count-huge": ("Adam", {}, ("step_count",), 10**400, ("step_count must be at most",)),
    "class-number": ("Adam", {}, ("optimizer",), 5, ("of a 5 optimizer",)),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_optimizer_record_is_a_value_error(xp, tmp_path, case):
    name, kwargs, where, value, words = MALFORMED[case]
    path = tmp_path / "c.npz"
    arrays, record = saved(xp, path, name, **kwargs)
    field = record["optimizer"]
    for key in where[:-1]:
        field = field[key]
    field[where[-1]] = value
    xmlp.io.checkpoint.write_checkpoint(str(path), arrays, record)
    refuses(path, xp, f"load: the optimizer state in {str(path)!r} does not fit: ", *words,
            name=name, **kwargs)


def test_the_message_for_a_malformed_hyperparameter(xp, tmp_path):
    path = tmp_path / "c.npz"
    arrays, record = saved(xp, path)
    record["optimizer"]["hyperparameters"]["eps"] = "x"
    xmlp.io.checkpoint.write_checkpoint(str(path), arrays, record)
    assert refuses(path, xp) == (
        f"load: the optimizer state in {str(path)!r} does not fit: Adam: eps must be a real "
        "number, got str: 'x'")


# -- step counts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [2**53 + 1, 10**400], ids=["2**53+1", "10**400"])
def test_load_state_dict_refuses_an_absurd_step_count(xp, steps):
    opt = trained(xp)[1]
    sd = opt.state_dict()
    before = opt_snapshot(opt)
    with pytest.raises(ValueError) as info:
        opt.load_state_dict({**sd, "step_count": steps})
    assert str(info.value).startswith(
        "Adam.load_state_dict: step_count must be at most 2**53 = 9007199254740992, got ")
    assert len(str(info.value)) < 200
    assert_opt_unchanged(before, opt)


def test_the_largest_step_count_loads_and_steps(xp):
    """2**53 steps: the bias corrections are 1, and a step is a plain (bias-free) Adam step."""
    model, opt = trained(xp)
    sd = opt.state_dict()
    opt.load_state_dict({**sd, "step_count": 2**53})
    assert opt.step_count == 2**53
    model.backward(model.forward(xp.from_numpy(np.ones((4, 2)))))
    opt.step()
    assert opt.step_count == 2**53 + 1
    for p in model.parameters():
        assert np.isfinite(xp.to_numpy(p)).all()


@pytest.mark.parametrize("has_state", [True, False], ids=["after-steps", "before-any-step"])
def test_a_step_that_fails_counts_nothing(xp, has_state):
    """A step count set by hand beyond the float range: the bias correction overflows, and
    step() raises before it changes anything (the count, the state, the parameters)."""
    model, opt = trained(xp) if has_state else fresh(xp)
    if not has_state:
        model.backward(model.forward(xp.from_numpy(np.ones((4, 2)))))
    opt.step_count = 10**400
    before = opt_snapshot(opt)
    rejects(OverflowError, model, opt.step)
    assert_opt_unchanged(before, opt)
    assert opt.step_count == 10**400
    assert (opt._state is None) is (not has_state)
