-- SQLite workload timed by bench/run.py (workload 9): an in-memory database
-- built, indexed, queried, updated and shrunk.  Run as: sqlite3 :memory: < workload.sql
PRAGMA cache_size = -65536;
CREATE TABLE params AS SELECT 80000 AS rows; -- bench/run.py's smoke profile lowers this
CREATE TABLE items(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, body BLOB, score REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < (SELECT rows FROM params))
INSERT INTO items(grp, name, body, score)
SELECT i % 97, printf('item-%08d-%s', i, substr('abcdefghijklmnopqrstuvwxyz0123456789abcdefghij', 1 + i % 11, 8 + i % 24)),
       zeroblob(16 + (i * 7919) % 600), (i * 2654435761 % 1000003) / 1000.0 FROM n;
CREATE INDEX items_name ON items(name);
CREATE INDEX items_grp_score ON items(grp, score);
SELECT grp, count(*), sum(length(body)), avg(score) FROM items GROUP BY grp ORDER BY 4 DESC LIMIT 5;
SELECT count(*) FROM items a JOIN items b ON a.id = b.id + 1 WHERE a.grp = b.grp + 1;
UPDATE items SET name = name || '-updated', body = zeroblob(length(body) / 2) WHERE id % 3 = 0;
SELECT count(DISTINCT substr(name, 1, 12)) FROM items;
DELETE FROM items WHERE id % 5 = 0;
SELECT group_concat(name, ',') IS NOT NULL FROM (SELECT name FROM items ORDER BY score LIMIT 2000);
VACUUM;
SELECT count(*), sum(score) FROM items;
