"""What the whole-pipeline benchmark (bench/e2e.py) measures with: its inputs, CPU per process
group, py-spy profiles, the worker's stage metrics, the stage plot and the results file."""
