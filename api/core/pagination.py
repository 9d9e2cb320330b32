"""Page-number pagination with a bounded page size."""

from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class PagePagination(PageNumberPagination):
    """`?page=N&page_size=M`, M capped so no request can ask for the whole table."""

    page_size_query_param = "page_size"
    max_page_size = settings.MAX_PAGE_SIZE
