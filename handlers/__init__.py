"""Tornado RequestHandlers, one module per resource. Each module exports ROUTES.

`all_routes()` collects ROUTES from every module in this package, so a new capability adds
its module and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

API = "/api/v1"


def all_routes() -> list[tuple[str, type]]:
    routes: list[tuple[str, type]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        routes.extend(getattr(module, "ROUTES", ()))
    return routes
