-- name: step-times-by-system
-- description: Step build time distribution per system type (p50, p90, p99, max, seconds)
-- param: since time 7d
SELECT s.system,
       count(*)::int8 AS steps,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY s.stoptime - s.starttime)::int8 AS p50_s,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY s.stoptime - s.starttime)::int8 AS p90_s,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY s.stoptime - s.starttime)::int8 AS p99_s,
       max(s.stoptime - s.starttime)::int8 AS max_s
FROM buildsteps s
WHERE s.type = 0 AND s.stoptime >= $1::int8 AND s.starttime IS NOT NULL AND s.stoptime >= s.starttime
GROUP BY s.system
ORDER BY steps DESC
-- offline:
SELECT s.system,
       count(*)::int8 AS steps,
       quantile_disc(s.stoptime - s.starttime, 0.5)::int8 AS p50_s,
       quantile_disc(s.stoptime - s.starttime, 0.9)::int8 AS p90_s,
       quantile_disc(s.stoptime - s.starttime, 0.99)::int8 AS p99_s,
       max(s.stoptime - s.starttime)::int8 AS max_s
FROM buildsteps s
WHERE s.type = 0 AND s.stoptime >= $1 AND s.starttime IS NOT NULL AND s.stoptime >= s.starttime
GROUP BY s.system
ORDER BY steps DESC
