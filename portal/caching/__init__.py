"""Where data is kept between requests: stores, the broadcast channel and the widget cache.

`stores` holds the key-value stores (in process, Redis, files, and Redis with an in-process
fallback) that the widget cache and the session records share; `broadcast` tells every worker of
every replica that something changed (a Redis publish/subscribe channel); `widget_cache` is the
single-flight cache every widget fetches through; `memo` is the small bounded map used for
per-worker memos.
"""
