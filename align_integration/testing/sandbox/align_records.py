"""What the Align integration service knows: patients, orders and uploads, per ``caseId``.

:class:`AlignRecords` is the service's store. The HTTP handlers
(:mod:`.align_service`) write to it through the protocol's calls; tests write to it
directly to stage *drift* — a patient or an order made outside the app (:meth:`seed_patient`,
:meth:`seed_order`), one deleted at Align (:meth:`delete_patient`, :meth:`delete_order`), two
candidate patients for one case (seed twice) — which the find calls then report.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from .signing import iso_utc

PATIENT_FIELDS = (
    "caseId",
    "mrn",
    "firstName",
    "lastName",
    "dateOfBirth",
    "gender",
    "email",
    "phone",
)
ORDER_FIELDS = ("caseId", "patientId", "mrn", "orderType", "treatmentOption", "chiefConcern")


class AlignRecords:
    """Patients, orders and uploads, guarded by one re-entrant lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.patients: list[dict[str, Any]] = []
            self.orders: list[dict[str, Any]] = []
            self.uploads: list[dict[str, Any]] = []
            self._serial = 1000

    def next_id(self, prefix: str) -> str:
        with self.lock:
            self._serial += 1
            return f"{prefix}{self._serial}"

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Deep copies of the patients and the orders."""
        with self.lock:
            return copy.deepcopy(self.patients), copy.deepcopy(self.orders)

    # --- written by the protocol's calls ------------------------------------------------------

    def add_patient(self, fields: dict[str, Any], patient_id: str | None = None) -> dict[str, Any]:
        patient = {name: fields[name] for name in PATIENT_FIELDS}
        with self.lock:
            if patient_id is not None and self.patient(patient_id) is not None:
                raise ValueError(f"patient {patient_id!r} exists already")
            patient["patientId"] = patient_id or self.next_id("P-")
            patient["createdAt"] = iso_utc()
            self.patients.append(patient)
        return patient

    def add_order(self, fields: dict[str, Any], order_id: str | None = None) -> dict[str, Any]:
        order = {name: fields[name] for name in ORDER_FIELDS}
        with self.lock:
            if order_id is not None and self.order(order_id) is not None:
                raise ValueError(f"order {order_id!r} exists already")
            order.update(
                orderId=order_id or self.next_id("O-"),
                status=fields.get("status", "treatment_plan_ready"),
                planVersion=int(fields.get("planVersion", 1)),
                createdAt=iso_utc(),
            )
            self.orders.append(order)
        return order

    def patient(self, patient_id: str, case_id: str | None = None) -> dict[str, Any] | None:
        with self.lock:
            return next(
                (
                    p
                    for p in self.patients
                    if p["patientId"] == patient_id and case_id in (None, p["caseId"])
                ),
                None,
            )

    def order(self, order_id: str) -> dict[str, Any] | None:
        with self.lock:
            return next((o for o in self.orders if o["orderId"] == order_id), None)

    def patients_of(self, case_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.patients if p["caseId"] == case_id]

    def orders_of(self, case_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [o for o in self.orders if o["caseId"] == case_id]

    # --- drift, staged by tests ---------------------------------------------------------------

    def seed_patient(
        self,
        case_id: str,
        *,
        patient_id: str | None = None,
        mrn: str = "MRN-SEEDED",
        first_name: str = "Seeded",
        last_name: str = "Patient",
        date_of_birth: str = "1990-01-01",
        gender: str = "F",
        email: str = "",
        phone: str = "",
    ) -> str:
        """A patient for ``case_id`` made outside the app; returns its patient id.

        Seeding a second one for the same case gives the case two candidate patients.
        """
        fields = {
            "caseId": case_id,
            "mrn": mrn,
            "firstName": first_name,
            "lastName": last_name,
            "dateOfBirth": date_of_birth,
            "gender": gender,
            "email": email,
            "phone": phone,
        }
        return str(self.add_patient(fields, patient_id)["patientId"])

    def seed_order(
        self,
        case_id: str,
        *,
        patient_id: str | None = None,
        order_id: str | None = None,
        mrn: str | None = None,
        order_type: str = "IAS",
        treatment_option: str = "full",
        chief_concern: str = "",
        status: str = "treatment_plan_ready",
        plan_version: int = 1,
    ) -> str:
        """An order for ``case_id`` made outside the app (no callbacks follow); its order id.

        Without ``patient_id`` it belongs to the case's newest patient, seeded if there is none.
        """
        with self.lock:
            if patient_id is None:
                known = self.patients_of(case_id)
                patient_id = known[-1]["patientId"] if known else self.seed_patient(case_id)
            patient = self.patient(patient_id)
            fields = {
                "caseId": case_id,
                "patientId": patient_id,
                "mrn": mrn or (patient["mrn"] if patient else "MRN-SEEDED"),
                "orderType": order_type,
                "treatmentOption": treatment_option,
                "chiefConcern": chief_concern,
                "status": status,
                "planVersion": plan_version,
            }
            return str(self.add_order(fields, order_id)["orderId"])

    def delete_patient(self, patient_id: str) -> None:
        """Forget a patient (its orders stay, as after a clean-up at Align); ``KeyError``."""
        with self.lock:
            patient = self.patient(patient_id)
            if patient is None:
                raise KeyError(patient_id)
            self.patients.remove(patient)

    def delete_order(self, order_id: str) -> None:
        """Forget an order; ``KeyError`` when there is none with that id."""
        with self.lock:
            order = self.order(order_id)
            if order is None:
                raise KeyError(order_id)
            self.orders.remove(order)
