"""The results: each measurement's statistics, the ratios and targets, and the table printed."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plan import DEFAULT_VARIANT, MIDDLE_CHANGE, TARGETS, VARIANTS

if TYPE_CHECKING:
    from measurements import Record



def stats(values: Sequence[float] | dict[int, float]) -> dict[str, Any]:
    if isinstance(values, dict):
        values = [values[k] for k in sorted(values)]
    values = [v for v in values if v is not None]
    if not values:
        return {"samples": [], "median": None, "min": None, "max": None}
    return {"samples": [round(v, 4) for v in values], "median": round(statistics.median(values), 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def summarise(rec: Record, start: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    samples: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    anomalies: list[str] = []

    def pair(a: dict[int, Any], b: dict[int, Any], fn: Callable[[float, float], float]) -> dict[str, Any]:
        """fn(a, b) for each run that has both, measured side by side."""
        return stats([fn(a[k], b[k]) for k in sorted(a.keys() & b.keys()) if a[k] and b[k] is not None])

    def med(values: dict[int, Any]) -> float:
        return stats(values)["median"]

    for sample, d in rec.data.items():
        s: dict[str, Any] = {"measurements": {k: stats(v) for k, v in d.items()}, "ratios": {}, "variants": {},
                             "busy_runs": rec.busy_runs.get(sample, {})}
        cold = d.get(f"cold:{DEFAULT_VARIANT}", {})
        r = s["ratios"]
        r["warm/cold"] = pair(cold, d.get("warm", {}), lambda c, w: w / c)
        r["action/bare (warm)"] = pair(d.get("bare_warm", {}), d.get("warm", {}), lambda b_, a: a / b_)
        r["action-bare (warm), s"] = pair(d.get("bare_warm", {}), d.get("warm", {}), lambda b_, a: a - b_)
        r["reuse/pull"] = pair(d.get("pull", {}), d.get("reuse", {}), lambda p, u: u / p)
        r["reuse-pull, s"] = pair(d.get("pull", {}), d.get("reuse", {}), lambda p, u: u - p)
        r["reuse/rebuild"] = pair(d.get("rebuild", {}), d.get("reuse", {}), lambda b_, u: u / b_)
        r["noop-pull_present, s"] = pair(d.get("pull_present", {}), d.get("noop", {}), lambda p, n: n - p)
        for variant in VARIANTS:
            if f"cold:{variant}" not in d:
                continue
            v = {k: stats(d.get(f"{k}:{variant}", {})) for k in ("cold", "export", "image_export", "size",
                                                                  "after_change", "after_change_cached",
                                                                  "after_change_total")}
            if variant != DEFAULT_VARIANT:
                for k in ("cold", "export", "size", "after_change"):
                    v[f"{k} vs {DEFAULT_VARIANT}"] = pair(d.get(f"{k}:{DEFAULT_VARIANT}", {}),
                                                          d.get(f"{k}:{variant}", {}), lambda base, x: x / base)
            s["variants"][variant] = v
        # A mode=max cache holds the intermediate stages too: one no bigger than mode=min lost them (someone
        # else's `docker buildx prune` during the build removes finished intermediate results before export).
        sizes_max, sizes_min = d.get(f"size:{DEFAULT_VARIANT}", {}), d.get("size:min-zstd", {})
        for run_no in sorted(sizes_max.keys() & sizes_min.keys()):
            mx, mn = sizes_max[run_no], sizes_min[run_no]
            if mx and mn and mx <= 1.1 * mn:
                anomalies.append(f"{sample}: run {run_no + 1}: the mode=max cache ({mx / 1e6:.0f} MB) is no bigger "
                                 f"than mode=min ({mn / 1e6:.0f} MB): its intermediate layers are missing")
        samples[sample] = s

        if sample == "compute" and r["warm/cold"]["median"] is not None:
            m = r["warm/cold"]["median"]
            targets.append({"name": "compute: warm rebuild <= 0.05 x cold build", "value": m,
                            "limit": TARGETS["warm_over_cold"], "met": m <= TARGETS["warm_over_cold"],
                            "detail": f"warm {med(d['warm']):.2f}s / cold {med(cold):.1f}s"})
        if r["action/bare (warm)"]["median"] is not None:
            ratio, diff = r["action/bare (warm)"]["median"], r["action-bare (warm), s"]["median"]
            met = ratio <= TARGETS["action_over_bare"] or diff <= TARGETS["action_minus_bare_s"]
            targets.append({"name": f"{sample}: action warm <= 1.10 x bare buildx, or within 1 s", "value": ratio,
                            "limit": TARGETS["action_over_bare"], "met": met,
                            "detail": f"action {med(d['warm']):.2f}s vs bare {med(d['bare_warm']):.2f}s, "
                                      f"difference {diff:+.2f}s"})
        if r["reuse/pull"]["median"] is not None:
            m = r["reuse/pull"]["median"]
            targets.append({"name": f"{sample}: unchanged-key write with reuse <= 1.2 x docker pull", "value": m,
                            "limit": TARGETS["reuse_over_pull"], "met": m <= TARGETS["reuse_over_pull"],
                            "detail": f"reuse {med(d['reuse']):.2f}s vs pull {med(d['pull']):.2f}s, "
                                      f"difference {r['reuse-pull, s']['median']:+.2f}s"})
    every_first = [x for values in rec.first_docker.values() for x in values]
    if every_first:
        m = statistics.median(every_first)
        targets.append({"name": "action start: process start to first docker command <= 0.3 s", "value": m,
                        "limit": TARGETS["first_docker_s"], "met": m <= TARGETS["first_docker_s"],
                        "detail": f"median of {len(every_first)} action runs, max {max(every_first):.2f}s"})
    start["first_docker"] = {k: stats(v) for k, v in rec.first_docker.items()}
    start["first_docker_all"] = stats(every_first)
    phases: dict[str, list[float]] = {}
    for run_phases in rec.phases:
        for name, seconds in run_phases:
            phases.setdefault(name, []).append(seconds)
    start["noop_phases"] = {k: stats(v) for k, v in phases.items()}
    return samples, targets, anomalies


def fmt_s(st: dict[str, Any] | None, unit: str = "s") -> str:
    if not st or st.get("median") is None:
        return "-"
    m = st["median"]
    if unit == "MB":
        return f"{m / 1e6:.0f} MB"
    if unit == "x":
        return f"{m:.3f}"
    if unit == "+s":
        return f"{m:+.2f} s"
    return f"{m:.2f} s" if m < 10 else f"{m:.1f} s"


def fmt_range(st: dict[str, Any] | None) -> str:
    if not st or st.get("min") is None or len(st["samples"]) < 2:
        return ""
    return f"{st['min']:.2f}-{st['max']:.2f}" if st["max"] < 10 else f"{st['min']:.1f}-{st['max']:.1f}"


def render(results: dict[str, Any]) -> str:
    m, quiet, out = results["machine"], results["quiet"], []
    runs = results["runs"]
    out.append(f"regcache benchmark, {results['date']}: median of {runs} run(s) (min-max over runs); "
               "ratios: median of the per-run ratios")
    out.append(f"machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}, "
               f"{m['os']}; docker {m['docker']}, {m['buildx']}")
    out.append(f"quiet at start: {'yes' if quiet['quiet'] else 'NO'} (waited {quiet['waited_s']:.0f}s"
               f"{', seen ' + str(len(quiet['seen'])) + ' build/test processes of others' if quiet['seen'] else ''})"
               f"; measurements with others building or testing meanwhile: {len(results['foreign_activity'])}, "
               f"repeated because of them: {len(results['retries'])}; total {results['duration_s'] / 60:.1f} min")
    row = "  {:<58} {:>9} {:>11} {:>5}  {}"
    for sample, s in results["samples"].items():
        me, ra, busy = s["measurements"], s["ratios"], s["busy_runs"]

        def line(label: str, key: str, note: str = "", _me: dict = me, _busy: dict = busy) -> str:
            n = _busy.get(key, 0)
            return row.format(label, fmt_s(_me.get(key)), fmt_range(_me.get(key)), f"{n}/{runs}" if n else "", note)

        dv = DEFAULT_VARIANT
        out += ["", f"{sample} (bench/samples/{sample})", row.format("measurement", "median", "min-max", "busy", "")]
        out.append(line("1 cold build: action, auto push, writes the cache", f"cold:{dv}",
                        f"cache export {fmt_s(me.get(f'export:{dv}'))}, "
                        f"image export {fmt_s(me.get(f'image_export:{dv}'))}"))
        out.append(line("  warm rebuild: action, PR from a fork, clean builder", "warm",
                        f"warm/cold {fmt_s(ra['warm/cold'], 'x')}"))
        out.append(line("2 warm rebuild: bare docker buildx build, same flags", "bare_warm",
                        f"action/bare {fmt_s(ra['action/bare (warm)'], 'x')}, action-bare "
                        f"{fmt_s(ra['action-bare (warm), s'], '+s')}"))
        span, parse = me.get("warm_buildx_span"), me.get("rawjson_parse_s")
        parse_ms = (parse or {}).get("median") or 0.0
        out.append(row.format("  of which its buildx build (echo to summary line)", fmt_s(span), fmt_range(span), "",
                              f"reading the progress alone: {parse_ms * 1000:.1f} ms "
                              f"({(me.get('rawjson_bytes') or {}).get('median') or 0:.0f} bytes)"))
        out.append(line("3 unchanged key, write run: reuse (pulls the image)", "reuse",
                        f"reuse/pull {fmt_s(ra['reuse/pull'], 'x')}, reuse-pull {fmt_s(ra['reuse-pull, s'], '+s')}"))
        out.append(line("  unchanged key, write run: no reuse (cache, export)", "rebuild",
                        f"reuse/no-reuse {fmt_s(ra['reuse/rebuild'], 'x')}"))
        out.append(line("  bare docker pull of the image for the key", "pull"))
        out.append(line("5 whole action, nothing to do (image here already)", "noop",
                        f"action-pull {fmt_s(ra['noop-pull_present, s'], '+s')}"))
        out.append(line("  bare docker pull of an image that is here", "pull_present"))
        fd = results["start"]["first_docker"].get(sample)
        out.append(row.format("  process start to first docker command, all runs", fmt_s(fd), fmt_range(fd), "", ""))
        if len(s["variants"]) > 1:
            out += ["", f"  4 cache settings: cold build (export included), cache export, cache size, image export, "
                    f"and a PR's warm rebuild after {MIDDLE_CHANGE.get(sample)} changed (from the fallback ref);",
                    "    cached: steps cached in that rebuild, run by run / its steps"]
            vrow = "  {:<10} {:>8} {:>8} {:>8} {:>8} {:>13} {:>7} {:>5}  {}"
            out.append(vrow.format("", "cold", "export", "size", "img exp", "after change", "cached", "busy",
                                   f"per-run ratios to {dv}"))
            for variant, v in s["variants"].items():
                vs = ""
                if variant != dv:
                    vs = ", ".join(f"{k} {fmt_s(v[f'{k} vs {dv}'], 'x')}" for k in ("export", "size", "after_change"))
                n = max(busy.get(f"cold:{variant}", 0), busy.get(f"after_change:{variant}", 0))
                cached = v.get("after_change_cached", {}).get("samples")
                total = v.get("after_change_total", {}).get("median")
                out.append(vrow.format(variant, fmt_s(v["cold"]), fmt_s(v["export"]), fmt_s(v["size"], "MB"),
                                       fmt_s(v["image_export"]), fmt_s(v["after_change"]),
                                       f"{','.join(str(c) for c in cached)}/{total}" if cached else "-",
                                       f"{n}/{runs}" if n else "", vs))
    st = results["start"]
    out += ["", "action start (5): the pieces, measured alone"]
    for name in ("python -c pass", "python -m regcache --version", "docker info --format", "docker buildx inspect"):
        out.append(row.format(f"  {name}", fmt_s(st[name]), fmt_range(st[name]), "", ""))
    for module, v in st["imports"].items():
        out.append(row.format(f"  import {module} (-X importtime)", fmt_s(v), fmt_range(v), "", ""))
    out.append("  'nothing to do', median seconds per phase (a `$ docker` line until the next log line):")
    phases = sorted(st["noop_phases"].items(), key=lambda kv: -(kv[1]["median"] or 0))
    text = ", ".join(f"{name} {v['median']:.3f}" for name, v in phases)
    while text:
        cut = text.rfind(", ", 0, 110) if len(text) > 110 else len(text)
        out.append("    " + text[:cut])
        text = text[cut + 2:]
    out += ["", "targets"]
    for t in results["targets"]:
        out.append(f"  {'✓' if t['met'] else '✗'} {t['name']}: {t['value']:.3f} (limit {t['limit']}; {t['detail']})")
    if results["anomalies"]:
        out += ["", "anomalies (a run did not do what its measurement assumes; details in the JSON)"]
        out += [f"  ! {a}" for a in results["anomalies"]]
    return "\n".join(out) + "\n"


# -- main ---------------------------------------------------------------------------------------------------
