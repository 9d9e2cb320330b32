"""Routes of the audits app, under /api/v1/."""

urlpatterns: list = []
