-- name: job-history
-- description: The recent builds of one job: when queued, how long they waited and took, and how they ended
-- param: job text hello
-- param: limit int 20
SELECT b.id AS build,
       j.project || ':' || j.name AS jobset,
       to_char(to_timestamp(b.timestamp) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS queued_utc,
       (b.starttime - b.timestamp)::int8 AS wait_s,
       (b.stoptime - b.starttime)::int8 AS duration_s,
       b.buildstatus::int8 AS status
FROM builds b
JOIN jobsets j ON j.id = b.jobset_id
WHERE b.job = $1::text
ORDER BY b.timestamp DESC
LIMIT $2::int8
-- offline:
SELECT b.id AS build,
       j.project || ':' || j.name AS jobset,
       strftime(CAST(b.timestamp * 1000000 AS TIMESTAMP), '%Y-%m-%d %H:%M') AS queued_utc,
       (b.starttime - b.timestamp)::int8 AS wait_s,
       (b.stoptime - b.starttime)::int8 AS duration_s,
       b.buildstatus::int8 AS status
FROM builds b
JOIN jobsets j ON j.id = b.jobset_id
WHERE b.job = $1
ORDER BY b.timestamp DESC
LIMIT $2
