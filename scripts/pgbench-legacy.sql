-- The "fixed legacy" design as pgbench runs it (scripts/pgbench-legacy.sh):
-- a toggle physically deletes the (user, target) row or inserts it, and
-- moves the target's count row by the same amount in the same transaction.
\set uid random(1, 100000)
\set tid random_zipfian(1, 10000, 1.1)
WITH d AS (DELETE FROM legacy_likes WHERE user_id = :uid AND target_id = :tid RETURNING 1),
     i AS (INSERT INTO legacy_likes (user_id, target_id)
           SELECT :uid, :tid WHERE NOT EXISTS (SELECT 1 FROM d)
           ON CONFLICT DO NOTHING RETURNING 1)
UPDATE legacy_counts SET n = n + (SELECT count(*) FROM i) - (SELECT count(*) FROM d)
WHERE target_id = :tid;
