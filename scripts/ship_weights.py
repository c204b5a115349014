"""Ship a training run's best weights as a registered name of xcalving.

    python scripts/ship_weights.py RUN_DIR NAME --description "..." --data "..."
        [--licence CC-BY-4.0 --citation "..."] [--pixel-spacing 20] [--last]
        [--evaluation TABLE.json] [--metrics ROWS.json] [--front-method gated]
        [--spacing-record SPACING.json]

The structured card (:attr:`xcalving.model.registry.WeightsRecord.meta`) is filled from the run:
scenes per sensor and per glacier from the patch store the run trained on, the front method,
held-out metrics (``--metrics``: rows of ``benchmarks/logo_caffe256.py``'s table) and the
spacing range measured by ``benchmarks/spacing_caffe256.py`` (``--spacing-record``).

Re-saves ``RUN_DIR/best.safetensors`` (with ``--last``: the last epoch's checkpoint) as
``xcalving/model/weights/NAME.safetensors`` with its metadata (data, input scaling, grid,
licence, citation, training summary) and records the file with its sha256 in
``xcalving/model/weights/registry.json``, the one list of shipped weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xcalving.model import load_model, save_model
from xcalving.model.files import sha256_file
from xcalving.model.registry import REGISTRY_FILE, WEIGHTS_DIR


def main() -> None:
    """Re-save the run's best weights under the package and record them in the registry."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--description", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--licence", default="Apache-2.0")
    parser.add_argument("--citation", default="")
    parser.add_argument("--pixel-spacing", type=float, default=None)
    parser.add_argument("--last", action="store_true",
                        help="ship the last epoch's weights, not the best by validation loss "
                             "(for runs whose validation glacier was trained on or chose nothing)")
    parser.add_argument("--evaluation", type=Path, default=None,
                        help="a JSON file of held-out scores to record with the weights")
    parser.add_argument("--metrics", type=Path, default=None,
                        help="held-out rows (JSON list) for the structured card")
    parser.add_argument("--front-method", default="zones",
                        choices=["zones", "probability", "gated"])
    parser.add_argument("--spacing-record", type=Path, default=None,
                        help="the JSON of benchmarks/spacing_caffe256.py --out")
    args = parser.parse_args()
    summary = json.loads((args.run / "summary.json").read_text())
    chosen = (sorted((args.run / "checkpoints").glob("epoch_*.safetensors"))[-1] if args.last
              else args.run / "best.safetensors")
    net = load_model(chosen)
    target = WEIGHTS_DIR / f"{args.name}.safetensors"
    meta = {"name": args.name, "description": args.description, "data": args.data,
            "licence": args.licence, "citation": args.citation,
            "pixel_spacing": "unknown" if args.pixel_spacing is None else str(args.pixel_spacing),
            "training": json.dumps(summary, default=str)}
    save_model(net, target, metadata=meta)
    registry = json.loads(REGISTRY_FILE.read_text()) if REGISTRY_FILE.exists() else {}
    training = {k: summary[k] for k in ("epochs", "best_epoch", "stopped", "train_seconds")}
    if args.last:  # the monitored glacier chose nothing: its numbers are not a held-out score
        training["weights"] = f"last epoch ({summary['epochs']})"
        del training["best_epoch"]
    else:
        training["validation"] = {k: summary["best"][k] for k in summary["best"] if k != "lr"}
    if args.evaluation is not None:
        training["evaluation"] = json.loads(args.evaluation.read_text())
    training["command"] = summary["config"]
    replay = registry.get(args.name, {}).get("replay")  # what finetune replays: kept
    card = _card_facts(summary["config"], args)
    registry[args.name] = {
        "filename": target.name, "sha256": sha256_file(target),
        "description": args.description, "scaling": net.xcalving_scaling.to_dict(),
        "pixel_spacing": args.pixel_spacing, "licence": args.licence,
        "citation": args.citation, "data": args.data, "training": training,
        **({"replay": replay} if replay else {}), **card,
    }
    REGISTRY_FILE.write_text(json.dumps(registry, indent=2, default=str) + "\n")
    size = target.stat().st_size / 1e6
    print(f"{target} ({size:.1f} MB), sha256 {registry[args.name]['sha256']}")


def _scene_counts(config: dict[str, object]) -> tuple[dict[str, int], dict[str, int]]:
    """Training scenes per sensor and per glacier, from the run's patch store."""
    import numpy as np

    import xcalving

    store = xcalving.open_cube(str(config["store"]))
    stems = [str(v) for v in store.stem.values]
    glaciers = np.array([str(v) for v in store.glacier.values], dtype=object)
    sensors = [str(v) for v in store.satellite.values]
    wanted = config.get("train_glaciers")
    keep = np.isin(glaciers, list(wanted)) if wanted else np.ones(len(stems), bool)
    first = {stem: i for i, stem in enumerate(stems) if keep[i]}
    by_sensor: dict[str, int] = {}
    by_glacier: dict[str, int] = {}
    for i in first.values():
        by_sensor[sensors[i]] = by_sensor.get(sensors[i], 0) + 1
        by_glacier[glaciers[i]] = by_glacier.get(glaciers[i], 0) + 1
    return dict(sorted(by_sensor.items())), dict(sorted(by_glacier.items()))


def _card_facts(config: dict[str, object], args: argparse.Namespace) -> dict[str, object]:
    """The structured card's fields of the registry entry."""
    sensors, scenes = _scene_counts(config)
    facts: dict[str, object] = {"front_method": args.front_method, "sensors": sensors,
                                "scenes": scenes}
    if args.metrics is not None:
        facts["metrics"] = json.loads(args.metrics.read_text())
    if args.spacing_record is not None:
        record = json.loads(args.spacing_record.read_text())
        facts["spacing_range"] = record["spacing_range"]
        facts["resolution_model"] = record["resolution_model"]
        facts["spacing_check"] = [{k: row[k] for k in ("spacing", "resolution", "mde_m",
                                                       "n_no_front", "n_scenes")}
                                  for row in record["rows"]]
    return facts


if __name__ == "__main__":
    main()
