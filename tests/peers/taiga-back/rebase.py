# Moves the data seed.py wrote on an earlier day to today (UTC), for setup.sh when it has just
# copied the template cluster that install.sh made: every date seed.py sets is today's date plus
# or minus some days, so shifting them all, and the seed.json that lists them, by the days since
# gives what seed.py would give today (on an untouched copy), in well under a second instead of
# seed.py's 10 to 25 s of saves. Runs with taiga-back's virtualenv (psycopg2), without Django.
# Usage: rebase.py SEED_JSON_OF_THAT_DAY SEED_JSON_OUT PG_PORT
import datetime as dt
import json
import sys

import psycopg2

source, target, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(source) as handle:
    seed = json.load(handle)
today = dt.datetime.now(dt.UTC).date()
days = (today - dt.date.fromisoformat(seed["today_utc"])).days

SHIFTS = [  # table, date columns, timestamp columns: all that seed.py sets from today's date
    ("tasks_task", ["due_date"], ["finished_date"]),
    ("userstories_userstory", ["due_date"], ["finish_date"]),
    ("issues_issue", ["due_date"], ["finished_date"]),
    ("milestones_milestone", ["estimated_start", "estimated_finish"], []),
]
if days:
    db = psycopg2.connect(host="127.0.0.1", port=port, dbname="taiga", user="taiga", password="taiga")
    with db, db.cursor() as cursor:  # one transaction
        for table, dates, stamps in SHIFTS:
            sets = [f"{c} = {c} + %(days)s" for c in dates]
            sets += [f"{c} = {c} + make_interval(days => %(days)s)" for c in stamps]
            cursor.execute(f"UPDATE {table} SET {', '.join(sets)}", {"days": days})
    db.close()


def moved(value):
    return None if value is None else str(dt.date.fromisoformat(value) + dt.timedelta(days=days))


seed["today_utc"] = str(today)
for item in seed["milestones"]:
    item["estimated_finish"] = moved(item["estimated_finish"])
for item in seed["userstories"] + seed["tasks"] + seed.get("issues", []):
    item["due_date"] = moved(item["due_date"])
with open(target, "w") as out:
    json.dump(seed, out, indent=1)
    out.write("\n")
