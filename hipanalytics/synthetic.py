"""A seeded synthetic clinic: patients, programs, ROM measurements and session logs.

Everything here is invented. The generator exists for the demo, the tests and the benchmarks, and
its assumptions are explicit so that analyses can be checked against the truth it returns
(``truth``: each patient's true baseline, gain, drop-out, and the true IR of every involved hip at
every week).

Assumptions (each a parameter of :class:`Assumptions`)
------------------------------------------------------
- Patients aged 20-70, 55 % female; involved hip right 45 %, left 45 %, both 10 % (``both_share``); randomised
  1:1 to ``daily`` or ``three-per-week`` breakouts (``allocation``, allocated on the program's start day,
  ``allocated_on``; ``cohort`` holds the arm too, as a label). With ``allocation="by indication"``
  the schedule is instead chosen as in routine care, with log-odds of daily ``indication_intercept
  + indication_age (age - 45) + indication_site (site north) + indication_pain (pain - 2.5)``, pain
  being the patient's usual NPRS before a session (no allocation recorded; cohort "routine care");
  with ``gain_model="arm"`` the gain also moves by ``age_gain`` per year of age over 45,
  ``site_gain`` at the north site and ``pain_gain`` per NPRS point over 2.5, so age, site and pain
  confound the comparison (all 0 by default: no confounding). The clinician chooses from the pain
  score recorded before the first session (done in the clinic): the patient's level measured with
  error (SD 0.8, rounded), as a real baseline is, so adjusting for that recorded score (the
  baseline covariate) removes the confounding the choice brings, while the gain follows the level.
- Baseline active seated hip IR of the involved hip ~ N(22, 6) degrees, clipped to 5-40; with both
  hips involved each hip has its own baseline (a shared patient part and a side part, SD 3); the
  uninvolved side ~ 8 degrees more (SD 3). Normal adult means are about 29-50 degrees (J Athl Train
  2018;53(6):560).
- Gain saturates over time: IR(t) = baseline + G (1 - exp(-t / tau)), tau = 4 weeks, so most of the
  gain comes by weeks 4-8 (stretching responses plateau by about weeks 4-6: Bandy & Irion, Phys Ther
  1994;74(9):845-850). The plateau gain has a ceiling tied to the baseline: it scales with the room
  left below 45 degrees (the upper part of the normal band), G = g (45 - baseline) / (45 - 22) +
  N(0, 4) (patients differ in how much they gain: an assumption of the same order as the mean gain,
  as in stretching trials, where the SD of the gain is often about half of it or more). With ``gain_model="dose"`` (the default) g depends on the breakout sessions done per week
  b, g = 12 (1 - exp(-0.35 b)) (an assumption; Cipriani et al., JSCR 2012, found no difference in rate
  between daily and 3x/week hamstring stretching, so the dose effect is deliberately moderate); with
  ``gain_model="arm"``, g = ``gain_three_per_week`` plus ``arm_effect`` for daily breakouts (the
  power simulation sets the effect directly). The uninvolved side gains a quarter of that.
- Measurement error: a between-day (visit) error per hip ~ N(0, 1.6) and a trial error ~ N(0, 2.0)
  with 2-3 trials per visit, so a visit's mean errs by about 1.95 degrees: the SEM implied by the
  5.4-degree MDC95 of seated active IR by inclinometer (Krause et al., KSSTA 2015;23(9):2562-2567;
  SEM = MDC / (1.96 sqrt 2)). Visits every 2 weeks (+/- 2 days) from baseline; 5 % of visits also
  measured prone (a separate series, reading 6 degrees higher: Simoneau et al., JOSPT 1998).
- Adherence: each planned breakout session is done with the patient's probability p ~ Beta(8, 3)
  on daily breakouts (about 73 %) and Beta(9, 2) on 3x/week (about 82 %); sequence-only sessions
  Beta(9, 2). 12 % of done sessions are partial (1-2 rounds).
- Pain (NPRS 0-10): before ~ patient level N(2.5, 1.5) (mild to moderate hip pain); after a
  breakout session + N(0.4, 0.8) on daily and + N(0.1, 0.8) on 3x/week (most patients tolerate the
  breakouts: a rise of 2 or more after two of six sessions happens to about 1 in 11 by chance);
  10 % of daily patients are "pain-rise" responders with + 2.5 after breakouts; 80 % of them
  switch to 3x/week at week 2-5 (a new program from that date, the source's advice for patients
  who do not tolerate daily breakouts). The next morning: the pain before plus half the session's
  rise, + N(0, 0.7) (a responder's whole rise: it has not settled), recorded after 60 % of the
  breakout sessions with pain scores. All stated assumptions, chosen so that the tolerance flags
  find mostly the responders.
- Drop-out is missing at random given what the clinic observed, not completely at random: after
  each visit from week 2, a patient stops (nothing logged afterwards) with probability 1.5 %, plus
  15 % when pain rose by 2+ NPRS points after at least half (and at least two) of the breakout
  sessions since the last visit, plus (from week 4) 10 % on 3x/week and 20 % on daily breakouts
  when the involved hip's observed gain so far is within the MDC (no visible progress: daily
  breakouts are the bigger burden to keep up without a result). The figures are assumptions chosen
  to give a drop-out of about 15 %, typical of rehabilitation trials. Pain rises are not related
  to the gain here, so pain-driven drop-out is ignorable for IR; drop-out for no progress depends
  on the observed IR and the arm (missing at random), which biases complete-case analyses and not
  the likelihood-based primary analysis (``bench/bench_trial_simulation.py`` shows both). With
  ``dropout_future`` above 0, daily patients whose plateau gain (not yet observed) stays under the
  MDC also stop with that chance after each visit from week 2: missing not at random, which the
  MAR analyses cannot correct (the tipping point says how far from MAR the conclusion holds).

Examples
--------
>>> clinic = generate_clinic(n_patients=5, seed=1)
>>> sorted(clinic)
['measurements', 'patients', 'programs', 'sessions', 'true_ir', 'truth']
>>> clinic["patients"]["patient_id"].tolist()
['SYN-00001', 'SYN-00002', 'SYN-00003', 'SYN-00004', 'SYN-00005']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from .program import plan_table
from .protocol import Protocol, load_protocol

__all__ = ["Assumptions", "SYNTHETIC_ID", "clinic_export", "generate_clinic", "is_synthetic", "write_clinic",
           "write_clinic_export", "sample_store"]


@dataclass(frozen=True)
class Assumptions:
    """The generator's parameters; see the module docstring for their sources."""

    weeks_min: int = 8
    weeks_max: int = 12
    first_start: date = date(2026, 1, 5)
    enrolment_days: int = 180
    both_share: float = 0.10
    baseline_mean: float = 22.0
    baseline_sd: float = 6.0
    side_sd: float = 3.0
    other_side_offset: float = 8.0
    ceiling: float | None = 45.0
    gain_model: str = "dose"
    gain_max: float = 12.0
    gain_rate_per_breakout: float = 0.35
    gain_three_per_week: float = 7.0
    arm_effect: float = 0.0
    gain_sd: float = 4.0
    tau_weeks: float = 4.0
    day_sd: float = 1.6
    trial_sd: float = 2.0
    visit_every_days: int = 14
    prone_share: float = 0.05
    adherence_daily: tuple[float, float] = (8.0, 3.0)
    adherence_three: tuple[float, float] = (9.0, 2.0)
    adherence_sequence: tuple[float, float] = (9.0, 2.0)
    partial_share: float = 0.12
    pain_mean: float = 2.5
    pain_rise_daily: float = 0.4
    pain_rise_three: float = 0.1
    pain_responder_share: float = 0.10
    pain_responder_rise: float = 2.5
    switch_share_of_responders: float = 0.80
    dropout_base: float = 0.015
    dropout_pain: float = 0.15
    dropout_no_progress: float = 0.10
    dropout_no_progress_daily: float = 0.20
    mdc: float = 5.4
    allocation: str = "random"
    indication_intercept: float = 0.0
    indication_age: float = 0.0
    indication_site: float = 0.0
    indication_pain: float = 0.0
    age_gain: float = 0.0
    site_gain: float = 0.0
    pain_gain: float = 0.0
    dropout_future: float = 0.0
    no_progress_from_visit: int = 2

    def true_effect(self, week: float) -> float:
        """With ``gain_model="arm"``: the true difference in mean involved-hip IR, daily minus 3x/week,
        ``week`` weeks after baseline (without measurement error, whoever drops out): the arm effect,
        scaled by the time course."""
        if self.gain_model != "arm":
            raise ValueError("the true effect is a parameter only with gain_model='arm'")
        return self.arm_effect * (1 - np.exp(-week / self.tau_weeks))


def generate_clinic(n_patients: int = 40, *, seed: int = 2026, assumptions: Assumptions | None = None,
                    protocol: Protocol | None = None) -> dict[str, pd.DataFrame]:
    """Generate a synthetic clinic.

    Parameters
    ----------
    n_patients : int
        Number of patients (scales to 10,000 for benchmarks).
    seed : int
        Same seed, same clinic.
    assumptions : Assumptions, optional
    protocol : Protocol, optional
        Defaults to the shipped ``hip-ir-breakouts``.

    Returns
    -------
    dict of DataFrame
        ``patients``, ``programs``, ``measurements``, ``sessions`` in the import layout (see
        docs/data-dictionary.md), ``truth``: per patient the assigned schedule, adherence
        probability, achieved breakouts per week, true plateau gain and baseline (involved hips'
        mean), drop-out week and whether the patient is a pain-rise responder or switched; and
        ``true_ir``: the true IR of every involved hip at every whole week of the program
        (``patient_id``, ``side``, ``week``, ``true_deg``).
    """
    a = assumptions or Assumptions()
    protocol = protocol or load_protocol("hip-ir-breakouts")
    rng = np.random.default_rng(seed)
    n = n_patients
    ids = np.array([f"SYN-{i:05d}" for i in range(1, n + 1)], dtype=object)

    # --- patients -------------------------------------------------------------------------
    age = rng.integers(20, 71, n)
    sex = np.where(rng.random(n) < 0.55, "female", "male")
    side = rng.choice(["right", "left", "both"], n, p=[(1 - a.both_share) / 2, (1 - a.both_share) / 2, a.both_share])
    arm = np.where(rng.permutation(n) % 2 == 0, "daily", "three-per-week")
    start = np.array([a.first_start + timedelta(days=int(d)) for d in rng.integers(0, a.enrolment_days, n)])
    weeks = rng.integers(a.weeks_min, a.weeks_max + 1, n)
    site = rng.choice(["north", "south"], n)
    randomised = a.allocation == "random"
    if not randomised:  # routine care: the clinician chooses, from the patient in front of them
        chooser = np.random.default_rng([seed, 21])  # its own stream: the rest of the clinic stays as drawn
        chosen = chooser.random(n)
        logit = a.indication_intercept + a.indication_age * (age - 45) + a.indication_site * (site == "north")
        if a.indication_pain:  # the pain the patient arrives with, and the score the clinician records of it
            pain_seen = np.clip(chooser.normal(a.pain_mean, 1.5, n), 0, 8)
            first_score = np.clip(np.rint(pain_seen + chooser.normal(0, 0.8, n)), 0, 10)
            logit = logit + a.indication_pain * (first_score - a.pain_mean)  # chosen from what is seen
        arm = np.where(chosen < 1 / (1 + np.exp(-logit)), "daily", "three-per-week")
    patients = pd.DataFrame({
        "patient_id": ids, "birth_year": np.array([d.year for d in start]) - age, "sex": sex, "involved_side": side,
        "site": site, "cohort": arm if randomised else "routine care", "allocation": arm if randomised else None,
        "allocated_on": start if randomised else None,
    })

    # --- programs: some daily patients switch to 3x/week for tolerance ----------------------
    responder = (arm == "daily") & (rng.random(n) < a.pain_responder_share)
    switch = responder & (rng.random(n) < a.switch_share_of_responders)
    switch_week = rng.integers(2, 6, n)
    end = start + np.array([timedelta(days=int(7 * w - 1)) for w in weeks])
    rows = []
    for i in range(n):
        if switch[i] and switch_week[i] < weeks[i]:
            on = start[i] + timedelta(days=int(7 * switch_week[i]))
            rows.append((ids[i], start[i], on - timedelta(days=1), "daily", "assigned: daily breakouts"))
            rows.append((ids[i], on, end[i], "three-per-week", "pain rise after daily breakouts"))
        else:
            rows.append((ids[i], start[i], end[i], arm[i], f"assigned: {arm[i]}"))
    programs = pd.DataFrame(rows, columns=["patient_id", "start_date", "end_date", "schedule", "reason"])
    programs.insert(0, "program_id", programs["patient_id"] + "-" + pd.to_datetime(programs["start_date"]).dt.strftime("%Y%m%d")
                    + "-" + programs["schedule"])
    programs.insert(2, "protocol_id", protocol.id)
    programs.insert(3, "protocol_version", protocol.version)

    # --- planned sessions, vectorised over all programs ---------------------------------------
    planned = plan_table(programs)
    index = pd.Series(np.arange(n), index=ids)
    pi = index[planned["patient_id"]].to_numpy()
    day = (planned["date"].to_numpy() - start[pi].astype("datetime64[D]")).astype("timedelta64[D]").astype(int)
    adherence = np.where(arm == "daily", rng.beta(*a.adherence_daily, n), rng.beta(*a.adherence_three, n))
    adherence_seq = rng.beta(*a.adherence_sequence, n)
    p_done = np.where(planned["breakouts"].to_numpy(), adherence[pi], adherence_seq[pi])
    done = rng.random(len(planned)) < p_done
    partial = done & (rng.random(len(planned)) < a.partial_share)
    is_breakout_all = planned["breakouts"].to_numpy()
    pain_level = np.clip(rng.normal(a.pain_mean, 1.5, n), 0, 8)
    if not randomised and a.indication_pain:
        pain_level = pain_seen  # (the draw above still made: every later stream stays where it was)
    before_all = np.clip(np.rint(pain_level[pi] + rng.normal(0, 0.8, len(planned))), 0, 10)
    first_session = None
    if not randomised and a.indication_pain:  # the first session, in the clinic: done, its pain score the one seen
        order = pd.DataFrame({"pi": pi, "day": day, "at": planned["slot_time"].to_numpy()})
        first_session = order.sort_values(["pi", "day", "at"], kind="stable").groupby("pi").head(1).index.to_numpy()
        before_all[first_session] = first_score[pi[first_session]]
    rise = np.where(planned["schedule"].to_numpy() == "daily", a.pain_rise_daily, a.pain_rise_three)
    rise = rise + np.where(responder[pi] & (planned["schedule"].to_numpy() == "daily"), a.pain_responder_rise, 0)
    after_all = np.clip(np.rint(before_all + np.where(is_breakout_all, rise, 0) + rng.normal(0, 0.8, len(planned))),
                        0, 10)
    record_pain = is_breakout_all | (rng.random(len(planned)) < 0.3)
    if first_session is not None:
        done[first_session] = record_pain[first_session] = True
    pain_rise = done & record_pain & is_breakout_all & (after_all - before_all >= 2)
    pain_told = done & record_pain & is_breakout_all

    # --- the true course of each hip ----------------------------------------------------------------
    breakouts_done = np.bincount(pi[done & is_breakout_all], minlength=n)
    per_week = breakouts_done / weeks  # achieved breakouts per week over the program (drop-out aside)
    base_patient = rng.normal(a.baseline_mean, a.baseline_sd, n)
    side_part = {s: rng.normal(0, a.side_sd, n) * (side == "both") for s in ("left", "right")}
    baseline = {s: np.clip(base_patient + side_part[s], 5, 40) for s in ("left", "right")}
    other = np.clip(base_patient + a.other_side_offset + rng.normal(0, 3, n), 5, 60)
    if a.gain_model == "arm":
        g = (a.gain_three_per_week + a.arm_effect * (arm == "daily") + a.age_gain * (age - 45)
             + a.site_gain * (site == "north") + a.pain_gain * (pain_level - a.pain_mean))
    else:
        g = a.gain_max * (1 - np.exp(-a.gain_rate_per_breakout * per_week))
    reference = (a.ceiling - a.baseline_mean) if a.ceiling is not None else 1.0
    gain = {}
    for s in ("left", "right"):
        room = np.clip(a.ceiling - baseline[s], 0, None) / reference if a.ceiling is not None else 1.0
        gain[s] = g * room + rng.normal(0, a.gain_sd, n)
    involved_sides = [["left", "right"] if side[i] == "both" else [side[i]] for i in range(n)]

    def true_ir(i, hip, t):
        if hip in involved_sides[i]:
            return baseline[hip][i] + gain[hip][i] * (1 - np.exp(-t / a.tau_weeks))
        return other[i] + np.mean([gain[h][i] for h in involved_sides[i]]) / 4 * (1 - np.exp(-t / a.tau_weeks))

    # --- visits, measurements, and drop-out decided from what was observed ------------------------
    rise_days = [np.sort(day[(pi == i) & pain_rise]) for i in range(n)]
    told_days = [np.sort(day[(pi == i) & pain_told]) for i in range(n)]
    meas, dropout_day = [], np.full(n, 10_000)
    future_gain = np.array([np.mean([gain[h][i] for h in involved_sides[i]]) for i in range(n)])  # not observed
    for i in range(n):
        last_day = 7 * int(weeks[i]) - 1
        visits = np.arange(0, last_day + 1, a.visit_every_days)
        jitter = np.concatenate([[0], rng.integers(-2, 3, max(len(visits) - 1, 0))])
        visits = np.clip(visits + jitter, 0, last_day)
        first_mean = {}
        previous = 0
        for k, v in enumerate(visits):
            t = v / 7
            means = {}
            for hip in ("left", "right"):
                positions = ["seated_90"] + (["prone"] if rng.random() < a.prone_share else [])
                for position in positions:
                    offset = 6.0 if position == "prone" else 0.0  # prone reads higher (Simoneau 1998)
                    day_error = rng.normal(0, a.day_sd)
                    values = [round(true_ir(i, hip, t) + offset + day_error + rng.normal(0, a.trial_sd), 1)
                              for _ in range(int(rng.integers(2, 4)))]
                    for trial, value in enumerate(values, start=1):
                        meas.append((ids[i], start[i] + timedelta(days=int(v)), hip, position, trial, value))
                    if position == "seated_90":
                        means[hip] = float(np.mean(values))
            first_mean = first_mean or means
            if k >= 1 and v < last_day:  # the patient may stop after each visit from the 2-week one
                rises = int(((rise_days[i] > previous) & (rise_days[i] <= v)).sum())
                told = int(((told_days[i] > previous) & (told_days[i] <= v)).sum())
                gain_seen = np.mean([means[h] - first_mean[h] for h in involved_sides[i]])
                hazard = (a.dropout_base + a.dropout_pain * (rises >= 2 and rises >= told / 2)
                          + (a.dropout_no_progress_daily if arm[i] == "daily" else a.dropout_no_progress)
                          * (k >= a.no_progress_from_visit and gain_seen < a.mdc)
                          + a.dropout_future * (arm[i] == "daily") * (future_gain[i] < a.mdc))
                if rng.random() < hazard:
                    dropout_day[i] = int(v)
                    break
            previous = v
    measurements = pd.DataFrame(meas, columns=["patient_id", "measured_on", "side", "position", "trial", "degrees"])
    measurements["measured_on"] = pd.to_datetime(measurements["measured_on"]).dt.strftime("%Y-%m-%d")
    measurements = measurements.assign(joint="hip", motion="internal_rotation", mode="active",
                                       instrument="inclinometer")[
        ["patient_id", "measured_on", "side", "joint", "motion", "position", "mode", "instrument", "degrees", "trial"]]

    # --- sessions logged up to the drop-out -------------------------------------------------------
    keep = done & (day <= dropout_day[pi])
    logged = planned[keep].reset_index(drop=True)
    is_breakout = is_breakout_all[keep]
    is_partial = partial[keep]
    lp = pi[keep]
    sessions = pd.DataFrame({
        "patient_id": logged["patient_id"],
        "performed_on": logged["date"].dt.strftime("%Y-%m-%d"),
        "performed_at": logged["slot_time"],
        "session": logged["session"],
        "completion": np.where(is_partial, "partial", "full"),
        "rounds_done": np.where(is_breakout, np.where(is_partial, rng.integers(1, 3, len(logged)), 3), pd.NA),
        "pain_before": pd.array(np.where(record_pain[keep], before_all[keep], np.nan)).astype("Int64"),
        "pain_after": pd.array(np.where(record_pain[keep], after_all[keep], np.nan)).astype("Int64"),
        "pain_next_day": _next_morning(seed, before_all[keep], after_all[keep], record_pain[keep] & is_breakout,
                                       responder[lp] & (logged["schedule"].to_numpy() == "daily")),
    })
    sessions["rounds_done"] = pd.array(sessions["rounds_done"], dtype="Int64")

    dropped = dropout_day < 10_000
    truth = pd.DataFrame({
        "patient_id": ids, "assigned_schedule": arm, "adherence_breakouts": adherence,
        "breakouts_per_week": per_week,
        "true_gain": [np.mean([gain[h][i] for h in involved_sides[i]]) for i in range(n)],
        "baseline_involved": [np.mean([baseline[h][i] for h in involved_sides[i]]) for i in range(n)],
        "tau_weeks": a.tau_weeks,
        "dropout_week": pd.array(np.where(dropped, np.ceil(dropout_day / 7), np.nan)).astype("Int64"),
        "pain_responder": responder, "switched": switch & (switch_week < weeks),
    })
    true_rows = [(ids[i], hip, w, true_ir(i, hip, w)) for i in range(n) for hip in involved_sides[i]
                 for w in range(int(weeks[i]) + 1)]
    true_ir_table = pd.DataFrame(true_rows, columns=["patient_id", "side", "week", "true_deg"])
    programs["start_date"] = pd.to_datetime(programs["start_date"]).dt.strftime("%Y-%m-%d")
    programs["end_date"] = pd.to_datetime(programs["end_date"]).dt.strftime("%Y-%m-%d")
    return {"patients": patients, "programs": programs, "measurements": measurements,
            "sessions": sessions, "truth": truth, "true_ir": true_ir_table}


def _next_morning(seed: int, before: np.ndarray, after: np.ndarray, scored: np.ndarray,
                  responder: np.ndarray) -> pd.array:
    """Next-morning pain (see the module docstring), drawn from a stream of its own so that adding
    it changed none of the other values the seed gives."""
    rng = np.random.default_rng([seed, 1])
    settled = np.where(responder, 1.0, 0.5)
    value = np.clip(np.rint(before + settled * (after - before) + rng.normal(0, 0.7, len(before))), 0, 10)
    recorded = scored & (rng.random(len(before)) < 0.6)
    return pd.array(np.where(recorded, value, np.nan)).astype("Int64")


def write_clinic(clinic: dict[str, pd.DataFrame], folder: str | Path) -> dict[str, Path]:
    """Write each table of :func:`generate_clinic` as ``<table>.csv`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in clinic.items():
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def clinic_export(clinic: dict[str, pd.DataFrame], *, visit: date = date(2026, 9, 19), n_patients: int = 3,
                  seed: int = 7) -> pd.DataFrame:
    """A follow-up visit as a clinic's own spreadsheet records it, to try the import on.

    One visit on ``visit`` for the first ``n_patients`` whose program started before it: three
    trials per involved side, written the way clinics type them: day-first dates
    (``19/09/2026``), ``Lt``/``Rt``, ``seated``, ``AROM``, ``incl``, and degrees with a decimal
    comma and a degree sign (``31,5°``). Every value is unambiguous once ``--dates day-first`` is
    declared, so the import normalises and lists each change. Values continue the patient's
    series (latest visit mean + N(1, 1.5) degrees, rounded to 0.5).

    Returns
    -------
    DataFrame
        Text columns in the measurements table's layout (what ``write_clinic`` saves as the
        ``ROM`` sheet of ``clinic-export.xlsx``).
    """
    rng = np.random.default_rng(seed)
    m = clinic["measurements"]
    starts = clinic["programs"].groupby("patient_id")["start_date"].min()
    chosen = [pid for pid in clinic["patients"]["patient_id"] if pd.Timestamp(starts[pid]) < pd.Timestamp(visit)]
    rows = []
    for pid in chosen[:n_patients]:
        side = clinic["patients"].set_index("patient_id").loc[pid, "involved_side"]
        for one in (["left", "right"] if side == "both" else [side]):
            own = m[(m["patient_id"] == pid) & (m["side"] == one) & (m["position"] == "seated_90")]
            last = own[own["measured_on"] == own["measured_on"].max()]["degrees"].mean()
            for trial in (1, 2, 3):
                degrees = round(2 * (last + rng.normal(1.0, 1.5))) / 2
                rows.append({"patient_id": pid, "measured_on": f"{visit:%d/%m/%Y}", "side": one[0].upper() + "t",
                             "joint": "hip", "motion": "IR", "position": "seated", "mode": "AROM",
                             "instrument": "incl", "degrees": f"{degrees:.1f}".replace(".", ",") + "°",
                             "trial": str(trial)})
    return pd.DataFrame(rows)


def write_clinic_export(clinic: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """Write :func:`clinic_export` as an Excel workbook whose ``ROM`` sheet holds the visit (the first
    sheet is a note, as clinics' workbooks often have), e.g. ``data/sample/clinic-export.xlsx``."""
    path = Path(path)
    note = pd.DataFrame({"note": ["Synthetic follow-up visit (invented patients) in a clinic's own spelling; "
                                  "the measurements are on the ROM sheet."]})
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        note.to_excel(writer, sheet_name="Summary", index=False)
        clinic_export(clinic).to_excel(writer, sheet_name="ROM", index=False)
    return path


SYNTHETIC_ID = re.compile(r"SYN-\d{5}")
"""Patient ids of this form are reserved for synthetic patients: the generator makes them, and
every report or app page showing one says the data are invented."""


def is_synthetic(patient_ids) -> bool:
    """Whether any of ``patient_ids`` is a synthetic patient (an id of the form ``SYN-nnnnn``).

    Examples
    --------
    >>> is_synthetic(["SYN-00004"]), is_synthetic(["P001", "SYN-00004"]), is_synthetic(["SYN-4"])
    (True, True, False)
    """
    return any(SYNTHETIC_ID.fullmatch(str(pid)) for pid in patient_ids)


def _cache_dir(create: bool = True) -> Path | None:
    """This user's cache folder for hipanalytics (private: mode 0700), or None if it cannot be made;
    with ``create=False`` only where it would be, made or not."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    folder = Path(base) / "hipanalytics"
    if not create:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = folder / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError:
        return None
    return folder


def sample_store_path(*, create: bool = True) -> Path | None:
    """Where :func:`sample_store` caches the sample store: this user's cache folder
    (``$XDG_CACHE_HOME/hipanalytics`` or ``~/.cache/hipanalytics``), or None where there is none.
    With ``create=False`` the folder is not made (to recognise the store, not to build it)."""
    import hashlib

    from . import __version__
    from .store.migrate import HEAD

    folder = _cache_dir(create)
    generator = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]  # a changed generator: a new sample
    # and a new schema: another checkout of this version may have built its own
    return None if folder is None else folder / f"sample-{__version__}-{generator}-r{HEAD}.sqlite"


def _build_sample(path: Path) -> str:
    """Build the sample store at ``path`` (which must not exist); return its fingerprint."""
    import tempfile

    from .store import Store

    with tempfile.TemporaryDirectory(prefix="hipanalytics-sample-") as folder:
        files = write_clinic(generate_clinic(40, seed=2026), folder)
        with Store(path) as store:
            for table in ("patients", "programs", "measurements", "sessions"):
                store.import_file(files[table], table, who="sample")
            return store.fingerprint()


def sample_store(path: str | Path | None = None) -> Path:
    """A store holding the 40-patient synthetic sample clinic (``generate_clinic(40, seed=2026)``,
    the same as ``data/sample``).

    Report templates, tutorials and apps use it when no store is named, so they run as they are;
    what they show then says the data are synthetic (every sample id is ``SYN-nnnnn``).

    Parameters
    ----------
    path : str or Path, optional
        Build a fresh sample store here (the file must not exist yet), e.g. in a private temporary
        folder for one app session. Without it, the store is cached in this user's cache folder
        (:func:`sample_store_path`) and reused only while its fingerprint is the one it was built
        with: once anything has been saved into it (an app entry), it is built anew.

    Returns
    -------
    Path
        The SQLite file.
    """
    import os
    import tempfile

    from .store import Store

    if path is not None:
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} exists; sample_store(path) builds a new store")
        _build_sample(path)
        return path
    cached = sample_store_path()
    if cached is None:  # no writable cache folder: a private store for this process
        return sample_store(Path(tempfile.mkdtemp(prefix="hipanalytics-sample-")) / "sample.sqlite")
    stamp = cached.with_name(cached.name + ".fingerprint")
    if cached.exists() and stamp.exists():
        with Store(cached, create=False) as store:
            if store.fingerprint() == stamp.read_text(encoding="utf-8").strip():
                return cached
    # Build beside the cache and move it in place, so a concurrent reader never sees half a store.
    building = Path(tempfile.mkdtemp(prefix="sample-", dir=cached.parent)) / cached.name
    fingerprint = _build_sample(building)
    for suffix in ("-wal", "-shm"):  # an old store's journal must not be replayed into the new one
        cached.with_name(cached.name + suffix).unlink(missing_ok=True)
    os.replace(building, cached)
    building.parent.rmdir()
    stamp.write_text(fingerprint, encoding="utf-8")
    return cached


if __name__ == "__main__":  # python -m hipanalytics.synthetic FOLDER [N] [SEED]
    import sys

    target = sys.argv[1] if len(sys.argv) > 1 else "data/sample"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    seed_value = int(sys.argv[3]) if len(sys.argv) > 3 else 2026
    generated = generate_clinic(count, seed=seed_value)
    for table, written in write_clinic(generated, target).items():
        print(f"{table:13} {written}")
    print(f"{'export':13} {write_clinic_export(generated, Path(target) / 'clinic-export.xlsx')}")
