#!/usr/bin/env python3
"""Writes a legacy soft-delete table of N rows as CSV on stdout, for
measuring `ledger import legacy`: one row a pair (user uI on a random
article of 20,000), a like or (every third row) a collect, created at a
random second of 2024, half of them deleted up to a day later.
usage: scripts/legacy-csv.py N > rows.csv"""
import datetime
import random
import sys

n = int(sys.argv[1])
random.seed(7)
base = datetime.datetime(2024, 1, 1)
print("id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at")
for i in range(1, n + 1):
    created = base + datetime.timedelta(seconds=random.randrange(0, 300 * 86400))
    deleted = random.random() < 0.5
    updated = created + datetime.timedelta(seconds=random.randrange(1, 86400)) if deleted else created
    kind = "like" if i % 3 else "collect"
    print(f"{i},u{i},{kind},article,a{random.randrange(20000)},{int(deleted)},"
          f"{created:%Y-%m-%d %H:%M:%S},{updated:%Y-%m-%d %H:%M:%S}")
