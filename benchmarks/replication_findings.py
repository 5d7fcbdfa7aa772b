"""Each finding of PAPER.md §6 as a rule over the runs, marked reproduced or not, with numbers.

A difference counts only when it exceeds twice its standard error over seeds
(2 * sqrt(s_a^2 / n + s_b^2 / n)); "matches" allows a gap of at most max(1 point, that noise).
A finding is inconclusive when none of the arms it compares rises above the majority baseline
by more than max(1 point, twice its standard error): models that learned nothing all "match".
"""

from __future__ import annotations

import math
import statistics

from common import table
from replication_runs import Results, Run, Settings
from replication_tables import mean_std, scores


def _gap(a: list[float], b: list[float]) -> tuple[float, float]:
    """(mean a - mean b, twice the standard error of that difference)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return ma - mb, 2 * math.sqrt(sa**2 / len(a) + sb**2 / len(b))


def _avg(runs: list[Run]) -> list[float]:
    return scores(runs)


def _learned(values: list[float], baseline: float) -> bool:
    """Whether an arm's mean beats the no-model baseline by more than max(1, 2 standard errors)."""
    mean, std = mean_std(values)
    return mean - baseline > max(1.0, 2 * std / math.sqrt(len(values)))


def findings(results: Results, settings: Settings) -> list[list[str]]:
    t1, rows = results["table1"], []
    floor = results["baseline"]["image"][0]
    adapter, full = _avg(t1["single-adapter"]), _avg(t1["full-ft"])

    def row(finding: str, paper: str, ours: str, rule: str, ok: bool | None, *arms: list[float], baseline=None) -> None:
        baseline = floor.score if baseline is None else baseline
        if ok is None:
            verdict = "not tested"
        elif not any(_learned(arm, baseline) for arm in arms):
            verdict = f"inconclusive: no arm above the baseline ({baseline:.1f})"
        else:
            verdict = "**reproduced**" if ok else "not reproduced"
        rows.append([finding, paper, ours, rule, verdict])

    gap, noise = _gap(adapter, full)
    row("a single shared adapter matches full fine-tuning", "77.4 vs 77.6 (-0.2)",
        f"{statistics.fmean(adapter):.1f} vs {statistics.fmean(full):.1f} ({gap:+.1f}, noise {noise:.1f})",
        "adapter >= full FT - max(1, noise)", gap >= -max(1.0, noise), adapter, full)  # fmt: skip
    if "nlvr2" in settings.tasks:
        a, b = scores(t1["single-adapter"], "nlvr2"), scores(t1["multiple-adapters"], "nlvr2")
        gap, noise = _gap(a, b)
        row("sharing helps the low-resource task (NLVR2)", "single 74.2 vs multiple 69.8 (+4.4)",
            f"{statistics.fmean(a):.1f} vs {statistics.fmean(b):.1f} ({gap:+.1f}, noise {noise:.1f})",
            "single - multiple > noise", gap > noise, a, b, baseline=floor.task_scores["nlvr2"])  # fmt: skip
    else:
        row("sharing helps the low-resource task (NLVR2)", "+4.4", "NLVR2 not in --tasks", "", None)
    prompt = _avg(t1["single-prompt"])
    gap, noise = _gap(adapter, prompt)
    row("prompt tuning is far behind", "59.0 vs adapter 77.4 (-18.4)",
        f"{statistics.fmean(prompt):.1f} vs adapter {statistics.fmean(adapter):.1f} ({-gap:+.1f}, noise {noise:.1f})",
        "adapter - prompt > max(5, noise)", gap > max(5.0, noise), adapter, prompt)  # fmt: skip
    with_ln, without_ln = _avg(t1["vl-ln"]), _avg(t1["vl-only"])
    gap, noise = _gap(with_ln, without_ln)
    row("updating LayerNorms is essential", "V->L + LN 62.9 vs V->L only 47.1 (+15.8)", f"{gap:+.1f} (noise {noise:.1f})",
        "LN - no LN > noise", gap > noise, with_ln, without_ln)  # fmt: skip
    trained, frozen = _avg(results["clip"]["CLIP trained + LM trained"]), _avg(results["clip"]["CLIP frozen + LM trained"])
    gap, noise = _gap(trained, frozen)
    row("freezing CLIP costs about a point", "65.6 trained vs 64.7 frozen (+0.9, VQA)",
        f"{gap:+.1f} for training CLIP (noise {noise:.1f})", "0 < trained - frozen <= 3", 0 < gap <= 3, trained, frozen)  # fmt: skip
    vlp = results["vlp"]
    adapter_vlp, full_vlp = _avg(vlp["single-adapter, VL pretraining"]), _avg(vlp["full-ft, VL pretraining"])
    gain, gain_noise = _gap(adapter_vlp, adapter)
    lead, lead_noise = _gap(adapter_vlp, full_vlp)
    row("VL pretraining makes adapters even stronger", "adapter 77.4 -> 79.2; beats full FT 78.5 with it",
        f"adapter {gain:+.1f} with VLP (noise {gain_noise:.1f}); adapter - full FT with VLP {lead:+.1f} (noise {lead_noise:.1f})",
        "gain > noise and adapter >= full FT - max(1, noise)", gain > gain_noise and lead >= -max(1.0, lead_noise),
        adapter_vlp, full_vlp, adapter)  # fmt: skip
    return rows


def findings_section(results: Results, settings: Settings) -> str:
    rows = findings(results, settings)
    count = sum(r[-1] == "**reproduced**" for r in rows)
    inconclusive = sum(r[-1].startswith("inconclusive") for r in rows)
    tested = sum(r[-1] != "not tested" for r in rows) - inconclusive
    return "\n".join([
        "## Findings of PAPER.md §6",
        "",
        f"{count} of {tested} conclusive findings reproduced in this run ({inconclusive} inconclusive). "
        + " ".join(__doc__.split("\n\n")[1:]).replace("\n", " "),
        "",
        table(["finding", "paper", "this run", "rule", "verdict"], rows, align="lllll"),
        "",
    ])  # fmt: skip
