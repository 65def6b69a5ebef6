"""The bench (xmlp.cli.bench, _bench_cases, _bench_timing, _bench_report) and its nox sessions:
what it computes, counts and writes. No timing is asserted: clocks are faked where the timing
loop is tested."""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xmlp
from tests.conftest import tolerances
from tests.reference import mlp_step as reference_step
from xmlp.cli import bench
from xmlp.cli import bench_cases as bc
from xmlp.cli import bench_report as rep
from xmlp.cli import bench_timing as bt

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_KEYS = {"backend", "device", "dtype", "op", "batch", "shape", "seconds", "gflops"}
HAS_TORCH = importlib.util.find_spec("torch") is not None
FAST = ("--rounds", "2", "--min-time", "0", "--no-progress")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def _without(monkeypatch: pytest.MonkeyPatch, *missing: str) -> None:
    """Make importing these packages fail, as where they are not installed."""
    real = bc.importlib.import_module

    def fake(name: str, *rest: object) -> object:
        if name.split(".")[0] in missing:
            raise ImportError(f"No module named {name!r}")
        return real(name, *rest)

    monkeypatch.setattr(bc.importlib, "import_module", fake)


# -- the products ----------------------------------------------------------------------------
def test_step_gemms_are_the_six_products_of_the_mlp_step(xp, dtype):
    gen = np.random.default_rng(1)
    x = xp.from_numpy(gen.standard_normal((6, 3)), dtype)
    t = xp.from_numpy(gen.standard_normal((6, 2)), dtype)
    model = xmlp.MLP(3, 4, 2, xp=xp.module, device=xp.device, dtype=dtype, rng=2)
    loss = xmlp.MSELoss()
    loss.forward(model.forward(x), t)
    gy = loss.backward()
    model.backward(gy)
    l1, act, l2 = model.linear1, model.activation, model.linear2
    h, y, gw2, ga, gw1, gx = bc.step_gemms(xp.ns, x, l1.weights, act.output, l2.weights, gy,
                                           act.grad_input)
    tol = tolerances(dtype)
    np.testing.assert_allclose(xp.to_numpy(h) + xp.to_numpy(l1.biases),
                               xp.to_numpy(l1.output), **tol)
    np.testing.assert_allclose(xp.to_numpy(y) + xp.to_numpy(l2.biases),
                               xp.to_numpy(l2.output), **tol)
    for mine, theirs in ((gw2, l2.grad_weights), (ga, l2.grad_input), (gw1, l1.grad_weights),
                         (gx, l1.grad_input)):
        np.testing.assert_allclose(xp.to_numpy(mine), xp.to_numpy(theirs), **tol)


def test_gemm_list_matches_the_products():
    """Every (m, k, n) in gemms() is the shape of the product it stands for."""
    b, i, h, o = shape = (7, 3, 5, 2)
    gen = np.random.default_rng(0)
    x, w1, a = gen.random((b, i)), gen.random((h, i)), gen.random((b, h))
    w2, gy, gh = gen.random((o, h)), gen.random((b, o)), gen.random((b, h))
    operands = [(x, w1.T), (a, w2.T), (gy.T, a), (gy, w2), (gh.T, x), (gh, w1)]
    products = bc.step_gemms(np, x, w1, a, w2, gy, gh)
    for (left, right), product, (m, k, n) in zip(operands, products, bc.gemms("step_gemms", shape),
                                                 strict=True):
        assert left.shape == (m, k) and right.shape == (k, n)
        np.testing.assert_allclose(product, left @ right)


def test_flop_counts():
    shape = (7, 3, 5, 2)
    assert bc.op_flops("batched_matmul", shape) == 7 * (2 * 1 * 3 * 5)  # 7 stacks of 1 row
    assert bc.op_flops("batched_matmul", (100, 3, 5, 2)) == 8 * (2 * 12 * 3 * 5)  # 8 x 12 rows
    for op in ("step_gemms", "mlp_step", "torch_step"):
        assert bc.op_flops(op, shape) == 6 * 7 * 5 * (3 + 2)  # 6 b h (in + out)
    with pytest.raises(ValueError, match="unknown op"):
        bc.gemms("conv", shape)
    assert bc.gflops(2e9, 0.5) == 4.0
    with pytest.raises(ValueError):
        bc.gflops(1.0, 0.0)


# -- the PyTorch peer -------------------------------------------------------------------------
@pytest.mark.requires_backends("torch")
def test_torch_step_is_the_same_step_as_xmlp():
    import torch

    gen = np.random.default_rng(4)
    x, t = gen.standard_normal((9, 3)), gen.standard_normal((9, 2))
    model = xmlp.MLP(3, 6, 2, dtype="float64", rng=5)
    host = [np.array(p) for p in model.parameters()]
    params = [torch.tensor(p) for p in host]
    loss, gx = bc.torch_step(params, torch.tensor(x), torch.tensor(t), 0.1)
    ref_loss, _, ref_new, ref_gx = reference_step(host, x, t, 0.1)
    np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), ref_gx, rtol=1e-10, atol=1e-14)
    for p, r in zip(params, ref_new, strict=True):
        np.testing.assert_allclose(p.numpy(), r, rtol=1e-10, atol=1e-14)


# -- cases on every backend -------------------------------------------------------------------
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_every_case_runs_on_every_backend(xp, dtype_name):
    workload = bc.Workload(bc.load_backend(xp.name), dtype_name, (10, 3, 4, 2))
    for op in bc.OPS:
        if op == "torch_step" and not xp.name.startswith("torch"):
            with pytest.raises(ValueError, match="torch_step runs on torch"):
                workload.case(op)
            continue
        case = workload.case(op)
        assert case.flops == bc.op_flops(op, (10, 3, 4, 2))
        for _ in range(3):
            case.fn()
        if case.check is not None:
            assert case.check()


def test_workload_rejects_bad_input():
    numpy_backend = bc.load_backend("numpy")
    with pytest.raises(ValueError, match="dtype"):
        bc.Workload(numpy_backend, "float16", (4, 3, 2, 1))
    with pytest.raises(ValueError, match="shape"):
        bc.Workload(numpy_backend, "float32", (4, 3, 0, 1))
    with pytest.raises(ValueError, match="unknown op"):
        bc.Workload(numpy_backend, "float32", (4, 3, 2, 1)).case("nope")
    with pytest.raises(ValueError, match="unknown backend"):
        bc.load_backend("numba")


@pytest.mark.requires_backends("dask")
def test_dask_step_keeps_its_graph_small():
    import dask.array as da

    case = bc.Workload(bc.load_backend("dask"), "float64", (8, 3, 4, 2)).case("mlp_step")
    for _ in range(5):
        case.fn()
    # after a persisted step every parameter is one computed chunk, not a growing graph
    params = case.subject.parameters()
    assert len(params) == 4
    assert all(isinstance(p, da.Array) and len(p.__dask_graph__()) == 1 for p in params)


# -- the timing core, with a fake clock -------------------------------------------------------
class FakeClock:
    """A timer whose time moves only when a variant 'runs', by that variant's duration."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []

    def __call__(self) -> float:
        return self.now

    def variant(self, name: str, *durations: float):
        calls = [0]

        def fn() -> None:
            self.now += durations[calls[0] % len(durations)]
            calls[0] += 1
            self.log.append(name)

        return fn


def test_interleaved_sizes_samples_and_takes_the_median():
    clock = FakeClock()
    # two warm-up calls of 0.25 s, then the timed calls: 4 per sample (1.0 s / 0.25 s)
    fn = clock.variant("a", 0.25, 0.25, *[0.25] * 4, *[0.5] * 4, *[0.25] * 4)
    t = bt.interleaved({"a": fn}, rounds=3, min_time=1.0, warmup_time=0.0, timer=clock)["a"]
    assert (t.number, t.warmup_calls) == (4, 2)
    assert t.times == [0.25, 0.5, 0.25] and t.seconds == 0.25
    with pytest.raises(ValueError):
        bt.interleaved({"a": fn}, rounds=0, timer=clock)


def test_interleaved_runs_every_variant_once_per_round_family_by_family():
    clock = FakeClock()
    slept: list[float] = []
    variants = {("numpy", "x"): clock.variant("n", 0.5),
                ("torch:cpu", "y"): clock.variant("t", 0.5), ("jax", "z"): clock.variant("j", 0.5)}
    timings = bt.interleaved(variants, rounds=3, min_time=0.0, warmup_time=0.0, timer=clock,
                             family=lambda k: bt.family_of(k[0]), pause=0.125,
                             sleep=slept.append)
    timed = clock.log[6:]  # after two warm-up calls each
    assert timed == ["j", "n", "t", "t", "n", "j", "j", "n", "t"]  # odd rounds reversed
    assert slept == [0.125] * 9  # before every change of family: 2 in warm-up, 7 in rounds
    assert all(len(t.times) == 3 for t in timings.values())


def test_interleaved_makes_fewer_rounds_of_slow_variants():
    clock = FakeClock()
    t = bt.interleaved({"a": clock.variant("a", 4.0)}, rounds=7, min_time=0.0, warmup_time=0.0,
                       max_time=10.0, timer=clock)["a"]
    assert len(t.times) == 3  # at least 3 rounds, though more than 10 s
    assert t.warmup_calls == 1  # a call of a second or more is warm after one
    t = bt.interleaved({"a": clock.variant("a", 1.0)}, rounds=7, min_time=0.0, warmup_time=0.0,
                       max_time=5.0, timer=clock)["a"]
    assert len(t.times) == 5


def test_families_and_others_cpu():
    assert [bt.family_of(b) for b in ("numpy", "array_api_strict", "dask", "torch:cpu",
                                      "torch:cuda", "jax", "cupy")] == [
        "numpy", "numpy", "numpy", "torch", "torch", "jax", "cupy"]
    first = bt.others_cpu_seconds()
    if first is None:
        pytest.skip("no /proc/stat here")
    assert isinstance(first, float) and math.isfinite(first)


# -- planning, ratios, tables -----------------------------------------------------------------
def test_grids_hold_the_target_shapes_and_two_batches_per_family():
    full = bc.grid("cpu", full=True)
    for target in [(100, 1, 10, 1), (1000, 1, 10, 1), (10000, 1, 10, 1), (64, 256, 1024, 256),
                   (1024, 256, 1024, 256), (4096, 1024, 4096, 1024)]:
        assert target in full
    for kind in ("cpu", "gpu"):
        for quick in (True, False):
            shapes = bc.grid(kind, full=not quick)
            for fam in {s[1:] for s in shapes}:
                assert len([s for s in shapes if s[1:] == fam]) >= 2  # a line, not a dot


def test_plan_groups_every_backend_of_a_shape_and_runs_torch_step_on_the_peer():
    numpy_backend = bc.load_backend("numpy")
    peer = bc.Backend("torch:cpu", None)
    groups = bc.plan([numpy_backend], ["float32", "float64"], ["mlp_step", "torch_step"],
                     full=False, shapes=[(4, 3, 2, 1)], peers={"cpu": peer})
    assert [(g.dtype, g.shape) for g in groups] == [("float32", (4, 3, 2, 1)),
                                                    ("float64", (4, 3, 2, 1))]
    assert groups[0].items == (("numpy", "mlp_step"), ("torch:cpu", "torch_step"))
    groups = bc.plan([numpy_backend], ["float32"], ["step_gemms"], full=False,
                     peers={"cpu": peer})
    assert [g.shape for g in groups] == sorted(bc.grid("cpu", full=False),
                                               key=lambda s: (*s[1:], s[0]))
    assert all(g.items == (("numpy", "step_gemms"),) for g in groups)


def _rec(backend, op, seconds, kind="cpu", shape=(4, 3, 2, 1), dtype="float64"):
    flops = bc.op_flops(op, shape)
    return {"backend": backend, "op": op, "dtype": dtype, "shape": list(shape), "kind": kind,
            "batch": shape[0], "device": "CPU", "seconds": seconds,
            "gflops": flops / seconds / 1e9}


def test_ratios_tables_and_targets():
    records = [_rec("numpy", "step_gemms", 2.0), _rec("numpy", "mlp_step", 3.0),
               _rec("jax", "mlp_step", 8.0), _rec("torch:cpu", "torch_step", 4.0),
               _rec("cupy", "mlp_step", 0.5, kind="gpu"),
               _rec("numpy", "mlp_step", 1.0, shape=(100, 1, 10, 1)),
               _rec("torch:cpu", "torch_step", 5.0, shape=(100, 1, 10, 1))]
    rep.add_ratios(records)
    gemms, step, jax_step, peer, gpu, *_ = records
    assert gemms["ratio_floor"] is None and gemms["ratio_torch"] is None
    assert step["ratio_floor"] == pytest.approx(1.5) and step["ratio_torch"] == pytest.approx(0.75)
    assert jax_step["ratio_floor"] is None and jax_step["ratio_torch"] == pytest.approx(2.0)
    assert peer["ratio_floor"] is None and gpu["ratio_torch"] is None  # no torch:cuda measured

    md = rep.markdown_report(records, "# head", skipped=["torch:cuda: no GPU"])
    assert "| op | backend | device | dtype | shape | median | GFLOP/s | vs floor |" in md
    assert "| (4, 3, 2, 1) | float64 | 4.000 s | 0.75x |" in md  # PyTorch step, numpy / it
    assert "| (100, 1, 10, 1) | float64 | torch_step | 0.20x | 0.25x | yes |" in md
    assert "| (4, 3, 2, 1) | float64 | torch_step | 0.75x | 1.00x | yes |" in md
    assert "- jax: eager JAX" in md and "- not measured: torch:cuda: no GPU" in md


# -- a disturbed run -------------------------------------------------------------------------
def _busy_run():
    """The run that prompted the check: PyTorch's float32 step 27x its float64 step."""
    shape = (1024, 256, 1024, 256)
    return [_rec("numpy", "mlp_step", 2.0e-3, shape=shape, dtype="float32"),
            _rec("numpy", "mlp_step", 3.9e-3, shape=shape),
            _rec("torch:cpu", "torch_step", 47.85e-3, shape=shape, dtype="float32"),
            _rec("torch:cpu", "torch_step", 1.78e-3, shape=shape)]


def test_a_float32_case_far_slower_than_float64_marks_the_run_disturbed():
    reasons = rep.disturbances(_busy_run(), cores=2)
    assert len(reasons) == 1
    assert ("torch_step on torch:cpu at (1024, 256, 1024, 256) took 47.85 ms in float32 against "
            "1.78 ms in float64 (26.9x") in reasons[0]
    # float32 a little slower than float64 (noise at a small shape), or one dtype alone: clean
    calm = [_rec("torch:cpu", "torch_step", 1.9e-3, dtype="float32"),
            _rec("torch:cpu", "torch_step", 1.0e-3), _rec("numpy", "mlp_step", 9.0e-3,
                                                          dtype="float32")]
    assert rep.disturbances(calm, cores=2, load_before=[0.5, 0.5, 0.5], load_during=[1.9, 3.0],
                            others=[0.1, 0.9, 0.2]) == []
    # the same dtype check under --clock cpu
    assert len(rep.disturbances(_busy_run(), cores=2, clock="cpu")) == 1


@pytest.mark.parametrize(("load", "expected"), [
    ({"load_before": [2.5, 1.0, 1.0]}, "load average was 2.50 on 2 CPUs before the run"),
    ({"load_during": [1.0, 4.5, 2.0]}, "load average reached 4.50 on 2 CPUs during the run"),
    ({"others": [1.2, 0.2, 1.5]}, "other processes used 1.20 of the 2 CPUs"),
], ids=["before", "during", "others"])
def test_load_before_or_during_the_run_marks_it_disturbed(load, expected):
    reasons = rep.disturbances([_rec("numpy", "mlp_step", 1e-3)], cores=2, **load)
    assert len(reasons) == 1 and expected in reasons[0], reasons
    # CPU time barely moves with the load of others: not a reason under --clock cpu
    assert rep.disturbances([_rec("numpy", "mlp_step", 1e-3)], cores=2, clock="cpu",
                            **load) == []


def test_a_disturbed_report_warns_and_does_not_judge_the_targets():
    records = _busy_run()
    rep.add_ratios(records)
    assert records[1]["ratio_torch"] > 1.10  # a target "missed": 3.9 ms / 1.78 ms
    clean = rep.markdown_report(records, "# head")
    assert "| float64 | torch_step | 2.19x | 1.00x | **no** |" in clean
    reasons = rep.disturbances(records, cores=2)
    advice = rep.disturbance_advice("wall", None)
    md = rep.markdown_report(records, "# head", disturbed=reasons, advice=advice)
    assert md.index("### Warning: this run was disturbed") < md.index("### xmlp's training step")
    assert reasons[0] in md and "its ratios" in md
    assert "`--clock cpu`" in md and "`--threads 1`" in md
    targets = md.split("### Targets (NumPy backend)", 1)[1].split("###", 1)[0]
    assert "Not judged: this run was disturbed" in targets
    assert "**no**" not in md and "| met |" not in md
    assert "--threads 1" not in rep.disturbance_advice("wall", 1)
    assert "--clock cpu" not in rep.disturbance_advice("cpu", 1)


def test_run_records_a_disturbed_run_in_every_file(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(rep, "load_average", lambda: [99.0, 99.0, 99.0])  # a very busy machine
    args = _args("--backend", "numpy", "--op", "mlp_step", "--dtype", "float64", "--shape",
                 "4,3,2,1", *FAST, "--out", str(tmp_path))
    assert bench.run(args) == 0  # measured all the same
    out, err = capsys.readouterr()
    assert "### Warning: this run was disturbed" in out
    assert "this run was disturbed by other load" in err and "--clock cpu" in err
    records = json.loads((tmp_path / "bench.json").read_text())
    assert all(any("load average was 99.00" in why for why in r["disturbed"]) for r in records)
    machine = json.loads((tmp_path / "machine.json").read_text())
    assert machine["disturbed"] == records[0]["disturbed"]
    assert "**Disturbed run**" in (tmp_path / "machine.md").read_text()


def test_run_on_a_quiet_machine_is_not_marked(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(rep, "load_average", lambda: [0.0, 0.0, 0.0])
    monkeypatch.setattr(bt, "others_cpu_seconds", lambda: None)  # as where /proc/stat is absent
    args = _args("--backend", "numpy", "--op", "mlp_step", "--dtype", "float64", "--shape",
                 "4,3,2,1", *FAST, "--out", str(tmp_path))
    assert bench.run(args) == 0
    out, err = capsys.readouterr()
    assert "disturbed" not in out and "disturbed" not in err
    assert all(r["disturbed"] == [] for r in json.loads((tmp_path / "bench.json").read_text()))


# -- the command ------------------------------------------------------------------------------
def test_run_writes_json_tables_and_figures(tmp_path, capsys):
    args = _args("--backend", "numpy", "--dtype", "float64", "--shape", "8,3,5,2",
                 "--shape", "16,3,5,2", *FAST, "--out", str(tmp_path))
    assert bench.run(args) == 0
    records = json.loads((tmp_path / "bench.json").read_text())
    expected_ops = set(bc.OPS) if HAS_TORCH else set(bc.OPS) - {"torch_step"}
    assert {r["op"] for r in records} == expected_ops
    for r in records:
        assert DOCUMENTED_KEYS <= set(r)
        assert r["dtype"] == "float64" and r["shape"][1:] == [3, 5, 2]
        assert r["seconds"] > 0 and math.isfinite(r["seconds"])
        assert r["gflops"] == pytest.approx(bc.op_flops(r["op"], r["shape"]) / r["seconds"] / 1e9)
        assert len(r["times"]) == 2 and r["seconds"] == pytest.approx(np.median(r["times"]))
        assert r["backend"] == ("torch:cpu" if r["op"] == "torch_step" else "numpy")
    step = next(r for r in records if r["op"] == "mlp_step")
    gemms = next(r for r in records if r["op"] == "step_gemms" and r["batch"] == step["batch"])
    assert step["ratio_floor"] == pytest.approx(step["seconds"] / gemms["seconds"])
    assert step["finite"] is True
    for png in ("gemm.png", "step.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    machine = json.loads((tmp_path / "machine.json").read_text())
    assert machine["devices"]["numpy"] == step["device"]
    assert "xmlp bench --backend numpy --dtype float64 --shape 8,3,5,2" in machine["command"]
    assert "kernels" in (tmp_path / "machine.md").read_text() or not machine["blas"]
    assert "| mlp_step | numpy |" in (tmp_path / "bench.md").read_text()
    out, err = capsys.readouterr()
    assert "GFLOP/s" in out and "mlp_step" in out
    assert "\r" not in err  # stderr is not a terminal here: no progress bar


def test_a_missing_peer_is_noted_in_the_table(monkeypatch, capsys):
    _without(monkeypatch, "torch")
    args = _args("--backend", "numpy", "--op", "mlp_step,torch_step", "--shape", "4x3x2x1",
                 *FAST)
    assert bench.run(args) == 0
    out = capsys.readouterr().out
    assert "- not measured: torch_step peer for cpu: torch:cpu: torch is not installed" in out


def test_run_skips_a_backend_that_cannot_run(monkeypatch, capsys):
    _without(monkeypatch, "cupy")
    args = _args("--backend", "numpy,cupy", "--dtype", "float32", "--op", "step_gemms",
                 "--shape", "4x3x2x1", *FAST)
    assert bench.run(args) == 0
    assert "not measured: cupy: cupy is not installed" in capsys.readouterr().out
    assert bench.run(_args("--backend", "cupy", "--no-progress")) == 1
    assert "nothing measured" in capsys.readouterr().err


def test_bad_arguments(capsys):
    with pytest.raises(argparse.ArgumentTypeError):
        bench._shape("1,2,3")
    with pytest.raises(argparse.ArgumentTypeError):
        bench._shape("4,3,0,1")
    assert bench._shape("4x3x2x1") == (4, 3, 2, 1)
    assert bench.run(_args("--dtype", "float16", "--no-progress")) == 2
    assert bench.run(_args("--backend", "numba", "--no-progress")) == 2
    assert bench.run(_args("--op", "conv", "--no-progress")) == 2
    assert "unknown" in capsys.readouterr().err


def test_backend_names_expand():
    assert bench._backend_names(["numpy,torch", "numpy"]) == ["numpy", "torch:cpu", "torch:cuda"]
    assert bench._backend_names(["all"]) == list(bc.BACKENDS)
    assert bench._backend_names(["cpu"]) == ["numpy", "array_api_strict", "torch:cpu", "jax",
                                             "dask"]


# -- compiled steps --------------------------------------------------------------------------
def test_compiled_ops_are_asked_for_and_run_on_torch_and_jax_only():
    assert not set(bc.COMPILED_OPS) & set(bc.OPS)  # the default run compiles nothing
    numpy_backend = bc.load_backend("numpy")
    torch_peer, jax_peer = bc.Backend("torch:cpu", None), bc.Backend("jax", None)
    ops = ["mlp_step", *bc.COMPILED_OPS]
    groups = bc.plan([numpy_backend], ["float32"], ops, full=False, shapes=[(4, 3, 2, 1)],
                     peers={"cpu": torch_peer, "jax": jax_peer})
    assert groups[0].items == (("numpy", "mlp_step"), ("torch:cpu", "torch_compile"),
                               ("jax", "jax_jit"))
    groups = bc.plan([jax_peer, numpy_backend], ["float32"], ops, full=False,
                     shapes=[(4, 3, 2, 1)], peers={"jax": jax_peer})
    assert groups[0].items == (("jax", "mlp_step"), ("jax", "compiled_step"), ("jax", "jax_jit"),
                               ("numpy", "mlp_step"))
    for op in bc.COMPILED_OPS:
        with pytest.raises(ValueError, match=f"{op} runs on"):
            bc.Workload(numpy_backend, "float64", (4, 3, 2, 1)).case(op)
    assert bc.gemms("compiled_step", (4, 3, 2, 1)) == bc.gemms("mlp_step", (4, 3, 2, 1))[:5]


def test_report_shows_compile_times_and_ratios_to_the_jax_jit_step():
    records = [_rec("jax", "mlp_step", 8.0), _rec("jax", "compiled_step", 3.0),
               _rec("jax", "jax_jit", 2.0), _rec("torch:cpu", "torch_compile", 4.0),
               _rec("numpy", "step_gemms", 1.0)]
    for r, compile_s in zip(records, (None, 1.5, 0.5, 30.0, None), strict=True):
        r["compile_s"] = compile_s
    rep.add_ratios(records)
    assert [r["ratio_jit"] for r in records] == [4.0, 1.5, 1.0, 2.0, None]
    md = rep.markdown_report(records, "# head")
    assert "### Compiled steps: compile time (first call) and step time" in md
    assert "| compiled_step | jax | float64 | (4, 3, 2, 1) | 1.500 s | 3.000 s | 1.50x |" in md
    assert ("| torch_compile | torch:cpu | float64 | (4, 3, 2, 1) | 30.000 s | 4.000 s | 2.00x |"
            in md)
    assert "| mlp_step | jax | CPU | float64 | (4, 3, 2, 1) | 8.000 s |" in md
    assert md.count("| jax_jit |") == 2  # in the compile table and among every case
    assert "### Compiled steps" not in rep.markdown_report(records[-1:], "# head")


def _compiled_run(tmp_path, capsys, backend, ops):
    args = _args("--backend", backend, "--dtype", "float32", "--op", *ops, "--shape", "4,3,2,1",
                 "--rounds", "1", "--min-time", "0", "--no-progress", "--out", str(tmp_path))
    assert bench.run(args) == 0
    records = json.loads((tmp_path / "bench.json").read_text())
    assert {r["op"] for r in records} == set(ops)
    for r in records:
        assert r["seconds"] > 0 and r["finite"] is True
        if r["op"] in bc.COMPILED_OPS:  # the first call, timed apart from the step
            assert r["compile_s"] > 0 and r["compile_s"] != r["seconds"]
        else:
            assert r["compile_s"] is None
    return records, capsys.readouterr().out


@pytest.mark.requires_backends("jax")
def test_compiled_jax_steps_run_and_report_their_compile_time(tmp_path, capsys):
    records, out = _compiled_run(tmp_path, capsys, "jax", ["mlp_step", "compiled_step",
                                                           "jax_jit"])
    jit = next(r for r in records if r["op"] == "jax_jit")
    step = next(r for r in records if r["op"] == "compiled_step")
    assert step["ratio_jit"] == pytest.approx(step["seconds"] / jit["seconds"])
    assert "### Compiled steps" in out and "| compiled_step | jax | float32 | (4, 3, 2, 1) |" in out
    assert "| jax_jit | jax | CPU" not in out  # the device is the CPU's model name
    assert "| jax_jit | jax |" in out and "vs jax jit" in out


@pytest.mark.slow
@pytest.mark.requires_backends("torch")
# inductor itself calls torch.jit.script_method, which torch deprecates
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_torch_steps_run_and_report_their_compile_time(tmp_path, capsys):
    records, out = _compiled_run(tmp_path, capsys, "torch:cpu", ["compiled_step",
                                                                 "torch_compile"])
    assert all(r["backend"] == "torch:cpu" for r in records)
    assert "| compiled_step | torch:cpu | float32 | (4, 3, 2, 1) |" in out
    assert "| torch_compile | torch:cpu | float32 | (4, 3, 2, 1) |" in out


# -- `nox -s bench-cupy` where CuPy cannot run ------------------------------------------------
@functools.cache
def _load_noxfile():
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # registers its sessions with nox: do it once
    return module


def _noxfile():
    """The project's noxfile as a module (skips where nox is not installed)."""
    pytest.importorskip("nox", reason="nox is not installed")
    return _load_noxfile()


class FakeSession:
    """Runs a nox session's commands: `xmlp` in this process, the pytest-benchmark suite as a
    subprocess; the peak check (a minute of large GEMMs, nothing to do with CuPy) is only
    recorded."""

    def __init__(self, tmp: Path, posargs: list[str]) -> None:
        self.tmp, self.posargs, self.ran = tmp, posargs, []

    def skip(self, reason: str) -> None:
        raise pytest.skip.Exception(f"nox skipped the session: {reason}")

    def install(self, *args: str) -> None:
        pass

    def run(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.ran.append(args)
        if args[0] == "xmlp":
            from xmlp.cli.commands import main

            assert main(list(args[1:])) == 0
        elif args[:2] == ("pytest", "benchmarks"):  # its files go where the session says
            environ = {**os.environ, **(env or {}), "XMLP_BENCH_SHAPES": "4,3,2,1",
                       "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                   *args[1:]], cwd=ROOT, env=environ, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
            self.suite_output = done.stdout


def test_bench_cupy_session_skips_without_a_gpu(monkeypatch, tmp_path):
    noxfile = _noxfile()
    monkeypatch.setattr(noxfile, "has_nvidia_gpu", lambda: False)
    with pytest.raises(pytest.skip.Exception, match="no NVIDIA GPU"):
        noxfile.bench_cupy(FakeSession(tmp_path, []))


def test_bench_cupy_session_without_cupy_measures_the_rest(monkeypatch, tmp_path):
    noxfile = _noxfile()
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here: this test is for machines without it")
    monkeypatch.setattr(noxfile, "has_nvidia_gpu", lambda: True)  # a GPU, but no CuPy
    monkeypatch.chdir(tmp_path)
    session = FakeSession(tmp_path, ["--shape", "4,3,2,1", "--dtype", "float32", *FAST])
    noxfile.bench_cupy(session)
    records = json.loads((tmp_path / "bench-out-gpu" / "bench.json").read_text())
    assert {r["backend"] for r in records} <= {"numpy", "torch:cpu"} and records
    assert "not measured: cupy" in (tmp_path / "bench-out-gpu" / "bench.md").read_text()
    assert "skipped" in session.suite_output  # the pytest-benchmark suite skips CuPy's cases
    assert ("python", "benchmarks/peak.py", "--check", "bench-out-gpu/bench.json") in session.ran


def test_bench_smoke_runs_every_benchmark_script(monkeypatch, tmp_path):
    """The default bench-smoke session runs each script of benchmarks/ with --smoke (which
    every script accepts), xmlp bench and the pytest-benchmark suite; commands only recorded."""
    noxfile = _noxfile()
    assert "bench-smoke" in noxfile.nox.options.sessions
    monkeypatch.chdir(ROOT)
    scripts = noxfile.benchmark_scripts()
    assert {p.name for p in scripts} >= {"digits_vs.py", "peak.py", "versus.py"}
    for script in scripts:
        assert '"--smoke"' in script.read_text(encoding="utf-8"), script.name
    assert set(noxfile.SMOKE_ARGS) <= {p.name for p in scripts}  # no stale entry

    class Recording(FakeSession):
        def create_tmp(self) -> str:
            return str(self.tmp)

        def run(self, *args: str, env: dict[str, str] | None = None) -> None:
            self.ran.append(args)

    session = Recording(tmp_path, [])
    noxfile.bench_smoke(session)
    ran = [args for args in session.ran if args[0] == "python"]
    assert [args[1] for args in ran] == [str(p) for p in scripts]
    assert all(args[2] == "--smoke" for args in ran)
    assert ("python", "benchmarks/peak.py", "--smoke", "--check",
            f"{tmp_path}/bench/bench.json") in session.ran
    assert session.ran[0][:2] == ("xmlp", "bench") and session.ran[-1][:1] == ("pytest",)


def test_threads_option_limits_every_pool(monkeypatch, tmp_path):
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info

    monkeypatch.setattr(bench, "_limits", [])
    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else 1
    monkeypatch.setenv("XLA_FLAGS", "")
    args = _args("--backend", "numpy", "--op", "step_gemms", "--shape", "4,3,2,1", "--threads",
                 "1", *FAST, "--out", str(tmp_path))
    try:
        assert bench.run(args) == 0
        assert all(lib["num_threads"] == 1 for lib in threadpool_info())
        machine = (tmp_path / "machine.md").read_text()
        assert "--threads 1" in machine
    finally:
        for limiter in bench._limits:
            limiter.restore_original_limits()
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(torch_threads)


def test_cpu_clock_runs_on_one_thread(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "_limits", [])
    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else 1
    try:
        assert bench.run(_args("--clock", "cpu", "--threads", "2", "--no-progress")) == 2
        assert "--threads 1" in capsys.readouterr().err
        args = _args("--backend", "numpy", "--op", "mlp_step", "--shape", "4,3,2,1",
                     "--clock", "cpu", *FAST, "--out", str(tmp_path))
        assert bench.run(args) == 0
        md = (tmp_path / "bench.md").read_text()
        assert "--clock cpu" in md and "--threads 1" in md and "CPU seconds of the process" in md
    finally:
        for limiter in bench._limits:
            limiter.restore_original_limits()
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(torch_threads)


def _markdown_table_after(text: str, heading: str) -> list[str]:
    """The lines of the first Markdown table after the line ``heading``."""
    lines = text.splitlines()
    start = lines.index(heading)
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append(line.strip())
        elif table:
            break
    return table


def test_readme_speed_table_is_the_committed_result():
    """The README quotes the committed CPU run word for word: its command and its step table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    result = (ROOT / "benchmarks" / "results" / "cpu-2core" / "bench.md").read_text(
        encoding="utf-8")
    quoted = _markdown_table_after(readme, "## Speed")
    committed = _markdown_table_after(
        result, "### xmlp's training step on each backend / the PyTorch step")
    assert len(committed) > 2 and quoted == committed
    command = next(line for line in result.splitlines() if "Command: `" in line)
    command = command.split("Command: `", 1)[1].split("`", 1)[0]
    assert f"\n{command}\n" in readme
    shown = {tuple(cell.strip() for cell in row.strip("|").split("|"))[:2] for row in quoted[2:]}
    grid = {(str(tuple(shape)), dtype) for dtype in bc.DTYPES
            for shape in bc.grid("cpu", full=True)}
    assert shown == grid  # every shape of the full CPU grid, in both dtypes


def test_machine_info_records_the_version_of_the_code_that_ran():
    # not the metadata of whatever xmlp install or stale egg-info the path finds first
    assert rep._versions()["xmlp"] == xmlp.__version__
