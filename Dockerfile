# One image for every Palier process; the command picks the process (`palier web|worker|...`).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PALIER_VAR_DIR=/var/lib/palier DJANGO_SETTINGS_MODULE=api.config.settings

# WeasyPrint needs Pango; libpq for psycopg diagnostics.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b \
    libpq5 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY workers ./workers
COPY devices ./devices
COPY manage.py ./
RUN pip install . && useradd --system --home /app palier \
 && mkdir -p /var/lib/palier && chown palier /var/lib/palier

USER palier
# Static files are collected at build time with throwaway secrets; real ones come at run time.
RUN PALIER_ENV=development python manage.py collectstatic --noinput --verbosity 0
EXPOSE 8000
CMD ["palier", "web"]
