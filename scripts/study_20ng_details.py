"""Numbers docs/meta-study.md quotes beyond the tables, read from a finished study's store.

Prints, per problem: how many pairs MTL helps by mean gain, and how single- and multi-task F1
compare at epochs 5, 20, 50 and 100 (Figure 4); for RELATED the relative gains by the main
task's top-level topic groups (Figure 5); and how Table 3 agrees with the paper (Spearman of the
inverse ranks, sign agreement of the coefficients).

Usage:
    python scripts/study_20ng_details.py [runs/study-20ng]
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from textmtl.meta.store import RunStore
from textmtl.meta.study import StudySettings, collect_outcomes, load_runs, plan_study


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/study-20ng")
    settings = StudySettings()
    plan = plan_study(settings)
    with RunStore(out / "study.sqlite") as store:
        outcomes = collect_outcomes(plan, settings, load_runs(plan, store))
    for problem, pairs in outcomes.items():
        gains = np.array([o.gain for o in pairs])
        print(f"{problem}: MTL helps {(gains > 0).sum()} of {len(pairs)} pairs by mean gain "
              f"(mean gain {gains.mean():+.4f})")
        for epoch in (5, 20, 50, 100):
            single = np.array([o.single_curve[epoch] for o in pairs])
            multi = np.array([o.mtl_curve[epoch] for o in pairs])
            print(f"  epoch {epoch:3d}: single {single.mean():.4f}, multi {multi.mean():.4f}, "
                  f"multi ahead on {np.mean(multi > single):.1%} of pairs")
    groups: dict[str, list[float]] = defaultdict(list)
    for o in outcomes["related"]:
        groups[f"{o.main[0].split('.')[0]} vs {o.main[1].split('.')[0]}"].append(100 * o.relative_gain)
    print("related: relative gain (%) by the main task's topic groups")
    for name, values in groups.items():
        print(f"  {name}: mean {np.mean(values):+.2f}, range {min(values):+.2f} to {max(values):+.2f}, "
              f"helped {sum(v > 0 for v in values)} of {len(values)}")
    ranks = list(csv.DictReader(open(out / "table3_related_ranks.csv", encoding="utf-8")))
    rho = spearmanr([float(r["paper inverse rank"]) for r in ranks], [float(r["our inverse rank"]) for r in ranks])
    print(f"Table 3a: Spearman of paper vs our inverse ranks over the paper's rows: {rho.statistic:+.2f}")
    rows = list(csv.DictReader(open(out / "table3_unrelated_coefficients.csv", encoding="utf-8")))
    agree = [(float(r["paper coefficient"]) > 0) == (float(r["our coefficient"]) > 0) for r in rows]
    strong = [a for a, r in zip(agree, rows) if abs(float(r["paper coefficient"])) >= 0.3]
    print(f"Table 3b: same sign on {sum(agree)} of {len(rows)} rows, {sum(strong)} of the {len(strong)} "
          f"with |paper coefficient| >= 0.3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
