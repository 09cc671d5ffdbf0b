"""Images: ingest (form and direct uploads), processing, management, renditions, lifecycle, access, queries, serialisers."""
