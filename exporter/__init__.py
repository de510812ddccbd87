"""sefaria-status probe exporter: checks services and exposes the results as Prometheus metrics."""
