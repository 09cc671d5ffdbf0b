"""Infrastructure the domain rooms stand on: settings, the runtime wiring, the store factory, the
task queue, I/O threads, metrics, logs, rate limits, tokens, secret files, CloudFront signing.
Imports no domain room (tests/test_imports.py)."""
