-- name: queue-depth-per-hour
-- description: Builds queued but not finished at the start of each hour
-- param: since time 2d
SELECT to_char(to_timestamp(h) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00') AS hour_utc,
       (SELECT count(*) FROM builds b
         WHERE b.timestamp <= h AND (b.finished = 0 OR b.stoptime > h))::int8 AS queued
FROM generate_series(($1::int8 / 3600) * 3600, extract(epoch FROM now())::int8, 3600) AS h
ORDER BY h
