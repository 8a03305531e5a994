"""The lab: what measures the product (benchmark.py and the scripts here, with their helpers profiling.py and
network_table.py). Nothing under nets/ or utils/ imports from it."""
