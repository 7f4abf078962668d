-- name: queue-depth-per-hour
-- description: Builds queued but not finished at the start of each hour
-- param: since time 2d
SELECT to_char(to_timestamp(h) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00') AS hour_utc,
       (SELECT count(*) FROM builds b
         WHERE b.timestamp <= h AND (b.finished = 0 OR b.stoptime > h))::int8 AS queued
FROM generate_series(($1::int8 / 3600) * 3600, extract(epoch FROM now())::int8, 3600) AS h
ORDER BY h
-- offline:
-- The offline engine has neither generate_series nor correlated subqueries. The hours are made
-- from digits (up to 100,000 hours, eleven years), and the depth at hour h is the builds queued
-- by h less those that left by h, as a running sum: a build is queued at h when it was queued at
-- or before h and is unfinished or finished after h, so it counts from the first hour at or
-- after its timestamp until the first hour at or after the later of its timestamp and stop time
-- (a finished build without a stop time is never counted, as in PostgreSQL's comparison with
-- null).
WITH digits AS (
  SELECT d FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS t(d)
),
grid AS (
  SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS k
  FROM digits a CROSS JOIN digits b CROSS JOIN digits c CROSS JOIN digits e CROSS JOIN digits f
),
hours AS (
  SELECT k, div($1, 3600) * 3600 + 3600 * k AS h
  FROM grid
  WHERE div($1, 3600) * 3600 + 3600 * k <= $now
),
events AS (
  SELECT greatest(0, ceil((b.timestamp - div($1, 3600) * 3600) / 3600.0))::int8 AS k, 1 AS n
  FROM builds b
  UNION ALL
  SELECT greatest(0, ceil((greatest(b.timestamp, coalesce(b.stoptime, b.timestamp))
                          - div($1, 3600) * 3600) / 3600.0))::int8 AS k, -1 AS n
  FROM builds b
  WHERE b.finished = 1
),
per_hour AS (
  SELECT k, sum(n) AS n FROM events GROUP BY k
)
SELECT strftime(CAST(hours.h * 1000000 AS TIMESTAMP), '%Y-%m-%d %H:00') AS hour_utc,
       sum(coalesce(per_hour.n, 0)) OVER (ORDER BY hours.k)::int8 AS queued
FROM hours
LEFT JOIN per_hour ON per_hour.k = hours.k
ORDER BY hours.k
