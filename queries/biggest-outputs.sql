-- name: biggest-outputs
-- description: Finished builds with the largest output NAR size in the window
-- param: since time 7d
-- param: limit int 20
SELECT b.id AS build, b.job, b.system,
       round(b.size / 1048576.0, 1)::float8 AS size_mib,
       round(b.closuresize / 1048576.0, 1)::float8 AS closure_mib
FROM builds b
WHERE b.finished = 1 AND b.stoptime >= $1::int8 AND b.size IS NOT NULL
ORDER BY b.size DESC
LIMIT $2::int8
