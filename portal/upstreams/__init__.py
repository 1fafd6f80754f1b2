"""What every upstream client shares: errors in words, a bounded HTTP client, circuit breakers.

Pure Python, no Flask: `errors` is the `UpstreamError` hierarchy with its user-facing `Reason`,
`http` the bounded JSON client (timeouts, size caps, redaction, status mapping, writes),
`breaker` the per-upstream circuit breaker, and `upstream` the `Upstream` descriptor a widget
names (its settings model, its secrets and how its client is made).
"""
