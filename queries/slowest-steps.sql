-- name: slowest-steps
-- description: The longest individual steps in the window
-- param: since time 7d
-- param: limit int 20
SELECT s.build, s.stepnr, s.machine, s.system, s.status,
       (s.stoptime - s.starttime)::int8 AS build_s,
       (s.overhead / 1000)::int8 AS overhead_s,
       s.drvpath AS drv_path
FROM buildsteps s
WHERE s.stoptime >= $1::int8 AND s.starttime IS NOT NULL
ORDER BY s.stoptime - s.starttime DESC
LIMIT $2::int8
