"""Delivery: what serving photos costs and how fast they load (access logs, browser timings, cost)."""
