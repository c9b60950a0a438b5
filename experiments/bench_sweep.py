"""Wall-clock of one sweep serially, with 2 local workers and as Ray tasks (if Ray is installed), side by side.

The sweep: ``--algo`` (default NPG) with its preset on ``--env`` (default
double-integrator), ``--runs`` seeds (default 12). Each backend writes to its own fresh folder, so nothing is skipped. It
prints the time of one run, each backend's total, the speed-up over serial,
and Ray's overhead per task (measured on empty tasks).

Usage::

    python experiments/bench_sweep.py [--runs 12] [--algo npg] [--env double-integrator] [--no-ray]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from pgcontrol.sweep import grid, run_sweep


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--algo", default="npg")
    ap.add_argument("--env", default="double-integrator")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args(argv)
    specs = grid(args.algo, args.env, list(range(args.runs)))
    times = {}
    with tempfile.TemporaryDirectory() as d:
        for name, kw in (("serial", dict(workers=1)), ("2 workers", dict(workers=2))) + (
                () if args.no_ray else (("ray (2 CPUs)", dict(ray="")),)):
            if name.startswith("ray"):
                try:
                    import ray
                except ImportError:
                    print("ray: not installed (pip install -e \".[ray]\")")
                    continue
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            t = time.perf_counter()
            res = run_sweep(specs, f"{d}/{name.split()[0]}", progress=False, **kw)
            times[name] = time.perf_counter() - t
            assert all(r["status"] == "ok" for r in res)
            if name == "serial":
                print(f"one run ({args.algo} preset on {args.env}, {res[0]['steps']} steps): "
                      f"{sum(r['seconds'] for r in res) / len(res):.2f} s of training")
    for name, t in times.items():
        print(f"{name:13s} {t:7.2f} s   speed-up over serial {times['serial'] / t:.2f}x")
    if "ray (2 CPUs)" in times:
        import ray

        noop = ray.remote(num_cpus=1)(lambda: None)
        ray.get([noop.remote() for _ in range(20)])  # warm the workers
        t = time.perf_counter()
        ray.get([noop.remote() for _ in range(200)])
        print(f"Ray's overhead per task (200 empty tasks on the local Ray): {(time.perf_counter() - t) / 200 * 1000:.1f} ms")
        ray.shutdown()


if __name__ == "__main__":
    main()
