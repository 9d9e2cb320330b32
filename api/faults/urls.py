"""Routes of the faults app, under /api/v1/."""

urlpatterns: list = []
