"""REST clearinghouse connector: JSON over HTTPS (httpx).

Endpoint: ``https://host[:port]/base`` (plain ``http://`` only to a loopback address). The API, under base:

- ``POST /claims`` ``{"file_name", "interchange_control_number", "submitter_id", "receiver_id", "x12"}`` with
  ``Idempotency-Key: <submitter>-<ISA13>``; answers ``{"reference", "duplicate"?}`` (200 for a replay).
- ``GET /responses?cursor=`` answers ``{"files": [{"id", "name", "x12", "received_at"}], "cursor"}``.
- ``POST /responses/{id}/ack``.
- ``POST /eligibility`` and ``POST /claim-status`` ``{"x12"}`` answer ``{"x12"}``.

Credentials: ``user:password`` (anything with a colon) is HTTP basic; anything else is a bearer token.
429 and 5xx are transient (``Retry-After`` honoured), other 4xx permanent, 401/403 permanent as refused.
"""

from __future__ import annotations

from rest_clearinghouse.connector import RestClearinghouse

__all__ = ["RestClearinghouse"]
