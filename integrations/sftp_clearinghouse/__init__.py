"""SFTP clearinghouse connector: X12 files out to an outbound folder, responses in from an inbound one.

Endpoint: ``sftp://[user@]host[:port]/base?outbound=out&inbound=in&archive=archive&known_hosts=file:REF``
(folders relative to ``base``; defaults ``outbound``, ``inbound``, ``inbound/archive``). The login is the
URL's user when given, else the practice's submitter id. The practice's credentials are the password, or a
private key in OpenSSH / PEM form (recognised by its ``-----BEGIN`` line). The server's host key must be in
the ``known_hosts`` reference: an unknown or changed key is a permanent error, never a prompt or a bypass.

Real-time eligibility and claim status are not an SFTP service: those calls are refused as permanent (the
directory routes them to a REST or payer connector instead).
"""

from __future__ import annotations

from sftp_clearinghouse.connector import SftpClearinghouse

__all__ = ["SftpClearinghouse"]
