FROM python:3.11-slim
WORKDIR /srv/snorq
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
COPY scheduler ./scheduler
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
EXPOSE 5000
CMD ["gunicorn", "app:create_app()", "--config", "python:app.web.gunicorn_hooks", "--worker-class", "gthread", "--workers", "2", "--threads", "32", "--bind", "0.0.0.0:5000"]
