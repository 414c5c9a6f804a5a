"""FieldLab benchmark: trainer and worker throughput against a bare PyTorch loop, FLOP/s against the
machine's matmul peak, time to 30 dB, GUI event-loop latency while training, and peak memory.

Run it with ``python -m bench`` (see bench/README.md); it is a measurement, not a test: it never fails.
"""
