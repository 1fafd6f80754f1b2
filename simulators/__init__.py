"""Simulators of the upstreams that cannot run here, shared by the demo, the tests and the benchmark."""
