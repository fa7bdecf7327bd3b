"""Signed webhooks from the outbox (issue 13): endpoints, delivery, the delivery log, replay.

* `config`: the settings (`WEBHOOK_*`, `OUTBOX_RETENTION_DAYS`).
* `models`: `webhook_endpoint`, `webhook_dispatch` (what is still to be sent, per endpoint and
  message) and `webhook_delivery` (every attempt: the delivery log).
* `signing`: Standard Webhooks secrets and signatures (the `standardwebhooks` package).
* `ssrf`: which targets may be called, checked on the URL and again on every connection.
* `schedule`: the retry schedule, `Retry-After`, when an endpoint is given up on.
* `payload`: the body of a message as an endpoint receives it.
* `repository`: all the SQL.
* `service`, `routes`, `schemas`, `errors`: the `/v1/webhook-endpoints` API.
* `delivery`: the fan-out, delivery and purge work the runner's jobs do; `jobs`: those jobs.
* `transport`: the delivery's HTTP/1.1 connections to the receivers.
"""
