"""Signals a host project can receive.  Each is sent with ``case=`` and the record it concerns.

- ``order_initiated``: ``case``, ``align_case`` (an :class:`AlignCase`), after the patient,
  the primary order and the asset upload all succeeded.
- ``sales_order_received``: ``case``, ``align_order`` (a new :class:`AlignOrder`).
- ``treatment_plan_received``: ``case``, ``align_case``, ``plan_id``, ``version``.
- ``case_status_changed``: ``case``, ``align_case``, ``status``, ``previous_status``.
- ``scan_received``: ``case``, ``scan`` (an iTero scan record), once per stored scan.
- ``treatment_plan_approved``: ``case``, ``asset`` (the ``CaseAsset`` recording the
  acceptance screenshot), when the provider approves the plan; sent on commit.
- ``revision_requested``: ``case``, ``comment`` (the provider's text), once Align accepted
  the ClinCheck revision request; sent on commit.
- ``clincheck_accepted``: ``case``, once Align accepted the ClinCheck accept; sent on
  commit.

Internal signals, sent on commit, that the app's task integration receives (hosts may
receive them too): ``operation_retry_scheduled`` (``operation=``, a ``RemoteOperation``
whose ``next_attempt_at`` is set) and ``callback_stored`` (``event=``, a ``CallbackEvent``
stored for deferred processing), ``eligibility_changed`` (``case=``, sent by
``align_integration.cases.case_changed``).

Hosts may send ``aligners_purchased`` (``case=``, ``user=``) when a customer buys aligners;
the app then sends the ClinCheck accept (behind the ``set-align-order-status`` flag).
"""

from django.dispatch import Signal

order_initiated = Signal()
sales_order_received = Signal()
treatment_plan_received = Signal()
case_status_changed = Signal()
scan_received = Signal()
treatment_plan_approved = Signal()
revision_requested = Signal()
clincheck_accepted = Signal()
aligners_purchased = Signal()
operation_retry_scheduled = Signal()
eligibility_changed = Signal()
callback_stored = Signal()
