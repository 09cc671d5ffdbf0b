"""The whole-pipeline benchmark's measurements, one module each (bench/e2e.py runs them)."""
