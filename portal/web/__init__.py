"""The web layer: what every HTTP request goes through, whatever it asks for.

The request record (its log line and metrics), security headers, response compression, error
pages, safe redirect targets and the choice of language. Nothing here knows about widgets or
upstreams.
"""
