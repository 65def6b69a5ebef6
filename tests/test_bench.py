"""The bench core (xmlp.bench, xmlp._bench_cases, xmlp._bench_report): what it computes,
counts and writes. No timing is asserted: clocks are faked where the timing loop is tested."""

from __future__ import annotations

import argparse
import importlib
import json
import math

import numpy as np
import pytest

import xmlp
from conftest import tolerances
from reference import mlp_step as reference_step
from xmlp import _bench_cases as bc
from xmlp import _bench_report as rep
from xmlp import bench

DOCUMENTED_KEYS = {"backend", "device", "dtype", "op", "batch", "shape", "seconds", "gflops"}
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


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
    assert bc.op_flops("matmul", shape) == 2 * 7 * 3 * 2
    assert bc.op_flops("batched_matmul", shape) == 7 * (2 * 1 * 3 * 2)  # 7 stacks of 1 row
    assert bc.op_flops("batched_matmul", (100, 3, 5, 2)) == 8 * (2 * 12 * 3 * 2)  # 8 x 12 rows
    assert bc.op_flops("linear_forward", shape) == 2 * 7 * 3 * 5
    assert bc.op_flops("linear_backward", shape) == 2 * (5 * 7 * 3 + 7 * 5 * 3)
    for op in ("step_gemms", "mlp_step", "torch_step"):
        assert bc.op_flops(op, shape) == 6 * 7 * 5 * (3 + 2)  # 6 b h (in + out)
    with pytest.raises(ValueError, match="unknown op"):
        bc.gemms("conv", shape)


def test_gflops_arithmetic():
    assert bc.gflops(2e9, 0.5) == 4.0
    assert bc.gflops(1050, 1e-6) == pytest.approx(1.05)
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
    backend = bc.load_backend(xp.name)
    workload = bc.Workload(backend, dtype_name, (10, 3, 4, 2))
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

    workload = bc.Workload(bc.load_backend("dask"), "float64", (8, 3, 4, 2))
    case = workload.case("mlp_step")
    for _ in range(5):
        case.fn()
    # after a persisted step every parameter is one computed chunk, not a growing graph
    assert isinstance(case.subject, xmlp.MLP)
    params = case.subject.parameters()
    assert len(params) == 4
    assert all(isinstance(p, da.Array) and len(p.__dask_graph__()) == 1 for p in params)


# -- timing, with a fake clock ----------------------------------------------------------------
class FakeClock:
    """A timer whose time moves only when the op 'runs', by the given durations in turn."""

    def __init__(self, durations: list[float]) -> None:
        self.now, self.calls, self.durations = 0.0, 0, durations

    def __call__(self) -> float:
        return self.now

    def op(self) -> None:
        self.now += self.durations[self.calls % len(self.durations)]
        self.calls += 1


def test_measure_calibrates_calls_per_repeat_and_takes_the_median():
    clock = FakeClock([0.25])
    timing = bc.measure(clock.op, repeats=3, warmup=2, min_time=1.0, timer=clock)
    assert timing.number == 4  # 1.0 s per repeat / 0.25 s per call
    assert clock.calls == 2 + 3 * 4
    assert timing.times == [0.25, 0.25, 0.25]
    assert timing.seconds == 0.25

    clock = FakeClock([0.1, 0.1, 0.3, 0.2, 0.5])  # 2 warm-ups, then one call per repeat
    timing = bc.measure(clock.op, repeats=3, warmup=2, min_time=0.0, timer=clock)
    assert timing.number == 1
    assert timing.times == pytest.approx([0.3, 0.2, 0.5])
    assert timing.seconds == pytest.approx(0.3)
    with pytest.raises(ValueError):
        bc.measure(clock.op, repeats=0, warmup=1, min_time=0.0, timer=clock)


# -- planning and ratios ----------------------------------------------------------------------
def test_grids_hold_the_target_shapes():
    full = bc.grid("cpu", full=True)
    for target in [(100, 1, 10, 1), (1024, 256, 1024, 256), (4096, 1024, 4096, 1024)]:
        assert target in full
    assert max(b * h for b, _, h, _ in full) == 4096 * 4096
    assert set(bc.grid("cpu", full=False)) <= set(full) | {(64, 256, 1024, 256)}
    assert max(b * h for b, _, h, _ in bc.grid("gpu", full=True)) > 4096 * 4096


def test_plan_runs_torch_step_on_the_peer_only():
    numpy_backend = bc.load_backend("numpy")
    peer = bc.Backend("torch:cpu", None)
    todo = bc.plan([numpy_backend], ["float32"], ["mlp_step", "torch_step"], full=False,
                   shapes=[(4, 3, 2, 1)], peers={"cpu": peer})
    assert [(p.backend, p.op) for p in todo] == [("numpy", "mlp_step"), ("torch:cpu", "torch_step")]
    todo = bc.plan([numpy_backend], ["float32", "float64"], ["matmul"], full=False,
                   peers={"cpu": peer})
    assert {p.backend for p in todo} == {"numpy"}
    assert len(todo) == 2 * len(bc.grid("cpu", full=False))


def _rec(backend, op, seconds, flops, kind="cpu"):
    return {"backend": backend, "op": op, "dtype": "float32", "shape": [4, 3, 2, 1],
            "kind": kind, "seconds": seconds, "gflops": flops / seconds / 1e9}


def test_ratios():
    records = [_rec("numpy", "matmul", 1.0, 2e9), _rec("numpy", "step_gemms", 2.0, 6e9),
               _rec("numpy", "mlp_step", 3.0, 6e9), _rec("numpy", "linear_forward", 1.0, 1e9),
               _rec("torch:cpu", "torch_step", 4.0, 6e9),
               _rec("cupy", "mlp_step", 0.5, 6e9, kind="gpu")]
    rep.add_ratios(records)
    matmul, gemms, step, linear, peer, gpu = records
    assert matmul["ratio_floor"] is None and matmul["floor_op"] is None
    assert gemms["ratio_floor"] == pytest.approx(2.0 / 3.0)  # 3 GFLOP/s vs matmul's 2
    assert step["floor_op"] == "step_gemms" and step["ratio_floor"] == pytest.approx(1.5)
    assert linear["ratio_floor"] == pytest.approx(3.0)  # 1 GFLOP/s vs step_gemms's 3
    assert step["ratio_torch"] == pytest.approx(0.75)
    assert peer["ratio_floor"] is None and peer["ratio_torch"] is None
    assert gpu["ratio_torch"] is None and gpu["ratio_floor"] is None  # no torch:cuda measured


def test_tables_have_the_documented_columns():
    records = [_rec("numpy", "step_gemms", 2.0e-3, 6e9), _rec("numpy", "mlp_step", 3.5e-6, 6e3)]
    for r in records:
        r["device"] = "CPU"
    rep.add_ratios(records)
    text = rep.text_table(records)
    assert text.splitlines()[0].split() == ["op", "backend", "device", "dtype", "shape",
                                            "median", "GFLOP/s", "vs", "floor", "vs", "torch"]
    assert "2.00 ms" in text and "3.5 µs" in text
    md = rep.markdown_table(records)
    assert md.startswith("| op | backend |") and "| mlp_step | numpy | CPU |" in md


# -- the command ------------------------------------------------------------------------------
def test_run_writes_json_table_and_png(tmp_path, capsys):
    args = _args("--backend", "numpy", "--dtype", "float64", "--shape", "8,3,5,2",
                 "--repeat", "2", "--warmup", "1", "--min-time", "0", "--out", str(tmp_path),
                 "--no-progress")
    assert bench.run(args) == 0
    records = json.loads((tmp_path / "bench.json").read_text())
    expected_ops = set(bc.OPS) if HAS_TORCH else set(bc.OPS) - {"torch_step"}
    assert {r["op"] for r in records} == expected_ops
    for r in records:
        assert DOCUMENTED_KEYS <= set(r)
        assert r["shape"] == [8, 3, 5, 2] and r["batch"] == 8 and r["dtype"] == "float64"
        assert all(isinstance(d, int) for d in r["shape"])
        assert r["seconds"] > 0 and math.isfinite(r["seconds"])
        assert r["gflops"] == pytest.approx(bc.op_flops(r["op"], (8, 3, 5, 2)) / r["seconds"] / 1e9)
        assert len(r["times"]) == 2 and r["seconds"] == pytest.approx(np.median(r["times"]))
        assert r["backend"] == ("torch:cpu" if r["op"] == "torch_step" else "numpy")
    step = next(r for r in records if r["op"] == "mlp_step")
    gemms = next(r for r in records if r["op"] == "step_gemms")
    assert step["ratio_floor"] == pytest.approx(step["seconds"] / gemms["seconds"])
    assert step["finite"] is True
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    machine = json.loads((tmp_path / "machine.json").read_text())
    assert machine["devices"]["numpy"] == step["device"]
    assert "xmlp bench --backend numpy --dtype float64 --shape 8,3,5,2" in machine["command"]
    assert "| mlp_step | numpy |" in (tmp_path / "bench.md").read_text()
    out = capsys.readouterr().out
    assert "GFLOP/s" in out and "mlp_step" in out


def test_run_skips_a_backend_that_cannot_run(monkeypatch, capsys):
    real = bc.importlib.import_module

    def no_cupy(name, *rest):
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real(name, *rest)

    monkeypatch.setattr(bc.importlib, "import_module", no_cupy)
    args = _args("--backend", "numpy,cupy", "--dtype", "float32", "--op", "matmul",
                 "--shape", "4x3x2x1", "--repeat", "1", "--min-time", "0", "--no-progress")
    assert bench.run(args) == 0
    captured = capsys.readouterr()
    assert "skipped cupy" in captured.err and "matmul" in captured.out
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


def test_measure_makes_fewer_repeats_of_slow_calls():
    clock = FakeClock([4.0])
    timing = bc.measure(clock.op, repeats=7, warmup=1, min_time=0.1, max_time=10.0, timer=clock)
    assert (timing.number, len(timing.times)) == (1, 3)  # at least 3 repeats, though > 10 s
    clock = FakeClock([1.0])
    timing = bc.measure(clock.op, repeats=7, warmup=1, min_time=0.1, max_time=5.0, timer=clock)
    assert len(timing.times) == 5
    timing = bc.measure(clock.op, repeats=2, warmup=1, min_time=0.1, max_time=0.5, timer=clock)
    assert len(timing.times) == 2


def test_measure_retimes_repeats_that_shared_the_cpu():
    clock = FakeClock([1.0, 1.0, 3.0, 1.0, 1.0, 1.0])  # warm-up, then repeats
    load = iter([0.0, 0.0, 0.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5])  # busy during repeat 2

    timing = bc.measure(clock.op, repeats=3, warmup=1, min_time=0.0, timer=clock,
                        others=lambda: next(load))
    assert timing.times == [1.0, 1.0, 1.0]  # the 3 s repeat was dropped and made again
    assert (timing.disturbed, timing.retimed, timing.others_cpu) == (0, 1, 0.0)

    clock = FakeClock([2.0])  # others use a whole CPU all the time: nothing quiet to keep
    total = iter(range(0, 100, 2))
    timing = bc.measure(clock.op, repeats=2, warmup=1, min_time=0.0, timer=clock,
                        others=lambda: float(next(total)))
    assert (timing.disturbed, timing.retimed, len(timing.times)) == (2, 4, 2)
    assert timing.others_cpu == 1.0


def test_others_cpu_seconds_reads_a_counter():
    first = bc.others_cpu_seconds()
    if first is None:
        pytest.skip("no /proc/stat here")
    assert isinstance(first, float) and math.isfinite(first)


def test_warm_up_lasts_long_enough():
    clock = FakeClock([0.25])
    number = bc.calibrate(clock.op, warmup=2, warmup_time=1.0, min_time=0.5, timer=clock)
    assert clock.calls == 4 and number == 2  # 1 s of 0.25 s calls, then 2 calls per repeat
    clock = FakeClock([5.0])
    bc.calibrate(clock.op, warmup=2, warmup_time=1.0, min_time=0.3, timer=clock)
    assert clock.calls == 2


def test_quiet_gate_waits_for_other_processes_within_its_budget():
    busy = iter([0.0, 1.0, 1.0, 2.0, 2.0, 2.0])  # busy, busy, then a quiet window
    slept = []
    gate = bc.QuietGate(10.0, others=lambda: next(busy), window=1.0, sleep=slept.append)
    gate()
    assert slept == [1.0, 1.0, 1.0] and gate.waited == 3.0
    gate = bc.QuietGate(2.0, others=lambda: float(len(slept)), window=1.0, sleep=slept.append)
    gate()  # always busy: gives up when the budget is spent
    assert gate.waited == 2.0
    gate()
    assert gate.waited == 2.0  # nothing left to wait


def test_measure_asks_the_gate_before_the_first_and_each_retimed_repeat():
    clock = FakeClock([1.0])
    load = iter([0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0, 5.0])  # the second repeat is disturbed
    calls = []
    bc.measure(clock.op, repeats=3, warmup=1, min_time=0.0, timer=clock,
               others=lambda: next(load), gate=lambda: calls.append(clock.calls))
    assert calls == [1, 3]  # after the warm-up call, and after the disturbed repeat


def test_passes_keep_each_cases_fastest_median(tmp_path):
    args = _args("--backend", "numpy", "--dtype", "float32", "--op", "matmul", "step_gemms",
                 "--shape", "6,3,4,2", "--repeat", "2", "--min-time", "0", "--passes", "3",
                 "--out", str(tmp_path), "--no-progress")
    assert bench.run(args) == 0
    records = json.loads((tmp_path / "bench.json").read_text())
    assert sorted(r["op"] for r in records) == ["matmul", "step_gemms"]
    for r in records:
        assert len(r["pass_seconds"]) == 3 and r["seconds"] == min(r["pass_seconds"])
    assert "--passes 3" in json.loads((tmp_path / "machine.json").read_text())["command"]
