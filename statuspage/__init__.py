"""The public status page: live status from Prometheus, incidents and maintenance in PostgreSQL."""
