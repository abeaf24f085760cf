"""Scale on PostgreSQL: search, lists, pages, the worklist and the FHIR export with 1,000,000 patients.

    nice -n 10 python bench/scale.py [--patients 1000000] [--encounters 3000000] [--samples 200]
                                     [--pgdata DIR] [--out FILE.json]

Starts a throwaway PostgreSQL the way scripts/test does (initdb as the postgres user, a free loopback port,
fsync off) unless DATABASE_URL names a PostgreSQL database to use. In it:

- an empty database: migrated, with the showcase records made through the app's services (a finalized
  encounter with its workup, decisions, an issued referral, a requisition and a result; a draft encounter),
  where the FHIR export and the pages are timed first: the baseline for "at most 2x an empty database";
- the scale database: the same showcase records, then 1,000,000 patients in three clinics (60 % / 25 % / 15 %;
  Russian names with patronymics and about 10 % Latin-script names, family names drawn with a skew so the
  common ones are common; birth dates 1930-2026) and 3,000,000 encounters, loaded with INSERT ... SELECT
  generate_series; `name_search` filled from clinic.text.search_key of each name part, and then checked
  against search_key(f"{family} {given} {middle}") exactly as clinic.services fills it, for every distinct
  name; one patient with 5,000 encounters (each with a workup); the worklist of the largest clinic with
  10,000 open items (4,000 open referrals, 3,000 accepted tests awaiting results, 3,000 abnormal results
  not acknowledged) beside 20,000 closed referrals, 20,000 acknowledged results and the history of tests
  that await nothing: a workup for each acknowledged result's encounter with its test accepted and answered
  and another declined (40,000 tests; added to a kept cluster that lacks them).

Timings are in-process, through Django's full request handling (the test client: middleware, session or
token authentication, the audit rows each read writes, template rendering), p50 and p95 over --samples
requests of each kind, after a warm-up. Each request's query count is recorded and printed. EXPLAIN
(ANALYZE, BUFFERS) of the patient queries each search kind runs is printed at the end.

With --pgdata DIR the cluster is kept in DIR and reused by the next run (the load is skipped when the
patients are there; new migrations are applied and timed), so the same data measures before and after a change.
`--compare BEFORE.json AFTER.json` prints two --out reports side by side as a Markdown table.
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCALE_DB = "backnumb_scale"
EMPTY_DB = "backnumb_empty"
NOW = "2026-11-30 09:00:00+03"


def words(text: str) -> list[str]:
    return text.split()


# -- names ----------------------------------------------------------------------------------------------

# Roughly in order of frequency: the skewed draw makes the first ones the most common, as in a real register.
FAMILIES_RU = words(
    """
    Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов Волков Алексеев Лебедев
    Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин Захаров Зайцев Соловьёв Борисов
    Яковлев Григорьев Романов Воробьёв Сергеев Кузьмин Фролов Александров Дмитриев Королёв Гусев Киселёв Ильин
    Максимов Поляков Сорокин Виноградов Ковалёв Белов Медведев Антонов Тарасов Жуков Баранов Филиппов Комаров
    Давыдов Беляев Герасимов Богданов Осипов Сидоров Матвеев Титов Марков Миронов Крылов Куликов Карпов Власов
    Мельников Денисов Гаврилов Тихонов Казаков Афанасьев Данилов Савельев Тимофеев Фомин Чернов Абрамов Мартынов
    Ефимов Федотов Щербаков Назаров Калинин Исаев Чернышёв Быков Маслов Родионов Коновалов Лазарев Воронин Климов
    Филатов Пономарёв Голубев Кудрявцев Прохоров Наумов Потапов Журавлёв Овчинников Трофимов Леонов Соболев
    Ермаков Колесников Гончаров Емельянов Никифоров Грачёв Котов Гришин Ефремов Архипов Громов Кириллов Малышев
    Панов Моисеев Румянцев Акимов Кондратьев Бирюков Горбунов Анисимов Ерёмин Тихомиров Галкин Лукьянов Михеев
    Скворцов Юдин Белоусов Нестеров Симонов Прокофьев Харитонов Князев Цветков Левин Митрофанов Воронцов Аксёнов
    Мальцев Логинов Горшков Савин Краснов Майоров Демидов Елисеев Рыбаков Сафонов Плотников Хохлов Жданов Толстой
    Донской Успенский Вишневский Покровский Преображенский Рождественский Введенский Троицкий Шевченко Бондаренко
    Ковальчук Кравченко Ткаченко Мельник Гончарук Лысенко Романенко Савчук Бойко Коваленко Ахметов Сафин Галиев
    Хабибуллин Гарипов Каримов Нуриев Юсупов Алиев Мамедов Гасанов Абдуллаев Рахимов Исмаилов Хасанов Ким Пак Цой
    Миллер Шмидт Вебер Кох Беккер
    """
)
GIVEN_RU_MALE = words(
    """
    Александр Алексей Андрей Антон Артём Борис Вадим Валентин Валерий Василий Виктор Виталий Владимир Владислав
    Вячеслав Геннадий Георгий Григорий Даниил Денис Дмитрий Евгений Егор Иван Игорь Илья Кирилл Константин Леонид
    Максим Матвей Михаил Никита Николай Олег Павел Пётр Роман Руслан Сергей Станислав Степан Тимур Фёдор Юрий
    Ярослав Семён Арсений Лев Марк Тимофей Анатолий Рустам
    """
)
GIVEN_RU_FEMALE = words(
    """
    Александра Алёна Алина Алла Анастасия Ангелина Анна Валентина Валерия Вера Виктория Галина Дарья Диана Евгения
    Екатерина Елена Елизавета Жанна Зинаида Зоя Инна Ирина Карина Кристина Ксения Лариса Лидия Любовь Людмила
    Маргарита Марина Мария Надежда Наталья Нина Оксана Олеся Ольга Полина Раиса Светлана Софья Тамара Татьяна
    Ульяна Юлия Яна Фёкла Эльвира Гульнара
    """
)
PATRONYMICS_MALE = words(
    """
    Александрович Алексеевич Андреевич Антонович Борисович Викторович Владимирович Вячеславович Геннадьевич
    Григорьевич Дмитриевич Евгеньевич Иванович Игоревич Константинович Леонидович Михайлович Николаевич Олегович
    Павлович Петрович Романович Сергеевич Степанович Фёдорович Юрьевич Анатольевич Валерьевич Васильевич Семёнович
    Артёмович Рустамович
    """
)
FAMILIES_LATIN = words(
    """
    Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin Jackson Thompson
    White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Green Baker Adams Nelson Müller Schmidt
    Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann García Martínez López González Rodríguez Fernández
    Rossi Russo Ferrari Esposito Bianchi Dubois Moreau Laurent Lefebvre Kowalski Nowak Wiśniewski Novák Ivanov
    Petrov Sokolov Kuznetsov O'Brien MacLeod
    """
)
GIVEN_LATIN_MALE = words(
    """
    John James Robert Michael William David Richard Joseph Thomas Charles Lucas Leon Paul Jan Pierre Marco Carlos
    José Jürgen Ivan
    """
)
GIVEN_LATIN_FEMALE = words(
    """
    Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Anna Maria Sofia Emma Olivia Giulia
    Ana Elena Zoë Chloé
    """
)
COMPLAINTS = [
    "Онемение в пояснице",
    "Онемение и покалывание в пояснице после нагрузки",
    "Боль и онемение в нижней части спины",
    "Онемение между лопатками",
    "Numbness in the lower back",
    "Тянущая боль в пояснице, отдаёт в ногу",
    "Онемение по ходу позвоночника",
    "Скованность по утрам, онемение в пояснице",
    "Повторное обращение: онемение сохраняется",
    "",
]


def female_family(name: str) -> str:
    for male, female in (("ский", "ская"), ("цкий", "цкая"), ("ой", "ая")):
        if name.endswith(male):
            return name[: -len(male)] + female
    if name.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return name + "а"
    return name  # -енко, -ук, Ким, Миллер: the same for both


def female_patronymic(name: str) -> str:
    return name[: -len("ич")] + "на"


# -- the throwaway PostgreSQL ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: as scripts/test does, run it as the Debian package's postgres user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class Cluster:
    """initdb + pg_ctl start on a free port; stopped (and removed unless kept) by stop()."""

    SETTINGS = {
        "listen_addresses": "127.0.0.1",
        # A throwaway cluster: no durability (as in scripts/test); the rest is a modest production setup.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "1GB",
        "maintenance_work_mem": "512MB",
        "max_wal_size": "8GB",
        "checkpoint_timeout": "30min",
    }

    def __init__(self, pgdata: Path | None):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name))
        if not bins:
            sys.exit("PostgreSQL is not installed (apt-get install postgresql), and DATABASE_URL is not set.")
        self.bin = bins[-1]
        self.keep = pgdata is not None
        if pgdata:
            self.dir = Path(pgdata).resolve()
        else:
            own = Path(tempfile.mkdtemp(prefix="backnumb-scale."))
            own.chmod(0o755)  # our own directory: the postgres user must reach the cluster inside it
            self.dir = own / "pg"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        if not (self.dir / "PG_VERSION").exists():
            subprocess.run(
                as_postgres(
                    [str(self.bin / "initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
                    + ["--locale=C.UTF-8"]
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        options = f"-p {self.port} -k {self.dir} " + " ".join(f"-c {k}={v}" for k, v in self.SETTINGS.items())
        subprocess.run(
            as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "log"), "-w"])
            + ["-o", options, "start"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.version = self.bin.parent.name

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self):
        subprocess.run(
            as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not self.keep:
            shutil.rmtree(self.dir.parent, ignore_errors=True)


def ensure_database(url: str, *, fresh: bool) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            connection.execute(f'DROP DATABASE "{name}"')
            exists = None
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


# -- inside a worker process: Django on one database ---------------------------------------------------


def django_setup(url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or "bench-only-secret",
            "DATABASE_URL": url,
            "DJANGO_LOG_LEVEL": "WARNING",
            "DJANGO_ALLOWED_HOSTS": "testserver",
            # The letters rendered for the showcase: in the run's own directory, removed with it.
            "MEDIA_ROOT": os.environ.get("BENCH_SCALE_MEDIA") or tempfile.mkdtemp(prefix="backnumb-scale-media."),
        }
    )
    # No broker: documents render in-process (Celery eager), as in the embedded default.
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def migrate() -> float:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    return time.perf_counter() - started


def red_flags_absent() -> dict:
    from workups.engine import get_knowledge_base

    return {code: False for code in get_knowledge_base().red_flags}


def showcase() -> dict:
    """The records the pages are timed on, made through the app's services (idempotent)."""
    import datetime

    from django.contrib.auth import get_user_model

    from clinic import services
    from clinic.audit import Actor
    from clinic.models import Clinic, Membership, Patient
    from referrals import services as referral_services
    from workups import services as workup_services
    from workups.models import Decision
    from workups.services import recommendation_decide, result_enter, workup_generate

    user_model = get_user_model()
    if Patient.objects.filter(identifier="SHOW-1").exists():
        return showcase_ids()
    clinics = []
    for number, name in enumerate(
        ["Городская поликлиника № 1", "Городская поликлиника № 2", "Clinic of the International Quarter"], start=1
    ):
        clinic = Clinic.objects.create(name=name, legal_name=f"ГБУЗ «{name}»", address="Москва")
        clinics.append(clinic)
        for index in range(3):
            user = user_model.objects.create_user(
                username=f"gp{number}_{index}" if (number, index) != (1, 0) else "bench",
                password="bench-pass-1-x",
                first_name="Анна",
                last_name=f"Петрова-{number}{index}",
            )
            Membership.objects.create(user=user, clinic=clinic, full_name=f"Петрова Анна {number}{index}")
    gp = user_model.objects.get(username="bench")
    actor = Actor(user=gp, clinic=clinics[0], channel="web")
    one = services.patient_create(
        actor=actor,
        family_name="Ерёмина",
        given_name="Алёна",
        middle_name="Викторовна",
        birth_date=datetime.date(1981, 4, 12),
        sex="female",
        identifier="SHOW-1",
        phone="+7 900 000-00-01",
    )
    many = services.patient_create(
        actor=actor,
        family_name="Кузнецова",
        given_name="Мария",
        middle_name="Ивановна",
        birth_date=datetime.date(1950, 2, 3),
        sex="female",
        identifier="SHOW-2",
    )
    findings = {**red_flags_absent(), "loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True}
    vitals = {"temperature_c": 37.2, "heart_rate": 80, "systolic_bp": 120, "diastolic_bp": 80, "pregnant": False}
    finalized = services.encounter_create(
        actor=actor,
        patient=one,
        data={
            "visit_date": datetime.date(2026, 11, 20),
            "duration_days": 10,
            "chief_complaint": "Онемение в пояснице, учащённое мочеиспускание",
            "findings": findings,
            "notes": {"history": "Две недели онемение в пояснице справа.", "plan": "Анализы, нефролог."},
            **vitals,
        },
    )
    workup = workup_generate(actor=actor, encounter=finalized)
    for code in ("lab_urinalysis", "lab_nechiporenko", "us_kidneys", "lab_cbc"):
        item = workup.items.filter(code=code).first()
        if item:
            recommendation_decide(actor=actor, recommendation=item, decision=Decision.ACCEPTED)
    nephrology = workup.referrals.filter(specialty="nephrology").first()
    if nephrology:
        recommendation_decide(actor=actor, recommendation=nephrology, decision=Decision.ACCEPTED)
        referral = referral_services.referral_create(actor=actor, encounter=finalized, recommendation=nephrology)
        referral_services.referral_issue(actor=actor, referral=referral)
    referral_services.requisition_request(actor=actor, encounter=finalized)
    result_enter(actor=actor, encounter=finalized, code="res_hemoglobin", value=118)
    finalize = getattr(workup_services, "encounter_finalize", None) or services.encounter_finalize
    finalize(actor=actor, encounter=finalized, reason="Bench")
    draft = services.encounter_create(
        actor=actor,
        patient=one,
        data={"visit_date": datetime.date(2026, 11, 27), "duration_days": 17, "findings": findings, **vitals},
    )
    workup_generate(actor=actor, encounter=draft)
    assert many.pk
    return showcase_ids()


def showcase_ids() -> dict:
    from clinic.models import Encounter, Patient

    one = Patient.objects.get(identifier="SHOW-1")
    many = Patient.objects.get(identifier="SHOW-2")
    return {
        "clinic": one.clinic_id,
        "one": one.pk,
        "many": many.pk,
        "finalized": Encounter.objects.get(patient=one, status="finalized").pk,
        "draft": Encounter.objects.get(patient=one, status="draft").pk,
    }


# -- the load --------------------------------------------------------------------------------------------


def load(*, patients: int, encounters: int, ids: dict) -> dict:
    """1,000,000 patients, 3,000,000 encounters, the many-encounter patient and the worklist, by SQL."""
    from django.db import connection, transaction

    from clinic.models import Clinic
    from clinic.text import search_key

    timings = {}
    rng = random.Random(14)
    clinic_ids = list(Clinic.objects.order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        run = cursor.execute
        # Our own cluster: skip the foreign-key triggers while loading (every id is taken from its table);
        # not a superuser on a given DATABASE_URL: load with the checks.
        with contextlib.suppress(Exception), transaction.atomic():
            run("SET session_replication_role = replica")
        run("SET maintenance_work_mem = '512MB'")

        # Secondary indexes are dropped for the load and rebuilt after it, as any bulk load does.
        dropped = []
        for table in ("clinic_patient", "clinic_encounter"):
            run(
                """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i
                   WHERE indrelid = %s::regclass
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
                [table],
            )
            for name, definition in cursor.fetchall():
                dropped.append(definition)
                run(f"DROP INDEX {name}")

        run("CREATE TEMP TABLE bench_family (script text, sex text, i int, name text, key text)")
        run("CREATE TEMP TABLE bench_given (script text, sex text, i int, name text, key text)")
        run("CREATE TEMP TABLE bench_middle (sex text, i int, name text, key text)")
        rows = []
        for i, name in enumerate(FAMILIES_RU):
            rows += [("cyr", "male", i, name), ("cyr", "female", i, female_family(name))]
        for i, name in enumerate(FAMILIES_LATIN):
            rows += [("lat", "male", i, name), ("lat", "female", i, name)]
        cursor.executemany(
            "INSERT INTO bench_family VALUES (%s, %s, %s, %s, %s)", [(*row, search_key(row[3])) for row in rows]
        )
        rows = []
        for script, sex, names in (
            ("cyr", "male", GIVEN_RU_MALE),
            ("cyr", "female", GIVEN_RU_FEMALE),
            ("lat", "male", GIVEN_LATIN_MALE),
            ("lat", "female", GIVEN_LATIN_FEMALE),
        ):
            rows += [(script, sex, i, name, search_key(name)) for i, name in enumerate(names)]
        cursor.executemany("INSERT INTO bench_given VALUES (%s, %s, %s, %s, %s)", rows)
        rows = []
        for i, name in enumerate(PATRONYMICS_MALE):
            rows += [("male", i, name), ("female", i, female_patronymic(name))]
        cursor.executemany(
            "INSERT INTO bench_middle VALUES (%s, %s, %s, %s)", [(*row, search_key(row[2])) for row in rows]
        )
        run(
            """CREATE TEMP TABLE bench_given_n AS
               SELECT script, sex, count(*) AS n FROM bench_given GROUP BY script, sex"""
        )

        started = time.perf_counter()
        run("SELECT setseed(0.14)")
        run(
            """
            INSERT INTO clinic_patient (clinic_id, given_name, family_name, middle_name, birth_date, sex, identifier,
                identifier_system, phone, address, snils, oms_policy, insurer, name_search, version, created_at,
                updated_at)
            SELECT s.clinic_id, g.name, f.name, coalesce(m.name, ''), s.birth_date, s.sex, 'MRN-' || s.n, '',
                   '+7 9' || lpad((s.n %% 1000000000)::text, 9, '0'), 'Москва', '', '', '',
                   -- exactly clinic.services: search_key("family given middle"), each part already folded
                   concat_ws(' ', f.key, g.key, m.key), 1, s.created_at,
                   s.created_at + (%(now)s::timestamptz - s.created_at) * s.r_updated
            FROM (
                SELECT n,
                       CASE WHEN r_clinic < 0.60 THEN %(a)s WHEN r_clinic < 0.85 THEN %(b)s ELSE %(c)s END AS clinic_id,
                       CASE WHEN random() < 0.5 THEN 'female' ELSE 'male' END AS sex,
                       CASE WHEN random() < 0.1 THEN 'lat' ELSE 'cyr' END AS script,
                       random() AS r_family, random() AS r_given, random() AS r_middle,
                       date '1930-01-01' + floor(random() * (date '2026-11-01' - date '1930-01-01'))::int
                           AS birth_date,
                       timestamptz '2019-01-01 00:00+03'
                           + (%(now)s::timestamptz - timestamptz '2019-01-01 00:00+03') * random() AS created_at,
                       random() AS r_updated
                FROM (SELECT n, random() AS r_clinic FROM generate_series(1, %(patients)s) AS n) AS numbers
            ) AS s
            JOIN bench_family f ON f.script = s.script AND f.sex = s.sex
                AND f.i = floor(power(s.r_family, 1.6)
                                * CASE s.script WHEN 'cyr' THEN %(nf_ru)s ELSE %(nf_lat)s END)::int
            JOIN bench_given_n gn ON gn.script = s.script AND gn.sex = s.sex
            JOIN bench_given g ON g.script = s.script AND g.sex = s.sex
                AND g.i = floor(power(s.r_given, 1.3) * gn.n)::int
            LEFT JOIN bench_middle m ON s.script = 'cyr' AND m.sex = s.sex
                AND m.i = floor(power(s.r_middle, 1.3) * %(nm)s)::int
            ORDER BY s.n
            """,
            {
                "now": NOW,
                "a": clinic_ids[0],
                "b": clinic_ids[1],
                "c": clinic_ids[2],
                "patients": patients,
                "nf_ru": len(FAMILIES_RU),
                "nf_lat": len(FAMILIES_LATIN),
                "nm": len(PATRONYMICS_MALE),
            },
        )
        timings["patients"] = time.perf_counter() - started

        run("CREATE TEMP TABLE bench_gp (clinic_id bigint, i int, user_id int)")
        run(
            """INSERT INTO bench_gp
               SELECT m.clinic_id, row_number() OVER (PARTITION BY m.clinic_id ORDER BY m.user_id) - 1, m.user_id
               FROM clinic_membership m"""
        )
        findings_sets = findings_variants(rng)
        started = time.perf_counter()
        run("SELECT min(id), max(id) FROM clinic_patient WHERE identifier LIKE 'MRN-%'")
        low, high = cursor.fetchone()
        encounter_insert = """
            INSERT INTO clinic_encounter (clinic_id, patient_id, clinician_id, visit_date, chief_complaint,
                duration_days, pregnant, temperature_c, heart_rate, systolic_bp, diastolic_bp, resp_rate, spo2,
                findings, notes, status, finalized_at, finalized_by_id, finalize_reason, patient_sex, patient_age,
                created_at, updated_at)
            SELECT p.clinic_id, p.id, gp.user_id, v.visit_date, (%(complaints)s::text[])[1 + floor(s.r1 * %(nc)s)::int],
                   1 + floor(power(s.r2, 2) * 90)::int, NULL,
                   CASE WHEN s.r3 < 0.8 THEN round((36.2 + s.r4 * 1.6)::numeric, 1) END,
                   CASE WHEN s.r3 < 0.7 THEN 60 + floor(s.r4 * 40)::int END,
                   CASE WHEN s.r3 < 0.7 THEN 105 + floor(s.r5 * 45)::int END,
                   CASE WHEN s.r3 < 0.7 THEN 65 + floor(s.r5 * 25)::int END,
                   NULL, CASE WHEN s.r3 < 0.3 THEN 95 + floor(s.r4 * 5)::int END,
                   (%(findings)s::text[]::jsonb[])[1 + floor(s.r6 * %(nfs)s)::int],
                   CASE WHEN s.r6 < 0.3 THEN '{"history": "Онемение после физической нагрузки."}'::jsonb
                        ELSE '{}'::jsonb END,
                   CASE WHEN v.visit_date < date '2026-11-16' THEN 'finalized' ELSE 'draft' END,
                   CASE WHEN v.visit_date < date '2026-11-16' THEN v.visit_date + time '12:30' END,
                   CASE WHEN v.visit_date < date '2026-11-16' THEN gp.user_id END,
                   '',
                   CASE WHEN v.visit_date < date '2026-11-16' THEN p.sex ELSE '' END,
                   CASE WHEN v.visit_date < date '2026-11-16'
                        THEN date_part('year', age(v.visit_date, p.birth_date)) END,
                   v.visit_date + time '10:00', v.visit_date + time '12:30'
            FROM (%(numbers)s) AS s
            JOIN clinic_patient p ON p.id = s.patient_id
            JOIN bench_gp gp ON gp.clinic_id = p.clinic_id AND gp.i = floor(s.r7 * 3)::int
            CROSS JOIN LATERAL (SELECT greatest(p.birth_date, s.visit_date) AS visit_date) AS v
        """
        params = {
            "complaints": COMPLAINTS,
            "nc": len(COMPLAINTS),
            "findings": [json.dumps(value) for value in findings_sets],
            "nfs": len(findings_sets),
        }
        numbers = f"""SELECT n, {low} + floor(random() * {high - low + 1})::bigint AS patient_id,
                             date '2021-12-01' + floor(random() * 1825)::int AS visit_date,
                             random() r1, random() r2, random() r3, random() r4, random() r5, random() r6,
                             random() r7
                      FROM generate_series(1, {encounters}) AS n"""
        run(encounter_insert.replace("%(numbers)s", numbers), params)
        timings["encounters"] = time.perf_counter() - started

        # The patient with 5,000 encounters: two a day going back, so visit dates repeat (ordering ties).
        started = time.perf_counter()
        many = f"""SELECT n, {ids["many"]}::bigint AS patient_id, date '2026-11-29' - (n / 2) AS visit_date,
                          random() r1, random() r2, random() r3, random() r4, random() r5, random() r6, random() r7
                   FROM generate_series(0, 4999) AS n"""
        run(encounter_insert.replace("%(numbers)s", many), params)
        workup_insert, workup_params = workup_copies(ids)
        run(workup_insert + " WHERE e.patient_id = %(many)s", {**workup_params, "many": ids["many"]})
        timings["many"] = time.perf_counter() - started

        started = time.perf_counter()
        worklist(cursor, ids=ids, clinic_ids=clinic_ids, workup_insert=workup_insert, workup_params=workup_params)
        timings["worklist"] = time.perf_counter() - started

        run("SET session_replication_role = DEFAULT")
        started = time.perf_counter()
        for definition in dropped:
            run(definition)
        timings["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        for table in (
            "clinic_patient",
            "clinic_encounter",
            "workups_workup",
            "workups_workupitem",
            "workups_result",
            "referrals_referral",
        ):
            run(f"VACUUM ANALYZE {table}")
        timings["vacuum_analyze"] = time.perf_counter() - started

        # name_search exactly as clinic.services fills it, for every distinct name in the table.
        started = time.perf_counter()
        run("SELECT DISTINCT family_name, given_name, middle_name, name_search FROM clinic_patient")
        wrong = [row for row in cursor.fetchall() if search_key(f"{row[0]} {row[1]} {row[2]}") != row[3]]
        if wrong:
            sys.exit(f"name_search differs from clinic.text.search_key for {len(wrong)} names, e.g. {wrong[:3]}")
        timings["name_search_checked"] = time.perf_counter() - started
    return timings


def findings_variants(rng: random.Random) -> list[dict]:
    base = red_flags_absent()
    extra = [
        {"loc_lumbar": True},
        {"loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True},
        {"loc_lumbar": True, "sx_leg_pain": True, "ex_straight_leg_raise_positive": True, "sx_tingling": True},
        {"loc_interscapular": True, "sx_stiffness": True, "pattern_positional": True},
        {"loc_whole_spine": True, "hx_osteochondrosis": True, "sx_pain_with_movement": True},
        {"loc_lumbar": True, "hx_prolonged_static_posture": True, "ex_paravertebral_tenderness": True},
        {"loc_left_scapular": True, "sx_pain_radiating_heart": True, "hx_heart_disease": True},
    ]
    return [{**base, **value} for value in extra]


def workup_copies(ids) -> tuple[str, dict]:
    """An INSERT ... SELECT of a copy of the showcase's workup for each encounter it selects, and its values."""
    from workups.models import Workup

    template = Workup.objects.filter(encounter_id=ids["finalized"]).order_by("-created_at", "-id").first()
    insert = """
        INSERT INTO workups_workup (encounter_id, kind, knowledge_base_version, disposition, "case", result,
            translations, created_at, created_by_id)
        SELECT e.id, 'initial', %(kb)s, (ARRAY['routine', 'urgent', 'emergency'])[1 + e.id %% 3],
               %(case)s::jsonb, %(result)s::jsonb, %(translations)s::jsonb, e.created_at, e.clinician_id
        FROM clinic_encounter e
    """
    params = {
        "kb": template.knowledge_base_version,
        "case": json.dumps(template.case),
        "result": json.dumps(template.result),
        "translations": json.dumps(template.translations),
    }
    return insert, params


def tests_history(ids) -> float:
    """The tests that await nothing, as years of records leave them (the worklist must not read them): for each
    encounter with an acknowledged normal result, a workup whose test that result answers was accepted, and
    another test declined. Idempotent: a cluster that has them is left as it is. Returns the seconds taken."""
    from django.db import connection, transaction
    from django.db.models.expressions import RawSQL

    from clinic.models import Encounter
    from workups.models import WorkupItem
    from workups.services import awaiting_refresh

    if WorkupItem.objects.filter(decision="declined").exists():
        return 0.0
    started = time.perf_counter()
    insert, params = workup_copies(ids)
    awaiting = set(WorkupItem.objects.filter(awaiting_since__isnull=False).values_list("pk", "awaiting_since"))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """CREATE TEMP TABLE bench_history ON COMMIT DROP AS
               SELECT DISTINCT encounter_id AS id FROM workups_result
               WHERE flag = 'normal' AND encounter_id NOT IN (%s, %s)""",
            [ids["finalized"], ids["draft"]],  # the showcase's pages and export stay as they were
        )
        cursor.execute(insert + " JOIN bench_history h ON h.id = e.id", params)
        # The result codes are res_hemoglobin, res_crp, res_esr, res_wbc by encounter id (as loaded): each answers
        # the test of the same place in the array below.
        cursor.execute(
            """INSERT INTO workups_workupitem (urgency, triggered_by, sources, rules, added_by_clinician, decision,
                   decision_reason, decided_by_id, decided_at, position, is_new, overdue_at, workup_id, code,
                   category, rationale, clinic_id, awaiting_since)
               SELECT 'routine', '[]', '[]', '[]', false, t.decision, t.reason, w.created_by_id, w.created_at,
                      t.position, false, NULL, w.id,
                      CASE WHEN t.decision = 'accepted'
                           THEN (ARRAY['lab_cbc', 'lab_crp_esr', 'lab_cbc', 'lab_cbc'])[1 + w.encounter_id % 4]
                           ELSE 'xray_lumbar_spine' END,
                      CASE WHEN t.decision = 'accepted' THEN 'lab' ELSE 'imaging' END, '', e.clinic_id, NULL
               FROM workups_workup w JOIN bench_history h ON h.id = w.encounter_id
                    JOIN clinic_encounter e ON e.id = w.encounter_id
                    CROSS JOIN (VALUES ('accepted', '', 0), ('declined', 'Not needed: no red flags', 1))
                        AS t (decision, reason, position)"""
        )
        # None of them awaits its result, as workups.services.awaiting_refresh reads them.
        for encounter in Encounter.objects.filter(pk__in=RawSQL("SELECT id FROM bench_history", [])).only("pk"):
            awaiting_refresh(encounter=encounter)
        cursor.execute("SELECT count(*) FROM bench_history")
        (encounters,) = cursor.fetchone()
    if set(WorkupItem.objects.filter(awaiting_since__isnull=False).values_list("pk", "awaiting_since")) != awaiting:
        sys.exit("the tests' history must await nothing: workups.services.awaiting_refresh found some awaiting")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE workups_workupitem")
        cursor.execute("VACUUM ANALYZE workups_workup")
    print(f"  tests' history: {2 * encounters:,} tests of {encounters:,} encounters", flush=True)
    return time.perf_counter() - started


def worklist(cursor, *, ids, clinic_ids, workup_insert, workup_params) -> None:
    """10,000 open items in the largest clinic, beside closed ones; by-hand referrals, copied workups."""
    run = cursor.execute
    clinic = ids["clinic"]
    run("SELECT setseed(0.7)")
    run(
        """CREATE TEMP TABLE bench_open AS
           SELECT id, row_number() OVER () AS k FROM (
               SELECT id FROM clinic_encounter WHERE clinic_id = %s AND status = 'finalized'
                 AND patient_id NOT IN (%s, %s) ORDER BY random() LIMIT 12000) AS picked""",
        [clinic, ids["one"], ids["many"]],
    )
    referral = """
        INSERT INTO referrals_referral (pdf_status, pdf_error, pdf_file, pdf_generation, pdf_renders, pdf_claimed_by,
            clinic_id, encounter_id, specialty, urgency, reason, question, language, icd10, diagnosis, status,
            issued_at, appointment_at, conclusion, conclusion_pdf, closed_at, close_reason, created_by_id,
            created_at, overdue_at)
        SELECT 'ready', '', '', 1, 1, '', e.clinic_id, e.id,
               (ARRAY['neurology', 'nephrology', 'urology', 'orthopedics', 'cardiology'])[1 + e.id %% 5],
               (ARRAY['routine', 'routine', 'urgent'])[1 + e.id %% 3],
               'Онемение в пояснице, требуется консультация.', '', 'ru', 'R20.2', 'Парестезия кожи',
               %(status)s::varchar, e.finalized_at, NULL, '', '',
               CASE WHEN %(status)s::varchar = 'completed' THEN e.finalized_at + interval '20 days' END, '',
               e.clinician_id, e.finalized_at, NULL
        FROM clinic_encounter e
    """
    # 4,000 open referrals (issued, some booked).
    run(referral + " JOIN bench_open o ON o.id = e.id WHERE o.k <= 4000", {"status": "issued"})
    run(
        """UPDATE referrals_referral SET status = 'booked', appointment_at = issued_at + interval '9 days'
           WHERE clinic_id = %s AND id %% 4 = 0""",
        [clinic],
    )
    # 20,000 completed referrals across the clinics (history the worklist must skip).
    run(
        referral
        + " WHERE e.id IN (SELECT id FROM clinic_encounter TABLESAMPLE SYSTEM (2) REPEATABLE (3) LIMIT 20000)"
        + " AND e.status = 'finalized' AND e.patient_id NOT IN (%(one)s, %(many)s)",
        {"status": "completed", "one": ids["one"], "many": ids["many"]},
    )
    # 3,000 accepted tests awaiting a result: one workup each (a copy of the showcase's), one accepted item.
    run(workup_insert + " JOIN bench_open o ON o.id = e.id WHERE o.k > 4000 AND o.k <= 7000", workup_params)
    run(
        """INSERT INTO workups_workupitem (urgency, triggered_by, sources, rules, added_by_clinician, decision,
               decision_reason, decided_by_id, decided_at, position, is_new, overdue_at, workup_id, code, category,
               rationale, clinic_id, awaiting_since)
           SELECT (ARRAY['routine', 'urgent'])[1 + w.id % 2], '[]', '[]', '[]', false, 'accepted', '',
                  w.created_by_id, w.created_at, 0, false, NULL, w.id,
                  (ARRAY['lab_cbc', 'lab_crp_esr', 'lab_nechiporenko', 'lab_biochemistry'])[1 + w.id % 4],
                  'lab', '', e.clinic_id, w.created_at
           FROM workups_workup w JOIN bench_open o ON o.id = w.encounter_id
                JOIN clinic_encounter e ON e.id = w.encounter_id
           WHERE o.k > 4000 AND o.k <= 7000"""
    )
    # awaiting_since as the app keeps it: workups.services.awaiting_refresh must find the same 3,000 rows.
    from django.db.models.expressions import RawSQL

    from clinic.models import Encounter
    from workups.models import WorkupItem
    from workups.services import awaiting_refresh

    awaiting = set(WorkupItem.objects.filter(awaiting_since__isnull=False).values_list("pk", "awaiting_since"))
    for encounter in Encounter.objects.filter(pk__in=RawSQL("SELECT id FROM bench_open", [])).only("pk"):
        awaiting_refresh(encounter=encounter)
    if set(WorkupItem.objects.filter(awaiting_since__isnull=False).values_list("pk", "awaiting_since")) != awaiting:
        sys.exit("the loaded tests awaiting their results differ from workups.services.awaiting_refresh")
    result = """
        INSERT INTO workups_result (clinic_id, encounter_id, code, value_number, value_bool, performed_on, note, flag,
            reference, reference_translations, item_id, entered_by_id, entered_at, superseded_at, superseded_by_id,
            acknowledged_at, acknowledged_by_id, acknowledgement_note, overdue_at)
        SELECT e.clinic_id, e.id, (ARRAY['res_hemoglobin', 'res_crp', 'res_esr', 'res_wbc'])[1 + e.id %% 4], %(value)s,
               NULL,
               e.visit_date + 3, '', %(flag)s, '', '{}', NULL, e.clinician_id, e.finalized_at + interval '3 days',
               NULL, NULL, %(ack)s::timestamptz, CASE WHEN %(ack)s::timestamptz IS NOT NULL THEN e.clinician_id END,
               '', NULL
        FROM clinic_encounter e
    """
    # 3,000 abnormal results not acknowledged.
    run(
        result + " JOIN bench_open o ON o.id = e.id WHERE o.k > 7000 AND o.k <= 10000",
        {"value": 190.0, "flag": "high", "ack": None},
    )
    # 20,000 normal, acknowledged results of other encounters.
    run(
        result
        + " WHERE e.id IN (SELECT id FROM clinic_encounter TABLESAMPLE SYSTEM (2) REPEATABLE (5) LIMIT 20000)"
        + " AND e.status = 'finalized' AND e.id NOT IN (SELECT id FROM bench_open)"
        + " AND e.patient_id NOT IN (%(one)s, %(many)s)",
        {"value": 5.0, "flag": "normal", "ack": NOW, "one": ids["one"], "many": ids["many"]},
    )
    assert clinic_ids


# -- measuring --------------------------------------------------------------------------------------------


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# The Russian passport's transliteration (ICAO 9303, МВД 2013): how a family name is typed in Latin letters.
PASSPORT_LATIN = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i i k l m n o p r s t u f kh ts ch sh shch ie y _ e iu ia".split(),  # noqa: SIM905
        strict=True,
    ),
    ь="",
)


def passport_latin(name: str) -> str:
    latin = "".join(PASSPORT_LATIN.get(letter, letter) for letter in name.lower())
    return latin[:1].upper() + latin[1:]


def search_terms(*, clinic: int, samples: int) -> dict:
    """Terms a GP types, drawn from the clinic's patients (common names come up as often as they are common);
    and the same family names typed with the English layout active, or in Latin letters, which the browser's
    search finds by another spelling (clinic.spellings) once the name as typed has found nobody, and words no
    spelling finds (each spelling tried, all in vain)."""
    from django.db import connection

    from clinic.spellings import layout_swapped

    rng = random.Random(30)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.3)")
        cursor.execute(
            """SELECT family_name, given_name, birth_date FROM clinic_patient
               WHERE clinic_id = %s AND family_name ~ '^[А-ЯЁ]' ORDER BY random() LIMIT %s""",
            [clinic, samples],
        )
        cyrillic = cursor.fetchall()
        cursor.execute(
            """SELECT family_name, given_name, birth_date FROM clinic_patient
               WHERE clinic_id = %s AND family_name ~ '^[A-Za-z]' ORDER BY random() LIMIT %s""",
            [clinic, samples],
        )
        latin = cursor.fetchall()
        cursor.execute(
            "SELECT family_name, birth_date FROM clinic_patient WHERE clinic_id = %s ORDER BY random() LIMIT %s",
            [clinic, samples],
        )
        anyone = cursor.fetchall()

    def typed(text):  # as typed: lower case, capitalised or caps lock
        return rng.choice([text.lower(), text[:1].upper() + text[1:].lower(), text.upper()])

    def fragment(name):
        name = rng.choice(name)
        start = rng.randrange(1, max(2, len(name) - 3))
        return typed(name[start : start + rng.choice((3, 4))])

    return {
        "1 letter (start of the family name)": [typed(family[:1]) for family, _ in anyone],
        "2 letters (start of the family name)": [typed(family[:2]) for family, _ in anyone],
        "3-letter Cyrillic prefix": [typed(family[:3]) for family, _, _ in cyrillic],
        "full family name": [typed(family) for family, _, _ in cyrillic],
        "family and given name": [typed(f"{family} {given}") for family, given, _ in cyrillic],
        "Latin fragment": [fragment((family, given)) for family, given, _ in latin],
        "birth date": [birth.isoformat() for _, birth in anyone],
        "full family name, English layout": [layout_swapped(typed(family)) for family, _, _ in cyrillic],
        "full family name in Latin letters": [passport_latin(family) for family, _, _ in cyrillic],
        # Both names, which the passport spelling makes ambiguous more often (Ольга → Olga, Софья → Sofia).
        "family and given name in Latin letters": [
            f"{passport_latin(family)} {passport_latin(given)}" for family, given, _ in cyrillic
        ],
        "found by no spelling": [rng.choice(("qjxw", "ьъыщ", "zqxj")) + str(n % 10) for n in range(samples)],
    }


class Timer:
    def __init__(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.connection = connection
        self.capture = CaptureQueriesContext(connection)

    def __call__(self, request):
        """Time `request` (a function returning a response) once; its query count and bytes beside."""
        # The log keeps at most 9,000 queries: start each request with an empty one.
        self.connection.queries_log.clear()
        with self.capture:
            started = time.perf_counter()
            response = request()
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, (response.status_code, response.content[:500])
        return elapsed * 1000, len(self.capture.captured_queries), len(response.content)


def series(name, requests, *, warmup: int = 3, budget_seconds: float = 90) -> dict:
    """p50/p95 over the requests (callables), after `warmup` untimed ones; query counts and sizes.
    A slow kind stops after `budget_seconds` (at least 10 requests)."""
    timer = Timer()
    for request in requests[:warmup]:
        timer(request)
    times, counts, sizes = [], [], []
    for request in requests:
        elapsed, queries, size = timer(request)
        times.append(elapsed)
        counts.append(queries)
        sizes.append(size)
        if len(times) >= 10 and sum(times) > budget_seconds * 1000:
            break
    row = {
        "name": name,
        "n": len(times),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 0.95), 2),
        "max_ms": round(max(times), 2),
        "queries": sorted(set(counts)),
        "bytes_median": int(statistics.median(sizes)),
    }
    print(
        f"  {name:<58} p50 {row['p50_ms']:8.2f} ms  p95 {row['p95_ms']:8.2f} ms  "
        f"queries {','.join(map(str, row['queries'])):<8} {row['bytes_median']:>9} B",
        flush=True,
    )
    return row


def measure(*, samples: int, scale: bool) -> dict:
    from django.test import Client
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    from clinic.audit import Actor
    from clinic.models import Encounter, Patient
    from ehr.fhir import encounter_export

    ids = showcase_ids()
    from django.contrib.auth import get_user_model

    gp = get_user_model().objects.get(username="bench")
    web = Client()
    web.force_login(gp)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=gp)[1]}")
    rows = []
    print(
        f"{'scale' if scale else 'empty'} database: {Patient.objects.count():,} patients, "
        f"{Encounter.objects.count():,} encounters",
        flush=True,
    )

    def repeat(request):
        return [request] * samples

    if scale:
        terms = search_terms(clinic=ids["clinic"], samples=samples)
        print("patient search: the live search (web, htmx POST /), and GET /api/v1/patients/?search=", flush=True)
        for kind, values in terms.items():
            field = "birth_date" if kind == "birth date" else "q"
            rows.append(
                series(
                    f"search web: {kind}",
                    [
                        (lambda value=value, field=field: web.post("/", {field: value}, HTTP_HX_REQUEST="true"))
                        for value in values
                    ],
                )
            )
            param = "birth_date" if kind == "birth date" else "search"
            rows.append(
                series(
                    f"search api: {kind}",
                    [
                        (lambda value=value, param=param: api.get("/api/v1/patients/", {param: value}))
                        for value in values
                    ],
                )
            )
        rows[-1]["examples"] = {kind: values[:8] for kind, values in terms.items()}
    print("lists and pages", flush=True)
    rows.append(series("ping (api GET /api/v1/ping/, the floor)", repeat(lambda: api.get("/api/v1/ping/"))))
    rows.append(series("patient list, unsearched (web GET /)", repeat(lambda: web.get("/"))))
    rows.append(series("patient list, unsearched (api)", repeat(lambda: api.get("/api/v1/patients/"))))
    rows.append(series("encounter page, finalized (web)", repeat(lambda: web.get(f"/encounters/{ids['finalized']}/"))))
    rows.append(series("encounter page, draft form (web)", repeat(lambda: web.get(f"/encounters/{ids['draft']}/"))))
    rows.append(series("patient page, 2 encounters (web)", repeat(lambda: web.get(f"/patients/{ids['one']}/"))))
    many = Encounter.objects.filter(patient_id=ids["many"]).count()
    rows.append(
        series(f"patient page, {many:,} encounters (web)", repeat(lambda: web.get(f"/patients/{ids['many']}/")))
    )
    rows.append(
        series(
            f"patient's encounters, {many:,} (api)",
            repeat(lambda: api.get(f"/api/v1/patients/{ids['many']}/encounters/")),
        )
    )
    print("worklist", flush=True)
    worklist_samples = max(20, samples // 4)
    rows.append(series("worklist page (web)", [lambda: web.get("/worklist/")] * worklist_samples))
    rows.append(series("worklist (api)", [lambda: api.get("/api/v1/worklist/")] * worklist_samples))
    if scale:  # an empty database's worklist has one page
        rows.append(
            series("worklist (api), page 40", [lambda: api.get("/api/v1/worklist/?page=40")] * worklist_samples)
        )
    rows.append(series("worklist badge (web GET /worklist/badge/)", repeat(lambda: web.get("/worklist/badge/"))))
    rows.append(series("worklist counts (api)", repeat(lambda: api.get("/api/v1/worklist/counts/"))))
    print("FHIR export of the finalized encounter", flush=True)
    rows.append(
        series(
            "FHIR export (api GET /encounters/{id}/fhir/)",
            repeat(lambda: api.get(f"/api/v1/encounters/{ids['finalized']}/fhir/")),
        )
    )
    encounter = Encounter.objects.select_related("patient", "clinician").get(pk=ids["finalized"])
    actor = Actor(user=gp, clinic=encounter.clinic, channel="api")

    class Exported:
        status_code = 200
        content = b""

    def export():
        Exported.content = json.dumps(
            encounter_export(actor=actor, encounter=encounter, absolute=lambda path: f"https://x{path}")
        ).encode()
        return Exported

    rows.append(series("FHIR export (ehr.fhir.encounter_export, in-process)", repeat(export)))
    return {"rows": rows, "ids": ids}


def explain(*, samples: int) -> list[dict]:
    """EXPLAIN (ANALYZE, BUFFERS) of the patient queries a request of each kind runs."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    ids = showcase_ids()
    terms = search_terms(clinic=ids["clinic"], samples=samples)
    web = Client()
    web.force_login(get_user_model().objects.get(username="bench"))
    chosen = {kind: values[0] for kind, values in terms.items()}
    # The most common 3-letter prefix and family name: the many-hits case.
    for kind in ("3-letter Cyrillic prefix", "full family name"):
        lowered = [value.lower() for value in terms[kind]]
        chosen[f"{kind}, most common"] = max(set(lowered), key=lowered.count)
    plans = []
    for kind, value in [*chosen.items(), ("unsearched list", None), ("patient page, 5,000 encounters", None)]:
        with CaptureQueriesContext(connection) as captured:
            if kind == "unsearched list":
                web.get("/")
            elif kind.startswith("patient page"):
                web.get(f"/patients/{ids['many']}/")
            else:
                field = "birth_date" if kind == "birth date" else "q"
                web.post("/", {field: value}, HTTP_HX_REQUEST="true")
        wanted = "clinic_encounter" if kind.startswith("patient page") else "clinic_patient"
        for query in captured.captured_queries:
            sql = query["sql"]
            if f'FROM "{wanted}"' not in sql or "INSERT" in sql:
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            plans.append({"kind": kind, "term": value, "sql": sql, "plan": plan})
            print(f"\n-- {kind}: {value!r}\n{sql}\n{plan}", flush=True)
    return plans


def worker(args) -> None:
    django_setup(args.url)
    out = {"migrate_seconds": migrate(), "loadavg_before": os.getloadavg()}
    ids = showcase()
    if args.worker == "load":
        from clinic.models import Patient

        if Patient.objects.count() < args.patients:
            print(f"loading {args.patients:,} patients and {args.encounters:,} encounters ...", flush=True)
            out["load"] = load(patients=args.patients, encounters=args.encounters, ids=ids)
            print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in out["load"].items()), flush=True)
        else:
            print("the patients are loaded already: load skipped", flush=True)
        out["tests_history_seconds"] = tests_history(ids)
    elif args.worker == "measure":
        out.update(measure(samples=args.samples, scale=args.scale))
    elif args.worker == "explain":
        out["plans"] = explain(samples=args.samples)
    out["loadavg_after"] = os.getloadavg()
    Path(args.result).write_text(json.dumps(out, ensure_ascii=False, indent=1, default=str))


def compare(before_file: str, after_file: str) -> None:
    """A Markdown table of two reports: p50 / p95 in ms and query counts, before and after."""
    before, after = (json.loads(Path(name).read_text()) for name in (before_file, after_file))
    for phase in ("scale", "empty"):
        if phase not in after:
            continue
        old = {row["name"]: row for row in before.get(phase, {}).get("rows", [])}
        print(
            f"\n{phase} database; load average {before.get(phase, {}).get('loadavg_before')} -> "
            f"{after[phase].get('loadavg_before')}\n"
        )
        print("| measure | before p50 / p95 | after p50 / p95 | queries before / after | bytes after |")
        print("| --- | --- | --- | --- | --- |")
        for row in after[phase]["rows"]:
            was = old.get(row["name"])
            was_text = f"{was['p50_ms']:.1f} / {was['p95_ms']:.1f}" if was else "-"
            queries = f"{','.join(map(str, was['queries'])) if was else '-'} / {','.join(map(str, row['queries']))}"
            print(
                f"| {row['name']} | {was_text} | {row['p50_ms']:.1f} / {row['p95_ms']:.1f} | {queries} "
                f"| {row['bytes_median']:,} |"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--encounters", type=int, default=3_000_000)
    parser.add_argument("--samples", type=int, default=200, help="requests of each kind (200 terms of each kind)")
    parser.add_argument("--pgdata", help="keep the cluster in this directory and reuse it on the next run")
    parser.add_argument("--out", help="write every figure and plan to this JSON file")
    parser.add_argument("--skip-empty", action="store_true", help="do not measure the empty database")
    parser.add_argument(
        "--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="print two --out reports side by side (Markdown)"
    )
    parser.add_argument("--worker", choices=["load", "measure", "explain"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--scale", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.compare:
        return compare(*args.compare)

    given = os.environ.get("DATABASE_URL", "")
    cluster = None
    if given.startswith(("postgres://", "postgresql://", "pgsql://")):
        server = given.rsplit("/", 1)[0]
        urls = {"scale": given, "empty": f"{server}/{EMPTY_DB}"}
        version = "given by DATABASE_URL"
    else:
        cluster = Cluster(args.pgdata)
        urls = {"scale": cluster.url(SCALE_DB), "empty": cluster.url(EMPTY_DB)}
        version = f"PostgreSQL {cluster.version} on 127.0.0.1:{cluster.port}"
    print(version, flush=True)
    report = {"conditions": {"postgres": version, "settings": Cluster.SETTINGS, "cores": os.cpu_count()}}
    work = Path(tempfile.mkdtemp(prefix="backnumb-scale-results."))
    os.environ["BENCH_SCALE_MEDIA"] = str(work / "media")
    try:

        def run(kind, url, *extra):
            result = work / f"{kind}-{len(list(work.iterdir()))}.json"
            command = [sys.executable, __file__, "--worker", kind, "--url", url, "--result", str(result)]
            command += ["--patients", str(args.patients), "--encounters", str(args.encounters)]
            subprocess.run([*command, "--samples", str(args.samples), *extra], check=True, cwd=ROOT)
            return json.loads(result.read_text())

        if not args.skip_empty:
            ensure_database(urls["empty"], fresh=True)
            report["empty"] = run("measure", urls["empty"])
        ensure_database(urls["scale"], fresh=False)
        started = time.perf_counter()
        report["load"] = run("load", urls["scale"])
        report["load"]["seconds"] = time.perf_counter() - started
        report["scale"] = run("measure", urls["scale"], "--scale")
        report["explain"] = run("explain", urls["scale"], "--scale")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if cluster:
            cluster.stop()
    if "empty" in report:
        empty = {row["name"]: row for row in report["empty"]["rows"]}
        print("\nscale / empty database (p50, p95):")
        for row in report["scale"]["rows"]:
            if row["name"] in empty:
                base = empty[row["name"]]
                p50, p95 = row["p50_ms"] / base["p50_ms"], row["p95_ms"] / base["p95_ms"]
                print(f"  {row['name']:<58} {p50:5.2f}x  {p95:5.2f}x  queries {base['queries']} -> {row['queries']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str))


if __name__ == "__main__":
    main()
