"""Kill-and-resume fuzz: start `budgetnas search`, kill it (SIGKILL / SIGTERM / SIGINT / two
SIGTERMs) at random or chosen moments, rerun the same command until it finishes, then check the
study's invariants straight from its SQLite database.

    python benchmarks/kill_resume_fuzz.py --rounds 10 --seed 1 --out /tmp/fz

Not a test (it is random and slow): a finding is reduced to a regression test in tests/search/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 2
BASE = ["--data", "digits", "--epochs", str(EPOCHS), "-C", "4", "-N", "1", "--final-C", "4", "--final-N", "1",
        "--final-epochs", "2", "--quiet", "--seed", "0"]
MODES = {
    "trials": ["--max-trials", "4", "--strategy", "random"],
    "trials-rea": ["--max-trials", "4", "--strategy", "rea"],
    "time": ["--max-time", "25s", "--strategy", "random"],
    # $1 per device-second: a trial costs about $0.8, the probes about $4 (one per op for the final)
    "cost": ["--max-cost", "12", "--gpu-price", "3600", "--strategy", "random"],
}
MOMENTS = ("create", "probe", "mid-trial", "between-trials", "final", "after-model", "random")
SIGNALS = ("KILL", "KILL", "TERM", "INT", "TERM2")


def command(run: Path, mode: str) -> list[str]:
    return [sys.executable, "-m", "budgetnas", "search", "--run-dir", str(run), *BASE, *MODES[mode]]


def q(db: Path, sql: str, default: int = 0) -> int:
    if not db.exists():
        return default
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            row = con.execute(sql).fetchone()
            return row[0] if row else default
    except sqlite3.OperationalError:
        return default


DONE = "select count(*) from trials where state = 'COMPLETE'"
MID = ("select count(*) from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
       "where t.state = 'RUNNING' and a.key = 'progress'")
RUNNING = "select count(*) from trials where state = 'RUNNING'"


class Proc:
    def __init__(self, cmd: list[str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
        self.p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        self.lines: list[str] = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        self.start = time.time()

    def _read(self) -> None:
        for line in self.p.stdout:  # type: ignore[union-attr]
            self.lines.append(line)

    def seen(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def out(self) -> str:
        self.t.join(5)
        return "".join(self.lines)


def wait_moment(proc: Proc, run: Path, moment: str, rng: random.Random) -> bool:
    """Wait for the moment to kill at; False if the process ended first."""
    db = run / "study.db"
    deadline = time.time() + 90
    done0 = q(db, DONE)
    target = None
    if moment == "random":
        target = time.time() + rng.uniform(0.2, 14)
    while proc.p.poll() is None and time.time() < deadline:
        if moment == "create" and db.exists():
            time.sleep(rng.uniform(0, 0.3))
            return True
        if moment == "probe" and q(db, "select count(*) from studies") and not q(db, "select count(*) from trials"):
            time.sleep(rng.uniform(0, 0.8))
            return True
        if moment == "mid-trial" and q(db, MID):
            time.sleep(rng.uniform(0, 0.3))
            return True
        if moment == "between-trials" and q(db, DONE) > done0:
            return True
        if moment == "final" and proc.seen("final training of"):
            time.sleep(rng.uniform(0, 0.8))
            return True
        if moment == "after-model" and (run / "best" / "model.pt").exists():
            return True
        if target is not None and time.time() >= target:
            return True
        time.sleep(0.005)
    return proc.p.poll() is None


def kill(proc: Proc, sig: str) -> tuple[int, float]:
    t0 = time.time()
    if sig == "KILL":
        proc.p.send_signal(signal.SIGKILL)
    elif sig == "TERM":
        proc.p.send_signal(signal.SIGTERM)
    elif sig == "INT":
        proc.p.send_signal(signal.SIGINT)
    else:
        proc.p.send_signal(signal.SIGTERM)
        time.sleep(0.15)
        if proc.p.poll() is None:
            proc.p.send_signal(signal.SIGTERM)
    try:
        rc = proc.p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.p.kill()
        rc = proc.p.wait()
        return -999, time.time() - t0
    return rc, time.time() - t0


def snapshot(run: Path) -> dict[int, tuple]:
    """Finished trials as (params, values, curve) by number, read through Optuna."""
    if not (run / "study.db").exists():
        return {}
    sys.path.insert(0, str(REPO))
    from budgetnas.search import open_study
    from budgetnas.search.records import record_of, status_of
    try:
        study = open_study(run)
    except Exception:
        return {}
    return {t.number: (t.params, t.values, json.dumps(record_of(t).get("curve")), status_of(t))
            for t in study.get_trials() if status_of(t) in ("complete", "pruned", "failed", "cached")}


def check(run: Path, mode: str, history: list[dict], befores: list[dict[int, tuple]], last_out: str,
          cell_values: dict) -> list[str]:
    sys.path.insert(0, str(REPO))
    from optuna.trial import TrialState

    from budgetnas import load_model
    from budgetnas.search import open_study
    from budgetnas.search.records import counts_as_trial, record_of, spent_of, status_of

    bad: list[str] = []
    study = open_study(run)
    trials = study.get_trials()
    attrs = study.user_attrs

    price = 3600.0 if mode == "cost" else 0.10  # CPU preset
    counted = [t for t in trials if counts_as_trial(t)]
    # 1. exact trial budget
    if mode.startswith("trials") and len(counted) != 4:
        bad.append(f"{len(counted)} counted trials, budget 4: {[(t.number, status_of(t)) for t in trials]}")
    # 2. nothing left running or waiting
    left = [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    summary = json.loads((run / "summary.json").read_text())
    # a retry the budget cannot pay for waits for a later session with more budget (by design)
    parked = [t for t in trials if t.state == TrialState.WAITING and "retry_of" in t.user_attrs
              and not mode.startswith("trials") and "budget" in summary["stop_reason"]]
    left = [n for n in left if n not in {t.number for t in parked}]
    if left:
        bad.append(f"trials left RUNNING/WAITING: {left}")
    # 3. no cell trained twice at one fidelity/seed
    keys = [record_of(t).get("cache_key") for t in counted if status_of(t) in ("complete", "pruned")]
    if len(keys) != len(set(keys)):
        bad.append(f"a cell trained twice: {sorted(keys)}")
    # 4. every trial that ran has a record and a cost consistent with its seconds
    for t in trials:
        s = status_of(t)
        r = record_of(t)
        if s in ("complete", "pruned", "failed", "cached", "interrupted") and "record" not in t.user_attrs \
                and s != "interrupted":
            bad.append(f"trial {t.number} ({s}) has no record")
        if s in ("complete", "pruned") and "cache_of" not in t.user_attrs:
            if not r.get("device_seconds", 0) > 0:
                bad.append(f"trial {t.number} ({s}) has no device seconds")
            if len(r.get("curve", [])) != EPOCHS and s == "complete":
                bad.append(f"trial {t.number} curve has {len(r.get('curve', []))} epochs")
        if not math.isclose(r.get("cost", 0.0), r.get("device_seconds", 0.0) * price / 3600, rel_tol=1e-6,
                            abs_tol=1e-12):
            bad.append(f"trial {t.number} cost {r.get('cost')} != seconds {r.get('device_seconds')} x price")
        if s == "complete" and "cache_of" not in t.user_attrs:  # same cell, same seed: same result
            arch = r["arch"]
            v = tuple(t.values)
            prev = cell_values.setdefault((mode.startswith("trials-rea"), arch), (v, str(run), t.number))
            if prev[0] != v:
                bad.append(f"cell {arch} scored {v} here (trial {t.number}) but {prev[0]} in {prev[1]} "
                           f"trial {prev[2]}")
    # 5. interrupted trials re-queued once, with the same cell, and finished
    for t in trials:
        if status_of(t) == "interrupted" and t.params:
            retries = [r for r in trials if r.user_attrs.get("retry_of") == t.number]
            if len(retries) != 1 or retries[0].params != t.params:
                bad.append(f"interrupted trial {t.number}: retries {[(r.number, status_of(r)) for r in retries]}")
    # 6. no finished trial lost or changed
    final_snap = snapshot(run)
    for i, b in enumerate(befores):
        for number, rec in b.items():
            if final_snap.get(number) != rec:
                bad.append(f"after kill {i}: trial {number} {rec[3]} changed/lost: {final_snap.get(number)}")
    # 7. the ledger: total = trials + probe + final, budget table agrees
    spent = spent_of(study, trials)
    total_s = sum(float(record_of(t).get("device_seconds", 0.0)) for t in trials)
    total_s += float((attrs.get("probe") or {}).get("device_seconds", 0.0))
    total_s += float((attrs.get("final_spent") or {}).get("device_seconds", 0.0))
    if not math.isclose(total_s, spent.device_seconds, rel_tol=1e-9):
        bad.append(f"spent {spent.device_seconds} != sum {total_s}")
    db = run / "study.db"
    slots = q(db, "select trials from budgetnas_budget", -1)
    if slots != len(counted) + len(parked):
        bad.append(f"ledger trial slots {slots} != counted trials {len(counted)}")
    reserved = q(db, "select seconds_reserved from budgetnas_budget", -1)
    if abs(reserved) > 1e-6:
        bad.append(f"ledger still reserves {reserved} s")
    open_slots = q(db, "select count(*) from budgetnas_slots where state != 'done'", -1)
    if open_slots != len(parked):
        bad.append(f"{open_slots} ledger slots not closed")
    committed = q(db, "select seconds_committed from budgetnas_budget", -1)
    trial_s = sum(float(record_of(t).get("device_seconds", 0.0)) for t in trials)
    if committed > trial_s + 1e-6:
        bad.append(f"ledger committed {committed} s > trials' {trial_s} s")
    # 8. budgets respected
    # (the final training's own forecast comes from timed probes, which a busy 2-core machine
    # makes a few times too low: what the search itself spent must fit, with the final's reserve)
    final_cost = float((attrs.get("final_spent") or {}).get("cost", 0.0))
    if mode == "cost" and spent.cost - final_cost > 12 * 1.02:
        bad.append(f"cost {spent.cost - final_cost:.3f} without the final training over the $12 budget")
    if mode == "cost" and spent.cost > 12 * 1.02:
        print(f"note: {run.name}: cost {spent.cost:.3f} over $12 with the final training "
              f"({final_cost:.3f})", file=sys.stderr)
    if mode == "time" and spent.wall_seconds > 25 * 1.2:
        bad.append(f"wall {spent.wall_seconds:.1f} s over the 25 s budget")
    # 9. the final model: exists, loads, tested, reported, matches the best trial
    final = attrs.get("final") or {}
    model_path = run / "best" / "model.pt"
    if not model_path.exists() or not final:
        bad.append(f"final model missing (model.pt {model_path.exists()}, final attr {bool(final)})")
    else:
        m = load_model(run)
        if getattr(m, "arch", final["arch"]) != final["arch"]:
            bad.append(f"model.pt arch {m.arch} != final {final['arch']}")
        metrics = json.loads((run / "best" / "metrics.json").read_text())
        if metrics.get("test_metrics") != final.get("test_metrics"):
            bad.append("metrics.json test metrics differ from the study's final")
        if (run / "best" / "arch.txt").read_text().strip() != final["arch"]:
            bad.append("arch.txt differs from the final arch")
        from budgetnas.search.records import ranked
        best = ranked(study, "accuracy", trials)[0]
        # (the best cell whose final training the budget could still pay is trained, and the
        # summary's stop reason says which and why)
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
        passed_over = f"the final training is of trial {final.get('trial')}'s cell" in summary.get("stop_reason", "")
        if best.arch != final["arch"] and not passed_over:
            bad.append(f"final arch {final['arch']} is not the best trial's {best.arch} (#{best.number})")
        fs = float((attrs.get("final_spent") or {}).get("device_seconds", 0.0))
        if fs + 1e-9 < float(final.get("device_seconds", 0.0)):
            bad.append(f"final_spent {fs} < final device seconds {final.get('device_seconds')}")
        if attrs.get("final_partial"):
            bad.append(f"final_partial left: {attrs.get('final_partial')}")
        if last_out.count("test (") != 1:
            bad.append(f"the last session printed {last_out.count('test (')} test lines")
    # 10. summary.json and `show --json` agree with the study
    if summary["test_metrics"] != final.get("test_metrics"):
        bad.append(f"summary test metrics {summary['test_metrics']} != final {final.get('test_metrics')}")
    for k, v in spent.to_dict().items():
        if not math.isclose(summary["spent"][k], v, rel_tol=1e-9, abs_tol=1e-9):
            bad.append(f"summary.json spent.{k} {summary['spent'][k]} != study {v}")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    show = subprocess.run([sys.executable, "-m", "budgetnas", "show", str(run), "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    try:
        shown = json.loads(show.stdout)
        for k, v in spent.to_dict().items():
            if not math.isclose(shown["spent"][k], v, rel_tol=1e-9, abs_tol=1e-9):
                bad.append(f"show --json spent.{k} {shown['spent'][k]} != study {v}")
        if shown.get("best_arch") != summary.get("best_arch"):
            bad.append("show --json best_arch differs from summary.json")
    except Exception as e:
        bad.append(f"show --json unreadable: {e}: {show.stdout[-300:]} {show.stderr[-300:]}")
    text = subprocess.run([sys.executable, "-m", "budgetnas", "show", str(run)], cwd=REPO, env=env,
                          capture_output=True, text=True).stdout
    import re
    m = re.search(r"spent: (\d+) trials, ([\d.]+) device-s", text)
    if not m or int(m.group(1)) != spent.trials or abs(float(m.group(2)) - spent.device_seconds) > 0.051:
        bad.append(f"`show` says {m and m.group(0)}, the study {spent.trials} trials {spent.device_seconds:.2f} s")
    acc = (final.get("test_metrics") or {}).get("accuracy")
    if acc is not None and text.count(f"test ({final.get('test_images')} images): accuracy {acc:.4f}") != 1:
        bad.append(f"`show` does not report the test accuracy {acc:.4f} once")
    return bad


def _final_seconds(run: Path) -> float:
    from budgetnas.search import open_study
    return float((open_study(run).user_attrs.get("final_spent") or {}).get("device_seconds", 0.0))


def one_round(i: int, rng: random.Random, out: Path, cell_values: dict, mode: str | None = None) -> dict:
    mode = mode or rng.choice(list(MODES))
    run = out / f"r{i:03d}-{mode}"
    if run.exists():
        import shutil
        shutil.rmtree(run)
    cmd = command(run, mode)
    history: list[dict] = []
    befores: list[dict[int, tuple]] = []
    problems: list[str] = []
    kills = rng.choice((1, 1, 2, 3))
    last_out = ""
    for session in range(kills + 6):
        proc = Proc(cmd)
        if session < kills:
            moment, sig = rng.choice(MOMENTS), rng.choice(SIGNALS)
            alive = wait_moment(proc, run, moment, rng)
            if alive:
                rc, took = kill(proc, sig)
                history.append({"moment": moment, "signal": sig, "rc": rc, "took": round(took, 2),
                                "at": round(time.time() - proc.start, 2)})
                if sig in ("TERM", "INT") and took > 15:
                    problems.append(f"SIG{sig} took {took:.1f} s to stop the search")
                expect = {"KILL": -9, "TERM": 143, "INT": 130, "TERM2": 143}[sig]
                if rc not in (expect, 0, 130, 143, -15, -2):  # (-15, -2: before or after the handlers)
                    problems.append(f"SIG{sig} at {moment}: exit status {rc}: {proc.out()[-1500:]}")
                befores.append(snapshot(run))
                continue
        rc = proc.p.wait(timeout=300)
        last_out = proc.out()
        history.append({"moment": "run to the end", "rc": rc})
        if rc == 0:
            break
        problems.append(f"session {session} exited {rc}: {last_out[-1500:]}")
        if rc not in (130, 143, -9):
            break
    else:
        problems.append("never finished")
    if not any("exited" in p for p in problems):
        try:
            problems += check(run, mode, history, befores, last_out, cell_values)
        except Exception:
            import traceback
            problems.append(f"checker crashed: {traceback.format_exc()[-1500:]}")
        # rerun once more: nothing may change
        before = (snapshot(run), json.loads((run / "summary.json").read_text())["spent"])
        again = Proc(cmd)
        rc = again.p.wait(timeout=300)
        after = (snapshot(run), json.loads((run / "summary.json").read_text())["spent"])
        walls = before[1].pop("wall_seconds"), after[1].pop("wall_seconds")
        if mode == "time" and rc == 0 and before[0] != after[0]:
            # the budget the final training's reserve held and it did not use may buy a trial; the
            # search's and the final trainings' time must still fit (forecasts on a busy machine
            # are rough: 20 %)
            took = walls[1] + _final_seconds(run)
            if took > 25 * 1.2:
                problems.append(f"a rerun of a finished search went past the time budget: {took:.1f} s")
            print(f"note: {run.name}: the rerun trained more ({len(before[0])} -> {len(after[0])} "
                  f"finished trials), {took:.1f} s of 25 s", file=sys.stderr)
        elif rc != 0 or before != after or not 0 <= walls[1] - walls[0] < 2:
            problems.append(f"a rerun of a finished search changed it (rc {rc}): {before[1]} -> {after[1]}; "
                            f"{again.out()[-800:]}")
    return {"round": i, "mode": mode, "run": str(run), "history": history, "problems": problems}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--mode", default=None)
    ap.add_argument("--out", default="/tmp/fz")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cells_path = out / "cell_values.json"
    cell_values: dict = {}
    if cells_path.exists():
        cell_values = {tuple(json.loads(k)): tuple(v) for k, v in json.loads(cells_path.read_text()).items()}
        cell_values = {k: (tuple(v[0]), v[1], v[2]) for k, v in cell_values.items()}
    for i in range(args.start, args.start + args.rounds):
        rng = random.Random(args.seed * 1000 + i)
        res = one_round(i, rng, out, cell_values, args.mode)
        print(json.dumps(res), flush=True)
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(res) + "\n")
        cells_path.write_text(json.dumps({json.dumps(list(k)): [list(v[0]), v[1], v[2]]
                                          for k, v in cell_values.items()}))


if __name__ == "__main__":
    main()
