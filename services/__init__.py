"""The use cases, one room per domain (docs/architecture.md): images/, jobs/, storage_admin/,
legacy/, on top of infra/ (what every room uses) and entities.py (the entity kinds)."""
