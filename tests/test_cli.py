"""The command line, through a real subprocess."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pgcontrol import lqr, plants


def run(*args):
    return subprocess.run([sys.executable, "-m", "pgcontrol", *args], capture_output=True, text=True, timeout=120)


def test_plants_lists_catalog():
    r = run("plants")
    assert r.returncode == 0
    for name in plants.names():
        assert name in r.stdout


def test_lqr_json_matches_library():
    r = run("lqr", "double-integrator", "--gain", "0.5", "1.2", "--std", "0.1", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    p = plants.make("double-integrator")
    K, _ = lqr.optimal_gain(p)
    assert out["K_opt"][0] == pytest.approx(K[0].tolist())
    J = lqr.policy_cost(p, [[0.5, 1.2]], 0.1)
    assert out["J"] == pytest.approx(J)
    assert out["gap"] == pytest.approx(J / out["J_opt"] - 1)


def test_lqr_text_and_overrides():
    r = run("lqr", "scalar-lqg", "--gamma", "0.9", "--horizon", "50")
    assert r.returncode == 0
    assert "0.907551" in r.stdout and "50 steps" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("lqr", "nope"), "unknown plant 'nope'"),
        (("lqr", "double-integrator", "--gain", "1", "2", "3"), "wrong shape"),
        (("lqr", "double-integrator", "--gain", "x"), "invalid float value"),
        (("lqr", "scalar-lqg", "--gamma", "1.5"), "gamma must lie in"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_errors_are_one_line_and_nonzero(args, message):
    r = run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pgcontrol: error:") and message in lines[0]
    assert "Traceback" not in r.stderr


# ------------------------------------------------------- train / eval / reproduce
#
# Every subprocess below imports torch (seconds on a loaded machine), so the
# subprocess runs are few and shared through module fixtures; the remaining
# error paths go through the same ``main()`` in-process (``cli_main``).


def one_line_error(r, message, code=2):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pgcontrol: error:") and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def cli_main(capsys, *args):
    """``pgcontrol ARGS`` in this process: a CompletedProcess-like result."""
    from pgcontrol.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.fixture(scope="module")
def npg_run(tmp_path_factory):
    """NPG on scalar-lqg, 8 envs x T = 50 = 400 steps per iteration; --steps 2000 gives 5 iterations."""
    out = tmp_path_factory.mktemp("runs") / "npg"
    cfg = out.parent / "npg.json"
    cfg.write_text(json.dumps({"num_envs": 8, "kl_bound": 0.02}))
    r = run("train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "2000", "--config", str(cfg), "--out", str(out))
    return out, r


def test_train_writes_files_and_prints_gains(npg_run):
    out, r = npg_run
    assert r.returncode == 0, r.stderr
    for name in ("checkpoint.pt", "progress.csv", "history.json"):
        assert (out / name).is_file()
    assert "5 iterations x 400 steps per iteration" in r.stdout
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == 5 and hist[-1]["steps"] == 2000
    assert len((out / "progress.csv").read_text().strip().splitlines()) == 6
    assert "it/s" in r.stderr  # the tqdm bar
    K_star = lqr.optimal_gain(plants.make("scalar-lqg"))[0]
    assert "optimal K* = [[0.907551]]" in r.stdout and K_star[0, 0] == pytest.approx(0.907551, abs=1e-6)
    learned = re.search(r"learned K  = \[\[([-0-9.e]+)\]\]", r.stdout)
    assert learned and float(learned.group(1)) == pytest.approx(hist[-1]["K"][0][0], abs=1e-6)
    assert f"cost gap (J(K) - J*)/J* = {hist[-1]['gap']:.6g}" in r.stdout


def test_train_resume_continues_the_run(npg_run, tmp_path, capsys):
    import shutil

    src, _ = npg_run
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    first = json.loads((out / "history.json").read_text())
    r = run("train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "2800", "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout and "7 iterations x 400" in r.stdout  # the checkpoint's config (8 envs) is kept
    hist = json.loads((out / "history.json").read_text())
    assert [h["iteration"] for h in hist] == list(range(7)) and hist[-1]["steps"] == 2800
    assert [h["K"] for h in hist[:5]] == [h["K"] for h in first]
    # a finished run has nothing to do; a mismatched run or a fresh start over it are errors
    r = cli_main(capsys, "train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "2800", "--out", out, "--resume")
    assert r.returncode == 0 and "nothing to do" in r.stdout
    for args, message in [
        (("--algo", "vpg", "--env", "scalar-lqg", "--resume"), "is a 'npg' run, not 'vpg'"),
        (("--algo", "npg", "--env", "double-integrator", "--resume"), "trained on 'scalar-lqg', not 'double-integrator'"),
        (("--algo", "npg", "--env", "scalar-lqg", "--resume", "--seed", "4"), "trained with seed 0, not 4"),
        (("--algo", "npg", "--env", "scalar-lqg", "--resume", "--policy", "mlp"), "holds a 'linear' policy"),
        (("--algo", "npg", "--env", "scalar-lqg"), "already holds a run"),
    ]:
        one_line_error(cli_main(capsys, "train", *args, "--out", out), message)


def test_eval_matches_exact_cost(npg_run, capsys):
    out, _ = npg_run
    r = run("eval", str(out), "--episodes", "400", "--seed", "3", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert len(res["returns"]) == 400 and res["lengths"] == [50] * 400
    hist = json.loads((out / "history.json").read_text())
    assert res["lq"]["K"] == hist[-1]["K"] or res["lq"]["K"][0][0] == pytest.approx(hist[-1]["K"][0][0], rel=1e-7)
    # the sampled mean return against the exact expected return -J_T of the checkpoint's policy
    assert abs(res["mean"] - res["lq"]["expected_return"]) < 4 * res["stderr"]
    r = cli_main(capsys, "eval", out / "checkpoint.pt", "--episodes", "20")
    assert r.returncode == 0, r.stderr
    assert "episode return (undiscounted sum of rewards of one episode" in r.stdout and "20 episodes" in r.stdout
    assert "±" in r.stdout and "K* = [[0.907551]]" in r.stdout
    assert "J(K, std) =" in r.stdout and "its exact expectation, -J_T with gamma = 1" in r.stdout
    assert "discounted cost J = E sum_t gamma^t c_t over an infinite horizon" in r.stdout


def test_eval_reproduces_training_return(tmp_path, capsys):
    """One VPG iteration with lr = 0: the checkpoint's policy is the one that collected the training batch."""
    out = tmp_path / "frozen"
    cfg = tmp_path / "frozen.toml"
    cfg.write_text("lr = 0.0\nnum_envs = 16\niterations = 1\n")
    r = cli_main(capsys, "train", "--algo", "vpg", "--env", "scalar-lqg", "--config", cfg, "--seed", "5", "--out", out)
    assert r.returncode == 0, r.stderr
    last = json.loads((out / "history.json").read_text())[-1]
    # same seed and episodes = num_envs: exactly the episodes of the training batch
    r = run("eval", str(out), "--episodes", "16", "--seed", "5", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["mean"] == last["return_mean"] and res["std"] == last["return_std"]
    assert res["train_return_mean"] == last["return_mean"]
    # another seed: statistically the same, within a few standard errors
    r = cli_main(capsys, "eval", out, "--episodes", "300", "--seed", "11", "--json")
    res = json.loads(r.stdout)
    se = (res["stderr"] ** 2 + last["return_std"] ** 2 / 15) ** 0.5
    assert abs(res["mean"] - last["return_mean"]) < 4 * se
    assert abs(res["mean"] - res["lq"]["expected_return"]) < 4 * res["stderr"]


def _has_mp4_writer():
    import importlib.util

    return bool(importlib.util.find_spec("imageio_ffmpeg") or importlib.util.find_spec("av"))


def test_mujoco_train_eval_and_video(tmp_path, capsys):
    out = tmp_path / "ppo"
    cfg = tmp_path / "ppo.json"
    cfg.write_text(json.dumps({"num_envs": 2, "n_steps": 16, "update_epochs": 1, "normalize_obs": True}))
    r = cli_main(capsys, "train", "--algo", "ppo", "--env", "InvertedPendulum-v5", "--steps", "32", "--config", cfg,
                 "--out", out)
    assert r.returncode == 0, r.stderr
    assert "1 iterations x 32 steps per iteration" in r.stdout and "mlp policy" in r.stdout
    assert "final mean return" in r.stdout and "K* =" not in r.stdout
    if not _has_mp4_writer():
        one_line_error(cli_main(capsys, "eval", out, "--video", tmp_path / "v.mp4"), "imageio-ffmpeg")
    # rendering needs MUJOCO_GL set before MuJoCo loads: a fresh process
    r = run("eval", str(out), "--episodes", "2", "--video", str(tmp_path / "v.gif"))
    if r.returncode != 0:  # no headless OpenGL on this machine: still one clear line
        one_line_error(r, "cannot render")
        pytest.skip("no headless renderer on this machine")
    assert "2 episodes" in r.stdout and "video:" in r.stdout
    assert (tmp_path / "v.gif").stat().st_size > 0


def test_console_script_is_python_m():
    script = Path(sys.executable).parent / "pgcontrol"
    if not script.exists():
        pytest.skip("the pgcontrol console script is not installed next to this interpreter")
    for args in (("train", "--help"), ("reproduce", "--help")):
        a = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120)
        b = run(*args)
        assert a.returncode == b.returncode == 0 and a.stdout == b.stdout
    help_text = run("train", "--help").stdout
    assert "num_envs x episode length" in help_text and "num_envs x n_steps" in help_text


@pytest.mark.parametrize(
    "args, message",
    [
        (("train", "--algo", "sarsa", "--env", "scalar-lqg"), "invalid choice: 'sarsa'"),
        (("train", "--algo", "vpg", "--env", "scalar-lqg", "--steps", "0"), "--steps: must be a positive integer"),
        (("train", "--algo", "vpg"), "the following arguments are required: --env"),
        (("eval",), "the following arguments are required: CHECKPOINT"),
        (("eval", "x.pt", "--episodes", "many"), "--episodes: must be a positive integer"),
        (("reproduce", "nope"), "invalid choice: 'nope'"),
        (("reproduce", "plateau", "--seeds", "0"), "--seeds: must be a positive integer"),
    ],
)
def test_usage_errors(args, message):
    one_line_error(run(*args), message)


def test_input_errors_in_a_subprocess(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kl_bound": 0.01, "learning_rate": 1}))
    r = run("train", "--algo", "npg", "--env", "scalar-lqg", "--config", str(bad), "--out", str(tmp_path / "x"))
    one_line_error(r, "unknown key 'learning_rate'")
    assert "valid keys: num_envs, iterations" in r.stderr and "kl_bound" in r.stderr
    assert not (tmp_path / "x").exists()
    corrupt = tmp_path / "checkpoint.pt"
    corrupt.write_bytes(b"not a checkpoint")
    one_line_error(run("eval", str(corrupt)), "is corrupt or not a pgcontrol checkpoint")


def test_input_errors(tmp_path, npg_run, capsys):
    bad = tmp_path / "bad.json"
    cases = [
        ('{"lr": "fast"}', "VPGConfig.lr must be a finite number or null; got 'fast'"),
        ('{"num_envs": 2.5}', "VPGConfig.num_envs must be an integer; got 2.5"),
        ('{"num_envs": 0}', "num_envs must be a positive integer"),
        ('{"estimator": "magic"}', "estimator must be"),
        ("[1, 2]", "must hold an object of Config fields"),
        ("{nope", "is not valid JSON"),
    ]
    for text, message in cases:
        bad.write_text(text)
        one_line_error(cli_main(capsys, "train", "--algo", "vpg", "--env", "scalar-lqg", "--config", bad,
                                "--out", tmp_path / "x"), message)
    bad = tmp_path / "bad.toml"
    bad.write_text("kl_bound = \n")
    one_line_error(cli_main(capsys, "train", "--algo", "npg", "--env", "scalar-lqg", "--config", bad), "not valid TOML")
    for args, message in [
        (("--env", "no-such-plant"), "unknown environment 'no-such-plant'"),
        (("--env", "NoSuchTask-v3"), "unknown environment 'NoSuchTask-v3'"),
        (("--env", "scalar-lqg", "--config", tmp_path / "missing.json"), "does not exist"),
        (("--env", "scalar-lqg", "--device", "tpu"), "unknown device 'tpu'"),
        (("--env", "scalar-lqg", "--resume"), "nothing to resume"),
    ]:
        one_line_error(cli_main(capsys, "train", "--algo", "vpg", *args, "--out", tmp_path / "x"), message)
    assert not (tmp_path / "x").exists()
    one_line_error(cli_main(capsys, "eval", tmp_path / "missing.pt"), "does not exist")
    one_line_error(cli_main(capsys, "eval", tmp_path), "does not exist")
    (tmp_path / "other.pt").write_bytes(__import__("pickle").dumps({"format": "x"}))
    one_line_error(cli_main(capsys, "eval", tmp_path / "other.pt"), "not a pgcontrol checkpoint")


def test_video_of_a_plant_run(npg_run, tmp_path, capsys):
    """Plants render themselves (the phase plane, or bars): --video works on them too."""
    r = cli_main(capsys, "eval", npg_run[0], "--episodes", "4", "--video", tmp_path / "v.gif")
    assert r.returncode == 0 and "video:" in r.stdout, r.stderr
    import imageio.v3 as iio

    frames = iio.imread(tmp_path / "v.gif")
    assert frames.shape[0] == 51 and frames.shape[-1] in (3, 4)  # T = 50 steps of scalar-lqg, and x0


def test_divergence_is_one_line_and_keeps_the_checkpoint(tmp_path, capsys):
    """VPG lr 1 with the plain step (no step guard) destabilises the gain in its first update: one line, and the
    kept checkpoint is good. (With the default adaptive rules the guard takes such a step back instead.)"""
    cfg = tmp_path / "wild.json"
    cfg.write_text(json.dumps({"lr": 1.0, "adaptive": False}))
    r = cli_main(capsys, "train", "--algo", "vpg", "--env", "double-integrator", "--steps", "24000", "--config", cfg,
                 "--out", tmp_path / "d")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]  # after the progress bar
    assert last.startswith("pgcontrol: error: training diverged: iteration 0: the update made the gain destabilising")
    assert "the starting policy's checkpoint is kept" in last
    assert json.loads((tmp_path / "d" / "history.json").read_text()) == []
    e = cli_main(capsys, "eval", tmp_path / "d", "--json")
    assert e.returncode == 0 and np.isfinite(json.loads(e.stdout)["lq"]["J"])


def test_resume_keeps_its_config_unless_keys_are_overridden(npg_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(npg_run[0], out)
    before = (out / "checkpoint.pt").read_bytes()
    wild = tmp_path / "wild.json"
    wild.write_text(json.dumps({"kl_bound": 1e6}))
    r = cli_main(capsys, "train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "2800", "--out", out, "--resume",
                 "--config", wild)
    assert r.returncode == 2 and "--override" in r.stderr and (out / "checkpoint.pt").read_bytes() == before
    r = cli_main(capsys, "train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "2800", "--out", out, "--resume",
                 "--config", wild, "--override", "num_envs")
    assert r.returncode == 2 and "not listed: kl_bound" in r.stderr
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"kl_bound": 0.001}))
    r = cli_main(capsys, "train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "2800", "--out", out, "--resume",
                 "--config", small, "--override", "kl_bound")
    assert r.returncode == 0, r.stderr
    hist = json.loads((out / "history.json").read_text())
    first_new = next(row for row in hist if "overrides" in row)
    assert first_new["overrides"] == {"kl_bound": {"from": 0.02, "to": 0.001}}
    assert (out / "checkpoint.prev.pt").read_bytes() == before  # the run as it was


def test_output_folder_and_action_space_errors_come_before_training(tmp_path, capsys):
    r = cli_main(capsys, "train", "--algo", "npg", "--env", "scalar-lqg", "--out", "/proc/pgcontrol-x")
    assert r.returncode == 2 and "cannot write to the output folder" in r.stderr and "training" not in r.stdout
    r = cli_main(capsys, "train", "--algo", "npg", "--env", "CartPole-v1", "--out", tmp_path / "c")
    assert r.returncode == 2 and "Discrete action space" in r.stderr and not (tmp_path / "c").exists()
    r = cli_main(capsys, "train", "--algo", "npg", "--env", "scalar-lqg", "--device", "meta", "--out", tmp_path / "m")
    assert r.returncode == 2 and "device must be" in r.stderr


def test_reproduce_runs_the_registry(tmp_path, capsys, monkeypatch):
    import pgcontrol.reproduce as rep

    calls = []

    def fake_run(name, **kw):
        calls.append((name, kw))
        (kw["out"] / f"{name}.json").write_text("{}")
        return {"headline": [f"{name}: all good"]}

    monkeypatch.setattr(rep, "run", fake_run)
    r = cli_main(capsys, "reproduce", "plateau", "--quick", "--seeds", "2", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert calls == [("plateau", {"quick": True, "seeds": 2, "out": tmp_path, "progress": True, "workers": None,
                                  "ray": None})]
    assert "plateau: all good" in r.stdout and "plateau.json" in r.stdout and str(tmp_path) in r.stdout
    r = cli_main(capsys, "reproduce", "gains", "--workers", "3", "--ray", "auto", "--out", tmp_path)
    assert calls[-1][1]["workers"] == 3 and calls[-1][1]["ray"] == "auto"


def test_lqr_takes_the_slides_k_and_explains_an_infinite_optimum(capsys):
    r = cli_main(capsys, "lqr", "scalar-lqg", "--k", "-0.9", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["K"] == [[0.9]]  # u = k x with k = -0.9 is K = 0.9
    r = cli_main(capsys, "lqr", "double-integrator", "--gamma", "1")
    assert r.returncode == 0 and "J* = inf  (with gamma = 1 the noise adds a cost" in r.stdout and "--horizon" in r.stdout
    r = cli_main(capsys, "lqr", "double-integrator", "--horizon", "100000000")
    assert r.returncode == 2 and "horizon must be None or an integer from 1 to 1000000" in r.stderr
    from pgcontrol.cli import main

    with pytest.raises(SystemExit) as exc:  # argparse's usage error: one line, status 2
        main(["lqr", "scalar-lqg", "--k", "1", "--gain", "1"])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_step_budget_rounding_is_announced_and_a_closed_pipe_is_quiet(tmp_path):
    r = run("train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "1100", "--out", str(tmp_path / "r"))
    # the default 16 envs x 50 steps = 800 per iteration: 2 iterations = 1600 steps
    assert r.returncode == 0 and "2 iterations x 800 steps per iteration = 1600 steps (rounded up" in r.stdout
    assert "2/2" in r.stderr  # the progress bar ends full
    p = subprocess.run(f"{sys.executable} -m pgcontrol eval {tmp_path / 'r'} --json | head -1", shell=True,
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "{" and p.stderr == "", p.stderr


def test_quick_runs_never_overwrite_the_committed_figures(tmp_path, capsys, monkeypatch):
    import pgcontrol.reproduce as rep

    calls = []
    monkeypatch.setattr(rep, "run", lambda name, **kw: calls.append(kw["out"]) or {"headline": []})
    monkeypatch.chdir(tmp_path)
    cli_main(capsys, "reproduce", "plateau", "--quick")
    cli_main(capsys, "reproduce", "plateau")
    assert calls == [Path("figures/quick"), Path("figures")]
    assert "figures/quick/" in (Path(__file__).parents[1] / ".gitignore").read_text()


def test_plot_draws_runs(npg_run, tmp_path, capsys):
    r = cli_main(capsys, "plot", npg_run[0], "--out", tmp_path / "runs.png")
    assert r.returncode == 0 and (tmp_path / "runs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from pgcontrol.plot import load_run, runs_figure

    fig = runs_figure([load_run(npg_run[0])])
    assert len(fig.axes) == 3  # learning curve, gain against K*, step response
    assert fig.axes[0].get_ylabel().startswith("cost gap")
    one_line_error(cli_main(capsys, "plot", tmp_path / "nothing"), "no run at")


def test_tensorboard_logging(tmp_path, capsys):
    r = cli_main(capsys, "train", "--algo", "npg", "--env", "scalar-lqg", "--steps", "500", "--out", tmp_path / "r",
                 "--tensorboard", tmp_path / "tb")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert r.returncode == 2 and "pip install tensorboard" in r.stderr
        return
    assert r.returncode == 0 and any((tmp_path / "tb" / "r").glob("events.out.tfevents.*"))
