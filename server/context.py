"""Context: what every service call needs (database, settings, clock, outbound HTTP)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from server.clock import Clock
from server.config import Settings


@dataclass
class Context:
    settings: Settings
    client: AsyncMongoClient
    db: AsyncDatabase
    clock: Clock = field(default_factory=Clock)
    # Per-process state that services may keep (caches, wake-up events); keyed by service.
    state: dict[str, Any] = field(default_factory=dict)
    # Requests being answered; shutdown waits for this to empty before closing connections.
    inflight: set = field(default_factory=set)
    # Set when the process starts draining, so long-polls can answer at once.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def now(self):
        return self.clock.now()

    async def idle(self, seconds: float) -> bool:
        """Wait `seconds` unless the process starts stopping: True after the wait, False when stopping
        (background loops run `while await ctx.idle(n): ...`)."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
            return False
        except TimeoutError:
            return True
