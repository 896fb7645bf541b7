"""A plain-text summary of a run: budget and ledger, top trials, failures, final test result."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import optuna

from budgetnas.errors import BudgetNASError, plural
from budgetnas.search.config import SearchConfig
from budgetnas.search.budget import Spent, dollars
from budgetnas.search.records import (NETWORK_IO_KEY, UNAFFORDABLE_REASON, TrialView, final_candidates,
                                      final_epochs_trained, final_gap_note, final_partials, pareto, ranked,
                                      record_of, spent_of, status_of)
from budgetnas.spaces import create_space


def _fmt_params(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.3f}M"


def _fmt_count(n: float) -> str:
    """A count in three significant figures with its suffix: 34.2k, 9.3M, 1.2G (the tiny proxies'
    networks read "0.0M MACs" in millions)."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.3g}"


def format_summary(study: optuna.Study, config: SearchConfig, *, top: int = 10,
                   run_dir: Path | None = None) -> str:
    """The table ``budgetnas show`` prints."""
    metric = config.metric
    spent = spent_of(study)
    trials = study.get_trials(deepcopy=False)
    counts = Counter(status_of(t) for t in trials)
    lines = []
    lines.append(f"run: {run_dir or config.run_dir}   data: {config.data}   space: {config.space} "
                 f"(search C={config.C} N={config.N}, final C={config.final_C} N={config.final_N})")
    probe_s = float((study.user_attrs.get("probe") or {}).get("device_seconds", 0.0))
    final_s = float((study.user_attrs.get("final_spent") or {}).get("device_seconds", 0.0))
    # (trials marked running in a local run no process holds were cut off: "1 more running" was
    # said of a dead process, the state line below saying it had ended: a review, 2026-12-07)
    local = run_dir is not None and config.storage is None
    holder = _lock_holder(run_dir) if local else None  # (read once: the cut-off trials and the final line)
    cut = local and counts.get("running", 0) > 0 and holder is None
    live = holder is not None if local else counts.get("running", 0) > 0
    lines.append(_left_line(config, spent, final_s, counts.get("running", 0), cut))
    price = study.user_attrs.get("price") or {}
    # (the rate the costs are at: a --max-cost on a CPU was priced by the cpu preset, said only by
    # --dry-run, a user review found, 2026-12-06)
    rates = price.get("rates") or ([price["per_hour"]] if "per_hour" in price else [])
    if len(rates) > 1:
        rate = f" (at {' and '.join(money(r) + '/h' for r in rates)}: sessions paid at different rates)"
    elif rates and rates[0] == price.get("per_hour"):
        rate = f" (at {money(rates[0])}/h on {price.get('device')}: {price.get('source')})"
    else:
        rate = f" (at {money(rates[0])}/h)" if rates else ""
    lines.append(f"spent: {plural(spent.trials, 'trial')}, {spent.device_seconds:.1f} device-s, {money(spent.cost)}"
                 f"{rate}, {spent.wall_seconds:.0f} s of search wall time")
    # (trials cut off and resumed by a retry have no row below: their seconds were counted but
    # nowhere shown, so the rows did not add up to this line: review D, 2026-12-07)
    cut_off = [TrialView.of(t).device_seconds for t in trials if status_of(t) == "interrupted"]
    cut_s = f" ({sum(cut_off):.1f} of them in {plural(len(cut_off), 'trial')} cut off, resumed by a retry)" \
        if sum(cut_off) >= 0.05 else ""
    lines.append(f"  device-s: {spent.device_seconds - probe_s - final_s:.1f} in trials{cut_s}, {probe_s:.1f} in "
                 f"timing probes, {final_s:.1f} in final training")
    # (a cut trial said "1 running" beside "1 cut off, to resume" above: review G, 2026-12-07)
    shown = {("cut off" if cut and k == "running" else k): v for k, v in counts.items()}
    lines.append("trials: " + (", ".join(f"{v} {k}" for k, v in sorted(shown.items())) or "none yet")
                 + (" (unstarted: proposed but never trained, as the budget could not pay for them or the process "
                    "stopped while proposing; not paid)"
                    if counts.get("unstarted") else ""))
    if run_dir is not None and config.storage is None:
        lines.append(f"state: {run_state(run_dir, counts.get('running', 0), spent, standing_refusal(study, spent))}")
    elif config.storage is not None:  # (no run lock to read: its workers say they live by their heartbeats)
        lines.append(f"state: {shared_state(counts.get('running', 0), study)}")
    # A cache hit repeats its source, unless it is another cell of the same function (the one without
    # dead convolutions wins the tie: fewer parameters), the final model's or on the Pareto front:
    # those were hidden, the final model and front members named in lines with no row (a review,
    # 2026-12-07)
    source = {t.number: t.user_attrs.get("cache_of") for t in trials}
    arch_of = {t.number: record_of(t).get("arch") for t in trials}
    front = set(pareto(study))
    keep = front | {int((study.user_attrs.get("final") or {}).get("trial", -1))}
    rows = [r for r in ranked(study, metric) if r.status != "cached" or r.number in keep
            or arch_of.get(source.get(r.number)) != r.arch][:top]
    if rows:
        lines.append("")
        # (the three metrics always, in one order; the one the search ranks by is marked ^)
        heads = [f"{h}{'^' if k == metric else ''}" for k, h in (("accuracy", "accuracy"),
                                                               ("balanced_accuracy", "bal_acc"), ("macro_f1", "macro_f1"))]
        # ("params": the final network's, as finetune says: not the searched proxy's, review G)
        lines.append(f"{'#':>4}  {heads[0]:>10}  {heads[1]:>8}  {heads[2]:>9}  {'final params':>12}  "
                     f"{'dev-s':>7}  {'cost':>9}  architecture")
        for r in rows:
            lines.append(_row(r, metric, front, source.get(r.number)))
        lines.append(f"^ the metric the search ranks by ({metric}, on the validation split)")
        if front:
            lines.append(f"* on the Pareto front of {' vs '.join(config.objectives)} "
                         f"({len(front)} trial(s): {', '.join(f'#{n}' for n in sorted(front)[:12])})")
    # (pruned trials had no row and no line: their seconds were in "in trials" and nowhere else:
    # review G, 2026-12-07)
    pruned = [TrialView.of(t) for t in trials if status_of(t) == "pruned"]
    if pruned:
        lines.append("pruned (stopped early by the pruner, not ranked): "
                     f"{', '.join(f'#{r.number}' for r in pruned[:12])}{', ...' if len(pruned) > 12 else ''}, "
                     f"{sum(r.device_seconds for r in pruned):.1f} device-s")
    failed = [TrialView.of(t) for t in trials if status_of(t) == "failed"]
    if failed:
        lines.append("")
        lines.append("failed trials:" if len(failed) <= 5 else f"failed trials (the last 5 of {len(failed)}):")
        for r in failed[-5:]:
            lines.append(f"  #{r.number}: {r.reason}")
    rejected = [t for t in trials if status_of(t) == "rejected"]
    if rejected:
        unpaid = sum(str(t.user_attrs.get("reason", "")).startswith(UNAFFORDABLE_REASON) for t in rejected)
        parts = ([f"{len(rejected) - unpaid} over max_params"] if len(rejected) > unpaid else []) + \
            ([f"{unpaid} whose final training the budget could not pay"] if unpaid else [])
        lines.append("")
        lines.append(f"rejected before training, at no cost: {', '.join(parts)}")
    final = study.user_attrs.get("final")
    if final:
        m = final.get("test_metrics", {})
        lines.append("")
        lines.append(
            f"final: trial #{final['trial']} retrained {final_epochs_trained(final)}"
            f"{' (shortened to end within the budget)' if final.get('shortened') else ''} on {final['train_images']} "
            f"images, {_fmt_params(final.get('params'))} params, {_fmt_count(final.get('macs', 0))} MACs "
            f"at {final.get('resolution')}px, {final['device_seconds']:.1f} device-s ({money(final['cost'])})"
            + (f", forecast {final['forecast_seconds']:.1f} s" if final.get("forecast_seconds") else ""))
        if final.get("test_images"):
            lines.append(
                f"test ({plural(final['test_images'], 'image')}): accuracy {m.get('accuracy', 0):.4f}, balanced "
                f"accuracy {m.get('balanced_accuracy', 0):.4f}, macro-F1 {m.get('macro_f1', 0):.4f}")
        else:
            lines.append("test: no test set was held out (evaluate the model on your own test data)")
        gap = _final_gap(final, trials, config)
        if gap is not None:
            lines.append(f"warning: {gap}")
        lines.append(f"architecture: {final['arch']}")
        for e in final.get("earlier", []):
            acc = (e.get("test_metrics") or {}).get("accuracy")
            lines.append(f"replaced, kept in {e['dir']}: trial #{e.get('trial')}, {plural(e.get('epochs') or 0, 'epoch')}"
                         + (f", test accuracy {acc:.4f}" if acc is not None else ""))
        note = overtaken_note(study, config)
        if note is not None:
            lines.append(note)
    else:  # (a run without a final model said nothing of it: review G, 2026-12-07)
        lines.append("")
        lines.append(_no_final_line(study, config, run_dir, spent, live))
    transfer = read_transfer(run_dir)
    if transfer is not None:
        lines.append("")
        lines.extend(_transfer_lines(transfer, run_dir))
    return "\n".join(lines)


def _final_gap(final: dict, trials: list, config: SearchConfig) -> str | None:
    """final_gap_note for the study's final model, with its trial's validation scores (read from the
    trial for final models recorded before they were kept in the record)."""
    search, epochs = final.get("search_metrics"), final.get("search_epochs")
    if search is None:
        trial = next((TrialView.of(t) for t in trials if t.number == final.get("trial")), None)
        search, epochs = (trial.metrics, trial.epochs) if trial is not None else (None, None)
    return final_gap_note(final, search, config.metric, trial_epochs=epochs, search_network=(config.C, config.N))


def _lock_holder(run_dir: Path) -> str | None:
    from budgetnas.search.study import RunLock

    return RunLock.holder(run_dir)


def _left_line(config: SearchConfig, spent: Spent, final_s: float, running: int = 0, cut: bool = False) -> str:
    """The budget: each limit in its own unit, used of the limit and what is left (the time limit
    counts the final trainings' time as the search does, beside the search's own wall time).
    Trials count when they end: those ``running`` are said beside them (they hold their slots)."""
    parts = []
    if config.max_trials:
        parts.append(f"{spent.trials} of {plural(config.max_trials, 'trial')}"
                     + (f" ({running} cut off, to resume)" if running and cut else
                        f" ({running} more running)" if running else ""))
    # (an overrun says so: "$0.0016 of $0.0016 ($0 left)" hid one of 1.5 %: review D, 2026-12-07)
    if config.max_time:
        used = spent.wall_seconds + final_s
        over = used - config.max_time
        parts.append(f"{used:.0f} of {config.max_time:.0f} s wall ("
                     + (f"{over:.1f} s over)" if over > 0.05 else f"{max(-over, 0):.0f} s left)"))
    if config.max_device_hours:
        limit = config.max_device_hours * 3600
        over = spent.device_seconds - limit
        parts.append(f"{spent.device_seconds:.1f} of {limit:.1f} device-s ("
                     + (f"{over:.1f} over)" if over >= 0.05 else f"{max(-over, 0):.1f} left)"))
    if config.max_cost:
        over = spent.cost - config.max_cost
        parts.append(f"{money(spent.cost)} of {money(config.max_cost)} ("
                     + (f"{money(over)} over)" if over > 1e-3 * config.max_cost else f"{money(max(-over, 0))} left)"))
    return "budget used: " + "; ".join(parts) if parts else "budget: no limit set"


def _no_final_line(study: optuna.Study, config: SearchConfig, run_dir: Path | None, spent: Spent,
                   live: bool) -> str:
    """What `show` says of a run without a final model: why, and what would make one. ``live``:
    a process searches in it now (a local run's trials marked running with none were cut off)."""
    cut_final = sum(final_partials(study).values())
    if live:
        return "final: none yet (the search is running: trained when it ends)"
    if cut_final > 0:
        return (f"final: none yet: a final training was cut off after {cut_final:.1f} device-s; run the same "
                "command to finish it (from its checkpoint)")
    if standing_refusal(study, spent):
        return "final: none (the last session was refused: see its state above)"
    if not config.final_training:
        return "final: none (--no-final): run the search again without --no-final to train and test the best cell"
    summary = current_summary(Path(run_dir), spent) if run_dir is not None else None
    if summary and summary.get("stop_reason"):  # (the budget could not pay it, no trial finished...)
        return f"final: none (the last session ended so: {summary['stop_reason']})"
    return "final: none yet (trained when the search ends)"


def read_transfer(run_dir: Path | None) -> dict | None:
    """A finetune run's ``transfer.json`` (written at the end of each finetune session), or None."""
    path = None if run_dir is None else Path(run_dir) / "transfer.json"
    if path is None or not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # (a broken file: show summarises the study regardless)


def _transfer_lines(t: dict, run_dir: Path | None) -> list[str]:
    """What ``show`` says of a finetune run: the benchmark's ranking against the one measured."""
    rows = t.get("rows") or []
    done = [r for r in rows if r.get("measured") is not None]
    oracle = " (TEST ORACLE: benchmark test accuracy)" if t.get("test_oracle") else ""
    head = (f"finetune ({t.get('mode')}): {len(rows)} NB201 cells by {t.get('dataset')} "
            f"{t.get('bench_metric')}{oracle}, {len(done)} trained")
    if t.get("rho") is None:
        rho = "Spearman rho not measured (fewer than 3 cells trained, or all scored alike)"
    else:
        p = t.get("rho_p_value")
        rho = f"Spearman rho {t['rho']:.3f} over {len(done)} cells" + (f" (permutation p = {p:.2g})" if p is not None else "")
    out = [head, f"  {rho}"]
    out += [f"  caution: {c}" for c in t.get("caveats") or []]
    out.append(f"  the table, cell by cell: {Path(run_dir or '.') / 'transfer.json'} (as of the last finetune session)")
    return out


def current_summary(run_dir: Path, spent: Spent) -> dict | None:
    """The run's ``summary.json`` if it describes the study as it is (``spent`` is the study's
    ledger now); None when it is missing or unreadable, or when a later session changed the study
    and ended without writing its own (killed with SIGKILL, or the machine lost): its numbers and
    stop reason would be those of an earlier session."""
    import json

    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    written = summary.get("spent") or {}
    try:
        same = (int(written.get("trials", -1)) == spent.trials
                and math.isclose(float(written.get("device_seconds", -1.0)), spent.device_seconds,
                                 rel_tol=1e-9, abs_tol=1e-6))
    except (TypeError, ValueError):
        same = False
    return summary if same else None


def shared_state(running: int, study: optuna.Study) -> str:
    """A shared study's state, as `show` and `show --json` say it: the study alone tells whether
    its workers are training (there is no run lock to read), and whether a final training has
    trained part of its schedule (it runs now, or was cut off: the study said "no trial running",
    as if the search were done but untested, while a worker trained the final model: a review,
    2026-12-06)."""
    if running:
        return (f"shared study: {plural(running, 'trial')} running now (a worker silent longer than its heartbeat "
                "grace is re-queued); the search's wall time is counted when each session ends")
    partial = sum(_unfinished_finals(study).values())
    return "shared study: no trial running now" + (
        f"; a final training has trained {partial:.1f} device-s and not finished (on a worker now, or cut off: "
        "`budgetnas search` on this study resumes it)" if partial else "")


def _unfinished_finals(study: optuna.Study) -> dict[str, float]:
    """The device seconds of each final training cut off (or running now), while the study has no
    final model yet; none once it has one (a final training cut off and then superseded by a
    tested final model of other settings keeps its record, and is no training "not finished")."""
    return {} if study.user_attrs.get("final") else final_partials(study)


def json_summary(study: optuna.Study, config: SearchConfig, run_dir: Path) -> dict:
    """What ``budgetnas show --json`` prints, for a run directory and for ``--storage`` alike: the
    run's ``summary.json`` when it describes the study as it is now (a shared study's run
    directory may be on another machine); else the same fields read from the study (the best
    trial so far, the test result of its final model if trained, the ledger), ``stop_reason``
    None: it is in summary.json alone. Both have the run's ``status`` and ``state``, and
    ``final``: the final model's record (its trial, cell, epochs, whether shortened, params,
    test result), with ``overtaken`` where a later trial ranks above its cell; None if there
    is none. (The two had other keys, and the final model was in neither: review G, 2026-12-07.)"""
    trials = study.get_trials(deepcopy=False)
    spent = spent_of(study, trials)
    running = sum(status_of(t) == "running" for t in trials)
    if config.storage is None:
        state = run_state(run_dir, running, spent, standing_refusal(study, spent))
        live = state.startswith("searching now")
    else:  # workers anywhere: the study alone says whether trials are being trained
        state = shared_state(running, study)
        live = False
    idle = not live and not running
    # summary.json is written when a session ends: one killed later (SIGKILL) left an older one
    summary = current_summary(run_dir, spent) if idle else None
    transfer = read_transfer(run_dir)
    final = study.user_attrs.get("final") or {}
    final_json = ({**final, **({"overtaken": note} if (note := overtaken_note(study, config)) else {}),
                   **({"warning": gap} if (gap := _final_gap(final, trials, config)) else {})}
                  if final else None)
    if idle and standing_refusal(study, spent):
        status = "refused"
    elif idle and _unfinished_finals(study):
        status = "final training not finished"
    elif summary is not None:
        status = "session ended"
    elif not idle or config.storage is None:
        status = "search not finished"
    else:
        status = "no trial running; why the search stopped is in summary.json of its run directory"
    if summary is not None:
        return {**summary, "status": status, "state": state, "final": final_json,
                **({} if transfer is None else {"transfer": transfer})}
    rows = _final_candidates(study, config, trials)
    front = set(pareto(study))
    # The cell of the final model where there is one (the search may have trained a cell that fits
    # the budget in place of the best), else the best so far: as summary.json names it. It named the
    # best by accuracy, over the size limit, with no test result (a user review, 2026-12-06).
    best = final_overtaken(rows, final, front) or next((r for r in rows if final and r.arch == final.get("arch")),
                                                       None) or ([r for r in rows if r.number in front] or rows or [None])[0]
    tested = best is not None and final.get("arch") == best.arch
    return {"status": status, "state": state, "stop_reason": None, "final": final_json, "objectives": list(config.objectives), "ranked_by": config.metric,
            "best_arch": best.arch if best else None, "best_trial": best.number if best else None,
            "best_search_metrics": best.metrics if best else {},
            "test_metrics": dict(final.get("test_metrics") or {}) if tested else {}, "spent": spent.to_dict(),
            **({"price": study.user_attrs["price"]} if study.user_attrs.get("price") else {}),
            **({"pareto_front": sorted(front)} if front else {}),
            **({} if transfer is None else {"transfer": transfer})}


def _final_candidates(study: optuna.Study, config: SearchConfig, trials: list | None = None) -> list[TrialView]:
    """The ranked trials, as the search picks its final cell: within today's size limit, of the
    final network today's --final-C/--final-N build (as recorded, for runs before 2026-12-08)."""
    return final_candidates(study, config.metric, max_params=config.max_params,
                            size=_final_size(study, config), trials=trials)


def _final_size(study: optuna.Study, config: SearchConfig) -> Callable[[TrialView], float] | None:
    """A row's final network's parameters as the search counts them now (None: as recorded)."""
    io = study.user_attrs.get(NETWORK_IO_KEY)
    resolution = (study.user_attrs.get("fingerprint_fields") or {}).get("search_resolution")
    if not io or not resolution:
        return None
    try:
        space = create_space(config.space, C=config.final_C, N=config.final_N)
    except BudgetNASError:
        return None

    def size(r: TrialView) -> float:
        try:
            return space.cost(space.parse(r.arch), in_channels=int(io["in_channels"]),
                              num_classes=int(io["num_classes"]), resolution=int(resolution)).params
        except (ValueError, KeyError, TypeError, BudgetNASError):  # an unreadable cell: as recorded
            return r.params if r.params is not None else 0
    return size


def final_overtaken(rows: list[TrialView], final: dict | None, front: set[int]) -> TrialView | None:
    """The trial that ranks first now (the Pareto front first, as the search chooses), where it is
    not the final model's cell and finished after that final training, which it would be now:
    a session run with --no-final since found it (a review, 2026-12-07: `show` and its JSON named
    the old final model as the best). None where the final model is the current choice, or was
    trained in place of a better cell whose final training the budget could not pay."""
    if not final or not rows or final.get("latest_trial") is None:  # (records before 2026-12-07: unknown)
        return None
    top = next((r for r in rows if r.number in front), rows[0])
    if top.arch == final.get("arch") or top.number <= int(final["latest_trial"]):
        return None
    return top


def overtaken_note(study: optuna.Study, config: SearchConfig) -> str | None:
    """:func:`final_overtaken`'s note for ``study`` (what `show` and `export` say), or None."""
    final = study.user_attrs.get("final")
    top = final_overtaken(_final_candidates(study, config), final, set(pareto(study)))
    return None if top is None else _overtaken_line(top, final, config.metric)


def _overtaken_line(top: TrialView, final: dict, metric: str) -> str:
    return (f"note: trial #{top.number} ({metric} {top.metrics.get(metric, 0):.4f}) now ranks above the final model's "
            f"cell (trial #{final['trial']}), and was found after that final training: best/ holds trial "
            f"#{final['trial']}'s model. Run the same command without --no-final (in Python: fit again with "
            f"final_training=True) to train trial #{top.number}'s")


def standing_refusal(study: optuna.Study, spent: Spent) -> dict | None:
    """The study's record of a refused session while no trial has run since it (``spent``: the
    ledger now), so still what was said; else None."""
    refused = study.user_attrs.get("refused")
    return refused if refused and refused.get("trials") == spent.trials else None


def run_state(run_dir: Path, running: int, spent: Spent, refused: dict | None = None) -> str:
    """Whether a process is searching in ``run_dir`` now (it holds the run's lock), and if not,
    how the last one ended (``spent``: the study's ledger now, to tell whether the summary the
    last session wrote is still current; ``refused``: :func:`standing_refusal`)."""
    holder = _lock_holder(run_dir)
    if holder is not None:
        return f"searching now ({holder})"
    if running:
        return (f"stopped: the process ended mid-trial ({running} trial(s) still marked running were cut "
                "off); run the same command to resume them")
    summary = current_summary(run_dir, spent)
    if summary is not None:
        return f"stopped: {summary.get('stop_reason', 'finished')}"
    if refused:
        return f"refused: {refused['reason']}"
    return "stopped before the end of a session; run the same command to resume"


money = dollars  # (kept under this name: the CLI and tests import it from here)


def _row(r: TrialView, metric: str, front: set[int] | None = None, cache_of: int | None = None) -> str:
    m = r.metrics
    flag = "" if r.status == "complete" else f" [cache of #{cache_of}]" if cache_of is not None else f" [{r.status}]"
    mark = "*" if front and r.number in front else " "
    return (f"{r.number:>4}{mark} {m.get('accuracy', 0):>10.4f}  {m.get('balanced_accuracy', 0):>8.4f}  "
            f"{m.get('macro_f1', 0):>9.4f}  {_fmt_params(r.params):>12}  {r.device_seconds:>7.1f}  "
            f"{money(r.cost):>9}  {r.arch}{flag}")
