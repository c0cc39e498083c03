"""Shared fixtures: host cases, users, flags, real Redis, and the server requirements.

Tests that need a server (Redis, PostgreSQL, Chromium) skip with a clear message when it
is absent, except under ``CI=true`` where they fail instead.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.db import connection

from tests.users import STAFF_PERMISSIONS, grant

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, message: str) -> None:
    """Skip (fail under CI=true) when a server the test needs is absent."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{message} (CI=true: required here)")
    pytest.skip(message)


def redis_available(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = settings.REDIS_URL
    require(redis_available(url), f"Redis is not reachable at {url}")
    return url


@pytest.fixture
def redis_cache(redis_url: str, settings: Any) -> Iterator[str]:
    """A ``redis`` cache alias on a real Redis, used as the token cache; flushed around."""
    import redis

    settings.CACHES = {
        **settings.CACHES,
        "redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url},
    }
    config = {**settings.ALIGN_INTEGRATION, "TOKEN_CACHE": "redis"}
    settings.ALIGN_INTEGRATION = config
    redis.Redis.from_url(redis_url).flushdb()
    yield "redis"
    caches["redis"].close()
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def postgres() -> None:
    require(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _clean_caches() -> Iterator[None]:
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture(autouse=True)
def _media_root(tmp_path: Any, settings: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


STL_BYTES = (
    b"solid align-test\n facet normal 0 0 1\n  outer loop\n   vertex 0 0 0\n   vertex 1 0 0\n"
    b"   vertex 0 1 0\n  endloop\n endfacet\nendsolid align-test\n"
)


@pytest.fixture
def make_case(db: Any) -> Callable[..., Any]:
    """A host case shaped like the seeds; eligible unless told otherwise."""
    from align_integration.models import CaseAsset
    from tests.testapp.models import Case, Patient, PhotoAssessment, Prescription

    counter = {"n": 0}

    def build(
        *,
        lab: str = "AL",
        approved: bool = True,
        stl_files: int = 2,
        gender: str = "F",
        first_name: str = "Ada",
        last_name: str = "Lovelace",
        date_of_birth: dt.date | None = dt.date(1990, 12, 10),
        mrn: str | None = None,
        provider: Any = None,
        treatment_option: str = "full",
    ) -> Any:
        counter["n"] += 1
        patient = Patient.objects.create(
            first_name=first_name,
            last_name=last_name,
            date_of_birth=date_of_birth,
            gender=gender,
            medical_record_number=mrn if mrn is not None else f"MRN-{counter['n']:05d}",
            email="patient@example.test",
            phone="555-0100",
        )
        case = Case.objects.create(patient=patient, case_number=f"C{counter['n']:05d}")
        Prescription.objects.create(case=case, lab=lab, provider=provider)
        PhotoAssessment.objects.create(
            case=case, approved=approved, treatment_option=treatment_option
        )
        for index in range(stl_files):
            asset = CaseAsset(case=case, kind=CaseAsset.STL, content_type="model/stl")
            asset.file.save(f"scan-{index}.stl", ContentFile(STL_BYTES), save=True)
        return case

    return build


@pytest.fixture
def staff_user(db: Any, django_user_model: Any) -> Any:
    """Staff who may send cases to Align and manage the iTero connection."""
    user = django_user_model.objects.create_user(username="staff", password="pw", is_staff=True)
    return grant(user, *STAFF_PERMISSIONS)


@pytest.fixture
def plain_staff_user(db: Any, django_user_model: Any) -> Any:
    """Staff without the app's permissions: may look, may not send or pair."""
    return django_user_model.objects.create_user(
        username="plain-staff", password="pw", is_staff=True
    )


@pytest.fixture
def provider(db: Any, django_user_model: Any) -> Any:
    from tests.testapp.models import Provider

    user = django_user_model.objects.create_user(username="dr-who", password="pw")
    return Provider.objects.create(user=user, account_name="Dr Who Dental")


@pytest.fixture
def flags(db: Any) -> Callable[..., None]:
    """``flags("initiate-align-order", on=True)``: a waffle flag for everyone, or off."""
    from waffle.models import Flag

    def set_flag(name: str, on: bool = True) -> None:
        Flag.objects.update_or_create(name=name, defaults={"everyone": on})

    return set_flag


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
