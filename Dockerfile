FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    IMAGINE_DATA_DIR=/data IMAGINE_HTTP_HOST=0.0.0.0 IMAGINE_HTTP_PORT=8080

RUN useradd --create-home --uid 10001 imagine && mkdir -p /data && chown imagine /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install --no-cache-dir '.[postgres,s3]'

USER imagine
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('IMAGINE_HTTP_PORT', '8080'), timeout=4)"
CMD ["imagine-bot", "run"]
