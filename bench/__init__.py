"""`make bench`: the portal's performance and resilience, measured against its goals.

Every figure is measured in one run on this machine, next to a reference measured in the same
run (a bare Flask app, the portal without the fault, ...), because the load generator shares
the cores with the server: ratios are comparable between machines, absolute numbers are not.
"""
