"""What SREs read: JSON log lines for Loki, Prometheus metrics, the health probes and build info.

`logs` formats and batches the lines, `metrics` owns the registry (request, upstream, cache and
circuit metrics, multiprocess-safe under gunicorn), `health` serves /healthz and /readyz, and
`build` says which version and commit is running.
"""
