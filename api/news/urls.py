from rest_framework.routers import SimpleRouter

from . import apis

router = SimpleRouter()
router.register("news", apis.PostViewSet, basename="news")

urlpatterns = router.urls
