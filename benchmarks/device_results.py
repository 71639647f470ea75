"""Unpack what benchmarks/device_check.sh brought back from a GPU machine into the repository.

For each folder given (the copy of device_check.sh's $OUT):
- ``checks.tar``: throughput, step profile, runs side by side (gpu_sharing.py), paper-preset
  epoch time, notebook times (step 6), CUDA test output ->
  benchmarks/results/gpu/ (an existing file of the same name is replaced: the newer
  measurement wins, and git keeps the old one);
- ``cell_K.tar``: each cell's results file -> benchmarks/results/accuracy_gpu/ (a cell already
  there is kept, as accuracy_gpu.py never reruns one), and the runs the notebooks' reference
  profile reads -> benchmarks/results/reference/ through `promix_tutorial.reference.
  export_reference` (what `REFERENCE_RUNS` says, reduced to network 1);
- ``start_cell_K.tar``: cells trained from a self-supervised start ->
  benchmarks/results/accuracy_gpu_start/; the starts themselves (checks.tar's pretrain_PRESET/:
  kept backbones and manifest) -> benchmarks/results/gpu/pretrain_PRESET/;
- ``probes.tar``: probes/fast_recipe_probe.py's schedule probes ->
  benchmarks/probes/results/fast_recipe_probe/ (a probe already there is kept), and its table
  fast_recipe_probe.md rebuilt;
- ``log.txt`` -> benchmarks/results/gpu/logs/device_check_<UTC start>.txt.
Then the accuracy table (accuracy_gpu.md) is rebuilt; `python docs/build_results.py` rebuilds
README's table and docs/results.md from it.

Usage: python benchmarks/device_results.py DIR [DIR ...] [--results benchmarks/results]
       [--probe-results benchmarks/probes/results] [--no-reference]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "benchmarks" / "probes")]

# run name -> the recorded epochs whose per-sample arrays the notebooks read (None: all of them;
# (): history only). 02 reads promix at the end of warm-up and last; 03 reads no_lga's last
# epoch; 03 and 05 read only the histories of the other rows.
REFERENCE_RUNS = {"promix__sym0.8__seed0": None, "no_lga__sym0.8__seed0": (59,),
                  "no_dbr__sym0.8__seed0": (), "no_mhcs__sym0.8__seed0": (),
                  "no_base_selection__sym0.8__seed0": (), "no_cbr__sym0.8__seed0": (),
                  "only_clean__sym0.8__seed0": ()}
CHECK_FILES = {"throughput_gpu.json": "throughput_gpu.json",
               "step_profile_fast.json": "step_profile_fast_gpu.json",
               "paper_epoch_time.json": "paper_epoch_time_gpu.json",
               "gpu_sharing_fast.json": "gpu_sharing_fast_gpu.json",
               "notebook_times.txt": "notebook_times_gpu.txt",
               "cuda_tests.txt": "cuda_tests_gpu.txt", "tiny_cuda_run.txt": "tiny_cuda_run_gpu.txt",
               "versions.txt": "versions_gpu.txt"}


def unpack(folder: Path, results: Path, probe_results: Path,
           reference: Path | None) -> list[str]:
    """Unpack one device folder; returns what was written (for the printout)."""
    done = []
    gpu = results / "gpu"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if (folder / "checks.tar").is_file():
            with tarfile.open(folder / "checks.tar") as tar:
                tar.extractall(tmp, filter="data")
            for src, dst in CHECK_FILES.items():
                if (tmp / "checks" / src).is_file():
                    gpu.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(tmp / "checks" / src, gpu / dst)
                    done.append(f"gpu/{dst}")
        if (folder / "probes.tar").is_file():
            with tarfile.open(folder / "probes.tar") as tar:
                tar.extractall(tmp / "probes", filter="data")
            copy_new(tmp / "probes", probe_results, "fast_recipe_probe", done)
        for cell_tar in sorted(folder.glob("cell_*.tar")):
            with tarfile.open(cell_tar) as tar:
                tar.extractall(tmp / "cells", filter="data")
        for cell in copy_new(tmp / "cells", results, "accuracy_gpu", done):
            run = tmp / "cells" / "runs" / cell.stem
            if reference is not None and cell.stem in REFERENCE_RUNS and run.is_dir():
                done.append(export(run, cell.stem, json.loads(cell.read_text()), reference))
        for start_tar in sorted(folder.glob("start_cell_*.tar")):  # cells from a start
            with tarfile.open(start_tar) as tar:
                tar.extractall(tmp / "start_cells", filter="data")
        if (tmp / "start_cells" / "accuracy_gpu").is_dir():
            (tmp / "start_cells" / "accuracy_gpu").rename(tmp / "start_cells" / "accuracy_gpu_start")
            copy_new(tmp / "start_cells", results, "accuracy_gpu_start", done)
        for start in sorted((tmp / "checks").glob("pretrain_*")):  # starts and their manifests
            shutil.copytree(start, gpu / start.name, dirs_exist_ok=True)
            done.append(f"gpu/{start.name}/")
        log = folder / "log.txt"
        if log.is_file():
            m = re.search(r"device check (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", log.read_text())
            stamp = m.group(1).replace(" ", "_").replace(":", "") if m else folder.name
            (gpu / "logs").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, gpu / "logs" / f"device_check_{stamp}.txt")
            done.append(f"gpu/logs/device_check_{stamp}.txt")
    return done


def copy_new(unpacked: Path, results: Path, sub: str, done: list[str]) -> list[Path]:
    """Copy ``unpacked/sub/*.json`` into ``results/sub/``, keeping a file that is already
    there (results are never overwritten); returns the files copied, noting each in ``done``."""
    copied = []
    for src in sorted((unpacked / sub).glob("*.json")):
        dst = results / sub / src.name
        if dst.exists():
            done.append(f"kept {sub}/{src.name} (already there)")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        done.append(f"{sub}/{src.name}")
        copied.append(src)
    return copied


def export(run: Path, name: str, cell: dict, reference: Path) -> str:
    from promix_tutorial.reference import export_reference
    epochs = REFERENCE_RUNS[name]
    note = (f"{cell['hardware'].get('gpu', '?')}, {cell['date']}, wall {cell['wall_seconds']:.0f} s "
            f"for the whole run (evaluation included)")
    export_reference(run, name, dest=reference, command=cell["command"], note=note,
                     epochs=epochs)
    return f"reference/{name} (sample epochs: {'all recorded' if epochs is None else list(epochs)})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--probe-results", type=Path,
                    default=ROOT / "benchmarks" / "probes" / "results")
    ap.add_argument("--no-reference", action="store_true", help="do not export reference runs")
    args = ap.parse_args(argv)
    missing = [f for f in args.folders if not f.is_dir()]
    if missing:
        ap.error(f"not a folder: {', '.join(map(str, missing))} (give the folders that hold "
                 "what device_check.sh wrote to its OUT)")
    reference = None if args.no_reference else args.results / "reference"
    for folder in args.folders:
        for line in unpack(folder, args.results, args.probe_results, reference):
            print(f"{folder}: {line}")
    import accuracy_gpu
    import fast_recipe_probe
    probes = args.probe_results / "fast_recipe_probe"
    if probes.is_dir():
        fast_recipe_probe.main(["--table", "--results", str(probes)])
    print(accuracy_gpu.rebuild_tables(args.results / "accuracy_gpu"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
