-- name: failures-by-status
-- description: Finished steps by status code, with the builder time each status took
-- param: since time 7d
SELECT s.status,
       CASE s.status WHEN 0 THEN 'success' WHEN 1 THEN 'failed' WHEN 2 THEN 'dependency failed'
                     WHEN 3 THEN 'aborted' WHEN 4 THEN 'cancelled' WHEN 6 THEN 'failed with output'
                     WHEN 7 THEN 'timed out' WHEN 8 THEN 'cached failure' WHEN 9 THEN 'unsupported system'
                     WHEN 10 THEN 'log limit exceeded' WHEN 11 THEN 'output size limit exceeded'
                     WHEN 12 THEN 'not deterministic' WHEN 13 THEN 'resolved' ELSE 'unknown' END AS meaning,
       count(*)::int8 AS steps,
       round(coalesce(sum(s.stoptime - s.starttime), 0) / 3600.0, 2)::float8 AS build_hours
FROM buildsteps s
WHERE s.status IS NOT NULL AND s.stoptime >= $1::int8
GROUP BY s.status
ORDER BY steps DESC
