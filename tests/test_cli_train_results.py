"""`promix train` end to end (exit codes, resume, clear errors) and the benchmark results
tables built from cell files."""
import json

import dataclasses

import pytest

from promix_tutorial import cli, commands
from promix_tutorial.config import ABLATION_LABELS, PRESETS, make_config
from promix_tutorial.profiles import profile_config
from promix_tutorial.runs import RunHistory
from promix_tutorial.results import cell_name, load_cells, select_cells, write_cell
from promix_tutorial.tables import aggregate, markdown_table, paired_table, rebuild_table

TINY = ["train", "--dataset", "digits", "--noise", "sym:0.5", "--preset", "tiny", "--quiet",
        "--set", "warmup_epochs=1", "--set", "lga_start=2"]


def test_cli_train_then_resume_then_refuse_overwrite(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(TINY + ["--epochs", "2", "--out", out]) == 0
    assert "final test accuracy" in capsys.readouterr().out
    assert len(RunHistory(out)) == 2
    assert cli.main(TINY + ["--epochs", "2", "--out", out]) == 2          # exists: refused
    assert "--resume" in capsys.readouterr().err
    assert cli.main(TINY + ["--epochs", "3", "--out", out, "--resume"]) == 2  # config differs
    assert "epochs" in capsys.readouterr().err
    assert cli.main(TINY + ["--epochs", "2", "--out", out, "--resume"]) == 0  # finished: no-op
    assert len(RunHistory(out)) == 2


@pytest.mark.parametrize("args,needle", [
    (["--set", "tau=2"], "TrainConfig.tau"),
    (["--set", "learning_rate=0.1"], "FIELD=VALUE"),
    (["--set", "use_lga=maybe"], "true or false"),
    (["--noise", "sym:1.5"], "rate"),
])
def test_cli_train_bad_input_is_one_line_before_training(tmp_path, capsys, args, needle):
    out = tmp_path / "run"
    assert cli.main(TINY + ["--epochs", "2", "--out", str(out)] + args) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing was written


def test_cli_preset_choice_and_folder_checks(tmp_path, capsys, monkeypatch):
    """No --preset: cpu without a CUDA GPU, said in a line; profile names map to presets; a bad
    name is one line; --resume of nothing and a non-empty non-run folder are refused before any
    work; the end of a run says where the results are and what next, epoch lines the time left."""
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert commands.resolve_preset(None)[0] == "cpu" and "no CUDA GPU" in commands.resolve_preset(None)[1]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert commands.resolve_preset(None)[0] == "fast"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert commands.resolve_preset("gpu")[0] == "fast" and commands.resolve_preset("ci")[0] == "tiny"
    assert commands.resolve_preset("cpu") == ("cpu", None)
    base = [a for a in TINY if a not in ("--preset", "tiny", "--quiet")] + ["--epochs", "2"]
    assert cli.main(base + ["--preset", "huge", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "not a preset" in err and len(err.strip().splitlines()) == 1
    assert cli.main(base + ["--preset", "ci", "--no-bars", "--out", str(tmp_path / "ci")]) == 0
    out = capsys.readouterr().out
    assert "profile name; it runs the tiny preset" in out and "left" in out
    assert "next: load it in Python" in out and "RunHistory(" in out
    assert cli.main(base + ["--preset", "tiny", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "holds no run to continue" in capsys.readouterr().err and not (tmp_path / "none").exists()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    assert cli.main(base + ["--preset", "tiny", "--out", str(tmp_path / "notes")]) == 2
    assert "non-empty folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["keep.txt"]


def test_cli_to_a_pipe_prints_epoch_lines_not_bar_frames(tmp_path, capsys):
    args = [a for a in TINY if a != "--quiet"] + ["--epochs", "2", "--out", str(tmp_path / "r")]
    assert cli.main(args) == 0   # capsys: stdout and stderr are not terminals
    out = capsys.readouterr()
    assert "\r" not in out.err and "it/s" not in out.err
    assert out.out.count("epoch   1/2") == 1 and "epoch   2/2" in out.out


def test_cli_ablation_and_baseline_flags(tmp_path):
    assert cli.main(TINY + ["--epochs", "2", "--ablation", "no_cbr", "--out",
                            str(tmp_path / "a")]) == 0
    assert RunHistory(tmp_path / "a").config["use_cbr"] is False
    assert cli.main(TINY + ["--epochs", "2", "--baseline", "ce", "--out", str(tmp_path / "b")]) == 0
    assert RunHistory(tmp_path / "b").config["method"] == "ce"


def test_presets_and_profiles():
    for preset in PRESETS:
        cfg = make_config(preset, "cifar10", "sym:0.8")
        assert cfg.rho == 0.2 and 0 < cfg.prior_momentum < 1
    paper = make_config("paper", "cifar100", "sym:0.5")
    assert (paper.epochs, paper.batch_size, paper.lr, paper.tau, paper.alpha, paper.warmup_epochs,
            paper.model, paper.prior_momentum) == (600, 256, 0.05, 0.95, 0.5, 30,
                                                   "resnet18", 0.9999)
    assert make_config("paper", "cifar10", "asym:0.4").warmup_conf_penalty
    assert profile_config("ci").dataset == "digits" and profile_config("cpu").n_train == 5000
    with pytest.raises(ValueError, match="profile"):
        profile_config("tpu")


def _cell(method, ablation, noise, seed, final, best, f1=None):
    return {"cell": cell_name(method, ablation, noise, seed),
            "row": "CE" if method == "ce" else ABLATION_LABELS[ablation],
            "method": method, "ablation": ablation, "noise": noise, "seed": seed,
            "final_acc": final, "best_acc": best, "wall_seconds": 600,
            "selection": None if f1 is None else {"precision": 0.9, "recall": 0.8, "f1": f1}}


def test_results_cells_aggregate_and_table(tmp_path):
    for c in (_cell("promix", "none", "sym:0.5", 0, 0.60, 0.62, 0.85),
              _cell("promix", "none", "sym:0.5", 1, 0.64, 0.66, 0.87),
              _cell("ce", "none", "sym:0.5", 0, 0.40, 0.50),
              _cell("promix", "no_lga", "sym:0.8", 0, 0.30, 0.31, 0.7)):
        write_cell(tmp_path, c)
    cells = load_cells(tmp_path)
    assert len(cells) == 4 and (tmp_path / "promix__sym0.5__seed0.json").is_file()
    agg = aggregate(cells)
    assert agg[("ProMix", "sym:0.5")]["final"] == pytest.approx(62.0)
    assert agg[("ProMix", "sym:0.5")]["final_spread"] == pytest.approx(2.0)
    assert agg[("ProMix", "sym:0.5")]["f1"] == pytest.approx(0.86)
    table = markdown_table(cells, ["sym:0.5", "sym:0.8"])
    lines = table.splitlines()
    assert lines[0] == "| method | sym:0.5 | sym:0.8 |"
    assert lines[2].startswith("| CE | **40.0** / 50.0") and "paper 79.40" in lines[2]
    assert "**62.0** ± 2.0 / 64.0" in lines[3] and "seeds 0,1" in lines[3]
    assert "(not run)" in lines[3] and lines[4].startswith("| w/o LGA |")


def test_select_cells_keeps_order_drops_repeats_and_names_the_fix():
    cells = {"a": {}, "b": {}, "c": {}}
    assert select_cells(cells, ["c", "all"]) == ["c", "a", "b"]
    assert select_cells(cells, ["g", "a", "b"], groups={"g": ["b", "c"]}) == ["b", "c", "a"]
    with pytest.raises(ValueError, match="--list"):
        select_cells(cells, ["d"])


def test_paired_table_and_the_rebuilt_tables(tmp_path):
    res = tmp_path / "cells"
    for c in (_cell("promix", "none", "sym:0.5", 0, 0.60, 0.62, 0.85),
              _cell("promix", "none", "sym:0.5", 1, 0.64, 0.66, 0.87),
              _cell("ce", "none", "sym:0.5", 0, 0.40, 0.50),        # no CE seed 1
              _cell("ce", "none", "sym:0.8", 0, 0.20, 0.25)):       # no ProMix at sym:0.8
        write_cell(res, c)
    lines = paired_table(load_cells(res), ["sym:0.5", "sym:0.8"]).splitlines()
    assert lines[0] == "| noise | seed 0 | seed 1 | ProMix - CE, mean |"
    assert lines[2:] == ["| sym:0.5 | 60.00 vs 40.00 |  | +20.00 |"]  # seed 1 unpaired
    tables = rebuild_table(res, tmp_path / "t.md", "title", ["sym:0.5", "sym:0.8"])
    assert "| CE | **40.0** / 50.0" in tables["main"]
    assert "| sym:0.5 | 60.00 vs 40.00 |" in tables["seeds"] and "table5" not in tables
    text = (tmp_path / "t.md").read_text()
    assert text.startswith("# title\n\n| method |") and "| sym:0.5 | 60.00 vs 40.00 |" in text


def _claims(f1, gmm, small, plain, debiased, gain_mean=None):
    return {"selection_f1": f1, "once_tuned": {"gmm": {"value": 0.5, "f1": gmm},
                                               "small_loss": {"value": 0.2, "f1": small}},
            "pseudo_acc": plain, "pseudo_acc_debiased": debiased, "pseudo_gain_mean": gain_mean}


def test_claims_table_gives_the_debiasing_gain_per_seed_and_its_spread():
    cells = [dict(_cell("promix", "none", "asym:0.4", 0, 0.6, 0.6, 0.8),
                  claims=dict(_claims(0.80, 0.85, 0.90, 0.40, 0.42, 0.7), cleanlab_f1=0.68)),
             dict(_cell("promix", "none", "asym:0.4", 1, 0.6, 0.6, 0.8),
                  claims=dict(_claims(0.82, 0.87, 0.88, 0.50, 0.51, 0.5), cleanlab_f1=0.72)),
             dict(_cell("promix", "none", "sym:0.8", 0, 0.2, 0.2, 0.4),   # an older record:
                  claims=_claims(0.40, 0.45, 0.45, 0.30, 0.29)),          # no mean over epochs
             dict(_cell("ce", "none", "asym:0.4", 0, 0.5, 0.5), claims=None)]
    from promix_tutorial.tables import claims_table
    lines = claims_table(cells, ["sym:0.5", "asym:0.4", "sym:0.8"]).splitlines()
    assert lines[0].count("debiasing gain, seed") == 2 and len(lines) == 4  # no sym:0.5 row
    assert lines[2] == ("| asym:0.4 | 0.810 / 0.860 / 0.890 / 0.700 | +2.00 / +0.70 | +1.00 / +0.50 | "
                        "+1.50 ± 0.50 | +0.60 ± 0.10 |")
    assert lines[3] == "| sym:0.8 | 0.400 / 0.450 / 0.450 / n/a | -1.00 / n/a |  | -1.00 ± 0.00 |  |"


def test_ablation_table_says_which_rows_lie_below_promix_by_more_than_the_spread(tmp_path):
    from promix_tutorial.tables import ablation_table
    n = "asym:0.4"
    cells = [_cell("promix", "none", n, 0, 0.70, 0.7), _cell("promix", "none", n, 1, 0.68, 0.7),
             _cell("promix", "no_lga", n, 0, 0.66, 0.7), _cell("promix", "no_lga", n, 1, 0.65, 0.7),
             _cell("promix", "no_dbr", n, 0, 0.69, 0.7), _cell("promix", "no_dbr", n, 1, 0.67, 0.7),
             _cell("promix", "no_mhcs", n, 0, 0.60, 0.6),    # one seed: no verdict
             _cell("promix", "no_cbr", n, 0, 0.72, 0.7), _cell("promix", "no_cbr", n, 1, 0.72, 0.7),
             _cell("ce", "none", n, 0, 0.50, 0.5),            # CE is not a Table 5 row
             _cell("promix", "no_lga", "sym:0.5", 0, 0.1, 0.1)]   # another noise: ignored
    lines = ablation_table(cells, n).splitlines()
    assert lines[0].startswith("| row | seed 0 | seed 1 | mean ± half-range |")
    rows = {ln.split(" | ")[0][2:]: ln for ln in lines[2:]}
    assert list(rows) == ["ProMix", "w/o LGA", "w/o MHCS", "w/o CBR", "w/o DBR"]
    # 72.0 vs 69.0: 3.0 above, spread 1.0 -> said so
    assert rows["w/o CBR"].endswith("| +3.00 (2) | no: *above* by more than the spread | 0 / 2 | +6.50 (2) |")
    assert lines[0].endswith("| seeds below / above ProMix | - w/o LGA (its fair reference) |")
    assert lines[1].count("---") == 8
    assert rows["ProMix"] == "| ProMix | 70.00 | 68.00 | 69.00 ± 1.00 |  |  |  |  |"
    # 65.5 vs 69.0: 3.5 below, spreads 0.5 and 1.0 -> below by more than the spread
    assert rows["w/o LGA"] == "| w/o LGA | 66.00 | 65.00 | 65.50 ± 0.50 | -3.50 (2) | **yes** | 2 / 0 |  |"
    # 68.0 vs 69.0: 1.0 below, spread 1.0 -> inside the spread, though below in both seeds;
    # 68.0 vs w/o LGA's 65.5: +2.5
    assert rows["w/o DBR"].endswith("| -1.00 (2) | no | 2 / 0 | +2.50 (2) |")
    assert rows["w/o MHCS"].endswith("| -10.00 (1) | 1 seed | 1 / 0 | -6.00 (1) |")
    # without the fair-reference column the table ends at the verdict
    plain = ablation_table(cells, n, fair=None).splitlines()
    assert plain[0].endswith("| seeds below / above ProMix |") and plain[3].endswith("| **yes** | 2 / 0 |")
    # rebuilt with the other tables only when such cells exist
    res = tmp_path / "cells"
    for c in cells:
        write_cell(res, c)
    tables = rebuild_table(res, tmp_path / "t.md", "title", [n], table5_noise=n)
    assert "| w/o LGA | 66.00 | 65.00 |" in tables["table5"]
    assert "Table 5 at asym:0.4" in (tmp_path / "t.md").read_text()
    rebuild_table(res, tmp_path / "t.md", "title", [n], table5_noise="sym:0.8")
    assert "Table 5" not in (tmp_path / "t.md").read_text()


def test_rule_runs_have_their_own_cells_rows_and_fig3_table(tmp_path):
    """A run whose clean set comes from a Fig. 3 rule is its own cell and row (never a Table 5
    row); rules_table sets each rule's own-run F1 beside ProMix's and cleanlab's."""
    from promix_tutorial.results import config_cell_name, row_label
    from promix_tutorial.tables import ablation_table, rules_table
    cfg = make_config("tiny", "digits", "sym:0.8", selection="gmm", gmm_threshold=0.8, seed=2)
    assert config_cell_name(cfg) == "gmm_rule__sym0.8__seed2"
    assert config_cell_name(dataclasses.asdict(cfg)) == "gmm_rule__sym0.8__seed2"
    assert config_cell_name(make_config("tiny", "digits", "sym:0.8")) == "promix__sym0.8__seed0"
    assert row_label("promix", "none", "small_loss") == "small-loss rule"
    n, conf = "sym:0.8", {"rho": 0.2, "tau": 0.95, "gmm_threshold": 0.86, "forget_rate": 0.69}
    cells = []
    for seed, (p, g, sl, cl) in enumerate(((0.66, 0.60, 0.55, 0.50), (0.68, 0.62, 0.57, 0.52))):
        cells += [dict(_cell("promix", "none", n, seed, 0.58, 0.58, p), config=conf,
                       claims={"cleanlab_f1": cl}),
                  dict(_cell("promix", "none", n, seed, 0.50, 0.5, g), config=conf,
                       row=row_label("promix", "none", "gmm")),
                  dict(_cell("promix", "none", n, seed, 0.40, 0.4, sl), config=conf,
                       row=row_label("promix", "none", "small_loss"))]
    lines = rules_table(cells, n).splitlines()
    assert lines[0] == ("| selection (its own run) | setting | seed 0 | seed 1 | F1 mean ± "
                        "half-range | test accuracy, mean (%) |")
    assert lines[2] == "| ProMix | R 0.2, tau 0.95 | 0.660 | 0.680 | 0.670 ± 0.010 | 58.0 |"
    assert lines[3] == ("| GMM rule (DivideMix) | threshold 0.86 | 0.600 | 0.620 | 0.610 ± 0.010 "
                        "| 50.0 |")
    assert lines[4].startswith("| small-loss rule | forget rate 0.69 | 0.550 | 0.570 |")
    assert lines[5].startswith("| cleanlab (confident learning), on the ProMix runs' network 1 "
                               "| nothing to tune | 0.500 | 0.520 | 0.510 ± 0.010 |")
    assert rules_table(cells, "sym:0.5") is None and rules_table(cells[:1], n) is None
    assert "rule" not in ablation_table(cells, n)


def test_claim_metrics_of_a_run_and_added_to_older_cell_files(tmp_path):
    from promix_tutorial.metrics import once_tuned
    from promix_tutorial.results import add_missing_claims, claim_metrics, summarize_run
    from promix_tutorial.engine import train
    cfg = make_config("tiny", "digits", "pairflip:0.4", epochs=3, warmup_epochs=1, lga_start=2)
    hist = train(cfg, tmp_path / "runs" / "promix__pairflip0.4__seed0", progress=False)
    got = claim_metrics(hist)
    last = hist.records[-1]
    assert got["selection_f1"] == last["selection"]["union"]["f1"]
    assert (got["pseudo_acc"], got["pseudo_acc_debiased"]) == (last["pseudo_acc"],
                                                               last["pseudo_acc_debiased"])
    gaps = [100 * (r["pseudo_acc_debiased"] - r["pseudo_acc"]) for r in hist.records
            if r.get("pseudo_acc") is not None]
    assert len(gaps) == 2 and got["pseudo_gain_mean"] == pytest.approx(sum(gaps) / 2, abs=1e-4)
    value, f1 = once_tuned(hist.records, "gmm")
    assert got["once_tuned"]["gmm"] == {"value": value, "f1": round(float(f1[-1]), 5)}
    assert got["cleanlab_f1"] == round(last["baselines"]["cleanlab"]["f1"], 5)
    ce = train(make_config("tiny", "digits", "pairflip:0.4", method="ce", epochs=2),
               tmp_path / "runs" / "ce__pairflip0.4__seed0", progress=False)
    assert claim_metrics(ce) is None
    # an older cell file (no "claims") gains them from its run folder; others stay as they are
    res = tmp_path / "results"
    old = summarize_run(hist, 1.0, "cmd", "data")
    del old["claims"]
    write_cell(res, old)
    short = dict(old, cell="promix__sym0.5__seed0", epochs=2)  # its run folder is missing
    write_cell(res, short)
    assert add_missing_claims(res, tmp_path / "runs") == ["promix__pairflip0.4__seed0"]
    cells = {c["cell"]: c for c in load_cells(res)}
    assert cells["promix__pairflip0.4__seed0"]["claims"] == got
    assert "claims" not in cells["promix__sym0.5__seed0"]
    assert add_missing_claims(res, tmp_path / "runs") == []  # a second call changes nothing
    # claims recorded before pseudo_gain_mean existed are recomputed
    older = {k: v for k, v in got.items() if k != "pseudo_gain_mean"}
    write_cell(res, dict(cells["promix__pairflip0.4__seed0"], claims=older))
    assert add_missing_claims(res, tmp_path / "runs") == ["promix__pairflip0.4__seed0"]
    assert load_cells(res)[0]["claims"] == got
    # and a file without the first ProMix epoch's selection gains it
    first = next(r["selection"]["union"] for r in hist.records if r["phase"] == "promix")
    assert old["first_selection"] == {k: first[k] for k in ("precision", "recall", "f1")}
    write_cell(res, {k: v for k, v in load_cells(res)[0].items() if k != "first_selection"})
    assert add_missing_claims(res, tmp_path / "runs") == ["promix__pairflip0.4__seed0"]
    assert load_cells(res)[0]["first_selection"] == old["first_selection"]


def test_committed_cells_read_the_repositorys_results_files(monkeypatch, tmp_path):
    import promix_tutorial.results as results
    import promix_tutorial.tables as tables
    cells = results.committed_cells("accuracy_cpu")   # the tests run from a checkout
    assert cells and any(c["cell"] == "promix__asym0.4__seed0" for c in cells)
    assert results.committed_cells("no_such_benchmark") is None
    table5 = tables.committed_ablation_table("asym:0.4")   # w/o LGA seed 0 is committed
    assert table5.splitlines()[2].startswith("| ProMix | 69.65 |") and "| w/o LGA |" in table5
    assert tables.committed_ablation_table("sym:0.5") is None   # no ablation cells there
    ci = tables.committed_ablation_table("sym:0.8", results.ABLATION_SEED_RESULTS["ci"])
    assert ci.splitlines()[0].count("| seed ") == 5   # the ci profile's five seeds of every row
    assert sum(line.startswith("| ") for line in ci.splitlines()[2:]) == 7
    monkeypatch.setattr(results, "source_checkout", lambda: None)   # e.g. installed on Colab
    assert results.committed_cells("accuracy_cpu") is None
    fake = tmp_path / "repo"
    write_cell(fake / "benchmarks" / "results" / "accuracy_cpu",
               _cell("ce", "none", "sym:0.5", 0, 0.5, 0.5))
    monkeypatch.setattr(results, "source_checkout", lambda: fake)
    assert [c["cell"] for c in results.committed_cells()] == ["ce__sym0.5__seed0"]
    assert tables.committed_ablation_table("sym:0.5") is None   # a CE cell only
