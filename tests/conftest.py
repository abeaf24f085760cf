import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import MembershipFactory
from tests.record_factories import api_token_for
from workups.engine import get_knowledge_base


def pytest_configure(config):
    from django.conf import settings

    # Password hashing is deliberately slow; tests log in hundreds of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # A caller with no clinic and no Accept-Language (an anonymous API probe) gets this language;
    # tests of Russian ask for it explicitly.
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def no_login_failures_carried_over():
    """Each test starts with no failed logins counted (django-axes keeps them in the shared cache)."""
    from axes.utils import reset

    reset()


@pytest.fixture(autouse=True)
def no_language_carried_over():
    """Each test starts in the default language (settings.LANGUAGE_CODE): a test that activates one and stops
    on a failure, or code under test that leaves one active, must not decide the language of the next test's
    messages (which then passed or failed by the order the tests ran in)."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def no_probe_counts_carried_over(monkeypatch):
    """Each test counts refused requests afresh: the bound on probe audit rows (clinic.audit) keeps its counts
    in the shared cache, where other tests' probes from the same address and user would add up."""
    import uuid

    monkeypatch.setattr("clinic.audit._KEY_PREFIX", f"probe-audit-{uuid.uuid4().hex}")


@pytest.fixture(scope="session")
def kb():
    return get_knowledge_base()


@pytest.fixture
def gp(db):
    """A GP of one clinic."""
    return MembershipFactory(user__username="gp_anna").user


@pytest.fixture
def other_gp(db):
    """A GP of another clinic."""
    return MembershipFactory(user__username="gp_boris").user


@pytest.fixture
def gp_web(gp):
    """The GP in the browser pages: Django's test client, logged in as them."""
    client = Client()
    client.force_login(gp)
    return client


@pytest.fixture
def anonymous():
    """A caller with no credentials."""
    return APIClient()


@pytest.fixture
def gp_api(gp):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(gp)}")
    return client
