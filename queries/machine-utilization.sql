-- name: machine-utilization
-- description: Per machine: steps, build hours, overhead hours and mean step time in the window
-- param: since time 7d
SELECT s.machine,
       count(*)::int8 AS steps,
       round(sum(s.stoptime - s.starttime) / 3600.0, 2)::float8 AS build_hours,
       round(sum(coalesce(s.overhead, 0)) / 3600000.0, 2)::float8 AS overhead_hours,
       round(avg(s.stoptime - s.starttime), 1)::float8 AS mean_step_s
FROM buildsteps s
WHERE s.machine <> '' AND s.stoptime >= $1::int8 AND s.starttime IS NOT NULL
GROUP BY s.machine
ORDER BY build_hours DESC
