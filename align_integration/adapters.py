"""The case adapter: how this app reads the host project's case model.

Hosts whose models differ from the conventional names subclass :class:`CaseAdapter`,
override the methods that differ and name the subclass in
``ALIGN_INTEGRATION["CASE_ADAPTER"]``.  Every method receives the host's own case object.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, ValidationError
from django.core.files.base import ContentFile
from django.db import DataError, models, transaction
from django.utils.module_loading import import_string

from align_integration.conf import case_model_label, get_setting
from align_integration.models import AlignCase, CaseAsset

GENDERS = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F"}


def normalize_gender(value: Any) -> str:
    """``"M"``, ``"F"`` or ``"U"`` (unknown) from whatever the host stores."""
    if value is None:
        return "U"
    return GENDERS.get(str(value).strip().upper(), "U")


def iso_date(value: Any) -> str:
    """``YYYY-MM-DD`` from a date, a datetime or such a string; ``""`` if it is none of them."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            return ""
    return ""


@dataclass(frozen=True)
class PatientData:
    """The patient fields Align needs.  Never logged, never written to the timeline."""

    first_name: str
    last_name: str
    date_of_birth: dt.date | None
    gender: str  # "M", "F" or "U"
    mrn: str
    email: str = ""
    phone: str = ""

    def __repr__(self) -> str:  # keep patient data out of tracebacks and debug output
        return "PatientData(<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True)
class AssetRef:
    """One file as Align's service knows it: the ids that asset calls send.

    ``name`` is a label for people (never sent); ``vault_id`` and ``external_key`` are what
    the old tool's vault gave each file and what ClinCheck accept sends for a screenshot.
    """

    name: str
    vault_id: str
    external_key: str


def asset_ref(asset: CaseAsset) -> AssetRef:
    """The :class:`AssetRef` of one of the app's own ``CaseAsset`` rows."""
    return AssetRef(
        name=os.path.basename(asset.file.name or "") or f"asset-{asset.pk}",
        vault_id=asset.vault_id or "",
        external_key=asset.external_key or "",
    )


def _reference_field(model: type[models.Model]) -> str:
    """The field a case reference names by default: ``uuid`` when the model has one."""
    try:
        model._meta.get_field("uuid")
    except FieldDoesNotExist:
        return "pk"
    return "uuid"


def _is_forward_relation(model: type[models.Model], name: str) -> bool:
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return bool(field.many_to_one or field.one_to_one) and field.concrete


class CaseAdapter:
    """Maps the host's case model to what the app needs.  Subclass and override.

    The defaults read the conventional layout of the old in-repo tool:
    ``case.patient`` (``first_name``, ``last_name``, ``date_of_birth``, ``gender``,
    ``medical_record_number``, ``email``, ``phone``), ``case.prescription.lab`` and
    ``case.prescription.provider.user_id``, ``case.photo_assessment.approved`` and
    ``.treatment_option``.
    """

    ALIGN_LAB_CODE = "AL"

    # -- finding cases -------------------------------------------------------------
    @property
    def case_model(self) -> type[models.Model]:
        return apps.get_model(case_model_label())

    def get_case(self, case_ref: str) -> Any:
        """The case for ``case_ref`` (as found in URLs and CSV files), or ``LookupError``."""
        model = self.case_model
        ref = str(case_ref).strip()
        lookup: dict[str, Any]
        if _reference_field(model) == "pk":
            lookup = {"pk": ref}
        else:
            try:
                lookup = {"uuid": uuid.UUID(ref)}
            except ValueError:
                raise LookupError("not a valid case reference") from None
        try:
            return model._default_manager.get(**lookup)
        except (ObjectDoesNotExist, ValueError, TypeError, ValidationError, DataError):
            raise LookupError("no case with that reference") from None

    def get_cases(self, case_refs: Sequence[str]) -> dict[str, Any]:
        """The cases of many references at once (the batch commands): ``{ref: case}`` for
        the references found; the others are left out (:meth:`get_case` says why).

        The default finds them in one query per 500 references, by the same rule as the
        default :meth:`get_case` (joined with the patient the default :meth:`patient`
        reads); an adapter that overrides :meth:`get_case` gets one call of it per
        reference unless it overrides this too.
        """
        if type(self).get_case is not CaseAdapter.get_case:
            found = {}
            for ref in case_refs:
                try:
                    found[ref] = self.get_case(ref)
                except LookupError:
                    pass
            return found
        model = self.case_model
        field = _reference_field(model)
        parse: Callable[[str], Any] = uuid.UUID if field == "uuid" else model._meta.pk.to_python
        rows = model._default_manager.all()
        if type(self).patient is CaseAdapter.patient and _is_forward_relation(model, "patient"):
            rows = rows.select_related("patient")  # what the default patient() reads
        wanted: dict[Any, list[str]] = {}
        for ref in case_refs:
            try:
                wanted.setdefault(parse(str(ref).strip()), []).append(ref)
            except (ValueError, TypeError, ValidationError):
                pass
        keys = list(wanted)
        found = {}
        for start in range(0, len(keys), 500):
            lookup = {f"{field}__in": keys[start : start + 500]}
            for case in rows.filter(**lookup):
                for ref in wanted.get(getattr(case, field), ()):
                    found[ref] = case
        return found

    def url_reference(self, case: Any) -> str:
        """The reference used in this app's URLs for ``case`` (what :meth:`get_case` accepts).

        The default is the case's ``uuid`` when the model has one, else its primary key;
        override together with :meth:`get_case`."""
        uuid_value = getattr(case, "uuid", None)
        return str(uuid_value) if uuid_value else str(case.pk)

    def case_reference(self, case: Any) -> str:
        """The ``caseId`` sent to Align and received back in callbacks."""
        return str(case.pk)

    def case_for_reference(self, case_id: str) -> Any:
        """The case whose :meth:`case_reference` is ``case_id`` (callbacks), or ``LookupError``.

        The default finds the case the app sent under that ``caseId``, else tries the
        primary key, else :meth:`get_case`; override when ``case_reference`` is neither.
        """
        state = AlignCase.objects.filter(align_case_id=case_id).select_related("case").first()
        if state is not None:
            return state.case
        model = self.case_model
        try:
            return model._default_manager.get(pk=case_id)
        except (ObjectDoesNotExist, ValueError, TypeError, ValidationError, DataError):
            pass
        return self.get_case(case_id)

    # -- patient -------------------------------------------------------------------
    def patient(self, case: Any) -> PatientData:
        patient = case.patient
        return PatientData(
            first_name=str(patient.first_name or ""),
            last_name=str(patient.last_name or ""),
            date_of_birth=getattr(patient, "date_of_birth", None),
            gender=normalize_gender(getattr(patient, "gender", None)),
            mrn=str(getattr(patient, "medical_record_number", "") or ""),
            email=str(getattr(patient, "email", "") or ""),
            phone=str(getattr(patient, "phone", "") or ""),
        )

    # -- eligibility ---------------------------------------------------------------
    def lab_is_align(self, case: Any) -> bool:
        prescription = getattr(case, "prescription", None)
        return bool(prescription is not None and prescription.lab == self.ALIGN_LAB_CODE)

    def photo_assessment_approved(self, case: Any) -> bool:
        assessment = getattr(case, "photo_assessment", None)
        return bool(assessment is not None and assessment.approved)

    def treatment_option(self, case: Any) -> str:
        assessment = getattr(case, "photo_assessment", None)
        return str(getattr(assessment, "treatment_option", "") or "")

    def chief_concern(self, case: Any) -> str:
        """The chief concern sent with the case's primary order.

        The default is the setting ``CHIEF_CONCERN``, which has no default value: a system
        check (``align_integration.E014``) reports it while it is empty and this method is
        not overridden.  Override to send a concern of the case's own.
        """
        return str(get_setting("CHIEF_CONCERN") or "").strip()

    def stl_files(self, case: Any) -> Sequence[AssetRef]:
        """The case's current scan files: the one source for eligibility, the upload step
        (its label and its dedupe key), ``align_upload_assets`` and the worker.

        The default reads the app's ``CaseAsset`` rows of kind STL that are not removed.
        Override when the host keeps its scan files in its own model.
        """
        rows = CaseAsset.objects.current().filter(case=case, kind=CaseAsset.STL).order_by("pk")
        return [asset_ref(asset) for asset in rows]

    def stl_file_count(self, case: Any) -> int:
        """How many current STL files the case has: ``len(stl_files(case))``."""
        return len(self.stl_files(case))

    # -- provider portal -----------------------------------------------------------
    def provider_can_act(self, user: Any, case: Any) -> bool:
        prescription = getattr(case, "prescription", None)
        provider = getattr(prescription, "provider", None)
        return bool(
            provider is not None
            and getattr(user, "is_authenticated", False)
            and provider.user_id == user.pk
        )

    def on_treatment_plan_ready(self, case: Any) -> None:
        """Called when a treatment plan arrives: move the case into the provider portal.

        The default does nothing beyond the app's own state (``AlignCase``); override to
        change the host's case status.
        """

    def store_acceptance_screenshot(self, case: Any, jpeg: bytes, user: Any) -> AssetRef:
        """Keep the provider's validated acceptance screenshot; return where it was kept.

        ``jpeg`` has been checked already (a readable JPEG within the size limits).  The
        returned ``vault_id`` and ``external_key`` are what ClinCheck accept sends to Align.
        The default stores the file in Django storage as a ``CaseAsset`` of kind
        ``CCACCEPTSCREEN`` (a new random ``vault_id``, the storage name as
        ``external_key``).  Override to keep it in the host's own vault and return the
        vault's ids; the app then keeps a file-less ``CaseAsset`` row holding those ids, so
        that "the newest screenshot" of a case is found as for any other.
        """
        asset = CaseAsset(
            case=case,
            kind=CaseAsset.CCACCEPTSCREEN,
            vault_id=str(uuid.uuid4()),
            content_type="image/jpeg",
            size=len(jpeg),
            sha256=hashlib.sha256(jpeg).hexdigest(),
            source="provider",
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        asset.file.save("acceptance.jpg", ContentFile(jpeg), save=False)
        asset.external_key = asset.file.name or ""
        try:
            with transaction.atomic():
                asset.save()
        except Exception:
            asset.file.delete(save=False)  # no row, so no file left behind either
            raise
        return asset_ref(asset)

    # -- host notes ------------------------------------------------------------------
    def add_case_note(self, case: Any, text: str, user: Any) -> None:
        """Receives the timeline's text for each outcome the old tool wrote a case note for.

        Sent: each step of sending a case (patient, primary order, upload; done, failed
        with its status, retry scheduled, found at Align), the unknown-gender default, the
        provider's approval, and each ClinCheck accept and revision outcome.  ``text``
        never holds patient data; ``user`` is the acting user or ``None``.  The default
        does nothing; override to write the host's own case note.  An exception raised
        here is logged and does not stop the flow.
        """

    # -- iTero scans ---------------------------------------------------------------
    def match_scan(self, order: dict[str, Any]) -> Any:
        """The case an iTero order belongs to, or ``None`` (the scan then waits for staff)."""
        chart_number = str(((order.get("patient") or {}).get("chartNumber")) or "").strip()
        if not chart_number:
            return None
        # A patient may have several cases: the newest one is the one scans are for.
        return (
            self.case_model._default_manager.filter(patient__medical_record_number=chart_number)
            .order_by("-pk")
            .first()
        )


@lru_cache(maxsize=8)
def _adapter_class(path: str) -> type[CaseAdapter]:
    return import_string(path)


def get_adapter() -> CaseAdapter:
    """An instance of the configured adapter class."""
    return _adapter_class(get_setting("CASE_ADAPTER"))()
