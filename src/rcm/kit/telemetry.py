"""OpenTelemetry traces and structured logs.

Spans carry ids, routes and SQL text with placeholders, never values: SQL parameters are not recorded, and
no code puts a PHI value into an attribute or a log record (tests seed canary PHI and search for it).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured = False


def configure_tracing(
    service_name: str, otlp_endpoint: str | None, *, extra_processor: SpanProcessor | None = None
) -> TracerProvider:
    """Install the SDK tracer provider once per process; export over OTLP/HTTP only when configured."""
    global _configured  # noqa: PLW0603 - the global provider is process-wide by OpenTelemetry's design
    provider = trace.get_tracer_provider()
    if _configured and isinstance(provider, TracerProvider):
        if extra_processor is not None:
            provider.add_span_processor(extra_processor)
        return provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def current_trace_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace id and whitelisted extras."""

    EXTRA_KEYS = ("error_type", "tenant_id", "request_id", "route", "status", "duration_ms", "job", "count")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "trace_id": current_trace_id() or None,
        }
        for key in self.EXTRA_KEYS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


_URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def redact_request_span(span: Any, scope: Any) -> None:
    """Drop query strings from request spans: a URL must never carry PHI into a trace."""
    if span is None or not span.is_recording():
        return
    path = scope.get("path", "")
    for key in _URL_ATTRIBUTES:
        span.set_attribute(key, "" if key == "url.query" else path)
