# Production image: slim, non-root; runs migrations, then serves with DATABASE_URL.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 app
WORKDIR /srv
COPY --from=build /install /usr/local
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
USER app
EXPOSE 8000
# DATABASE_URL must be set; the embedded PostgreSQL is for laptops, not for this image.
CMD ["sh", "-c", "test -n \"$DATABASE_URL\" && python -m app migrate && exec uvicorn app.main:create_app --factory --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2} --loop uvloop --http httptools --proxy-headers --no-access-log"]
