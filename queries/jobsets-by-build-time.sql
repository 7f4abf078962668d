-- name: jobsets-by-build-time
-- description: Jobsets by builder time used in the window, with their share of it
-- param: since time 7d
SELECT j.project || ':' || j.name AS jobset,
       count(*)::int8 AS steps,
       round(sum(s.stoptime - s.starttime) / 3600.0, 2)::float8 AS build_hours,
       round(100.0 * sum(s.stoptime - s.starttime) / nullif(sum(sum(s.stoptime - s.starttime)) OVER (), 0), 1)::float8 AS percent
FROM buildsteps s
JOIN builds b ON b.id = s.build
JOIN jobsets j ON j.id = b.jobset_id
WHERE s.stoptime >= $1::int8 AND s.starttime IS NOT NULL
GROUP BY 1
ORDER BY build_hours DESC
-- offline:
WITH per AS (
  SELECT j.project || ':' || j.name AS jobset,
         count(*) AS steps,
         sum(s.stoptime - s.starttime) AS build_s
  FROM buildsteps s
  JOIN builds b ON b.id = s.build
  JOIN jobsets j ON j.id = b.jobset_id
  WHERE s.stoptime >= $1 AND s.starttime IS NOT NULL
  GROUP BY j.project || ':' || j.name
)
SELECT jobset,
       steps::int8 AS steps,
       round(build_s / 3600.0, 2)::float8 AS build_hours,
       round(100.0 * build_s / nullif(sum(build_s) OVER (), 0), 1)::float8 AS percent
FROM per
ORDER BY build_hours DESC
