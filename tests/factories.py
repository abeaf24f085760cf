import factory
from django.contrib.auth import get_user_model

from clinic.models import Clinic, Membership

PASSWORD = "a-long-test-password-1"


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clinic {n}")
    # English unless a test asks for Russian: most tests read English text (the model's default is Russian).
    language = "en"


# A Moscow polyclinic as form 057/у prints it (the OGRN passes its checksum): ClinicFactory(**MOSCOW_POLYCLINIC).
MOSCOW_POLYCLINIC = {
    "name": "Поликлиника № 3",
    "language": "ru",
    "time_zone": "Europe/Moscow",
    "legal_name": "ГБУЗ «Городская поликлиника № 3 Департамента здравоохранения города Москвы»",
    "ogrn": "1027700132195",
    "address": "г. Москва, ул. Садовая, д. 12",
    "phone": "+7 495 123-45-67",
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"gp{n}")
    first_name = "Anna"
    last_name = "Petrova"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    clinic = factory.SubFactory(ClinicFactory)
