"""The ``pgcontrol`` command line (also ``python -m pgcontrol``).

Subcommands
-----------
``pgcontrol plants``
    List the plant catalog.
``pgcontrol lqr NAME [--gamma G] [--horizon T] [--gain K ...] [--std S] [--json]``
    Riccati-optimal gain K*, cost-to-go P*, optimal cost J*, closed-loop
    spectral radius; with ``--gain``, that gain's exact cost and its gap to J*.

Every user error (unknown plant, malformed gain, bad flag) prints one line
``pgcontrol: error: ...`` on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message):  # noqa: D401 (argparse API)
        self.exit(2, f"pgcontrol: error: {message} (try `{self.prog} --help`)\n")


def _cmd_plants(args) -> int:
    from . import plants

    rows = plants.describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(map(len, rows))
    for name, text in rows.items():
        print(f"{name:<{width}}  {text}")
    return 0


def _fmt(M) -> str:
    return np.array2string(np.asarray(M), precision=6, suppress_small=True, max_line_width=100)


def _cmd_lqr(args) -> int:
    from . import lqr, plants

    overrides = {}
    if args.gamma is not None:
        overrides["gamma"] = args.gamma
    plant = plants.make(args.name, **overrides)
    horizon = args.horizon
    K, P = lqr.optimal_gain(plant)
    J = lqr.policy_cost(plant, K, args.std, horizon)
    out = {
        "plant": plant.name,
        "gamma": plant.gamma,
        "objective": "infinite-horizon discounted" if horizon is None else f"{horizon} steps, discounted",
        "std": args.std,
        "K_opt": K.tolist(),
        "P_opt": P.tolist(),
        "J_opt": J,
        "spectral_radius_opt": lqr.spectral_radius(plant.A - plant.B @ K),
    }
    if args.gain is not None:
        Kg, _ = plant.check_gain(np.array(args.gain, dtype=float))
        Jg = lqr.policy_cost(plant, Kg, args.std, horizon)
        out.update(
            K=Kg.tolist(),
            J=Jg,
            gap=(Jg - J) / J if np.isfinite(Jg) else float("inf"),
            spectral_radius=lqr.spectral_radius(plant.A - plant.B @ Kg),
            gain_error=float(np.linalg.norm(Kg - K) / np.linalg.norm(K)),
        )
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=True))
        return 0
    print(f"plant {plant.name}: n={plant.n}, m={plant.m}, gamma={plant.gamma}; cost {out['objective']}, std={args.std}")
    print(f"K* (u = -K* x) =\n{_fmt(K)}")
    print(f"P* =\n{_fmt(P)}")
    print(f"J* = {J:.8g}")
    print(f"spectral radius of A - B K* = {out['spectral_radius_opt']:.6g}")
    if args.gain is not None:
        print(f"K =\n{_fmt(out['K'])}")
        print(f"J(K) = {out['J']:.8g}   (J(K) - J*)/J* = {out['gap']:.6g}   ||K - K*||/||K*|| = {out['gain_error']:.6g}")
        print(f"spectral radius of A - B K = {out['spectral_radius']:.6g}" + ("  (unstable)" if out["spectral_radius"] >= 1 else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pgcontrol", description="Policy-gradient control with exact LQ baselines.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("plants", help="list the plant catalog")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_plants)

    p = sub.add_parser("lqr", help="Riccati-optimal gain and exact costs for a catalog plant")
    p.add_argument("name", help="plant name (see `pgcontrol plants`)")
    p.add_argument("--gamma", type=float, help="override the plant's discount factor")
    p.add_argument("--horizon", type=int, help="evaluate costs over T steps (default: infinite horizon)")
    p.add_argument("--gain", type=float, nargs="+", metavar="K", help="a gain to evaluate, m*n numbers row-major (u = -K x)")
    p.add_argument("--std", type=float, default=0.0, help="exploration std of the policy (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_lqr)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # every pgcontrol input error subclasses ValueError
        print(f"pgcontrol: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pgcontrol: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
