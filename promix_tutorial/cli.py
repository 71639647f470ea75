"""The ``promix`` command line. ``promix noise ...`` prints a noise report; later subcommands
train and evaluate. Expected errors (bad input, missing data) print one clear line and exit 2."""
from __future__ import annotations

import argparse
import sys

from .data import DataUnavailableError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="cifar10",
                   help="cifar10, cifar100, digits or an .npz arrays file (default cifar10; "
                        "cifar10 reads $PROMIX_CIFAR10_NPZ when set)")
    p.add_argument("--data-dir", default=None,
                   help="download/cache folder (default $PROMIX_DATA_DIR or ./data)")
    p.add_argument("--cifar-n", default=None, metavar="PATH",
                   help="CIFAR-N label file or its folder (default $PROMIX_CIFARN_DIR, data/cifar-n, "
                        "else downloaded)")


def cmd_noise(args) -> int:
    from .data import load_dataset
    from .noise import NoiseSpec, noisy_labels_for

    spec = NoiseSpec.parse(args.noise)  # fail on a typo before loading anything
    ds = load_dataset(args.dataset, root=args.data_dir)
    noisy = noisy_labels_for(ds, spec, seed=args.seed, cifar_n_path=args.cifar_n)
    print(f"dataset {ds.name}: {len(ds.y_train)} train / {len(ds.y_test)} test images "
          f"{ds.image_shape}, {ds.num_classes} classes; seed {args.seed}")
    print(noisy.report(ds.classes))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="promix", description="ProMix for learning with noisy labels")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("noise", help="inject label noise and print the noise report")
    _add_data_args(p)
    p.add_argument("--noise", default="sym:0.5",
                   help="sym:R, asym:R, pairflip:R, human:SET (aggre, worst, random1-3, noisy) "
                        "or none (default sym:0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_noise)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, DataUnavailableError) as e:
        print(f"promix {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
