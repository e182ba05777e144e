"""Branchline core: configuration, application factory, database, security and domain services."""
