"""RCM: revenue-cycle management for outsourced medical-billing companies."""

from __future__ import annotations

__version__ = "0.1.0"
