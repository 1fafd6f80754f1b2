"""Personal layouts: each person arranges their dashboard, kept in the portal's database.

`model.py` is the document and its rules (what a user may post, the default of their team, the
merge with what the deployment has now); `store.py` reads and writes it; `views.py` the guarded
routes the page's edit mode calls.
"""
