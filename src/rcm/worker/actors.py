"""The one actor wrapper, the broker it binds to, and trace propagation into every message.

dramatiq binds an ``Actor`` to a broker when the actor is constructed (``dramatiq.actor`` calls
``get_broker()`` at import time, which silently creates a RabbitMQ broker on localhost when none is set).
Our actors are therefore declared lazily: ``@actor`` only records a ``JobActor``; ``setup_broker`` declares a
dramatiq actor for every recorded one on the broker it configures, and an actor recorded after that is
declared at once. Import order between job modules and broker set-up stops mattering.
"""

from __future__ import annotations

import inspect
import json
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, CurrentMessage, default_middleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from rcm.config import Settings

JobFunction = Callable[..., Awaitable[Any]]

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("rcm.worker")
_lock = threading.Lock()
_registry: dict[str, JobActor] = {}
_broker: dramatiq.Broker | None = None

# Message options that carry the sender's W3C trace context (https://www.w3.org/TR/trace-context/).
TRACE_OPTIONS = ("traceparent", "tracestate")


class JobPayloadError(ValueError):
    """A job was sent with arguments that are not plain JSON ids (the message names keys, never values)."""


class JobActor:
    """A background job: an async function with a dotted name, explicit retries and time limit.

    Calling the object runs the function directly (tests do that after a JSON round trip of the payload).
    ``message(**kwargs)`` builds the dramatiq message, checking the payload and carrying the trace context.
    """

    def __init__(
        self,
        fn: JobFunction,
        *,
        name: str,
        max_retries: int,
        time_limit_ms: int,
        queue_name: str = "default",
        priority: int = 0,
    ) -> None:
        self.fn = fn
        self.name = name
        self.max_retries = max_retries
        self.time_limit_ms = time_limit_ms
        self.queue_name = queue_name
        self.priority = priority
        self._bound: dramatiq.Actor[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"JobActor({self.name})"

    def __call__(self, **kwargs: Any) -> Awaitable[Any]:
        return self.fn(**kwargs)

    @property
    def dramatiq_actor(self) -> dramatiq.Actor[Any, Any]:
        if self._bound is None:
            current_broker()  # declares every recorded actor, this one included
        assert self._bound is not None
        return self._bound

    def _declare(self, broker: dramatiq.Broker) -> None:
        def run_message(**kwargs: Any) -> None:
            # A job's return value is for direct callers (tests, the CLI); the broker keeps no results, and
            # dramatiq warns on every message whose actor returns one.
            _run_in_span(self, kwargs)

        run_message.__module__ = self.fn.__module__
        run_message.__qualname__ = self.name
        self._bound = dramatiq.Actor(
            run_message,
            broker=broker,
            actor_name=self.name,
            queue_name=self.queue_name,
            priority=self.priority,
            options={"max_retries": self.max_retries, "time_limit": self.time_limit_ms},
        )

    def payload(self, **kwargs: Any) -> dict[str, Any]:
        """The JSON payload for ``kwargs``: UUIDs become strings; anything that is not JSON is refused."""
        if "tenant_id" not in kwargs:
            raise JobPayloadError(f"{self.name}: tenant_id is required")
        payload = {
            key: str(value) if isinstance(value, uuid.UUID) else value for key, value in kwargs.items()
        }
        for key, value in payload.items():
            if not _is_plain(value):
                raise JobPayloadError(f"{self.name}: argument {key!r} is not a JSON id or scalar")
        return payload

    def message(self, **kwargs: Any) -> dramatiq.Message[Any]:
        """A message for this job, carrying the sender's trace context in its options."""
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        options = {key: carrier[key] for key in TRACE_OPTIONS if key in carrier}
        bound = self.dramatiq_actor
        return dramatiq.Message(
            queue_name=bound.queue_name,
            actor_name=bound.actor_name,
            args=(),
            kwargs=self.payload(**kwargs),
            options=options,
        )

    def send_now(self, **kwargs: Any) -> dramatiq.Message[Any]:
        """Send immediately, outside any transaction. Prefer ``enqueue`` (sends after commit)."""
        return current_broker().enqueue(self.message(**kwargs))


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, list):
        return all(_is_plain(item) for item in value)
    return False


def _run_in_span(job: JobActor, kwargs: dict[str, Any]) -> Any:
    """Run on a dramatiq worker thread: open the job's span under the sender's trace, run the coroutine on
    the AsyncIO middleware's event loop (which also honours the time limit by cancelling it)."""
    message = CurrentMessage.get_current_message()
    carrier = {key: str(message.options[key]) for key in TRACE_OPTIONS if message and key in message.options}
    parent = _propagator.extract(carrier)
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        raise RuntimeError("the AsyncIO middleware is not running; use setup_broker() to build the broker")

    async def traced() -> Any:
        token = otel_context.attach(parent)
        try:
            with _tracer.start_as_current_span(
                job.name,
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "dramatiq",
                    "messaging.destination.name": job.queue_name,
                    "messaging.message.id": message.message_id if message else "",
                    # Ids only: payloads hold no PHI by contract, but only the tenant id is recorded.
                    "rcm.tenant_id": str(kwargs.get("tenant_id", "")),
                },
            ):
                return await job.fn(**kwargs)
        finally:
            otel_context.detach(token)

    return loop_thread.run_coroutine(traced())


def actor(
    *,
    name: str,
    max_retries: int,
    time_limit_ms: int,
    queue_name: str = "default",
    priority: int = 0,
) -> Callable[[JobFunction], JobActor]:
    """Declare a background job. ``name`` is dotted (``package.verb_object``); the function is async and
    takes a keyword-only ``tenant_id`` (a str) plus other JSON ids; it must be idempotent, since delivery is
    at least once."""
    if "." not in name:
        raise ValueError(f"actor name {name!r} must be dotted, e.g. 'claims.submit_batch'")

    def decorate(fn: JobFunction) -> JobActor:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{name}: job functions are async")
        parameter = inspect.signature(fn).parameters.get("tenant_id")
        if parameter is None or parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{name}: the job must take a keyword-only tenant_id")
        job = JobActor(
            fn,
            name=name,
            max_retries=max_retries,
            time_limit_ms=time_limit_ms,
            queue_name=queue_name,
            priority=priority,
        )
        with _lock:
            if name in _registry:
                raise ValueError(f"an actor named {name!r} is already declared")
            _registry[name] = job
            if _broker is not None:
                job._declare(_broker)
        return job

    return decorate


def get_actor(name: str) -> JobActor:
    try:
        return _registry[name]
    except KeyError:
        raise LookupError(f"no actor named {name!r} (is its tasks module imported?)") from None


def registered_actors() -> dict[str, JobActor]:
    return dict(_registry)


def _middleware() -> list[dramatiq.Middleware]:
    # Defaults (age and time limits, retries, callbacks...) plus async actors and the current message,
    # which carries the trace context.
    return [m() for m in default_middleware] + [AsyncIO(), CurrentMessage()]


def setup_broker(settings: Settings) -> dramatiq.Broker:
    """Build the broker (RabbitMQ when ``RCM_BROKER_URL`` is set, else in-process), make it the global one
    and declare every recorded actor on it. Calling it again replaces the broker (tests do)."""
    global _broker  # noqa: PLW0603 - dramatiq's broker is process-wide by design
    broker: dramatiq.Broker
    if settings.broker_url:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # confirm_delivery: a message counts as sent only once RabbitMQ has it, so after-commit sends
        # that fail raise instead of vanishing.
        broker = RabbitmqBroker(url=settings.broker_url, middleware=_middleware(), confirm_delivery=True)
    else:
        broker = StubBroker(middleware=_middleware())
    with _lock:
        dramatiq.set_broker(broker)
        _broker = broker
        for job in _registry.values():
            job._declare(broker)
    return broker


def current_broker() -> dramatiq.Broker:
    """The configured broker; configures one from the process settings on first use."""
    if _broker is None:
        from rcm.config import get_settings

        setup_broker(get_settings())
    assert _broker is not None
    return _broker


def encode_payload_roundtrip(message: dramatiq.Message[Any]) -> dict[str, Any]:
    """The kwargs exactly as a worker would decode them from the wire (tests use it)."""
    decoded: dict[str, Any] = json.loads(message.encode())["kwargs"]
    return decoded
