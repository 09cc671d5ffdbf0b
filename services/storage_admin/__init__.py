"""Storage administration: the bucket's set-up, the orphan scan, statistics, sweeps."""
