"""Reads of rent receipts and balances: the household and the agency, nobody else."""

from django.db.models import DecimalField, F, Max, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from api.core.roles import Role
from api.estate.models import Lease
from api.estate.selectors import leases_visible_to

from .models import RentLedgerLine, RentReceipt

# Money matters stay between the household (and whom it delegated to) and the agency.
FINANCE_READER_ROLES = frozenset({Role.TENANT, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
FINANCE_WRITER_ROLES = frozenset({Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
ZERO = Value(0, output_field=DecimalField(max_digits=12, decimal_places=2))


def _leases(user) -> QuerySet[Lease]:
    if not user or not user.is_authenticated or user.role not in FINANCE_READER_ROLES:
        return Lease.objects.none()
    return leases_visible_to(user)


def receipts_visible_to(user) -> QuerySet[RentReceipt]:
    """Receipts of the leases the person may see the money of."""
    return RentReceipt.objects.filter(lease__in=_leases(user).values("id"))


def balances_visible_to(user) -> QuerySet[Lease]:
    """Leases with their account: total due, total paid, balance, last payment."""
    last_payment = RentLedgerLine.objects.filter(lease=OuterRef("pk"), amount_paid__gt=0).order_by(
        "-payment_date", "-period"
    )
    return _leases(user).annotate(
        total_due=Coalesce(Sum(F("ledger_lines__rent") + F("ledger_lines__charges")), ZERO),
        total_paid=Coalesce(Sum("ledger_lines__amount_paid"), ZERO),
        last_period=Max("ledger_lines__period"),
        last_payment_date=Subquery(last_payment.values("payment_date")[:1]),
        last_payment_amount=Subquery(last_payment.values("amount_paid")[:1]),
    )
