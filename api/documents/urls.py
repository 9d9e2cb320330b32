from django.urls import path
from rest_framework.routers import SimpleRouter

from . import apis

router = SimpleRouter()
router.register("rent-receipts", apis.RentReceiptViewSet, basename="rent-receipt")

urlpatterns = [
    path("rent-receipts/import/", apis.LedgerImportApi.as_view(), name="rent-ledger-import"),
    path("balance/", apis.BalanceApi.as_view(), name="balance"),
    *router.urls,
]
