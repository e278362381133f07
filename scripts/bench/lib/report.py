#!/usr/bin/env python3
"""Aggregates the scenario runs of scripts/bench.sh: prints the table and writes the markdown.

Usage: report.py RESULTS_TSV META_JSON OUT_MD
RESULTS_TSV lines (tab-separated): scenario, run, kind, then the fields of the scenario's line:
  RESULT  metric value unit          a measured figure
  CPU     metric eventmill= redis= postgres=   microseconds per event (or job)
  TARGET  metric op value            op is >= or <= (SPEC 14's target for that metric)
  CEILING metric ceiling-metric      print metric as a fraction of ceiling-metric's median
  LOAD    load1                      load average sampled while the run measured
A metric `<x>.eventmill` with a sibling `<x>.bullmq` (Node BullMQ) or `<x>.bullmq_rs` (bullmq-official,
the Rust port) also gets a ratio row `<x>.ratio` / `<x>.ratio_rs`.
"""
import json
import statistics
import sys
from collections import defaultdict, OrderedDict


def fmt(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def main():
    results_path, meta_path, out_path = sys.argv[1:4]
    meta = json.load(open(meta_path))
    values = OrderedDict()  # metric -> [(run, value)]
    units, scenario_of = {}, {}
    cpu = defaultdict(list)
    # SPEC 14 targets of metrics whose scenarios print no TARGET line (a TARGET line overrides).
    targets = {"jobs.pickup.p95.eventmill": ("<=", 5.0), "jobs.noop.c1.ratio": (">=", 1.0),
               "jobs.noop.c50.ratio": (">=", 1.0)}
    ceilings = {}
    loads = defaultdict(list)
    for line in open(results_path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 4:
            continue
        scenario, run, kind, fields = parts[0], parts[1], parts[2], parts[3].split()
        try:
            if kind == "RESULT" and len(fields) >= 2:
                value = float(fields[1])
                values.setdefault(fields[0], []).append((run, value))
                units[fields[0]] = fields[2] if len(fields) > 2 else ""
                scenario_of[fields[0]] = scenario
            elif kind == "CPU" and len(fields) >= 4:
                d = dict(f.split("=", 1) for f in fields[1:])
                cpu[fields[0]].append(tuple(float(d.get(k, "nan")) for k in ("eventmill", "redis", "postgres")))
            elif kind == "TARGET" and len(fields) == 3:
                targets[fields[0]] = (fields[1], float(fields[2]))
            elif kind == "CEILING" and len(fields) == 2:
                ceilings[fields[0]] = fields[1]
            elif kind == "LOAD":
                loads[scenario].append(float(fields[0]))
        except ValueError:
            continue

    med = {m: statistics.median([v for _, v in vs]) for m, vs in values.items()}
    rows = []
    for metric, vs in values.items():
        nums = [v for _, v in vs]
        target, met = "", ""
        if metric in targets:
            op, t = targets[metric]
            target = f"{op} {fmt(t)}"
            met = "yes" if (med[metric] >= t if op == ">=" else med[metric] <= t) else "**no**"
        cpu_text = ""
        if cpu.get(metric):
            c = [statistics.median(x[i] for x in cpu[metric]) for i in range(3)]
            cpu_text = f"{fmt(c[0])} / {fmt(c[1])} / {fmt(c[2])}"
        frac = ""
        if metric in ceilings and med.get(ceilings[metric]):
            frac = f"{med[metric] / med[ceilings[metric]]:.0%} of {ceilings[metric]}"
        rows.append([metric, fmt(med[metric]), f"{fmt(min(nums))}-{fmt(max(nums))}", str(len(nums)),
                     units[metric], target, met, cpu_text, frac])
    for metric in values:
        if metric.endswith(".eventmill"):
            base = metric[: -len(".eventmill")]
            for other, ratio, unit in ((".bullmq", ".ratio", "eventmill / BullMQ (Node)"),
                                       (".bullmq_rs", ".ratio_rs", "eventmill / bullmq-official (Rust)")):
                if med.get(base + other) and base + ratio not in values:
                    rows.append([base + ratio, f"{med[metric] / med[base + other]:.2f}", "", "", unit, "", "", "", ""])

    header = ["metric", "median", "min-max", "runs", "unit", "target", "met",
              "CPU us/unit eventmill (jobs: the worker) / Redis / PostgreSQL",
              "of ceiling"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))
    print(line(header))
    for r in rows:
        print(line(r).replace("**", ""))

    md = [f"# Benchmarks", "",
          f"Written by `{meta['command']}` on {meta['date']} (git `{meta['commit']}`). Do not edit by hand: re-run it.", "",
          "## Machine", "",
          f"- {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['mem_gb']} GB memory, {meta['kernel']}",
          f"- {meta['redis']}, {meta['postgres']}; everything (clients included) on this one machine",
          "- load average (1 min) while measuring, per scenario: " +
          ", ".join(f"{s} {statistics.median(v):.2f} (max {max(v):.2f})" for s, v in loads.items()),
          "- the machine is shared with other builds: compare figures of one run (ratios), not across runs", "",
          "## Results", "",
          f"Each scenario ran {meta['runs']} time(s); the median is shown with the spread of the runs. CPU is the median of "
          "the runs' CPU time per unit (event, row or job) read from /proc, for the eventmill server processes, "
          "redis-server and all PostgreSQL processes; the load clients are not counted. For the job rows the "
          "first figure is the worker process of that row's system (eventmill, node or the bullmq-official "
          "program).", "",
          "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md += ["", "## Runs", "", "| metric | value per run |", "|---|---|"]
    md += [f"| {m} | {', '.join(fmt(v) for _, v in vs)} |" for m, vs in values.items()]
    md += ["", "## Commands", "", "```", meta["command"], "```", "",
           "Scenario scripts (each one run, against the services the driver started):", ""]
    md += [f"- `{s}`" for s in meta["scenarios"]]
    notes = meta.get("notes")
    if notes:
        md += ["", open(notes).read().rstrip()]
    open(out_path, "w").write("\n".join(md) + "\n")


main()
