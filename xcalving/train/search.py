"""Hyper-parameter search on a Dask cluster with Optuna: ``xcalving tune``.

GlacierDL searched learning rates 1e-7 … 1e-2 and batch sizes 2 … 32, then trained fully with the
best. Here each trial is one :func:`xcalving.train.loop.train` run, executed as a task on the user's
``dask.distributed`` cluster (a LocalCluster, or one trial per GPU worker under dask-cuda); the
trials report their validation loss every epoch, so Optuna's median pruner stops poor ones early
(a diverging trial, whose loss is not finite or above :data:`DIVERGED_LOSS`, is pruned at once).
The study lives in an Optuna journal file in the output folder (plain JSON lines, shared through
the file system): running the same command again adds trials to it instead of starting over.

Needs the ``tune`` extra: ``pip install 'xcalving[tune]'``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from xcalving.atomic import write_figure, write_text
from xcalving.errors import InputError, require
from xcalving.plot import search_plot
from xcalving.runtime import torch_threads_for_process
from xcalving.train.config import TrainConfig
from xcalving.train.loop import train

__all__ = ["DEFAULT_SPACE", "tune"]

#: GlacierDL's search space: log-uniform learning rate and batch size.
DEFAULT_SPACE: dict[str, tuple[float, float]] = {"lr": (1e-7, 1e-2), "batch_size": (2, 32)}
STUDY_NAME = "xcalving"
#: A validation loss above this has diverged: Dice is at most 1 and the zone cross-entropy starts
#: near ln 4, so only exploded logits get there. Such trials are pruned at once.
DIVERGED_LOSS = 100.0


def _optuna() -> Any:
    optuna = require("optuna", extra="tune", what="xcalving tune", name="Optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials.csv and best.json say it all
    return optuna


def _storage(out: Path) -> Any:
    optuna = _optuna()
    from optuna.storages.journal import JournalFileBackend  # heavy: optuna, loaded on first use

    return optuna.storages.JournalStorage(JournalFileBackend(str(out / "study.journal")))


def _study(out: Path, seed: int, n_startup_trials: int) -> Any:
    optuna = _optuna()
    return optuna.create_study(
        study_name=STUDY_NAME, storage=_storage(out), direction="minimize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials),
    )


def _objective(trial: Any, base: TrainConfig, space: dict[str, tuple[float, float]]) -> float:
    """One training run with the trial's lr and batch size, reporting every epoch."""
    optuna = _optuna()

    lr = trial.suggest_float("lr", *space["lr"], log=True)
    batch = trial.suggest_int("batch_size", int(space["batch_size"][0]),
                              int(space["batch_size"][1]), log=True)
    config = replace(base, lr=lr, batch_size=batch,
                     out=str(Path(base.out) / "trials" / f"trial_{trial.number:04d}"))

    def report(row: dict[str, Any]) -> None:
        value = row["val_loss"]
        if not math.isfinite(value) or not math.isfinite(row["loss"]) or value > DIVERGED_LOSS:
            raise optuna.TrialPruned(f"diverged at epoch {row['epoch']} (loss {row['loss']})")
        trial.report(value, row["epoch"])
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {row['epoch']}")

    summary = train(config, on_epoch=report)
    return float(summary["best"]["val_loss"])


def _run_one(out: str, base: dict[str, Any], space: dict[str, tuple[float, float]], seed: int,
             n_startup_trials: int) -> int:
    """Task body: load the shared study and run one trial in this worker process."""
    torch.set_num_threads(torch_threads_for_process())
    study = _study(Path(out), seed, n_startup_trials)
    study.optimize(lambda t: _objective(t, TrainConfig(**base), space), n_trials=1,
                   catch=(FloatingPointError,))
    return len(study.trials)


def _check_space(space: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    merged = {**DEFAULT_SPACE, **space}
    unknown = set(merged) - set(DEFAULT_SPACE)
    if unknown:
        raise InputError(f"space: unknown parameters {sorted(unknown)}; tune searches "
                         f"{sorted(DEFAULT_SPACE)}.")
    for name, (lo, hi) in merged.items():
        if not 0 < lo <= hi:
            raise InputError(f"space[{name!r}] must be (low, high) with 0 < low <= high; "
                             f"got {(lo, hi)}.")
    return merged


def _client() -> Any:
    try:
        from distributed import default_client  # heavy: distributed, loaded on first use

        return default_client()
    except ValueError as err:
        raise InputError(
            "tune runs its trials on a dask.distributed cluster, and none is active: create a "
            "Client first (e.g. Client(LocalCluster(n_workers=2, threads_per_worker=1))), or use "
            "`xcalving tune --workers N` / `--scheduler ADDRESS`."
        ) from err


def tune(base: TrainConfig, *, n_trials: int = 20, space: dict[str, tuple[float, float]] | None
         = None, seed: int = 0, n_startup_trials: int = 2, enqueue: list[dict[str, Any]] | None
         = None, then_train: bool = False) -> dict[str, Any]:
    """Search lr and batch size with Optuna, one :func:`~xcalving.train.loop.train` run per trial.

    Parameters
    ----------
    base
        The training configuration every trial starts from; ``base.out`` is the tuning folder
        (``study.journal``, ``trials/``, ``trials.csv``, ``search.png``, ``best.json``).
    n_trials
        Trials to add to the study (a resumed study keeps its earlier trials).
    space
        Ranges overriding :data:`DEFAULT_SPACE` (log-uniform lr 1e-7 … 1e-2, batch 2 … 32).
    seed
        Seed of the TPE sampler.
    n_startup_trials
        Completed trials before the median pruner starts pruning.
    enqueue
        Parameter sets to try first (e.g. ``[{"lr": 1e-2, "batch_size": 2}]``).
    then_train
        Train once more with the best parameters into ``base.out/best-run``.

    Returns
    -------
    dict
        The best trial's number, parameters and validation loss, and the counts of complete,
        pruned and failed trials.

    Trials run as tasks on the active ``dask.distributed`` client, as many at once as it has
    worker threads; the library never starts a cluster.
    """
    optuna = _optuna()
    if not isinstance(n_trials, int) or n_trials < 1:
        raise InputError(f"n_trials must be a whole number >= 1; got {n_trials!r}.")
    merged = _check_space(space or {})
    client = _client()
    out = Path(base.out)
    out.mkdir(parents=True, exist_ok=True)
    study = _study(out, seed, n_startup_trials)
    # each task builds its own sampler: give each its own seed (counting on from the trials the
    # study already has, enqueued ones not yet among them), or parallel trials draw alike
    seeds = [seed + len(study.trials) + k for k in range(n_trials)]
    for params in enqueue or []:
        study.enqueue_trial(params)
    config = asdict(base)
    futures = client.map(_run_one, [str(out)] * n_trials, [config] * n_trials,
                         [merged] * n_trials, seeds, [n_startup_trials] * n_trials, pure=False)
    client.gather(futures)
    study = _study(out, seed, n_startup_trials)
    result = _write_results(study, out, optuna)
    if then_train:
        best = replace(base, out=str(out / "best-run"), **result["params"])
        result["best_run"] = train(best)
    return result


def _write_results(study: Any, out: Path, optuna: Any) -> dict[str, Any]:
    frame = study.trials_dataframe(attrs=("number", "value", "params", "state", "datetime_start",
                                          "datetime_complete", "duration"))
    write_text(out / "trials.csv", frame.to_csv(index=False))
    write_figure(out / "search.png", search_plot(frame), dpi=110)
    states = optuna.trial.TrialState
    count = {s.name.lower(): sum(t.state == s for t in study.trials)
             for s in (states.COMPLETE, states.PRUNED, states.FAIL)}
    if count["complete"] == 0:
        raise InputError(f"no trial completed ({count}); widen the space or add epochs.")
    best = study.best_trial
    result = {"number": best.number, "params": best.params, "val_loss": best.value,
              "trials": len(study.trials), **count}
    write_text(out / "best.json", json.dumps(result, indent=2))
    return result
