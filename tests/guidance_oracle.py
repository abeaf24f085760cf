"""A plain, independent transcription of the clinical guidance (GUIDANCE.md sections 0-4 and 6).

It exists to be compared with the engine (tests/test_guidance_oracle.py): the engine reads YAML rules
through a generic evaluator; this file spells every rule out as an `if`, in the guidance's own words,
so a disagreement points at a misread rule on one side or the other. It deliberately shares nothing
with the engine but the Case it reads; the codes are the vocabulary's (VOCABULARY.md).

`oracle(case)` returns only what the differential test compares:

- disposition: "emergency" | "urgent" | "routine" | "observe"; advice_and_review: whether advice is given
- items, referrals: {code: urgency} issued
- deferred_items, deferred_referrals: {code: urgency} waiting behind an emergency
- item_rules, referral_rules: {code: the clinical rules behind it} (issued or deferred: 0.3 "all its sources")
- withheld: {(code, replacements tuple, urgency, deferred bool)}
- warnings: {warning code}; not_screened: the red flags not answered (red_flags_not_screened lists them)
- not_indicated: the spine studies `not_indicated` names
- red_flags: the red flags present, in the vocabulary's order
- result_flags: {result code: flag}
- fired: the ids of the rules that fired (E*, U*, R*, N*, and S1-S4 when they change or warn)
"""

from tests.cases import RED_FLAGS
from workups.engine import Case

THORACIC_LOCATIONS = {"loc_interscapular", "loc_left_scapular", "loc_right_scapular", "loc_whole_spine"}
LUMBAR_LOCATIONS = {"loc_lumbar", "loc_whole_spine"}
RANK = {"observe": 0, "routine": 1, "urgent": 2, "emergency": 3}
SPINE_IMAGING = {"xray_thoracic_spine", "xray_lumbar_spine", "mri_thoracic_spine", "mri_lumbar_spine", "ct_spine"}
SPINE_MRI = {"mri_thoracic_spine", "mri_lumbar_spine"}
IONISING = {"xray_thoracic_spine", "xray_lumbar_spine", "xray_chest", "ct_spine", "ct_abdomen"}
CT_OR_MRI = {"ct_spine", "ct_abdomen", "mri_thoracic_spine", "mri_lumbar_spine", "mri_brain"}


def _higher(a, b):
    return a if RANK[a] >= RANK[b] else b


def _put(target: dict, code: str, urgency: str, rules) -> None:
    """0.3 Duplicates merge: one entry per code, at the highest urgency, with every rule (source) behind it."""
    if code in target:
        target[code]["urgency"] = _higher(target[code]["urgency"], urgency)
        target[code]["rules"] |= set(rules)
    else:
        target[code] = {"urgency": urgency, "rules": set(rules)}


def _drop_issued(issued: dict, deferred: dict) -> None:
    """0.3 across the emergency line: the issued entry keeps its (emergency) urgency and gains the sources
    of the lower-tier proposal of the same code, which is then no longer listed as waiting."""
    for code in list(deferred):
        if code in issued:
            issued[code]["rules"] |= deferred.pop(code)["rules"]


def result_flags(case: Case, pregnant: bool) -> dict:
    """Section 6's reference intervals (adults)."""
    flags = {}
    for code, value in case.results.items():
        if code == "res_hemoglobin":
            limit = 110 if pregnant else (130 if case.sex == "male" else 120)
            flags[code] = "low" if value < limit else "normal"
        elif code == "res_wbc":
            flags[code] = "low" if value < 4.0 else ("high" if value > 11.0 else "normal")
        elif code == "res_esr":
            limit = case.age / 2 if case.sex == "male" else (case.age + 10) / 2
            flags[code] = "high" if value > limit else "normal"
        elif code == "res_crp":
            flags[code] = "high" if value > 5 else "normal"
        elif code == "res_egfr":
            flags[code] = "low" if value < 60 else "normal"
        elif code == "res_nech_leukocytes":
            flags[code] = "high" if value > 2000 else "normal"
        elif code == "res_nech_erythrocytes":
            flags[code] = "high" if value > 1000 else "normal"
        elif code == "res_nech_casts":
            flags[code] = "high" if value > 20 else "normal"
        elif code == "res_aorta_diameter_cm":
            flags[code] = "high" if value >= 3.0 else "normal"
        elif code.startswith(("img_", "dop_", "ecg_")):
            flags[code] = "present" if value else "absent"
        else:  # res_ua_nitrite, res_hcg, res_troponin_above_url, res_lipase_above_3x_uln
            flags[code] = "positive" if value else "negative"
    return flags


def oracle(case: Case) -> dict:
    findings = dict(case.findings)
    # VOCABULARY: a measured 38.0 or above makes rf_fever present, whatever was answered.
    if case.temperature_c is not None and case.temperature_c >= 38.0:
        findings["rf_fever"] = True

    def has(code):
        return findings.get(code) is True

    def any_of(*codes):
        return any(has(code) for code in codes)

    res = case.results
    female = case.sex == "female"
    male = case.sex == "male"
    age = case.age
    days = case.duration_days
    # N12: a positive hCG makes the patient count as pregnant for every rule.
    pregnant = female and (case.pregnant is True or res.get("res_hcg") is True)
    thoracic = any_of(*THORACIC_LOCATIONS)
    lumbar = any_of(*LUMBAR_LOCATIONS)
    region_xray = (["xray_thoracic_spine"] if thoracic else []) + (["xray_lumbar_spine"] if lumbar else [])
    region_mri = (["mri_thoracic_spine"] if thoracic else []) + (["mri_lumbar_spine"] if lumbar else [])

    fired: set[str] = set()
    # Each proposal: (kind, code, urgency, rule id). The tier a proposal belongs to is its urgency: every
    # rule of sections 1-3 issues at its section's urgency, and a section-6 rule with two urgencies issues
    # each part at its own ("under an emergency issues only its emergency part; the rest is deferred").
    proposals: list[tuple[str, str, str, str]] = []

    def fire(rule, urgency, items=(), referrals=()):
        fired.add(rule)
        for code in items:
            proposals.append(("item", code, urgency, rule))
        for code in referrals:
            proposals.append(("referral", code, urgency, rule))

    # -- 1. Emergency rules ---------------------------------------------------------------------------
    # E1 Cauda equina syndrome
    e1 = any_of(
        "rf_saddle_anesthesia", "rf_bladder_dysfunction", "rf_bowel_incontinence", "rf_progressive_leg_weakness"
    )
    if e1:
        fire("E1", "emergency", ["mri_lumbar_spine"], ["neurosurgery"])
    # E2 Acute coronary syndrome
    e2 = thoracic and has("sx_chest_heaviness") and any_of("sx_dyspnea", "sx_pain_radiating_heart")
    if e2:
        fire("E2", "emergency", ["ecg", "lab_troponin"], ["cardiology"])
    # E3 Aortic catastrophe
    if has("rf_sudden_severe_pain"):
        fire("E3", "emergency", ["ecg"], ["vascular_surgery"])
    # E4 Ectopic pregnancy
    e4 = (
        female
        and has("sx_pelvic_pain")
        and (has("sx_missed_period") or pregnant)
        and any_of("sx_abnormal_vaginal_bleeding", "sx_dizziness_on_standing")
    )
    if e4:
        fire("E4", "emergency", ["lab_pregnancy_test", "us_pelvis"], ["gynecology"])
    # E5 Major trauma with a neurological deficit
    e5 = has("rf_major_trauma") and any_of("ex_leg_weakness", "ex_sensory_deficit")
    if e5:
        fire("E5", "emergency", ["ct_spine"], ["traumatology"])

    # -- 2. Urgent rules --------------------------------------------------------------------------------
    # U1 Cancer history
    if has("rf_cancer_history"):
        fire("U1", "urgent", [*region_mri, "lab_cbc", "lab_crp_esr", "lab_biochemistry"], ["oncology"])
    # U2 Weaker cancer flags
    if any_of("rf_weight_loss", "rf_night_pain") and not has("rf_cancer_history"):
        fire("U2", "urgent", ["lab_cbc", "lab_crp_esr", "lab_biochemistry", *region_xray])
    # U3 Abdominal mass
    if has("ex_abdominal_mass"):
        fire("U3", "urgent", ["us_abdomen", "ct_abdomen", "lab_cbc", "lab_biochemistry"], ["oncology"])
    # U4 Kidney infection
    u4 = has("rf_fever") and lumbar and any_of("ex_cva_tenderness", "sx_dysuria", "sx_urinary_frequency")
    if u4:
        items = ["lab_urinalysis", "lab_nechiporenko", "lab_cbc", "lab_crp_esr", "us_kidneys"]
        fire("U4", "urgent", items, ["nephrology"])
    # U5 Chest infection
    u5 = has("rf_fever") and thoracic and any_of("sx_cough", "ex_lung_crackles", "sx_dyspnea")
    if u5:
        fire("U5", "urgent", ["xray_chest", "lab_cbc", "lab_crp_esr"], ["pulmonology"])
    # U6 Spinal infection
    if has("rf_immunosuppression") or (has("rf_fever") and not u4 and not u5):
        fire("U6", "urgent", [*region_mri, "lab_cbc", "lab_crp_esr"], ["infectious_disease"])
    # U7 Shingles ("no spine imaging": U7 itself orders none)
    if has("ex_vesicular_rash"):
        fire("U7", "urgent", [], ["infectious_disease"])
    # U8 Major trauma without a deficit (the deficit of E5)
    if has("rf_major_trauma") and not e5:
        fire("U8", "urgent", region_xray, ["traumatology"])
    # U9 Fragility fracture
    u9 = has("hx_minor_trauma") and (has("hx_osteoporosis") or age >= 65)
    if u9:
        fire("U9", "urgent", region_xray, ["traumatology"])
    # U10 Neurological deficit
    if any_of("ex_leg_weakness", "ex_reflexes_reduced", "ex_sensory_deficit") and not e1 and not e5:
        fire("U10", "urgent", region_mri, ["neurology"])
    # U11 Possible cardiac cause (dyspnoea alone is the chest infection's when U5 fires)
    cardiac = any_of("sx_chest_heaviness", "sx_pain_radiating_heart") or (has("sx_dyspnea") and not u5)
    if thoracic and not e2 and cardiac:
        fire("U11", "urgent", ["ecg", "lab_cbc", "lab_biochemistry"], ["cardiology"])
    # U12 Post-menopausal or abnormal bleeding
    if female and has("sx_abnormal_vaginal_bleeding") and age >= 50 and not e4:
        fire("U12", "urgent", ["us_pelvis"], ["gynecology"])

    # -- 3. Routine pathways (R1 comes after triage) --------------------------------------------------
    # R2 See a neurologist
    if any_of(
        "pattern_recurrent", "sx_pain_with_movement", "sx_tingling", "sx_dizziness_on_standing", "sx_urinary_frequency"
    ):
        fire("R2", "routine", [], ["neurology"])
    # R3 Kidneys
    if lumbar and any_of(
        "sx_urinary_frequency", "sx_dysuria", "ex_cva_tenderness", "hx_kidney_disease", "sx_visceral_numbness"
    ):
        referral = ["nephrology"] if any_of("ex_cva_tenderness", "hx_kidney_disease") else []
        fire("R3", "routine", ["lab_urinalysis", "lab_nechiporenko", "us_kidneys"], referral)
    # R4 Prostate
    if male and (has("hx_prostate_disease") or (has("sx_urinary_frequency") and lumbar)):
        fire("R4", "routine", ["lab_urinalysis", "us_prostate"], ["urology"])
    # R5 Gynaecology
    if (
        female
        and lumbar
        and any_of("hx_gyn_disease", "sx_pelvic_pain", "sx_menstrual_related", "sx_abnormal_vaginal_bleeding")
    ):
        fire("R5", "routine", ["us_pelvis"], ["gynecology"])
    if pregnant and lumbar:
        fire("R5", "routine", [], ["gynecology"])
    # R6 Pancreas and abdomen
    if any_of("hx_pancreatic_disease", "sx_pain_radiating_abdomen", "ex_abdominal_tenderness"):
        fire("R6", "routine", ["us_abdomen", "lab_pancreatic_enzymes"], ["gastroenterology"])
    # R7 Proctology
    if has("sx_rectal_symptoms") and lumbar:
        fire("R7", "routine", [], ["proctology"])
    # R8 Posture deformity
    if any_of("ex_posture_deformity", "hx_scoliosis_kyphosis"):
        fire("R8", "routine", region_xray, ["orthopedics"])
    # R9 Persistent radicular symptoms
    radicular = lumbar and any_of("sx_leg_pain", "ex_straight_leg_raise_positive")
    if radicular and days >= 42:
        fire("R9", "routine", ["mri_lumbar_spine"], ["neurology"])
    # R10 Known disc herniation, persistent
    if has("hx_disc_herniation") and days >= 42:
        fire("R10", "routine", ["mri_lumbar_spine"] if lumbar else [], ["neurology"])
    # R11 Legs and vessels
    if any_of("sx_leg_cramps", "ex_peripheral_pulses_reduced"):
        referral = ["vascular_surgery"] if has("ex_peripheral_pulses_reduced") else []
        fire("R11", "routine", ["doppler_lower_limb"], referral)
    # R12 Dizziness
    if has("sx_dizziness_on_standing") and not e4:
        fire("R12", "routine", ["doppler_neck_vessels", "ecg"])
    # R13 Inflammatory back pain
    if has("sx_inflammatory_pattern") and days >= 90 and age < 45:
        fire("R13", "routine", ["lab_crp_esr"], ["rheumatology"])
    # R14 Chest after a viral infection
    if thoracic and has("sx_cough") and has("hx_recent_viral_infection") and not has("rf_fever"):
        fire("R14", "routine", ["xray_chest"], ["pulmonology"])
    # R15 Shoulders and large joints
    if has("sx_arm_movement_restricted"):
        fire("R15", "routine", [], ["orthopedics"])
    # R16 Skin over the numb area
    if has("ex_skin_redness_swelling"):
        fire("R16", "routine", ["lab_cbc", "lab_crp_esr"])
    # R17 Intercostal neuralgia
    if has("ex_intercostal_tenderness") or (has("sx_acute_paroxysmal_pain") and thoracic):
        fire("R17", "routine", ["ecg"], ["neurology"])
    # R18 Known heart disease
    if has("hx_heart_disease") and thoracic:
        fire("R18", "routine", ["ecg"], ["cardiology"])
    # R19 Minor trauma
    if has("hx_minor_trauma") and not u9:
        fire("R19", "routine", region_xray if has("ex_paravertebral_tenderness") else [], ["traumatology"])

    # -- 6. Results and next steps ---------------------------------------------------------------------
    def positive(code):
        return res.get(code) is True

    def value(code):
        return res.get(code)  # a number, or None when not entered

    fever = has("rf_fever")
    # N1 Myocardial injury
    if positive("res_troponin_above_url") or positive("ecg_acute_ischaemia"):
        fire("N1", "emergency", [], ["cardiology"])
    # N2 Compression on imaging
    if positive("img_cauda_or_cord_compression"):
        fire("N2", "emergency", [], ["neurosurgery"])
    # N3 Aneurysm
    aorta = value("res_aorta_diameter_cm")
    if aorta is not None and aorta >= 5.5:
        fire("N3", "urgent", [], ["vascular_surgery"])
    elif aorta is not None and aorta >= 3.0:
        fire("N3", "routine", [], ["vascular_surgery"])
    # N4 Urinary infection
    leukocytes = value("res_nech_leukocytes")
    if (leukocytes is not None and leukocytes > 2000) or positive("res_ua_nitrite"):
        if fever or has("ex_cva_tenderness"):
            fire("N4", "urgent", ["lab_urine_culture", "us_kidneys"], ["nephrology"])
        else:
            fire("N4", "routine", ["lab_urine_culture"])
    # N5 Blood in the urine
    erythrocytes = value("res_nech_erythrocytes")
    if erythrocytes is not None and erythrocytes > 1000:
        fire("N5", "routine", ["us_kidneys"], ["urology"])
        wbc = value("res_wbc")
        if age >= 60 and (has("sx_dysuria") or (wbc is not None and wbc > 11.0)):
            fire("N5", "urgent", [], ["urology"])
    # N6 Stone or obstruction
    if positive("img_urolithiasis_or_hydronephrosis"):
        fire("N6", "emergency" if fever else "urgent", [], ["urology"])
    # N7 Kidney function
    egfr = value("res_egfr")
    casts = value("res_nech_casts")
    if egfr is not None and egfr < 30:
        fire("N7", "urgent", [], ["nephrology"])
    if (egfr is not None and 30 <= egfr < 60) or (casts is not None and casts > 20):
        fire("N7", "routine", [], ["nephrology"])
    # N8 Cancer screen after U2 (ESR at the fixed 20 mm/h, whatever the age reference)
    esr = value("res_esr")
    if any_of("rf_weight_loss", "rf_night_pain") and (
        (esr is not None and esr >= 20) or positive("img_suspected_malignancy")
    ):
        fire("N8", "urgent", region_mri, ["oncology"])
    # N9 Malignancy or infection on imaging
    if positive("img_suspected_malignancy"):
        fire("N9", "urgent", region_mri, ["oncology"])
    if positive("img_suspected_infection"):
        fire("N9", "urgent", [], ["infectious_disease", "neurosurgery"])
    # N10 Fracture
    if positive("img_vertebral_fracture"):
        fire("N10", "urgent", [], ["traumatology"])
        if any_of("ex_leg_weakness", "ex_sensory_deficit"):
            fire("N10", "emergency", [], ["neurosurgery"])
    # N11 Root compression
    if positive("img_root_compression"):
        if has("ex_leg_weakness"):
            fire("N11", "urgent", [], ["neurosurgery"])
        else:
            fire("N11", "routine", [], ["neurology"])
    # N12 Pregnancy found
    if female and positive("res_hcg"):
        fire("N12", "routine", [], ["gynecology"])
    # N13 Stenosis
    if positive("dop_significant_stenosis"):
        fire("N13", "routine", [], ["vascular_surgery"])
    # N14 Pancreatitis
    if positive("res_lipase_above_3x_uln") and any_of("sx_pain_radiating_abdomen", "ex_abdominal_tenderness"):
        fire("N14", "emergency", [], ["gastroenterology"])

    # -- 0. How the rules combine ------------------------------------------------------------------------
    not_screened = [code for code in RED_FLAGS if code not in findings]
    red_flags = [code for code in RED_FLAGS if has(code)]

    # 0.1 Triage: the highest tier any rule fires.
    disposition = "observe"
    for _kind, _code, urgency, _rule in proposals:
        disposition = _higher(disposition, urgency)
    # Observe needs every red flag answered absent and the numbness not recurrent (R2 covers recurrence,
    # and every red flag present fires a rule); 0.5: an unfinished screen is never `observe`.
    if disposition == "observe" and (not_screened or red_flags or has("pattern_recurrent")):
        disposition = "routine"
    # R1 Baseline blood tests, whenever the disposition is not observe.
    if disposition != "observe":
        fire("R1", "routine", ["lab_cbc", "lab_biochemistry"])

    # 0.2 An emergency suppresses the planned workup; 0.3 duplicates merge at the highest urgency.
    items: dict = {}
    referrals: dict = {}
    deferred_items: dict = {}
    deferred_referrals: dict = {}
    for kind, code, urgency, rule in proposals:
        waits = disposition == "emergency" and urgency != "emergency"
        if kind == "item":
            _put(deferred_items if waits else items, code, urgency, {rule})
        else:
            _put(deferred_referrals if waits else referrals, code, urgency, {rule})

    # 0.3 An item or referral appears once: what is issued (at the emergency urgency) is not also waiting.
    _drop_issued(items, deferred_items)
    _drop_issued(referrals, deferred_referrals)

    # -- 4. Safety rules, on the issued and (0.2) the deferred alike ------------------------------------
    withheld: set = set()
    warnings: set = set()
    for deferred, target in ((False, items), (True, deferred_items)):
        # S1 Pregnancy
        if pregnant:
            alternatives = {
                "xray_lumbar_spine": ["mri_lumbar_spine"],
                "xray_thoracic_spine": ["mri_thoracic_spine"],
                "ct_spine": region_mri,
                "ct_abdomen": ["us_abdomen"],
            }
            for code, replacements in alternatives.items():
                if code in target:
                    entry = target.pop(code)
                    for replacement in replacements:
                        _put(target, replacement, entry["urgency"], entry["rules"])
                    withheld.add((code, tuple(sorted(replacements)), entry["urgency"], deferred))
                    fired.add("S1")
            if "xray_chest" in target:
                warnings.add("ionising_imaging_in_pregnancy")
                fired.add("S1")
        # S3 MRI not possible
        if has("hx_mri_contraindication"):
            for code in sorted(SPINE_MRI & set(target)):
                entry = target.pop(code)
                urgency = entry["urgency"]
                fired.add("S3")
                if not pregnant:
                    _put(target, "ct_spine", urgency, entry["rules"])
                    withheld.add((code, ("ct_spine",), urgency, deferred))
                    continue
                withheld.add((code, (), urgency, deferred))
                # The deciding referral: neurology at the withheld study's urgency, unless neurosurgery
                # is already issued at that urgency or higher.
                if "neurosurgery" in referrals and RANK[referrals["neurosurgery"]["urgency"]] >= RANK[urgency]:
                    continue
                # Reading adopted (the engine's): for a deferred MRI, a neurosurgery referral deferred with it
                # at that urgency or higher decides as well; the safety rules treat what waits behind an
                # emergency as the workup it will become (0.2), where that neurosurgery referral is issued.
                waiting = deferred_referrals.get("neurosurgery")
                if deferred and waiting and RANK[waiting["urgency"]] >= RANK[urgency]:
                    continue
                # Its source is S3 alone, like S2's pregnancy test.
                _put(deferred_referrals if deferred else referrals, "neurology", urgency, set())
        # S2 Possible pregnancy (checked after S3, whose CT is ionising too); N12: a negative hCG satisfies it.
        if female and 12 <= age <= 50 and not pregnant and res.get("res_hcg") is not False:
            ionising = [target[code] for code in IONISING if code in target]
            # A pregnancy test already ordered (E4 issues one at emergency) answers the question: S2 adds none.
            if "lab_pregnancy_test" in items or "lab_pregnancy_test" in target:
                ionising = []
            if ionising:
                urgency = "routine"
                for each in ionising:
                    urgency = _higher(urgency, each["urgency"])
                # Its source is S2 alone (not a clinical rule), at the urgency of the imaging it precedes.
                _put(target, "lab_pregnancy_test", urgency, set())
                fired.add("S2")
        # S4 Contrast (N7: an eGFR below 30 counts as kidney disease)
        egfr = value("res_egfr")
        if (has("hx_kidney_disease") or (egfr is not None and egfr < 30)) and CT_OR_MRI & set(target):
            warnings.add("contrast_and_kidney_disease")
            fired.add("S4")

    # 0.3 again: a replacement the safety rules deferred may already be issued.
    _drop_issued(items, deferred_items)
    _drop_issued(referrals, deferred_referrals)

    # 0.5 Red-flag screen
    if not_screened:
        warnings.add("red_flags_not_screened")

    # 0.6 Stewardship: no spine imaging issued, none deferred or withheld, and no red flag present.
    not_indicated: set = set()
    considered = set(items) | set(deferred_items) | {entry[0] for entry in withheld}
    if not (SPINE_IMAGING & considered) and not red_flags:
        not_indicated.update(region_xray)
        not_indicated.update(region_mri)
        # R9: under 42 days without a deficit, no imaging (conservative care first).
        if radicular and days < 42 and not any_of("ex_leg_weakness", "ex_reflexes_reduced", "ex_sensory_deficit"):
            not_indicated.update({"mri_lumbar_spine", "xray_lumbar_spine", "ct_spine"})

    def urgencies(entries):
        return {code: entry["urgency"] for code, entry in entries.items()}

    def rules_behind(entries):
        return {code: entry["rules"] for code, entry in entries.items()}

    return {
        "disposition": disposition,
        # Observe: advice (position, warmth, activity) and when to come back; any other disposition a workup.
        "advice_and_review": disposition == "observe",
        "items": urgencies(items),
        "referrals": urgencies(referrals),
        "deferred_items": urgencies(deferred_items),
        "deferred_referrals": urgencies(deferred_referrals),
        "item_rules": rules_behind(items) | rules_behind(deferred_items),
        "referral_rules": rules_behind(referrals) | rules_behind(deferred_referrals),
        "withheld": withheld,
        "warnings": warnings,
        "not_screened": not_screened,
        "not_indicated": not_indicated,
        "red_flags": red_flags,
        "result_flags": result_flags(case, pregnant),
        "fired": fired,
    }
