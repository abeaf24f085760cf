"""Referral letters and requisitions as PDFs, rendered in-process: content, pages, hostile input, the claim."""

import http.server
import io
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader

from referrals import services
from referrals.models import PdfStatus, Referral
from referrals.pdf import StaticOnlyFetcher, html_to_pdf
from tests.record_factories import actor_for, encounter_of, patient_of, screened, workup_for
from workups.models import Decision
from workups.services import recommendation_decide

pytestmark = pytest.mark.django_db


def pdf_text(document) -> list[str]:
    document.refresh_from_db()
    assert document.pdf_status == PdfStatus.READY, document.pdf_error
    with document.pdf_file.open("rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
    return [page.extract_text() for page in reader.pages]


def keep_page_images(document, name):
    """With SCREENSHOT_DIR set, keep the pages as PNG (pdftoppm) for the documentation."""
    target = os.environ.get("SCREENSHOT_DIR")
    if target and shutil.which("pdftoppm"):
        Path(target).mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "70", "-png", document.pdf_file.path, str(Path(target) / name)], check=True)


def render(document):
    kind = "referral" if isinstance(document, Referral) else "requisition"
    return services.document_render(kind=kind, pk=document.pk, claimant=f"test:{id(document)}")


@pytest.fixture
def consultation(gp):
    patient = patient_of(gp, family_name="Иванова", given_name="Мария", sex="female", identifier="MRN-77")
    encounter = encounter_of(
        gp,
        patient=patient,
        pregnant=False,
        temperature_c=37.1,
        heart_rate=78,
        chief_complaint="Numbness in the lower back for ten days",
    )
    workup = workup_for(gp, encounter)
    return gp, encounter, workup


def test_a_letter_holds_the_patient_the_specialty_the_urgency_the_reason_and_each_pertinent_negative(consultation):
    gp, encounter, workup = consultation
    actor = actor_for(gp)
    nephrology = workup.referrals.get(specialty="nephrology")
    recommendation_decide(actor=actor, recommendation=nephrology, decision=Decision.ACCEPTED)
    recommendation_decide(actor=actor, recommendation=workup.items.get(code="us_kidneys"), decision=Decision.ACCEPTED)
    referral = services.referral_create(
        actor=actor, encounter=encounter, recommendation=nephrology, question="Pyelonephritis or a stone?"
    )
    assert render(referral) == "rendered"
    text = "\n".join(pdf_text(referral))
    keep_page_images(referral, "letter")
    flat = " ".join(text.split())
    for expected in [
        "Иванова Мария",
        "Nephrology",
        "Routine referral",
        referral.reason,  # what was found, then what the referral is for
        "Pyelonephritis or a stone?",
        "No saddle anaesthesia",
        "No urinary retention or incontinence",
        "No fever",
        "No history of cancer",
        "No sudden tearing pain",
        "frequent urination",  # after its section's title and a colon
        "Heart rate 78 /min",
        "Ultrasound of the kidneys and bladder",
        "ordered",
        "MRN-77",
        "Not pregnant",
    ]:
        assert " ".join(expected.split()) in flat, expected


def test_every_page_carries_the_patient_and_its_number(consultation):
    gp, encounter, workup = consultation
    encounter.notes = {"history": "Long history. " * 400}
    encounter.save()
    referral = services.referral_create(
        actor=actor_for(gp), encounter=encounter, specialty="neurology", urgency="urgent", reason="Persistent numbness"
    )
    render(referral)
    pages = pdf_text(referral)
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert "Иванова Мария, born 1980-05-17" in text
        assert f"page {number} of {len(pages)}" in text


def test_the_requisition_groups_the_accepted_tests_with_their_indication_and_pregnancy_status(gp):
    patient = patient_of(
        gp, family_name="Орлова", given_name="Ольга", sex="female", birth_date=__import__("datetime").date(1995, 1, 1)
    )
    encounter = encounter_of(
        gp, patient=patient, findings=screened({"loc_interscapular": True, "hx_scoliosis_kyphosis": True})
    )
    workup = workup_for(gp, encounter)
    actor = actor_for(gp)
    for code in ("lab_cbc", "xray_thoracic_spine", "lab_pregnancy_test"):
        recommendation_decide(actor=actor, recommendation=workup.items.get(code=code), decision=Decision.ACCEPTED)
    recommendation_decide(
        actor=actor, recommendation=workup.items.get(code="lab_biochemistry"), decision=Decision.DECLINED, reason="done"
    )
    requisition = services.requisition_request(actor=actor, encounter=encounter)
    assert render(requisition) == "rendered"
    flat = " ".join("\n".join(pdf_text(requisition)).split())
    keep_page_images(requisition, "requisition")
    assert "Laboratory" in flat and "Imaging" in flat
    assert "X-ray of the thoracic spine" in flat and "Complete blood count" in flat
    assert "Blood biochemistry" not in flat
    assert "Pregnancy status: not recorded" in flat
    assert "Scoliosis, kyphosis or a visible posture deformity" in flat


def test_a_document_is_rendered_once_however_often_its_task_runs(consultation):
    gp, encounter, _ = consultation
    referral = services.referral_create(
        actor=actor_for(gp), encounter=encounter, specialty="neurology", urgency="routine", reason="Recurrent numbness"
    )
    assert services.document_render(kind="referral", pk=referral.pk, claimant="host:1:a") == "rendered"
    assert services.document_render(kind="referral", pk=referral.pk, claimant="host:2:b") == "skipped"
    referral.refresh_from_db()
    assert referral.pdf_renders == 1


def test_a_render_abandoned_by_a_dead_process_is_taken_over(consultation):
    import socket

    gp, encounter, _ = consultation
    referral = services.referral_create(
        actor=actor_for(gp), encounter=encounter, specialty="neurology", urgency="routine", reason="Recurrent numbness"
    )
    dead = f"{socket.gethostname()}:999999:lost"  # no such process
    Referral.objects.filter(pk=referral.pk).update(pdf_status=PdfStatus.RENDERING, pdf_claimed_by=dead)
    assert services.document_render(kind="referral", pk=referral.pk, claimant="host:3:c") == "rendered"
    alive = f"{socket.gethostname()}:1:busy"  # init: alive, and claimed just now
    other = services.referral_create(
        actor=actor_for(gp), encounter=encounter, specialty="oncology", urgency="routine", reason="Weight loss"
    )
    from django.utils import timezone

    Referral.objects.filter(pk=other.pk).update(
        pdf_status=PdfStatus.RENDERING, pdf_claimed_by=alive, pdf_claimed_at=timezone.now()
    )
    assert services.document_render(kind="referral", pk=other.pk, claimant="host:4:d") == "skipped"


HOSTILE = [
    '<img src="file:///etc/passwd">',
    '<link rel="attachment" href="file:///etc/passwd">',
    '<a rel="attachment" href="file:///etc/hostname">x</a>',
    '<style>body { background: url("http://127.0.0.1:{port}/css") }</style>',
    '<div style="background: url(http://127.0.0.1:{port}/inline)">y</div>',
]


@pytest.fixture
def spy_server():
    """A loopback HTTP server that records every request made to it."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()


def embedded_files(pdf_bytes) -> list:
    reader = PdfReader(io.BytesIO(pdf_bytes))
    names = reader.trailer["/Root"].get("/Names")
    attachments = list(reader.attachments)
    return attachments + ([names] if names and "/EmbeddedFiles" in names else [])


def test_hostile_text_in_a_record_is_printed_not_obeyed(gp, spy_server):
    port, hits = spy_server
    hostile = [line.replace("{port}", str(port)) for line in HOSTILE]
    patient = patient_of(gp, family_name=hostile[0], given_name=hostile[1])
    encounter = encounter_of(
        gp, patient=patient, chief_complaint=hostile[2], notes={"history": hostile[3], "examination": hostile[4]}
    )
    referral = services.referral_create(
        actor=actor_for(gp),
        encounter=encounter,
        specialty="neurology",
        urgency="routine",
        reason=hostile[3],
        question=hostile[4],
    )
    render(referral)
    flat = " ".join("\n".join(pdf_text(referral)).split())
    with referral.pdf_file.open("rb") as handle:
        pdf = handle.read()
    assert 'src="file:///etc/passwd"' in flat  # shown as text
    assert "root:" not in flat
    assert hits == []
    assert embedded_files(pdf) == []


def test_the_renderer_itself_reaches_only_the_app_static_files(spy_server):
    port, hits = spy_server
    html = (
        '<html><head><link rel="stylesheet" href="/static/pdf/document.css">'
        f'<link rel="stylesheet" href="http://127.0.0.1:{port}/evil.css">'
        f'<link rel="attachment" href="file:///etc/passwd"></head><body>'
        f'<img src="file:///etc/passwd"><img src="http://127.0.0.1:{port}/pixel.png">'
        '<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=">'
        '<img src="/static/../../../../etc/passwd"><img src="/static/%2e%2e/%2e%2e/etc/passwd">'
        f'<a rel="attachment" href="http://127.0.0.1:{port}/attach">a</a>'
        f'<p style="background: url(http://127.0.0.1:{port}/bg)">Текст документа</p></body></html>'
    )
    fetcher = StaticOnlyFetcher()
    pdf = html_to_pdf(html, fetcher=fetcher)
    assert hits == []
    assert embedded_files(pdf) == []
    assert {"file", "http", "data"} <= set(fetcher.refused)
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Текст документа" in text  # the shipped font covers Cyrillic


def test_the_shipped_static_files_are_what_the_renderer_may_use():
    fetcher = StaticOnlyFetcher()
    response = fetcher.fetch("https://documents.invalid/static/fonts/DejaVuSans.ttf")
    assert response.status == 200
    with pytest.raises(ValueError):
        fetcher.fetch("https://documents.invalid/static/../settings.py")
    with pytest.raises(ValueError):
        fetcher.fetch("https://example.org/static/pdf/document.css")


def test_a_right_to_left_override_in_a_name_cannot_turn_the_printed_line_around():
    # U+202E would print everything after it backwards; the renderer drops bidi controls.
    pdf = html_to_pdf("<p>Patient: Ivanova\u202eAnna 1981</p><p>Next line</p>")

    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "IvanovaAnna 1981" in text and "\u202e" not in text


def test_documents_are_laid_out_with_weasyprints_user_agent_rules_except_the_footnote_ones_they_never_use():
    # The renderer drops WeasyPrint's footnote and note rules (computed for every element otherwise). That
    # must stay true of the documents, and a WeasyPrint that keeps its stylesheet elsewhere must show here,
    # not as a silent slowdown.
    from weasyprint import html as weasyprint_html

    from referrals.pdf import FOOTNOTE_RULES, _DocumentHTML, _user_agent_stylesheet

    kept = set(FOOTNOTE_RULES.sub("", weasyprint_html.UA).splitlines())
    dropped = [line for line in weasyprint_html.UA.splitlines() if line not in kept]
    assert len(dropped) == 5 and all(line.startswith(("::footnote-", "::note-")) for line in dropped)
    assert _DocumentHTML(string="<p>x</p>")._ua_stylesheets() == [_user_agent_stylesheet()]
    root = Path(__file__).resolve().parent.parent
    for source in [*(root / "static" / "pdf").glob("*.css"), *(root / "templates" / "referrals").glob("*.html")]:
        assert "footnote" not in source.read_text(encoding="utf-8"), source.name
