"""Rewrite the generated tables of docs/capacity.md and the README's headline figures.

    .venv/bin/python -m bench.capacity.doc [--runs N]     (or: make capacity-doc)

Measures the conversation N times (default 3), keeps the run whose polling total is
the median, and writes what `python -m bench capacity.cost_model` and `python -m bench
capacity.scale_model` print for it between the `<!-- capacity:NAME -->` and
`<!-- /capacity:NAME -->` markers. Nothing between markers is typed by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from bench.capacity import cost_model, scale_model

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "capacity.md"
README = ROOT / "README.md"


def _block(lines: list[str]) -> str:
    return "```\n" + "\n".join(line.rstrip() for line in lines) + "\n```"


def replace_blocks(text: str, blocks: dict[str, str]) -> str:
    """Put each block between its markers; a marker missing from `text` is an error."""
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- capacity:{name} -->\n).*?(\n<!-- /capacity:{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"no <!-- capacity:{name} --> ... <!-- /capacity:{name} --> markers")
        text = pattern.sub(lambda match, body=body: match.group(1) + body + match.group(2), text)
    return text


def _median_run(runs: int) -> tuple[cost_model.CostReport, list[float], list[float]]:
    workload = cost_model.load_workload()
    reports = []
    for n in range(runs):
        print(f"measuring the conversation, run {n + 1} of {runs}", file=sys.stderr, flush=True)
        reports.append(cost_model.report(cost_model.measure(workload, fresh=True)))
    polling = [sum(r.per_thousand(r.polling).values()) for r in reports]
    push = [sum(r.per_thousand(r.push).values()) for r in reports]
    median = sorted(range(runs), key=polling.__getitem__)[runs // 2]
    return reports[median], polling, push


def headline(cost: cost_model.CostReport, scale: scale_model.ScaleReport) -> list[str]:
    polling = sum(cost.per_thousand(cost.polling).values())
    push = sum(cost.per_thousand(cost.push).values())
    model = cost.model_per_thousand()
    lines = [
        f"- Infrastructure per 1,000 conversations ({cost.prices.region}, list prices of "
        f"{cost.prices.taken_on}): **${polling:.2f} with polling** (the web page without a WebSocket), "
        f"**${push:.2f} with push** (the web page on its WebSocket, as built); the model's own tokens add "
        f"${model:.2f} ({cost.prices.model_name}), {model / (model + polling):.0%} of the total.",
    ]
    for s in scale.scales:
        parts = []
        for mode in ("polling", "push"):
            row = s.first(mode)
            verb = "hits" if row.use(mode) >= 1 else "stays under"
            parts.append(f"{mode} {verb} the {row.limit.name} ({row.use(mode):.0%})")
        quotas = [row for row in s.rows if row.limit.kind != "setting"]
        after = max(quotas, key=lambda row: max(row.use("polling"), row.use("push")))
        lines.append(
            f"- {scale_model.users_label(s.users)} users, busiest second: {', '.join(parts)}; "
            f"with the settings raised, next is {after.limit.name} ({after.use('polling'):.0%} polling, "
            f"{after.use('push'):.0%} push)."
        )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="conversations measured; the median one is kept")
    args = parser.parse_args(argv)
    cost, polling_totals, push_totals = _median_run(max(1, args.runs))
    print("simulating the populations", file=sys.stderr, flush=True)
    scale = scale_model.report(cost.measurement)
    runs = (
        f"median of {len(polling_totals)} runs; totals per run, polling: "
        + ", ".join(f"${t:.2f}" for t in polling_totals)
        + "; push: "
        + ", ".join(f"${t:.2f}" for t in push_totals)
    )
    blocks = {
        "cost": _block([*cost_model.describe(cost), "", *cost_model.cost_table(cost), "", f"({runs})"]),
        "quantities": _block(cost_model.quantity_table(cost)),
        "steps": _block(cost_model.step_table(cost.measurement)),
        "population": _block([*scale_model.describe(scale), "", *scale_model.population_table(scale)]),
        "limits": "\n\n".join(
            f"{scale_model.users_label(s.users)} users, the busiest second of the peak hour:\n\n"
            + _block(scale_model.limits_table(s))
            for s in scale.scales
        ),
        "first": _block(scale_model.first_limits(scale)),
        "headline": "\n".join(headline(cost, scale)),
    }
    DOC.write_text(replace_blocks(DOC.read_text(), blocks))
    README.write_text(replace_blocks(README.read_text(), {"headline": blocks["headline"]}))
    print(f"rewrote {DOC.relative_to(ROOT)} and the headline in {README.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
