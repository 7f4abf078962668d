-- name: slowest-jobs
-- description: Jobs that used the most builder time in the window, with their median and longest step
-- param: since time 7d
-- param: limit int 20
SELECT j.project || ':' || j.name AS jobset,
       b.job,
       count(*)::int8 AS steps,
       round(sum(s.stoptime - s.starttime) / 3600.0, 2)::float8 AS build_hours,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY s.stoptime - s.starttime)::int8 AS median_s,
       max(s.stoptime - s.starttime)::int8 AS max_s
FROM buildsteps s
JOIN builds b ON b.id = s.build
JOIN jobsets j ON j.id = b.jobset_id
WHERE s.stoptime >= $1::int8 AND s.starttime IS NOT NULL AND s.stoptime >= s.starttime
GROUP BY 1, 2
ORDER BY build_hours DESC
LIMIT $2::int8
-- offline:
SELECT j.project || ':' || j.name AS jobset,
       b.job,
       count(*)::int8 AS steps,
       round(sum(s.stoptime - s.starttime) / 3600.0, 2)::float8 AS build_hours,
       quantile_disc(s.stoptime - s.starttime, 0.5)::int8 AS median_s,
       max(s.stoptime - s.starttime)::int8 AS max_s
FROM buildsteps s
JOIN builds b ON b.id = s.build
JOIN jobsets j ON j.id = b.jobset_id
WHERE s.stoptime >= $1 AND s.starttime IS NOT NULL AND s.stoptime >= s.starttime
GROUP BY j.project || ':' || j.name, b.job
ORDER BY build_hours DESC
LIMIT $2
