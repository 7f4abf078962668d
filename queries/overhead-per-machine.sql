-- name: overhead-per-machine
-- description: Copying overhead per machine: total, mean and 90th percentile per step, and its share of slot time
-- param: since time 7d
SELECT s.machine,
       count(*)::int8 AS steps,
       round(sum(s.overhead) / 3600000.0, 2)::float8 AS overhead_hours,
       round(avg(s.overhead) / 1000.0, 1)::float8 AS mean_s,
       round((percentile_cont(0.9) WITHIN GROUP (ORDER BY s.overhead) / 1000.0)::numeric, 1)::float8 AS p90_s,
       round(100.0 * sum(s.overhead) / 1000.0
             / nullif(sum(s.stoptime - s.starttime) + sum(s.overhead) / 1000.0, 0), 1)::float8 AS percent_of_slot_time
FROM buildsteps s
WHERE s.machine <> '' AND s.overhead IS NOT NULL AND s.stoptime >= $1::int8
  AND s.starttime IS NOT NULL
GROUP BY s.machine
ORDER BY overhead_hours DESC
-- offline:
SELECT s.machine,
       count(*)::int8 AS steps,
       round(sum(s.overhead) / 3600000.0, 2)::float8 AS overhead_hours,
       round(avg(s.overhead) / 1000.0, 1)::float8 AS mean_s,
       round(quantile_cont(s.overhead, 0.9) / 1000.0, 1)::float8 AS p90_s,
       round(100.0 * sum(s.overhead) / 1000.0
             / nullif(sum(s.stoptime - s.starttime) + sum(s.overhead) / 1000.0, 0), 1)::float8 AS percent_of_slot_time
FROM buildsteps s
WHERE s.machine <> '' AND s.overhead IS NOT NULL AND s.stoptime >= $1
  AND s.starttime IS NOT NULL
GROUP BY s.machine
ORDER BY overhead_hours DESC
