from rest_framework.routers import SimpleRouter

from . import apis

router = SimpleRouter()
router.register("residences", apis.ResidenceViewSet, basename="residence")
router.register("buildings", apis.BuildingViewSet, basename="building")
router.register("entrances", apis.EntranceViewSet, basename="entrance")
router.register("dwellings", apis.DwellingViewSet, basename="dwelling")
router.register("common-areas", apis.CommonAreaViewSet, basename="common-area")
router.register("equipment", apis.EquipmentViewSet, basename="equipment")
router.register("leases", apis.LeaseViewSet, basename="lease")
router.register("delegations", apis.DelegationViewSet, basename="delegation")
router.register("people", apis.PersonViewSet, basename="person")

urlpatterns = router.urls
