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

    async def idle(self, seconds: float, wake: asyncio.Event | None = None) -> bool:
        """Wait `seconds`, or less when `wake` is set or the process starts stopping: False when stopping,
        else True (background loops run `while await ctx.idle(n): ...`)."""
        waits = {asyncio.ensure_future(self.stopping.wait())}
        if wake is not None:
            waits.add(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        return not self.stopping.is_set()
