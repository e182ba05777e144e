"""Tornado RequestHandlers, one module per resource; server/app.py's ROUTES says which path each answers."""
