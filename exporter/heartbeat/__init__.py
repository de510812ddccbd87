"""Heartbeat services: batch jobs report to the exporter instead of being polled."""
