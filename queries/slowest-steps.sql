-- name: slowest-steps
-- description: The longest individual steps in the window
-- param: since time 7d
-- param: limit int 20
-- The derivation by its basename (<hash>-<name>.drv): from schema 89 a row may hold it whole or
-- as a basename beside storeDir (docs/hydra.md §1).
SELECT s.build, s.stepnr, s.machine, s.system, s.status,
       (s.stoptime - s.starttime)::int8 AS build_s,
       (s.overhead / 1000)::int8 AS overhead_s,
       substring(s.drvpath from '[^/]*$') AS drv_path
FROM buildsteps s
WHERE s.stoptime >= $1::int8 AND s.starttime IS NOT NULL
ORDER BY s.stoptime - s.starttime DESC
LIMIT $2::int8
-- offline:
SELECT s.build, s.stepnr, s.machine, s.system, s.status,
       (s.stoptime - s.starttime)::int8 AS build_s,
       (s.overhead / 1000)::int8 AS overhead_s,
       reverse(split_part(reverse(s.drvpath), '/', 1)) AS drv_path
FROM buildsteps s
WHERE s.stoptime >= $1 AND s.starttime IS NOT NULL
ORDER BY s.stoptime - s.starttime DESC
LIMIT $2
