"""Query filters of receipts and balances."""

import django_filters

from api.estate.models import Lease

from .models import ReceiptKind, RentReceipt


class RentReceiptFilter(django_filters.FilterSet):
    lease = django_filters.UUIDFilter(field_name="lease_id")
    kind = django_filters.ChoiceFilter(choices=ReceiptKind.choices)
    period_from = django_filters.DateFilter(field_name="period", lookup_expr="gte")
    period_to = django_filters.DateFilter(field_name="period", lookup_expr="lte")

    class Meta:
        model = RentReceipt
        fields = ["lease", "kind", "period_from", "period_to"]


class BalanceFilter(django_filters.FilterSet):
    dwelling = django_filters.UUIDFilter(field_name="dwelling_id")

    class Meta:
        model = Lease
        fields = ["dwelling"]
