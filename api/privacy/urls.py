"""Routes of the privacy app, under /api/v1/."""

urlpatterns: list = []
