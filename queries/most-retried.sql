-- name: most-retried
-- description: Derivations built most often in the window (retries, rebuilds, determinism checks)
-- param: since time 7d
-- param: limit int 20
-- A derivation is grouped by its basename (<hash>-<name>.drv): from schema 89 a row may hold it
-- whole or as a basename beside storeDir (docs/hydra.md §1), and both are one derivation.
SELECT substring(s.drvpath from '[^/]*$') AS drv_path,
       count(*)::int8 AS attempts,
       count(*) FILTER (WHERE s.status = 0)::int8 AS succeeded,
       count(*) FILTER (WHERE s.status <> 0)::int8 AS failed,
       round(sum(s.stoptime - s.starttime) / 3600.0, 2)::float8 AS build_hours
FROM buildsteps s
WHERE s.type = 0 AND s.stoptime >= $1::int8 AND s.starttime IS NOT NULL
GROUP BY 1
HAVING count(*) > 1
ORDER BY attempts DESC, build_hours DESC
LIMIT $2::int8
-- offline:
-- The basename is the last '/'-separated part: reversed, it is the first.
SELECT reverse(split_part(reverse(s.drvpath), '/', 1)) AS drv_path,
       count(*)::int8 AS attempts,
       count(*) FILTER (WHERE s.status = 0)::int8 AS succeeded,
       count(*) FILTER (WHERE s.status <> 0)::int8 AS failed,
       round(sum(s.stoptime - s.starttime) / 3600.0, 2)::float8 AS build_hours
FROM buildsteps s
WHERE s.type = 0 AND s.stoptime >= $1 AND s.starttime IS NOT NULL
GROUP BY reverse(split_part(reverse(s.drvpath), '/', 1))
HAVING count(*) > 1
ORDER BY attempts DESC, build_hours DESC
LIMIT $2
